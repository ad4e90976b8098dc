#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_chunk.h"

static void test_counts(void **state)
{
    (void)state;
    assert_int_equal(dcp_chunk_count(0), 1);
    assert_int_equal(dcp_chunk_count(20), 1);
    assert_int_equal(dcp_chunk_count(21), 2);
    assert_int_equal(dcp_chunk_count(39), 2);
    assert_int_equal(dcp_chunk_count(40), 3);
    assert_int_equal(dcp_chunk_count(512), 27);
}

static void test_split(void **state)
{
    (void)state;
    uint8_t msg[41];
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)('a' + i % 26);
    }
    uint8_t c[DCP_NOTIFY_CHUNK_SIZE];
    assert_int_equal(dcp_chunk_get(msg, 41, 0, c), 20);
    assert_int_equal(c[0], '+');
    assert_memory_equal(c + 1, msg, 19);
    assert_int_equal(dcp_chunk_get(msg, 41, 1, c), 20);
    assert_memory_equal(c + 1, msg + 19, 19);
    assert_int_equal(dcp_chunk_get(msg, 41, 2, c), 3);
    assert_memory_equal(c, msg + 38, 3);
    assert_int_equal(dcp_chunk_get(msg, 41, 3, c), 0);
    assert_int_equal(dcp_chunk_get(msg, 20, 0, c), 20);
    assert_memory_equal(c, msg, 20);
}

static void test_reassembly_round_trip(void **state)
{
    (void)state;
    static uint8_t msg[DCP_MAX_MESSAGE_LEN];
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i * 7u);
        if (msg[i] == '+') {
            msg[i] = 0;
        }
    }
    for (size_t len = 1; len <= sizeof(msg); len += 37) {
        dcp_reasm_t r;
        dcp_reasm_reset(&r);
        size_t count = dcp_chunk_count(len);
        const uint8_t *out = NULL;
        size_t out_len = 0;
        for (size_t i = 0; i < count; i++) {
            uint8_t c[DCP_NOTIFY_CHUNK_SIZE];
            size_t n = dcp_chunk_get(msg, len, i, c);
            dcp_reasm_result_t res = dcp_reasm_feed(&r, c, n, &out, &out_len);
            assert_int_equal(res, (i + 1 < count) ? DCP_REASM_MORE : DCP_REASM_DONE);
        }
        assert_int_equal(out_len, len);
        assert_memory_equal(out, msg, len);
    }
}

static void test_reassembly_bounds(void **state)
{
    (void)state;
    dcp_reasm_t r;
    dcp_reasm_reset(&r);
    uint8_t cont[DCP_NOTIFY_CHUNK_SIZE];
    memset(cont, 'x', sizeof(cont));
    cont[0] = '+';
    const uint8_t *out = NULL;
    size_t out_len = 0;
    for (size_t i = 0; i < DCP_MAX_MESSAGE_LEN / 19; i++) {
        assert_int_equal(dcp_reasm_feed(&r, cont, sizeof(cont), &out, &out_len), DCP_REASM_MORE);
    }
    assert_int_equal(dcp_reasm_feed(&r, cont, sizeof(cont), &out, &out_len), DCP_REASM_TOO_LONG);
    assert_int_equal(r.discarded, 1);
    /* the rest of the flood is skipped; its unprefixed end ends it */
    assert_int_equal(dcp_reasm_feed(&r, cont, sizeof(cont), &out, &out_len), DCP_REASM_SKIPPED);
    assert_int_equal(dcp_reasm_feed(&r, (const uint8_t *)"OK", 2, &out, &out_len),
                     DCP_REASM_SKIPPED);
    assert_int_equal(dcp_reasm_feed(&r, (const uint8_t *)"OK", 2, &out, &out_len),
                     DCP_REASM_DONE);
    assert_int_equal(out_len, 2);
    assert_memory_equal(out, "OK", 2);
    assert_int_equal(r.discarded, 1);
    assert_int_equal(dcp_reasm_feed(&r, cont, 0, &out, &out_len), DCP_REASM_BAD_CHUNK);
    assert_int_equal(dcp_reasm_feed(&r, cont, 21, &out, &out_len), DCP_REASM_BAD_CHUNK);
    assert_int_equal(dcp_reasm_feed(&r, NULL, 3, &out, &out_len), DCP_REASM_BAD_CHUNK);
    /* a lone '+' continues with nothing added */
    assert_int_equal(dcp_reasm_feed(&r, (const uint8_t *)"+", 1, &out, &out_len), DCP_REASM_MORE);
    assert_int_equal(dcp_reasm_feed(&r, (const uint8_t *)"A", 1, &out, &out_len), DCP_REASM_DONE);
    assert_int_equal(out_len, 1);
    /* a bad notification gives up a pending message */
    assert_int_equal(dcp_reasm_feed(&r, cont, sizeof(cont), &out, &out_len), DCP_REASM_MORE);
    assert_int_equal(dcp_reasm_feed(&r, cont, 0, &out, &out_len), DCP_REASM_BAD_CHUNK);
    assert_int_equal(r.discarded, 2);
    assert_false(r.pending);
}

static void test_message_start(void **state)
{
    (void)state;
    static const char *yes[] = {"NODE0",       "NODE12:DATA", "NODE_READY", "SENT:",
                                "ERROR:X",     "ERR:UNKNOWN:", "TIMEOUT:0x", "MESH_READY",
                                "MESH_READY:VENDOR", "GATEWAY_CONNECTED"};
    static const char *no[] = {"NODE",  "NODEX", "NODE_", "SENT",   "ERROR", "ERR",
                               "node1", "P:3000.0mW", "+NODE1", "", "TIMEOUT", "MESH_READ"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        assert_true(dcp_message_start((const uint8_t *)yes[i], strlen(yes[i])));
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        assert_false(dcp_message_start((const uint8_t *)no[i], strlen(no[i])));
    }
    assert_false(dcp_message_start(NULL, 5));
    /* the length is honoured */
    assert_false(dcp_message_start((const uint8_t *)"SENT:", 4));
}

static void test_lost_final_chunk_costs_one_message(void **state)
{
    (void)state;
    dcp_reasm_t r;
    dcp_reasm_reset(&r);
    const uint8_t *out = NULL;
    size_t out_len = 0;
    /* "NODE1:DATA:D:50%,V:12.000V,I:250.00mA,P:3000.0mW" without its final chunk */
    assert_int_equal(dcp_reasm_feed(&r, (const uint8_t *)"+NODE1:DATA:D:50%,V:", 20, &out,
                                    &out_len),
                     DCP_REASM_MORE);
    assert_int_equal(dcp_reasm_feed(&r, (const uint8_t *)"+12.000V,I:250.00mA,", 20, &out,
                                    &out_len),
                     DCP_REASM_MORE);
    assert_int_equal(dcp_reasm_feed(&r, (const uint8_t *)"SENT:READ", 9, &out, &out_len),
                     DCP_REASM_DONE);
    assert_int_equal(out_len, 9);
    assert_memory_equal(out, "SENT:READ", 9);
    assert_int_equal(r.discarded, 1);
    assert_false(r.pending);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_reassembly_round_trip),
        cmocka_unit_test(test_reassembly_bounds),
        cmocka_unit_test(test_message_start),
        cmocka_unit_test(test_lost_final_chunk_costs_one_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
