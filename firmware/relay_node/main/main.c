/* DC Mesh relay node: extends the mesh's range; answers INFO, nothing else. */
#include "dcm_ble_host.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "nvs_flash.h"
#include "relay_mesh.h"
#include "sdkconfig.h"

static const char *TAG = "MAIN";

void app_main(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
    ESP_ERROR_CHECK(dcm_ble_host_init());
    ESP_ERROR_CHECK(dcm_ble_host_start(CONFIG_DCM_HOST_SYNC_TIMEOUT_MS));
    ESP_ERROR_CHECK(relay_mesh_init());

    err = esp_ota_mark_app_valid_cancel_rollback();
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "mark app valid: %s", esp_err_to_name(err));
    }
}
