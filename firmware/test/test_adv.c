#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>

#include <cmocka.h>

#include "dcp_adv.h"
#include "dcp_common.h"

static void test_layout(void **state)
{
    (void)state;
    uint8_t out[DCP_ADV_SERVICE_DATA_LEN];
    assert_int_equal(dcp_adv_service_data(out, sizeof(out), 0x1a2b3c4d, 0, DCP_ADV_ROLE_UNIVERSAL,
                                          DCP_ADV_FLAG_CONNECTED | DCP_ADV_FLAG_MESH_READY),
                     8);
    static const uint8_t expected[] = {0x01, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x00, 0x03};
    assert_memory_equal(out, expected, sizeof(expected));
    assert_int_equal(dcp_adv_service_data(out, sizeof(out), 0, DCP_NODE_NONE, 0, 0), 8);
    assert_int_equal(out[5], 0xFF);
}

static void test_rejects(void **state)
{
    (void)state;
    uint8_t out[DCP_ADV_SERVICE_DATA_LEN];
    assert_int_equal(dcp_adv_service_data(out, 7, 0, 0, 0, 0), 0);
    assert_int_equal(dcp_adv_service_data(NULL, 8, 0, 0, 0, 0), 0);
    assert_int_equal(dcp_adv_service_data(out, 8, 0, 100, 0, 0), 0);
    assert_int_equal(dcp_adv_service_data(out, 8, 0, 99, 0, 0), 8);
    assert_int_equal(dcp_adv_service_data(out, 8, 0, 0, 2, 0), 0);
}

static void test_addresses(void **state)
{
    (void)state;
    uint8_t node = 0xAA;
    assert_false(dcp_node_from_addr(0x0004, &node));
    assert_false(dcp_node_from_addr(0x0069, &node));
    assert_false(dcp_node_from_addr(0xC000, &node));
    assert_int_equal(node, 0xAA);
    assert_true(dcp_node_from_addr(0x000E, &node));
    assert_int_equal(node, 9);
    assert_true(dcp_node_from_addr(0x0068, &node));
    assert_int_equal(node, 99);
    assert_int_equal(dcp_addr_from_node(3), 0x0008);
}

static void test_full_advertising_data(void **state)
{
    (void)state;
    uint8_t out[DCP_ADV_DATA_MAX];
    static const uint8_t expected[] = {
        0x02, 0x01, 0x06,                                     /* flags */
        0x03, 0x03, 0x01, 0xDC,                               /* UUID16 list: 0xDC01 */
        0x0B, 0x16, 0x01, 0xDC, 0x01, 0xDE, 0xAD, 0xBE, 0xEF, /* service data */
        0x07, 0x00, 0x03,                                     /* node 7, universal, flags */
        0x0B, 0x09, 'D', 'C', '-', 'M', 'o', 'n', 'i', 't', 'o', 'r',
    };
    assert_int_equal(dcp_adv_data(out, sizeof(out), 0xDEADBEEF, 7, DCP_ADV_ROLE_UNIVERSAL, 3),
                     31);
    assert_memory_equal(out, expected, sizeof(expected));
    assert_int_equal(dcp_adv_data(out, 30, 0, 7, 0, 0), 0);
    assert_int_equal(dcp_adv_data(out, sizeof(out), 0, 100, 0, 0), 0);
    assert_int_equal(dcp_adv_data(out, sizeof(out), 0, 42, 0, 0), 31);
    assert_int_equal(out[16], 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_full_advertising_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
