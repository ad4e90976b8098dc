/* The node's application task: commands from the GATT client, mesh traffic, MONITOR, RAMP and
 * the unicast tracker, all driven by dc_proto on one task. The post functions may be called
 * from any task (they copy and queue). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_ble_mesh_defs.h"
#include "esp_err.h"
#include "gatt_svc.h"

esp_err_t node_app_init(void);
/* Starts the task (after BLE, GATT and mesh are up). */
esp_err_t node_app_start(void);

/* A write to 0xDC03 from connection conn (gatt_svc's id; its authenticated session). */
esp_err_t node_app_post_command(gatt_svc_conn_id_t conn, const uint8_t *data, size_t len);
/* Connection conn ended: its session is forgotten. */
void node_app_post_conn_closed(gatt_svc_conn_id_t conn);
/* A write to 0xDC04 (an OTA chunk) from connection conn; dropped when the queue is full. */
void node_app_post_ota_data(gatt_svc_conn_id_t conn, const uint8_t *data, size_t len);
void node_app_post_client(bool subscribed);
void node_app_post_mesh_send(const esp_ble_mesh_msg_ctx_t *ctx, const uint8_t *payload, size_t len);
void node_app_post_mesh_status(uint16_t src, const uint8_t *text, size_t len);
void node_app_post_mesh_ready(bool ready);
