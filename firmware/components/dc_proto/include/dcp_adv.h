/* v1 advertisement service data for UUID 0xDC01 and the mesh id it carries. */
#ifndef DCP_ADV_H
#define DCP_ADV_H

#include "dcp_common.h"

#define DCP_ADV_VERSION 0x01u
#define DCP_ADV_SERVICE_DATA_LEN 8u
#define DCP_ADV_ROLE_UNIVERSAL 0x00u
#define DCP_ADV_ROLE_RELAY 0x01u
#define DCP_ADV_FLAG_CONNECTED 0x01u
#define DCP_ADV_FLAG_MESH_READY 0x02u

/* Writes the 8 service data bytes; returns 8, or 0 when size is too small or node_id is
 * neither 0..99 nor DCP_NODE_NONE or role is unknown. */
size_t dcp_adv_service_data(uint8_t *out, size_t size, uint32_t mesh_id, uint8_t node_id,
                            uint8_t role, uint8_t flags);

/* Legacy advertising data (at most 31 bytes): flags, the complete 16-bit UUID list {0xDC01},
 * service data 0xDC01 (as above) and the complete local name "DC-Monitor". Returns the
 * length (31), or 0 under the same conditions as dcp_adv_service_data or when size < 31. */
#define DCP_ADV_DATA_MAX 31u
#define DCP_ADV_LOCAL_NAME "DC-Monitor"
size_t dcp_adv_data(uint8_t *out, size_t size, uint32_t mesh_id, uint8_t node_id, uint8_t role,
                    uint8_t flags);

#endif
