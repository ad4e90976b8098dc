#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_command.h"

static void plan(const char *cmd, uint8_t self, dcp_plan_t *p)
{
    dcp_plan_command((const uint8_t *)cmd, strlen(cmd), self, p);
}

static void test_unicast_read(void **state)
{
    (void)state;
    dcp_plan_t p;
    plan("3:READ", 0, &p);
    assert_int_equal(p.count, 3);
    assert_int_equal(p.actions[0].kind, DCP_ACT_MONITOR);
    assert_int_equal(p.actions[0].arg, DCP_MONITOR_OFF);
    assert_int_equal(p.actions[1].kind, DCP_ACT_MESH);
    assert_int_equal(p.actions[1].dst, 0x0008);
    assert_string_equal(p.actions[1].text, "read");
    assert_int_equal(p.actions[1].len, 4);
    assert_int_equal(p.actions[2].kind, DCP_ACT_REPLY);
    assert_string_equal(p.actions[2].text, "SENT:READ");
}

static void test_all_duty_goes_local_then_group(void **state)
{
    (void)state;
    dcp_plan_t p;
    plan("all:duty:7", 2, &p);
    assert_int_equal(p.count, 4);
    assert_int_equal(p.actions[1].kind, DCP_ACT_LOCAL);
    assert_string_equal(p.actions[1].text, "duty:7");
    assert_int_equal(p.actions[2].kind, DCP_ACT_MESH);
    assert_int_equal(p.actions[2].dst, 0xC000);
    assert_string_equal(p.actions[3].text, "SENT:DUTY:7");
}

static void test_self_is_local_only(void **state)
{
    (void)state;
    dcp_plan_t p;
    plan("5:DUTY", 5, &p);
    assert_int_equal(p.count, 2);
    assert_int_equal(p.actions[1].kind, DCP_ACT_LOCAL);
    assert_string_equal(p.actions[1].text, "duty:50");
}

static void test_monitor_keeps_target(void **state)
{
    (void)state;
    dcp_plan_t p;
    plan("ALL:MONITOR", 0, &p);
    assert_int_equal(p.count, 2);
    assert_int_equal(p.actions[0].kind, DCP_ACT_MONITOR);
    assert_int_equal(p.actions[0].arg, DCP_TARGET_ALL);
    assert_string_equal(p.actions[1].text, "SENT:MONITOR");
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        const char *reply;
    } cases[] = {
        {"", "ERROR:NO_NODE_ID"},          {":x", "ERROR:NO_NODE_ID"},
        {"100:READ", "ERROR:INVALID_NODE"}, {"07:READ", "ERROR:INVALID_NODE"},
        {"1x:READ", "ERROR:INVALID_NODE"}, {"3", "ERROR:NO_COMMAND"},
        {"3:", "ERROR:NO_COMMAND"},        {"3:zap", "ERROR:UNKNOWN_CMD:ZAP"},
        {"3:DUTY:101", "ERROR:INVALID_VALUE:101"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dcp_plan_t p;
        plan(cases[i].cmd, 0, &p);
        assert_int_equal(p.count, 1);
        assert_int_equal(p.actions[0].kind, DCP_ACT_REPLY);
        assert_string_equal(p.actions[0].text, cases[i].reply);
    }
}

static void test_not_ready_after_parse(void **state)
{
    (void)state;
    dcp_plan_t p;
    plan("ALL:READ", DCP_NODE_NONE, &p);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.actions[0].text, "ERROR:NOT_READY");
    plan("ALL:READ", 100, &p);
    assert_string_equal(p.actions[0].text, "ERROR:NOT_READY");
}

