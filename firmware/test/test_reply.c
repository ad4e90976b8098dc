#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_reply.h"

static void test_data(void **state)
{
    (void)state;
    char buf[DCP_MESSAGE_MAX];
    assert_int_equal(dcp_fmt_data(buf, sizeof(buf), 1, 50, 12003, 25000), 48);
    assert_string_equal(buf, "NODE1:DATA:D:50%,V:12.003V,I:250.00mA,P:3000.8mW");
    dcp_fmt_data(buf, sizeof(buf), 2, 7, 5001, -5);
    assert_string_equal(buf, "NODE2:DATA:D:7%,V:5.001V,I:-0.05mA,P:0.3mW");
    dcp_fmt_data(buf, sizeof(buf), 0, 0, 40960, -4096000);
    assert_string_equal(buf, "NODE0:DATA:D:0%,V:40.960V,I:-40960.00mA,P:1677721.6mW");
}

static void test_reading(void **state)
{
    (void)state;
    char buf[DCP_MESSAGE_MAX];
    assert_int_equal(dcp_fmt_reading(buf, sizeof(buf), 50, 12000, 25000), 37);
    assert_string_equal(buf, "D:50%,V:12.000V,I:250.00mA,P:3000.0mW");
    /* the largest: raw bus voltage 0xffff, raw current -32768 */
    dcp_fmt_reading(buf, sizeof(buf), 100, 81919, -4096000);
    assert_string_equal(buf, "D:100%,V:81.919V,I:-40960.00mA,P:3355402.2mW");
    assert_int_equal(dcp_fmt_reading(buf, sizeof(buf), 101, 0, 0), -1);
    assert_int_equal(dcp_fmt_reading(buf, sizeof(buf), 0, -1, 0), -1);
    assert_int_equal(dcp_fmt_reading(buf, 5, 0, 0, 0), -1);
}

static void test_status(void **state)
{
    (void)state;
    char buf[DCP_MESSAGE_MAX];
    const char *reading = "D:0%,V:0.000V,I:0.00mA,P:0.0mW";
    assert_int_equal(dcp_fmt_status(buf, sizeof(buf), 0x0006, (const uint8_t *)reading,
                                    strlen(reading)),
                     41);
    assert_string_equal(buf, "NODE1:DATA:D:0%,V:0.000V,I:0.00mA,P:0.0mW");
    dcp_fmt_status(buf, sizeof(buf), 0x000F, (const uint8_t *)reading, strlen(reading));
    assert_string_equal(buf, "NODE10:DATA:D:0%,V:0.000V,I:0.00mA,P:0.0mW");
    dcp_fmt_status(buf, sizeof(buf), 0x7FFF, (const uint8_t *)"ERR:UNKNOWN:x", 13);
    assert_string_equal(buf, "NODE32762:DATA:ERR:UNKNOWN:x");
    dcp_fmt_status(buf, sizeof(buf), 0x0001, (const uint8_t *)"a+\x01", 3); /* v0.7: NODE0 */
    assert_string_equal(buf, "NODE0:DATA:a??");
    dcp_fmt_status(buf, sizeof(buf), 0x0008, (const uint8_t *)"NODE3:INFO:x", 12);
    assert_string_equal(buf, "NODE3:INFO:x"); /* a v1 INFO line goes through */
    assert_int_equal(dcp_fmt_status(buf, sizeof(buf), 0x0008, NULL, 0), 11);
    assert_string_equal(buf, "NODE3:DATA:");
    assert_int_equal(dcp_fmt_status(buf, sizeof(buf), 0x0008, NULL, 1), -1);
    uint8_t long_text[DCP_MESSAGE_MAX];
    memset(long_text, 'a', sizeof(long_text));
    assert_int_equal(dcp_fmt_status(buf, sizeof(buf), 0x0008, long_text, 117), -1); /* 128 */
    assert_int_equal(dcp_fmt_status(buf, sizeof(buf), 0x0008, long_text, 116), 127);
}

static void test_data_rejects(void **state)
{
    (void)state;
    char buf[DCP_MESSAGE_MAX];
    assert_int_equal(dcp_fmt_data(buf, sizeof(buf), 100, 0, 0, 0), -1);
    assert_int_equal(dcp_fmt_data(buf, sizeof(buf), 99, 0, 0, 0), 42);
    assert_string_equal(buf, "NODE99:DATA:D:0%,V:0.000V,I:0.00mA,P:0.0mW");
    assert_int_equal(dcp_fmt_data(buf, sizeof(buf), 0, 101, 0, 0), -1);
    assert_int_equal(dcp_fmt_data(buf, sizeof(buf), 0, 0, -1, 0), -1);
    /* too small: truncated, terminated, reported */
    assert_int_equal(dcp_fmt_data(buf, 10, 1, 50, 12003, 25000), -1);
    assert_int_equal(strlen(buf), 9);
    assert_int_equal(dcp_fmt_data(buf, 0, 1, 50, 12003, 25000), -1);
}

