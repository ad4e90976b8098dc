/* Shared PSA Crypto helpers of the core (internal). */
#ifndef DCP_PSA_H
#define DCP_PSA_H

#include <psa/crypto.h>

#include "dcp_common.h"

/* psa_crypto_init(), then a volatile key of type, usage and algorithm policy from raw bytes. */
psa_status_t dcp_psa_import(psa_key_type_t type, psa_key_usage_t usage, psa_algorithm_t alg,
                            const uint8_t *key, size_t len, psa_key_id_t *id);
/* Overwrites secrets in a way the compiler does not drop. */
void dcp_wipe(void *p, size_t n);

#endif
