#include "dcm_ble_host.h"

#include <string.h>

#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "host/ble_hs.h"
#include "host/util/util.h"
#include "nimble/nimble_port.h"
#include "nimble/nimble_port_freertos.h"

static const char *TAG = "BLE_HOST";

/* Provided by NimBLE's store/config; it has no public header. */
void ble_store_config_init(void);

static SemaphoreHandle_t s_synced;
static uint8_t s_addr[6];

static void dcm_ble_host_on_reset(int reason)
{
    ESP_LOGW(TAG, "host reset, reason %d", reason);
}

static void dcm_ble_host_on_sync(void)
{
    uint8_t own_addr_type = 0;
    int rc = ble_hs_util_ensure_addr(0);
    if (rc == 0) {
        rc = ble_hs_id_infer_auto(0, &own_addr_type);
    }
    if (rc == 0) {
        rc = ble_hs_id_copy_addr(own_addr_type, s_addr, NULL);
    }
    if (rc != 0) {
        ESP_LOGE(TAG, "no usable BLE address, rc %d", rc);
        return;
    }
    xSemaphoreGive(s_synced);
}

static void dcm_ble_host_task(void *param)
{
    (void)param;
    nimble_port_run(); /* returns only after nimble_port_stop() */
    nimble_port_freertos_deinit();
}

esp_err_t dcm_ble_host_init(void)
{
    s_synced = xSemaphoreCreateBinary();
    if (s_synced == NULL) {
        return ESP_ERR_NO_MEM;
    }
    esp_err_t err = nimble_port_init();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "nimble_port_init failed: %s", esp_err_to_name(err));
        return err;
    }
    ble_hs_cfg.reset_cb = dcm_ble_host_on_reset;
    ble_hs_cfg.sync_cb = dcm_ble_host_on_sync;
    ble_hs_cfg.store_status_cb = ble_store_util_status_rr;
    ble_store_config_init();
    return ESP_OK;
}

esp_err_t dcm_ble_host_start(uint32_t timeout_ms)
{
    nimble_port_freertos_init(dcm_ble_host_task);
    if (xSemaphoreTake(s_synced, pdMS_TO_TICKS(timeout_ms)) != pdTRUE) {
        ESP_LOGE(TAG, "host did not sync within %u ms", (unsigned)timeout_ms);
        return ESP_ERR_TIMEOUT;
    }
    return ESP_OK;
}

void dcm_ble_host_dev_uuid(uint8_t uuid[16])
{
    memset(uuid, 0, 16);
    uuid[0] = 0xDD;
    uuid[1] = 0xDD;
    memcpy(uuid + 2, s_addr, sizeof(s_addr));
}