static void test_power_rounding(void **state)
{
    (void)state;
    assert_int_equal(dcp_power_dmw(12003, 25000), 30008); /* 3000.75 mW -> 3000.8 */
    assert_int_equal(dcp_power_dmw(1000, 40), 4); /* 1 V x 0.4 mA */
    assert_int_equal(dcp_power_dmw(1, 4999), 0);
    assert_int_equal(dcp_power_dmw(1, 5000), 1);
    assert_int_equal(dcp_power_dmw(-2, -5000), 1);
    assert_int_equal(dcp_power_dmw(INT32_MAX, INT32_MIN), 461168601627990ull);
}

static void test_info(void **state)
{
    (void)state;
    char buf[DCP_MESSAGE_MAX];
    dcp_info_t info = {"1.0.0", "ESP32-C6", 'U', 3, 3600, 142000, 0x1a2b3c4d, true};
    assert_int_equal(dcp_fmt_info(buf, sizeof(buf), 0, &info), 86);
    assert_string_equal(
        buf, "NODE0:INFO:FW:1.0.0,HW:ESP32-C6,ROLE:U,CAP:0003,UP:3600,HEAP:142000,MESH:1a2b3c4d,GW:1");
    dcp_info_t longest = {"4294967295.1.123", "ABCDEFGHIJKLMNOP", 'R', 0xFFFF, UINT32_MAX,
                          UINT32_MAX, UINT32_MAX, false};
    assert_int_equal(dcp_fmt_info(buf, sizeof(buf), 99, &longest), 116);
    assert_int_equal(dcp_fmt_info(buf, sizeof(buf), 100, &longest), -1);
}

static void test_info_rejects(void **state)
{
    (void)state;
    char buf[DCP_MESSAGE_MAX];
    static const char *bad_fw[] = {"1.0", "1..0", "1.0.0.0", "a.b.c", "", ".1.2", "1.2.",
                                   "12345678901234.5.6"};
    for (size_t i = 0; i < sizeof(bad_fw) / sizeof(bad_fw[0]); i++) {
        dcp_info_t info = {bad_fw[i], "ESP32-C6", 'U', 3, 0, 0, 0, false};
        assert_int_equal(dcp_fmt_info(buf, sizeof(buf), 0, &info), -1);
    }
    static const char *bad_hw[] = {"", "ESP 32", "ABCDEFGHIJKLMNOPQ", "a,b"};
    for (size_t i = 0; i < sizeof(bad_hw) / sizeof(bad_hw[0]); i++) {
        dcp_info_t info = {"1.0.0", bad_hw[i], 'U', 3, 0, 0, 0, false};
        assert_int_equal(dcp_fmt_info(buf, sizeof(buf), 0, &info), -1);
    }
    dcp_info_t role = {"1.0.0", "HW", 'X', 3, 0, 0, 0, false};
    assert_int_equal(dcp_fmt_info(buf, sizeof(buf), 0, &role), -1);
    assert_int_equal(dcp_fmt_info(buf, sizeof(buf), 0, NULL), -1);
}

static void test_small_messages(void **state)
{
    (void)state;
    char buf[DCP_MESSAGE_MAX];
    dcp_fmt_sent(buf, sizeof(buf), DCP_CMD_DUTY, 0);
    assert_string_equal(buf, "SENT:DUTY:0");
    dcp_fmt_sent(buf, sizeof(buf), DCP_CMD_OFF, 0);
    assert_string_equal(buf, "SENT:OFF");
    dcp_fmt_timeout(buf, sizeof(buf), 0xC00A);
    assert_string_equal(buf, "TIMEOUT:0xc00a");
    dcp_fmt_error(buf, sizeof(buf), "MESH_BUSY", NULL, 0);
    assert_string_equal(buf, "ERROR:MESH_BUSY");
    dcp_fmt_error(buf, sizeof(buf), "UNKNOWN_CMD", (const uint8_t *)"a\x7f+", 3);
    assert_string_equal(buf, "ERROR:UNKNOWN_CMD:A??");
    dcp_fmt_err_unknown(buf, sizeof(buf), (const uint8_t *)"duty:x+", 7);
    assert_string_equal(buf, "ERR:UNKNOWN:duty:x?");
    assert_int_equal(dcp_fmt_err_unknown(buf, sizeof(buf), NULL, 0), 12);
    assert_int_equal(dcp_fmt_sent(buf, sizeof(buf), DCP_CMD_COUNT, 0), -1);
    assert_int_equal(dcp_fmt_error(buf, sizeof(buf), "", NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data),          cmocka_unit_test(test_reading),
        cmocka_unit_test(test_status),        cmocka_unit_test(test_data_rejects),
        cmocka_unit_test(test_power_rounding), cmocka_unit_test(test_info),
        cmocka_unit_test(test_info_rejects),  cmocka_unit_test(test_small_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
