#include "dcp_adv.h"

#include <string.h>

#define DCP_AD_FLAGS 0x01u
#define DCP_AD_UUID16_ALL 0x03u
#define DCP_AD_NAME_COMPLETE 0x09u
#define DCP_AD_SERVICE_DATA16 0x16u
#define DCP_AD_FLAGS_LE_GENERAL_NO_BREDR 0x06u
#define DCP_SERVICE_UUID16 0xDC01u

size_t dcp_adv_service_data(uint8_t *out, size_t size, uint32_t mesh_id, uint8_t node_id,
                            uint8_t role, uint8_t flags)
{
    if (out == NULL || size < DCP_ADV_SERVICE_DATA_LEN ||
        (node_id >= DCP_MAX_NODES && node_id != DCP_NODE_NONE) || role > DCP_ADV_ROLE_RELAY) {
        return 0;
    }
    out[0] = DCP_ADV_VERSION;
    out[1] = (uint8_t)(mesh_id >> 24);
    out[2] = (uint8_t)(mesh_id >> 16);
    out[3] = (uint8_t)(mesh_id >> 8);
    out[4] = (uint8_t)mesh_id;
    out[5] = node_id;
    out[6] = role;
    out[7] = flags;
    return DCP_ADV_SERVICE_DATA_LEN;
}

size_t dcp_adv_data(uint8_t *out, size_t size, uint32_t mesh_id, uint8_t node_id, uint8_t role,
                    uint8_t flags)
{
    const size_t name_len = sizeof(DCP_ADV_LOCAL_NAME) - 1u;
    if (out == NULL || size < DCP_ADV_DATA_MAX) {
        return 0;
    }
    size_t n = 0;
    out[n++] = 2;
    out[n++] = DCP_AD_FLAGS;
    out[n++] = DCP_AD_FLAGS_LE_GENERAL_NO_BREDR;
    out[n++] = 3;
    out[n++] = DCP_AD_UUID16_ALL;
    out[n++] = (uint8_t)(DCP_SERVICE_UUID16 & 0xFFu);
    out[n++] = (uint8_t)(DCP_SERVICE_UUID16 >> 8);
    out[n++] = (uint8_t)(1u + 2u + DCP_ADV_SERVICE_DATA_LEN);
    out[n++] = DCP_AD_SERVICE_DATA16;
    out[n++] = (uint8_t)(DCP_SERVICE_UUID16 & 0xFFu);
    out[n++] = (uint8_t)(DCP_SERVICE_UUID16 >> 8);
    if (dcp_adv_service_data(out + n, size - n, mesh_id, node_id, role, flags) == 0) {
        return 0;
    }
    n += DCP_ADV_SERVICE_DATA_LEN;
    out[n++] = (uint8_t)(1u + name_len);
    out[n++] = DCP_AD_NAME_COMPLETE;
    memcpy(out + n, DCP_ADV_LOCAL_NAME, name_len);
    return n + name_len;
}
