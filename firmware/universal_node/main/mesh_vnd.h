/* ESP-BLE-MESH node with the DC-Monitor vendor client (0x0000) and server (0x0001) models on
 * its primary element (company 0x02E5). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_ble_mesh_defs.h"
#include "esp_err.h"

typedef struct {
    /* The server got a SEND (not from this node); answer with mesh_vnd_reply(ctx, ...). */
    void (*on_send)(const esp_ble_mesh_msg_ctx_t *ctx, const uint8_t *payload, size_t len);
    /* The client got a STATUS from src. */
    void (*on_status)(uint16_t src, const uint8_t *text, size_t len);
    /* Provisioned with the vendor models bound to an application key (true), or not. */
    void (*on_ready)(bool ready);
} mesh_vnd_callbacks_t;

/* Initialises ESP-BLE-MESH (after the NimBLE host synced and the GATT services are added). */
esp_err_t mesh_vnd_init(const mesh_vnd_callbacks_t *callbacks);
bool mesh_vnd_ready(void);
/* This node's id (unicast address - 0x0005) or DCP_NODE_NONE. */
uint8_t mesh_vnd_node_id(void);
/* Mesh id of protocol-v1 section 5; 0 while unprovisioned. */
uint32_t mesh_vnd_mesh_id(void);
/* Mesh key of protocol-v1 7.1 (HKDF of the AppKey bound to the vendor server, salted with the
 * primary NetKey's Network ID); false while the node has no bound AppKey. */
bool mesh_vnd_mesh_key(uint8_t key[16]);
/* Vendor SEND of payload to dst (a node or the group). */
esp_err_t mesh_vnd_send(uint16_t dst, const char *payload, size_t len);
/* Vendor STATUS answering a SEND received with ctx. */
esp_err_t mesh_vnd_reply(const esp_ble_mesh_msg_ctx_t *ctx, const char *text, size_t len);
