#include "dcp_common.h"

bool dcp_node_from_addr(uint16_t addr, uint8_t *node)
{
    if (addr < DCP_BASE_UNICAST || addr >= DCP_BASE_UNICAST + DCP_MAX_NODES) {
        return false;
    }
    *node = (uint8_t)(addr - DCP_BASE_UNICAST);
    return true;
}

uint16_t dcp_addr_from_node(uint8_t node)
{
    return (uint16_t)(DCP_BASE_UNICAST + node);
}
