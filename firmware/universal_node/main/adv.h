/* DC-Monitor advertising (name, UUID 0xDC01, v1 service data) beside the mesh's own, through
 * ESP-BLE-MESH's BLE advertising queue. */
#pragma once

#include <stdint.h>

#include "esp_err.h"

esp_err_t adv_init(void);
/* (Re)starts advertising with this service data (dcp_adv_service_data fields). */
esp_err_t adv_update(uint32_t mesh_id, uint8_t node_id, uint8_t flags);
