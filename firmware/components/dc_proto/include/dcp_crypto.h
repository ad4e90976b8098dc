/* Mesh id derivation: k3 of the primary NetKey (Mesh Profile 3.8.2.5). AES-128 and AES-CMAC
 * come from the PSA Crypto API (ESP-IDF's mbedTLS / TF-PSA-Crypto on the device, Debian's
 * libmbedcrypto on the host); nothing here is a hand-written primitive. Every function calls
 * psa_crypto_init() itself (it is idempotent), so callers need no set-up. False / 0 when the
 * crypto library fails (out of key slots, not initialised), never a wrong value. */
#ifndef DCP_CRYPTO_H
#define DCP_CRYPTO_H

#include "dcp_common.h"

/* psa_crypto_init(); true on success. */
bool dcp_crypto_init(void);
/* One AES-128 block (PSA_ALG_ECB_NO_PADDING). */
bool dcp_aes128_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);
/* AES-CMAC (RFC 4493; PSA_ALG_CMAC). */
bool dcp_aes_cmac(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mac[16]);
/* Network ID = k3(NetKey), 8 bytes. */
bool dcp_mesh_network_id(const uint8_t net_key[16], uint8_t network_id[8]);
/* Mesh id of protocol-v1 section 5: the first 4 bytes of the Network ID, big-endian; 0 when the
 * crypto library fails (the value an unprovisioned node reports). */
uint32_t dcp_mesh_id(const uint8_t net_key[16]);

#endif
