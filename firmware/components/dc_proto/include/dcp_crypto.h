/* Mesh id derivation: k3 of the primary NetKey (Mesh Profile 3.8.2.5) on a small AES-128. */
#ifndef DCP_CRYPTO_H
#define DCP_CRYPTO_H

#include "dcp_common.h"

void dcp_aes128_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);
/* AES-CMAC (RFC 4493). */
void dcp_aes_cmac(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mac[16]);
/* Network ID = k3(NetKey), 8 bytes. */
void dcp_mesh_network_id(const uint8_t net_key[16], uint8_t network_id[8]);
/* Mesh id of protocol-v1 section 5: the first 4 bytes of the Network ID, big-endian. */
uint32_t dcp_mesh_id(const uint8_t net_key[16]);

#endif
