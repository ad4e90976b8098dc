/* DC Mesh universal node: INA260 sensor, PWM load, ESP-BLE-MESH vendor client + server, GATT
 * service 0xDC01 and the v1 advertisement. This file only orchestrates the boot. */
#include "dcm_ble_host.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "gatt_svc.h"
#include "mesh_vnd.h"
#include "node_app.h"
#include "adv.h"
#include "nvs_flash.h"
#include "pwm_load.h"
#include "sdkconfig.h"
#include "sensor_ina260.h"

static const char *TAG = "MAIN";

static const gatt_svc_callbacks_t s_gatt_cbs = {
    .on_command = node_app_post_command,
    .on_client = node_app_post_client,
    .on_conn_closed = node_app_post_conn_closed,
};

static const mesh_vnd_callbacks_t s_mesh_cbs = {
    .on_send = node_app_post_mesh_send,
    .on_status = node_app_post_mesh_status,
    .on_ready = node_app_post_mesh_ready,
};

void app_main(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);

    ESP_ERROR_CHECK(pwm_load_init(CONFIG_DCM_PWM_GPIO)); /* the load must start off */
    err = ina260_init(CONFIG_DCM_I2C_SDA_GPIO, CONFIG_DCM_I2C_SCL_GPIO);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "no INA260 (%s): READ gets no DATA from this node", esp_err_to_name(err));
    }
    ESP_ERROR_CHECK(node_app_init());

    /* order matters: NimBLE, our GATT service, ESP-BLE-MESH (locks the GATT table), advertising */
    ESP_ERROR_CHECK(dcm_ble_host_init());
    ESP_ERROR_CHECK(gatt_svc_init(&s_gatt_cbs));
    ESP_ERROR_CHECK(dcm_ble_host_start(CONFIG_DCM_HOST_SYNC_TIMEOUT_MS));
    ESP_ERROR_CHECK(gatt_svc_start());
    ESP_ERROR_CHECK(mesh_vnd_init(&s_mesh_cbs));
    ESP_ERROR_CHECK(adv_init());
    ESP_ERROR_CHECK(node_app_start()); /* publishes the first advertisement */

    /* booted this far: keep this image (a new OTA image that fails before here rolls back) */
    err = esp_ota_mark_app_valid_cancel_rollback();
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "mark app valid: %s", esp_err_to_name(err));
    }
}
