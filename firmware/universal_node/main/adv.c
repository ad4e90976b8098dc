#include "adv.h"

#include "dcp_adv.h"
#include "esp_ble_mesh_ble_api.h"
#include "esp_check.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "sdkconfig.h"

static const char *TAG = "ADV";

#define ADV_TYPE_ADV_IND 0x00u  /* HCI: connectable undirected */
#define ADV_OWN_ADDR_PUBLIC 0x00u
#define ADV_INDEX_NONE 0xFFu
#define ADV_INTERVAL_UNITS ((CONFIG_DCM_ADV_INTERVAL_MS * 1000u) / 625u) /* 0.625 ms units */

static portMUX_TYPE s_lock = portMUX_INITIALIZER_UNLOCKED;
static uint8_t s_index = ADV_INDEX_NONE; /* guarded by s_lock */

static void adv_ble_cb(esp_ble_mesh_ble_cb_event_t event, esp_ble_mesh_ble_cb_param_t *param)
{
    if (event != ESP_BLE_MESH_START_BLE_ADVERTISING_COMP_EVT) {
        return;
    }
    if (param->start_ble_advertising_comp.err_code != 0) {
        ESP_LOGE(TAG, "advertising not started: %d", param->start_ble_advertising_comp.err_code);
        return;
    }
    taskENTER_CRITICAL(&s_lock);
    s_index = param->start_ble_advertising_comp.index;
    taskEXIT_CRITICAL(&s_lock);
}

esp_err_t adv_init(void)
{
    return esp_ble_mesh_register_ble_callback(adv_ble_cb);
}

esp_err_t adv_update(uint32_t mesh_id, uint8_t node_id, uint8_t flags)
{
    esp_ble_mesh_ble_adv_data_t data = {0};
    data.adv_data_len = (uint8_t)dcp_adv_data(data.adv_data, sizeof(data.adv_data), mesh_id,
                                              node_id, DCP_ADV_ROLE_UNIVERSAL, flags);
    ESP_RETURN_ON_FALSE(data.adv_data_len > 0, ESP_ERR_INVALID_ARG, TAG, "adv data");
    const esp_ble_mesh_ble_adv_param_t param = {
        .interval = ADV_INTERVAL_UNITS,
        .adv_type = ADV_TYPE_ADV_IND,
        .own_addr_type = ADV_OWN_ADDR_PUBLIC,
        .duration = CONFIG_DCM_ADV_INTERVAL_MS,
        .period = CONFIG_DCM_ADV_PERIOD_MS,
        .count = ESP_BLE_MESH_BLE_ADV_INFINITE,
        .priority = ESP_BLE_MESH_BLE_ADV_PRIO_LOW,
    };
    uint8_t index;
    taskENTER_CRITICAL(&s_lock);
    index = s_index;
    s_index = ADV_INDEX_NONE;
    taskEXIT_CRITICAL(&s_lock);
    if (index != ADV_INDEX_NONE) {
        ESP_RETURN_ON_ERROR(esp_ble_mesh_stop_ble_advertising(index), TAG, "stop");
    }
    return esp_ble_mesh_start_ble_advertising(&param, &data);
}
