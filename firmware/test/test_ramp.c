#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>

#include <cmocka.h>

#include "dcp_ramp.h"

static void test_steps(void **state)
{
    (void)state;
    dcp_ramp_t r = {0};
    uint8_t duty = 0xAA;
    assert_false(dcp_ramp_poll(&r, 0, &duty));
    assert_int_equal(dcp_ramp_start(&r, 1000), 0);
    assert_true(dcp_ramp_active(&r));
    assert_false(dcp_ramp_poll(&r, 1499, &duty));
    static const uint8_t expected[] = {25, 50, 75, 100, 0};
    for (unsigned i = 0; i < 5; i++) {
        assert_true(dcp_ramp_poll(&r, 1000 + 500 * (i + 1), &duty));
        assert_int_equal(duty, expected[i]);
        assert_false(dcp_ramp_poll(&r, 1000 + 500 * (i + 1) + 10, &duty));
    }
    assert_false(dcp_ramp_active(&r));
    assert_false(dcp_ramp_poll(&r, 9000, &duty));
}

static void test_late_poll_jumps(void **state)
{
    (void)state;
    dcp_ramp_t r = {0};
    uint8_t duty = 0;
    dcp_ramp_start(&r, UINT32_MAX - 100u); /* across the counter wrap */
    assert_true(dcp_ramp_poll(&r, 1400, &duty)); /* 1501 ms later */
    assert_int_equal(duty, 75);
    assert_true(dcp_ramp_poll(&r, 60000, &duty));
    assert_int_equal(duty, 0);
    assert_false(dcp_ramp_active(&r));
}

static void test_stop_and_restart(void **state)
{
    (void)state;
    dcp_ramp_t r = {0};
    uint8_t duty = 0;
    dcp_ramp_start(&r, 0);
    assert_true(dcp_ramp_poll(&r, 500, &duty));
    dcp_ramp_stop(&r);
    assert_false(dcp_ramp_poll(&r, 1000, &duty));
    dcp_ramp_start(&r, 2000);
    assert_true(dcp_ramp_poll(&r, 2500, &duty));
    assert_int_equal(duty, 25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_late_poll_jumps),
        cmocka_unit_test(test_stop_and_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
