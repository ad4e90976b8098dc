#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_payload.h"

static dcp_payload_kind_t parse(const char *p, uint8_t *duty)
{
    return dcp_payload_parse((const uint8_t *)p, strlen(p), duty);
}

static void test_known(void **state)
{
    (void)state;
    uint8_t duty = 0xAA;
    assert_int_equal(parse("read", &duty), DCP_PAYLOAD_READ);
    assert_int_equal(parse("r", &duty), DCP_PAYLOAD_RAMP);
    assert_int_equal(parse("s", &duty), DCP_PAYLOAD_STOP);
    assert_int_equal(parse("info", &duty), DCP_PAYLOAD_INFO);
    assert_int_equal(duty, 0xAA);
    assert_int_equal(parse("duty:0", &duty), DCP_PAYLOAD_DUTY);
    assert_int_equal(duty, 0);
    assert_int_equal(parse("duty:100", &duty), DCP_PAYLOAD_DUTY);
    assert_int_equal(duty, 100);
    assert_int_equal(parse("duty:007", &duty), DCP_PAYLOAD_DUTY);
    assert_int_equal(duty, 7);
}

static void test_unknown(void **state)
{
    (void)state;
    uint8_t duty = 0;
    static const char *bad[] = {"",        "READ",     "reads",   "duty:",  "duty:101",
                                "duty:-1", "duty:1000", "duty:5x", "duty 5", "rs"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &duty), DCP_PAYLOAD_UNKNOWN);
    }
    assert_int_equal(dcp_payload_parse(NULL, 4, &duty), DCP_PAYLOAD_UNKNOWN);
    /* length is honoured: no reliance on a terminator */
    assert_int_equal(dcp_payload_parse((const uint8_t *)"readX", 4, &duty), DCP_PAYLOAD_READ);
}

static void test_serve(void **state)
{
    (void)state;
    dcp_serve_t s;
    dcp_payload_serve((const uint8_t *)"read", 4, &s);
    assert_int_equal(s.action, DCP_SERVE_KEEP);
    assert_int_equal(s.reply, DCP_SERVE_READING);
    dcp_payload_serve((const uint8_t *)"duty:70", 7, &s);
    assert_int_equal(s.action, DCP_SERVE_SET);
    assert_int_equal(s.duty, 70);
    assert_int_equal(s.reply, DCP_SERVE_READING);
    dcp_payload_serve((const uint8_t *)"s", 1, &s);
    assert_int_equal(s.action, DCP_SERVE_SET);
    assert_int_equal(s.duty, 0);
    assert_int_equal(s.reply, DCP_SERVE_READING);
    dcp_payload_serve((const uint8_t *)"r", 1, &s);
    assert_int_equal(s.action, DCP_SERVE_RAMP);
    assert_int_equal(s.reply, DCP_SERVE_READING);
    dcp_payload_serve((const uint8_t *)"info", 4, &s);
    assert_int_equal(s.action, DCP_SERVE_KEEP);
    assert_int_equal(s.reply, DCP_SERVE_INFO);
    dcp_payload_serve((const uint8_t *)"duty:101", 8, &s);
    assert_int_equal(s.action, DCP_SERVE_KEEP);
    assert_int_equal(s.reply, DCP_SERVE_ERR_UNKNOWN);
    dcp_payload_serve(NULL, 0, &s);
    assert_int_equal(s.reply, DCP_SERVE_ERR_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_serve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
