/* The flash side of the OTA receiver (protocol-v1 section 9): esp_ota_* behind dcp_ota_io_t, and
 * the self-test that keeps or rolls back a freshly updated image. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dcp_ota.h"

/* The io callbacks for dcp_ota_init (one transfer at a time, from the node_app task). */
const dcp_ota_io_t *ota_glue_io(void);
/* Bytes of the slot an update would go to (0: no OTA slot). */
uint32_t ota_glue_slot_size(void);
/* Whether the running image is on its first boot after an update (ESP_OTA_IMG_PENDING_VERIFY). */
bool ota_glue_pending_verify(void);
/* Self-test outcome of a pending image: keep it, or roll back and reboot. */
void ota_glue_confirm(bool passed);
