/* Staggered answers to group SENDs (dcp_stagger.h); the shared cases are in stagger.tsv. */
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_stagger.h"

static size_t put(dcp_stagger_t *s, uint32_t now, uint8_t node, uint16_t dst, const char *text,
                  bool *evicted_any, dcp_stagger_entry_t *evicted)
{
    return dcp_stagger_put(s, now, dcp_stagger_delay_ms(node, DCP_GROUP_ADDR), dst, 0, text,
                           strlen(text), evicted, evicted_any);
}

static void test_delay(void **state)
{
    (void)state;
    assert_int_equal(dcp_stagger_delay_ms(0, DCP_GROUP_ADDR), 0);
    assert_int_equal(dcp_stagger_delay_ms(7, DCP_GROUP_ADDR), 700);
    assert_int_equal(dcp_stagger_delay_ms(99, DCP_GROUP_ADDR), 9900);
    assert_int_equal(dcp_stagger_delay_ms(42, 0x002F), 0); /* its own unicast address */
    assert_int_equal(dcp_stagger_delay_ms(DCP_NODE_NONE, DCP_GROUP_ADDR), 0);
}

static void test_held_until_due(void **state)
{
    (void)state;
    dcp_stagger_t s;
    dcp_stagger_init(&s);
    dcp_stagger_entry_t e;
    bool evicted = false;
    size_t slot = 0;
    assert_int_equal(dcp_stagger_wait_ms(&s, 0), UINT32_MAX);
    assert_false(dcp_stagger_take(&s, 0, &e, &slot));
    assert_int_equal(put(&s, 1000, 3, 0x0005, "D:1%", &evicted, &e), 0);
    assert_false(evicted);
    assert_int_equal(dcp_stagger_wait_ms(&s, 1000), 300);
    assert_false(dcp_stagger_take(&s, 1299, &e, &slot));
    assert_int_equal(dcp_stagger_wait_ms(&s, 1299), 1);
    assert_true(dcp_stagger_take(&s, 1300, &e, &slot));
    assert_int_equal(slot, 0);
    assert_int_equal(e.dst, 0x0005);
    assert_int_equal(e.len, 4);
    assert_string_equal(e.text, "D:1%");
    assert_false(dcp_stagger_take(&s, 5000, &e, &slot));
}

static void test_same_source_keeps_due_time(void **state)
{
    (void)state;
    dcp_stagger_t s;
    dcp_stagger_init(&s);
    dcp_stagger_entry_t e;
    bool evicted = false;
    size_t slot = 0;
    put(&s, 0, 20, 0x0005, "old", &evicted, &e);
    assert_int_equal(put(&s, 1000, 20, 0x0005, "new", &evicted, &e), 0);
    assert_false(evicted);
    assert_int_equal(dcp_stagger_wait_ms(&s, 1000), 1000);
    assert_true(dcp_stagger_take(&s, 2000, &e, &slot));
    assert_string_equal(e.text, "new");
    assert_false(dcp_stagger_take(&s, 9000, &e, &slot));
}

static void test_other_kinds_wait_side_by_side(void **state)
{
    (void)state;
    dcp_stagger_t s;
    dcp_stagger_init(&s);
    dcp_stagger_entry_t e;
    bool evicted = false;
    size_t slot = 0;
    /* an INFO answer held, then a READ from the same gateway: the reading does not replace it */
    assert_int_equal(dcp_stagger_put(&s, 0, 300, 0x0005, 1, "NODE3:INFO", 10, &e, &evicted), 0);
    assert_int_equal(dcp_stagger_put(&s, 50, 300, 0x0005, 0, "D:5%", 4, &e, &evicted), 1);
    assert_false(evicted);
    assert_true(dcp_stagger_take(&s, 350, &e, &slot));
    assert_string_equal(e.text, "NODE3:INFO");
    assert_int_equal(e.kind, 1);
    assert_true(dcp_stagger_take(&s, 350, &e, &slot));
    assert_string_equal(e.text, "D:5%");
}

static void test_full_evicts_the_earliest(void **state)
{
    (void)state;
    dcp_stagger_t s;
    dcp_stagger_init(&s);
    dcp_stagger_entry_t e;
    bool evicted = false;
    size_t slot = 0;
    for (uint16_t i = 0; i < DCP_STAGGER_SLOTS; i++) {
        put(&s, (uint32_t)(10u * (DCP_STAGGER_SLOTS - i)), 5, (uint16_t)(0x0005 + i), "x",
            &evicted, &e);
        assert_false(evicted);
    }
    /* the last put is due first (10 + 500) */
    size_t last = put(&s, 100, 5, 0x0040, "y", &evicted, &e);
    assert_true(evicted);
    assert_int_equal(e.dst, 0x0005 + DCP_STAGGER_SLOTS - 1);
    assert_int_equal(last, DCP_STAGGER_SLOTS - 1);
    assert_true(dcp_stagger_take(&s, 1000, &e, &slot));
    assert_int_equal(e.dst, 0x0005 + DCP_STAGGER_SLOTS - 2); /* 20 + 500 */
}

static void test_wraps_and_refuses_long_text(void **state)
{
    (void)state;
    dcp_stagger_t s;
    dcp_stagger_init(&s);
    dcp_stagger_entry_t e;
    bool evicted = false;
    size_t slot = 0;
    put(&s, UINT32_MAX - 50, 1, 0x0005, "w", &evicted, &e);
    assert_int_equal(dcp_stagger_wait_ms(&s, UINT32_MAX - 50), 100);
    assert_false(dcp_stagger_take(&s, 20, &e, &slot));
    assert_true(dcp_stagger_take(&s, 49, &e, &slot));
    char text[DCP_MESSAGE_MAX + 1];
    memset(text, 'a', sizeof(text));
    assert_int_equal(
        dcp_stagger_put(&s, 0, 0, 0x0005, 0, text, DCP_MESSAGE_MAX, &e, &evicted), SIZE_MAX);
    assert_int_equal(
        dcp_stagger_put(&s, 0, 0, 0x0005, 0, text, DCP_MESSAGE_MAX - 1, &e, &evicted), 0);
    assert_int_equal(dcp_stagger_put(&s, 0, 0, 0x0005, 0, NULL, 0, &e, &evicted), SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_held_until_due),
        cmocka_unit_test(test_same_source_keeps_due_time),
        cmocka_unit_test(test_other_kinds_wait_side_by_side),
        cmocka_unit_test(test_full_evicts_the_earliest),
        cmocka_unit_test(test_wraps_and_refuses_long_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
