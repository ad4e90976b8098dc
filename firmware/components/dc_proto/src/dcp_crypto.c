#include "dcp_crypto.h"

#include <string.h>

#include "dcp_psa.h"

void dcp_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n-- > 0) {
        *v++ = 0;
    }
}

psa_status_t dcp_psa_import(psa_key_type_t type, psa_key_usage_t usage, psa_algorithm_t alg,
                            const uint8_t *key, size_t len, psa_key_id_t *id)
{
    psa_status_t st = psa_crypto_init();
    if (st != PSA_SUCCESS) {
        return st;
    }
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, type);
    psa_set_key_bits(&attr, PSA_BYTES_TO_BITS(len));
    psa_set_key_usage_flags(&attr, usage);
    psa_set_key_algorithm(&attr, alg);
    st = psa_import_key(&attr, key, len, id);
    psa_reset_key_attributes(&attr);
    return st;
}

bool dcp_crypto_init(void)
{
    return psa_crypto_init() == PSA_SUCCESS;
}

bool dcp_aes128_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    psa_key_id_t id = PSA_KEY_ID_NULL;
    size_t n = 0;
    psa_status_t st = dcp_psa_import(PSA_KEY_TYPE_AES, PSA_KEY_USAGE_ENCRYPT,
                                     PSA_ALG_ECB_NO_PADDING, key, 16, &id);
    if (st == PSA_SUCCESS) {
        st = psa_cipher_encrypt(id, PSA_ALG_ECB_NO_PADDING, in, 16, out, 16, &n);
        psa_destroy_key(id);
    }
    return st == PSA_SUCCESS && n == 16;
}

bool dcp_aes_cmac(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mac[16])
{
    static const uint8_t none[1] = {0};
    psa_key_id_t id = PSA_KEY_ID_NULL;
    size_t n = 0;
    psa_status_t st =
        dcp_psa_import(PSA_KEY_TYPE_AES, PSA_KEY_USAGE_SIGN_MESSAGE, PSA_ALG_CMAC, key, 16, &id);
    if (st == PSA_SUCCESS) {
        st = psa_mac_compute(id, PSA_ALG_CMAC, len > 0 ? msg : none, len, mac, 16, &n);
        psa_destroy_key(id);
    }
    return st == PSA_SUCCESS && n == 16;
}

bool dcp_mesh_network_id(const uint8_t net_key[16], uint8_t network_id[8])
{
    static const uint8_t zero[16] = {0};
    static const uint8_t smk3[4] = {'s', 'm', 'k', '3'};
    static const uint8_t id64[5] = {'i', 'd', '6', '4', 0x01};
    uint8_t salt[16];
    uint8_t t[16];
    uint8_t out[16];
    bool ok = dcp_aes_cmac(zero, smk3, sizeof(smk3), salt) &&
              dcp_aes_cmac(salt, net_key, 16, t) && dcp_aes_cmac(t, id64, sizeof(id64), out);
    if (ok) {
        memcpy(network_id, out + 8, 8);
    }
    dcp_wipe(t, sizeof(t));
    return ok;
}

uint32_t dcp_mesh_id(const uint8_t net_key[16])
{
    uint8_t id[8];
    if (!dcp_mesh_network_id(net_key, id)) {
        return 0;
    }
    return ((uint32_t)id[0] << 24) | ((uint32_t)id[1] << 16) | ((uint32_t)id[2] << 8) | id[3];
}