static void test_two_digit_targets(void **state)
{
    (void)state;
    dcp_plan_t p;
    plan("42:DUTY:30", 0, &p);
    assert_int_equal(p.count, 3);
    assert_int_equal(p.actions[1].kind, DCP_ACT_MESH);
    assert_int_equal(p.actions[1].dst, 0x0005 + 42);
    assert_string_equal(p.actions[1].text, "duty:30");
    plan("99:READ", 10, &p);
    assert_int_equal(p.actions[1].dst, 0x0068);
    plan("10:READ", 10, &p); /* a node with a two-digit id handles its own id locally */
    assert_int_equal(p.count, 2);
    assert_int_equal(p.actions[1].kind, DCP_ACT_LOCAL);
    plan("ALL:READ", 99, &p);
    assert_int_equal(p.count, 4);
    assert_int_equal(p.actions[2].dst, 0xC000);
    /* every id 0..99 is one spelling; anything else is refused */
    for (unsigned id = 0; id < 100; id++) {
        char cmd[16];
        snprintf(cmd, sizeof(cmd), "%u:READ", id);
        plan(cmd, 5, &p);
        if (id == 5) {
            assert_int_equal(p.actions[1].kind, DCP_ACT_LOCAL);
        } else {
            assert_int_equal(p.actions[1].dst, 0x0005 + id);
        }
    }
}

static void test_length_limit(void **state)
{
    (void)state;
    uint8_t cmd[65];
    memset(cmd, 'X', sizeof(cmd));
    cmd[0] = '3';
    cmd[1] = ':';
    dcp_plan_t p;
    dcp_plan_command(cmd, 65, 0, &p);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.actions[0].kind, DCP_ACT_ATT_ERROR);
    assert_int_equal(p.actions[0].arg, DCP_ATT_ERR_INVALID_LEN);
    dcp_plan_command(cmd, 64, 0, &p);
    assert_int_equal(p.actions[0].kind, DCP_ACT_REPLY);
    assert_int_equal(p.actions[0].len, 18 + 62);
    dcp_plan_command(NULL, 0, 0, &p);
    assert_string_equal(p.actions[0].text, "ERROR:NO_NODE_ID");
}

static void test_echo_is_sanitised(void **state)
{
    (void)state;
    const uint8_t cmd[] = {'1', ':', 'a', '+', 0xFF, 0x00, 'z'};
    dcp_plan_t p;
    dcp_plan_command(cmd, sizeof(cmd), 0, &p);
    assert_string_equal(p.actions[0].text, "ERROR:UNKNOWN_CMD:A???Z");
    assert_int_equal(p.actions[0].len, 23);
}

static void test_cmd_name(void **state)
{
    (void)state;
    assert_string_equal(dcp_cmd_name(DCP_CMD_STATUS), "STATUS");
    assert_null(dcp_cmd_name(DCP_CMD_COUNT));
}

static void test_monitor_tick(void **state)
{
    (void)state;
    dcp_plan_t p;
    dcp_plan_monitor_tick(4, 0, false, &p);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.actions[0].kind, DCP_ACT_MESH);
    assert_int_equal(p.actions[0].dst, 0x0009);
    assert_string_equal(p.actions[0].text, "read");
    dcp_plan_monitor_tick(4, 0, true, &p);
    assert_int_equal(p.count, 0);
    dcp_plan_monitor_tick(0, 0, true, &p);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.actions[0].kind, DCP_ACT_LOCAL);
    dcp_plan_monitor_tick(DCP_TARGET_ALL, 0, true, &p);
    assert_int_equal(p.count, 2);
    assert_int_equal(p.actions[1].dst, 0xC000);
    dcp_plan_monitor_tick(DCP_TARGET_ALL, DCP_NODE_NONE, false, &p);
    assert_int_equal(p.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unicast_read),
        cmocka_unit_test(test_all_duty_goes_local_then_group),
        cmocka_unit_test(test_self_is_local_only),
        cmocka_unit_test(test_monitor_keeps_target),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_not_ready_after_parse),
        cmocka_unit_test(test_two_digit_targets),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_echo_is_sanitised),
        cmocka_unit_test(test_cmd_name),
        cmocka_unit_test(test_monitor_tick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
