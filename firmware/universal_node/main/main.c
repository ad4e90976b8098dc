/* DC Mesh universal node: INA260 sensor, PWM load, ESP-BLE-MESH vendor client + server, GATT
 * service 0xDC01 and the v1 advertisement. This file only orchestrates the boot. */
#include "dcm_ble_host.h"
#include "esp_log.h"
#include "gatt_svc.h"
#include "host/ble_hs.h"
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
    .on_ota_data = node_app_post_ota_data,
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
#if CONFIG_DCM_OTA_ATT_MTU != 23
    /* ESP-BLE-MESH set 23 (and sizes proxy PDUs by it): see DCM_OTA_ATT_MTU's help */
    if (ble_att_set_preferred_mtu(CONFIG_DCM_OTA_ATT_MTU) != 0) {
        ESP_LOGW(TAG, "preferred MTU %d refused", CONFIG_DCM_OTA_ATT_MTU);
    }
#endif
    ESP_ERROR_CHECK(adv_init());
    /* publishes the first advertisement; on the first boot of an updated image it runs the
     * self-test that keeps the image (esp_ota_mark_app_valid_cancel_rollback) or rolls it back
     * (esp_ota_mark_app_invalid_rollback_and_reboot). A boot that fails before here leaves the
     * image PENDING_VERIFY: the bootloader marks it ABORTED on the next reset and boots the old
     * one. */
    ESP_ERROR_CHECK(node_app_start());
}
