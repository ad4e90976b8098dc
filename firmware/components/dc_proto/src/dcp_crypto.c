#include "dcp_crypto.h"

#include <string.h>

/* A small AES-128 (encryption only) that computes the S-box instead of storing it: it runs a
 * handful of blocks when the node is provisioned, so size matters more than speed. */

static uint8_t xtime(uint8_t a)
{
    return (uint8_t)((a << 1) ^ ((a & 0x80u) ? 0x1Bu : 0x00u));
}

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
    uint8_t p = 0;
    while (b != 0) {
        if (b & 1u) {
            p ^= a;
        }
        a = xtime(a);
        b >>= 1;
    }
    return p;
}

static uint8_t rotl8(uint8_t x, unsigned n)
{
    return (uint8_t)((x << n) | (x >> (8u - n)));
}

static uint8_t sbox(uint8_t x)
{
    /* multiplicative inverse x^254 (0 maps to 0), then the affine transform */
    uint8_t inv = 1;
    uint8_t base = x;
    for (unsigned e = 254; e != 0; e >>= 1) {
        if (e & 1u) {
            inv = gf_mul(inv, base);
        }
        base = gf_mul(base, base);
    }
    return (uint8_t)(inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4) ^ 0x63u);
}

void dcp_aes128_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    uint8_t rk[16];
    uint8_t s[16];
    uint8_t rcon = 1;
    memcpy(rk, key, 16);
    for (unsigned i = 0; i < 16; i++) {
        s[i] = in[i] ^ rk[i];
    }
    for (unsigned round = 1; round <= 10; round++) {
        /* next round key */
        uint8_t t[4] = {sbox(rk[13]), sbox(rk[14]), sbox(rk[15]), sbox(rk[12])};
        t[0] ^= rcon;
        rcon = xtime(rcon);
        for (unsigned i = 0; i < 16; i++) {
            rk[i] ^= (i < 4) ? t[i] : rk[i - 4];
        }
        /* SubBytes and ShiftRows (state is column-major: s[4 * column + row]) */
        uint8_t u[16];
        for (unsigned c = 0; c < 4; c++) {
            for (unsigned r = 0; r < 4; r++) {
                u[4 * c + r] = sbox(s[4 * ((c + r) % 4) + r]);
            }
        }
        /* MixColumns except in the last round, then AddRoundKey */
        for (unsigned c = 0; c < 4; c++) {
            uint8_t *a = &u[4 * c];
            if (round != 10) {
                uint8_t all = a[0] ^ a[1] ^ a[2] ^ a[3];
                uint8_t a0 = a[0];
                a[0] ^= all ^ xtime(a[0] ^ a[1]);
                a[1] ^= all ^ xtime(a[1] ^ a[2]);
                a[2] ^= all ^ xtime(a[2] ^ a[3]);
                a[3] ^= all ^ xtime(a[3] ^ a0);
            }
            for (unsigned r = 0; r < 4; r++) {
                s[4 * c + r] = a[r] ^ rk[4 * c + r];
            }
        }
    }
    memcpy(out, s, 16);
}

static void cmac_subkey(const uint8_t in[16], uint8_t out[16])
{
    uint8_t carry = 0;
    for (int i = 15; i >= 0; i--) {
        uint8_t b = in[i];
        out[i] = (uint8_t)((b << 1) | carry);
        carry = (uint8_t)(b >> 7);
    }
    if (in[0] & 0x80u) {
        out[15] ^= 0x87u;
    }
}

void dcp_aes_cmac(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mac[16])
{
    static const uint8_t zero[16] = {0};
    uint8_t l[16];
    uint8_t k1[16];
    uint8_t k2[16];
    dcp_aes128_encrypt(key, zero, l);
    cmac_subkey(l, k1);
    cmac_subkey(k1, k2);

    size_t blocks = (len + 15u) / 16u;
    bool complete = (blocks > 0 && len % 16u == 0);
    if (blocks == 0) {
        blocks = 1;
    }
    uint8_t x[16] = {0};
    uint8_t y[16];
    for (size_t b = 0; b + 1u < blocks; b++) {
        for (unsigned i = 0; i < 16; i++) {
            y[i] = x[i] ^ msg[16u * b + i];
        }
        dcp_aes128_encrypt(key, y, x);
    }
    size_t off = 16u * (blocks - 1u);
    for (unsigned i = 0; i < 16; i++) {
        uint8_t m;
        if (complete) {
            m = msg[off + i] ^ k1[i];
        } else {
            size_t at = off + i;
            m = (uint8_t)((at < len) ? msg[at] : ((at == len) ? 0x80u : 0x00u)) ^ k2[i];
        }
        y[i] = x[i] ^ m;
    }
    dcp_aes128_encrypt(key, y, mac);
}

void dcp_mesh_network_id(const uint8_t net_key[16], uint8_t network_id[8])
{
    static const uint8_t zero[16] = {0};
    static const uint8_t smk3[4] = {'s', 'm', 'k', '3'};
    static const uint8_t id64[5] = {'i', 'd', '6', '4', 0x01};
    uint8_t salt[16];
    uint8_t t[16];
    uint8_t out[16];
    dcp_aes_cmac(zero, smk3, sizeof(smk3), salt);
    dcp_aes_cmac(salt, net_key, 16, t);
    dcp_aes_cmac(t, id64, sizeof(id64), out);
    memcpy(network_id, out + 8, 8);
}

uint32_t dcp_mesh_id(const uint8_t net_key[16])
{
    uint8_t id[8];
    dcp_mesh_network_id(net_key, id);
    return ((uint32_t)id[0] << 24) | ((uint32_t)id[1] << 16) | ((uint32_t)id[2] << 8) | id[3];
}
