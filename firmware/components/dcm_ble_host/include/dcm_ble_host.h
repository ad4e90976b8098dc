/* NimBLE host bring-up shared by the DC Mesh firmware projects. */
#pragma once

#include <stdint.h>

#include "esp_err.h"

/* Initialises the NimBLE port and host configuration. GATT services are added after this and
 * before dcm_ble_host_start(); ESP-BLE-MESH is initialised after dcm_ble_host_start(). */
esp_err_t dcm_ble_host_init(void);

/* Starts the host task and waits (at most timeout_ms) until host and controller are synced. */
esp_err_t dcm_ble_host_start(uint32_t timeout_ms);

/* Mesh device UUID: 0xDD 0xDD (the provisioner's match prefix), then the BLE address. */
void dcm_ble_host_dev_uuid(uint8_t uuid[16]);
