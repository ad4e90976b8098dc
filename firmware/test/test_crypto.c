/* Known-answer tests of the PSA-backed crypto: FIPS-197 C.1, RFC 4493 section 4, Mesh Profile
 * 8.1.5 and 8.2.4. */
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_crypto.h"

static void unhex(const char *s, uint8_t *out)
{
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (unsigned k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            v = v * 16u + (unsigned)((c <= '9') ? c - '0' : c - 'a' + 10);
        }
        out[i] = (uint8_t)v;
    }
}

static void test_aes_fips197(void **state)
{
    (void)state;
    uint8_t key[16];
    uint8_t in[16];
    uint8_t want[16];
    uint8_t out[16];
    unhex("000102030405060708090a0b0c0d0e0f", key);
    unhex("00112233445566778899aabbccddeeff", in);
    unhex("69c4e0d86a7b0430d8cdb78070b4c55a", want);
    assert_true(dcp_aes128_encrypt(key, in, out));
    assert_memory_equal(out, want, 16);
}

static void test_cmac_rfc4493(void **state)
{
    (void)state;
    static const char *msg_hex =
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    static const struct {
        size_t len;
        const char *mac;
    } cases[] = {
        {0, "bb1d6929e95937287fa37d129b756746"},
        {16, "070a16b46b4d4144f79bdd9dd04a287c"},
        {40, "dfa66747de9ae63030ca32611497c827"},
        {64, "51f0bebf7e3b9d92fc49741779363cfe"},
    };
    uint8_t key[16];
    uint8_t msg[64];
    unhex("2b7e151628aed2a6abf7158809cf4f3c", key);
    unhex(msg_hex, msg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t want[16];
        uint8_t mac[16];
        unhex(cases[i].mac, want);
        assert_true(dcp_aes_cmac(key, msg, cases[i].len, mac));
        assert_memory_equal(mac, want, 16);
    }
}

static void test_k3_mesh_samples(void **state)
{
    (void)state;
    static const struct {
        const char *net_key;
        const char *network_id;
        uint32_t mesh_id;
    } cases[] = {
        {"f7a2a44f8e8a8029064f173ddc1e2b00", "ff046958233db014", 0xff046958u},
        {"7dd7364cd842ad18c17c2b820c84c3d6", "3ecaff672f673370", 0x3ecaff67u},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t key[16];
        uint8_t want[8];
        uint8_t id[8];
        unhex(cases[i].net_key, key);
        unhex(cases[i].network_id, want);
        assert_true(dcp_mesh_network_id(key, id));
        assert_memory_equal(id, want, 8);
        assert_int_equal(dcp_mesh_id(key), cases[i].mesh_id);
    }
}

static void test_crypto_init(void **state)
{
    (void)state;
    assert_true(dcp_crypto_init());
    assert_true(dcp_crypto_init()); /* idempotent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init),
        cmocka_unit_test(test_aes_fips197),
        cmocka_unit_test(test_cmac_rfc4493),
        cmocka_unit_test(test_k3_mesh_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
