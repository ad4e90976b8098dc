/* GATT service 0xDC01 (NimBLE): 0xDC02 read + notify, 0xDC03 write, 0xDC04 OTA data (write
 * without response). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"

/* Identifies one GATT connection for its whole life: never 0, never reused (a connection handle
 * can be reused by the next connection). GATT_SVC_CONN_NONE: no slot was free. */
typedef uint32_t gatt_svc_conn_id_t;
#define GATT_SVC_CONN_NONE 0u

typedef struct {
    /* A write to 0xDC03 (at most 64 bytes; longer writes are refused at the ATT layer) from
     * connection conn. Called in the NimBLE host task: copy and return. */
    esp_err_t (*on_command)(gatt_svc_conn_id_t conn, const uint8_t *data, size_t len);
    /* The notifying client subscribed (true) or went away (false). */
    void (*on_client)(bool subscribed);
    /* Connection conn ended (its authenticated session ends with it). */
    void (*on_conn_closed)(gatt_svc_conn_id_t conn);
    /* A write to 0xDC04 (an OTA chunk, at most DCP_OTA_WRITE_MAX bytes) from connection conn.
     * Called in the NimBLE host task: copy and return. */
    void (*on_ota_data)(gatt_svc_conn_id_t conn, const uint8_t *data, size_t len);
} gatt_svc_callbacks_t;

/* Registers the service; call after dcm_ble_host_init() and before dcm_ble_host_start(). */
esp_err_t gatt_svc_init(const gatt_svc_callbacks_t *callbacks);
/* Listens to GAP events (connection and subscription state); call after the host started. */
esp_err_t gatt_svc_start(void);
/* Sends a message to the subscribed client in 20-byte chunks; it also becomes the value a
 * read of 0xDC02 returns. ESP_ERR_INVALID_STATE when no client is subscribed. */
esp_err_t gatt_svc_notify(const char *msg, size_t len);
