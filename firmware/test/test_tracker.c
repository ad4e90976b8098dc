#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_tracker.h"

static void enqueue(dcp_tracker_t *t, uint16_t dst, const char *p)
{
    assert_true(dcp_tracker_enqueue(t, dst, p, strlen(p)));
}

static void test_one_in_flight(void **state)
{
    (void)state;
    dcp_tracker_t t;
    dcp_tracker_init(&t, 5000);
    assert_false(dcp_tracker_busy(&t));
    enqueue(&t, 0x0008, "read");
    enqueue(&t, 0x0009, "duty:40");
    dcp_send_t s;
    assert_true(dcp_tracker_next(&t, 100, &s));
    assert_int_equal(s.dst, 0x0008);
    assert_string_equal(s.payload, "read");
    assert_false(dcp_tracker_next(&t, 100, &s)); /* serialised */
    assert_false(dcp_tracker_on_status(&t, 0x0009)); /* not the awaited node */
    assert_true(dcp_tracker_on_status(&t, 0x0008));
    assert_false(dcp_tracker_on_status(&t, 0x0008)); /* late duplicate */
    assert_true(dcp_tracker_next(&t, 200, &s));
    assert_int_equal(s.dst, 0x0009);
    assert_int_equal(s.len, 7);
    assert_true(dcp_tracker_busy(&t));
    assert_true(dcp_tracker_on_status(&t, 0x0009));
    assert_false(dcp_tracker_busy(&t));
}

static void test_timeout(void **state)
{
    (void)state;
    dcp_tracker_t t;
    dcp_tracker_init(&t, 5000);
    enqueue(&t, 0x000A, "read");
    dcp_send_t s;
    uint16_t addr = 0;
    assert_false(dcp_tracker_expired(&t, 0, &addr)); /* nothing in flight yet */
    assert_true(dcp_tracker_next(&t, 1000, &s));
    assert_false(dcp_tracker_expired(&t, 5999, &addr));
    assert_true(dcp_tracker_expired(&t, 6000, &addr));
    assert_int_equal(addr, 0x000A);
    assert_false(dcp_tracker_busy(&t));
    assert_false(dcp_tracker_expired(&t, 9000, &addr));
}

static void test_timeout_across_wrap(void **state)
{
    (void)state;
    dcp_tracker_t t;
    dcp_tracker_init(&t, 5000);
    enqueue(&t, 0x0005, "read");
    dcp_send_t s;
    uint16_t addr = 0;
    assert_true(dcp_tracker_next(&t, UINT32_MAX - 1000u, &s));
    assert_false(dcp_tracker_expired(&t, 10, &addr));
    assert_true(dcp_tracker_expired(&t, 4000, &addr));
}

static void test_queue_bound_and_abort(void **state)
{
    (void)state;
    dcp_tracker_t t;
    dcp_tracker_init(&t, 5000);
    for (unsigned i = 0; i < DCP_TRACKER_SLOTS; i++) {
        enqueue(&t, (uint16_t)(0x0005 + i), "read");
    }
    assert_false(dcp_tracker_enqueue(&t, 0x0005, "read", 4));
    dcp_send_t s;
    assert_true(dcp_tracker_next(&t, 0, &s));
    dcp_tracker_abort(&t);
    assert_true(dcp_tracker_next(&t, 0, &s));
    assert_int_equal(s.dst, 0x0006);
    assert_true(dcp_tracker_enqueue(&t, 0x000E, "s", 1)); /* a slot was freed */
    assert_false(dcp_tracker_enqueue(&t, 0x000E, "0123456789abcdef", 16)); /* payload too long */
    assert_false(dcp_tracker_enqueue(&t, 0x000E, NULL, 0));
}

static void test_two_digit_node_addresses(void **state)
{
    (void)state;
    dcp_tracker_t t;
    dcp_tracker_init(&t, 5000);
    enqueue(&t, 0x0068, "read"); /* node 99 */
    enqueue(&t, 0x000F, "read"); /* node 10 */
    dcp_send_t s;
    assert_true(dcp_tracker_next(&t, 0, &s));
    assert_int_equal(s.dst, 0x0068);
    assert_false(dcp_tracker_on_status(&t, 0x000F));
    assert_true(dcp_tracker_on_status(&t, 0x0068));
    assert_true(dcp_tracker_next(&t, 10, &s));
    uint16_t addr = 0;
    assert_true(dcp_tracker_expired(&t, 5010, &addr));
    assert_int_equal(addr, 0x000F);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_in_flight),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_timeout_across_wrap),
        cmocka_unit_test(test_queue_bound_and_abort),
        cmocka_unit_test(test_two_digit_node_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
