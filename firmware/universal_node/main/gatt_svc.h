/* GATT service 0xDC01 (NimBLE): 0xDC02 read + notify, 0xDC03 write. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"

typedef struct {
    /* A write to 0xDC03 (at most 64 bytes; longer writes are refused at the ATT layer). Called
     * in the NimBLE host task: copy and return. */
    esp_err_t (*on_command)(const uint8_t *data, size_t len);
    /* The notifying client subscribed (true) or went away (false). */
    void (*on_client)(bool subscribed);
} gatt_svc_callbacks_t;

/* Registers the service; call after dcm_ble_host_init() and before dcm_ble_host_start(). */
esp_err_t gatt_svc_init(const gatt_svc_callbacks_t *callbacks);
/* Listens to GAP events (connection and subscription state); call after the host started. */
esp_err_t gatt_svc_start(void);
/* Sends a message to the subscribed client in 20-byte chunks; it also becomes the value a
 * read of 0xDC02 returns. ESP_ERR_INVALID_STATE when no client is subscribed. */
esp_err_t gatt_svc_notify(const char *msg, size_t len);
