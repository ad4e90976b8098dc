#include "relay_mesh.h"

#include "dcm_ble_host.h"
#include "dcp_common.h"
#include "dcp_crypto.h"
#include "dcp_payload.h"
#include "dcp_reply.h"
#include "esp_app_desc.h"
#include "esp_ble_mesh_common_api.h"
#include "esp_ble_mesh_config_model_api.h"
#include "esp_ble_mesh_local_data_operation_api.h"
#include "esp_ble_mesh_networking_api.h"
#include "esp_ble_mesh_provisioning_api.h"
#include "esp_check.h"
#include "esp_log.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "sdkconfig.h"

static const char *TAG = "RELAY_MESH";

#define RELAY_MESH_CID 0x02E5
#define RELAY_MESH_MODEL_SERVER 0x0001
#define RELAY_MESH_OP_SEND ESP_BLE_MESH_MODEL_OP_3(0x00, RELAY_MESH_CID)
#define RELAY_MESH_OP_STATUS ESP_BLE_MESH_MODEL_OP_3(0x01, RELAY_MESH_CID)

static uint8_t s_dev_uuid[16];

static esp_ble_mesh_cfg_srv_t s_cfg_srv = {
    .relay = ESP_BLE_MESH_RELAY_ENABLED,
    .beacon = ESP_BLE_MESH_BEACON_ENABLED,
    .friend_state = ESP_BLE_MESH_FRIEND_NOT_SUPPORTED,
    .gatt_proxy = ESP_BLE_MESH_GATT_PROXY_NOT_SUPPORTED,
    .default_ttl = CONFIG_DCM_MESH_TTL,
    .net_transmit = ESP_BLE_MESH_TRANSMIT(2, 20),
    .relay_retransmit = ESP_BLE_MESH_TRANSMIT(2, 20),
};

static esp_ble_mesh_model_t s_root_models[] = {
    ESP_BLE_MESH_MODEL_CFG_SRV(&s_cfg_srv),
};

static esp_ble_mesh_model_op_t s_server_ops[] = {
    ESP_BLE_MESH_MODEL_OP(RELAY_MESH_OP_SEND, 1),
    ESP_BLE_MESH_MODEL_OP_END,
};

static esp_ble_mesh_model_t s_vnd_models[] = {
    ESP_BLE_MESH_VENDOR_MODEL(RELAY_MESH_CID, RELAY_MESH_MODEL_SERVER, s_server_ops, NULL, NULL),
};

static esp_ble_mesh_elem_t s_elements[] = {
    ESP_BLE_MESH_ELEMENT(0, s_root_models, s_vnd_models),
};

static esp_ble_mesh_comp_t s_composition = {
    .cid = RELAY_MESH_CID,
    .element_count = sizeof(s_elements) / sizeof(s_elements[0]),
    .elements = s_elements,
};

static esp_ble_mesh_prov_t s_provision = {
    .uuid = s_dev_uuid,
};

static void relay_mesh_answer_info(esp_ble_mesh_msg_ctx_t *ctx)
{
    uint8_t node = DCP_NODE_NONE;
    if (!dcp_node_from_addr(esp_ble_mesh_get_primary_element_address(), &node)) {
        return; /* outside the node id range: no NODE<id> line possible */
    }
    const uint8_t *net_key = esp_ble_mesh_node_get_local_net_key(ESP_BLE_MESH_KEY_PRIMARY);
    const dcp_info_t info = {
        .firmware = esp_app_get_description()->version,
        .hardware = CONFIG_DCM_HARDWARE,
        .role = DCP_ROLE_CHAR_RELAY,
        .capabilities = DCP_CAP_INFO,
        .uptime_s = (uint32_t)(esp_timer_get_time() / 1000000),
        .free_heap = esp_get_free_heap_size(),
        .mesh_id = net_key != NULL ? dcp_mesh_id(net_key) : 0u,
        .gateway = false,
    };
    char msg[DCP_MESSAGE_MAX];
    int n = dcp_fmt_info(msg, sizeof(msg), node, &info);
    if (n < 0) {
        ESP_LOGE(TAG, "INFO does not format");
        return;
    }
    ctx->send_ttl = CONFIG_DCM_MESH_TTL;
    esp_err_t err = esp_ble_mesh_server_model_send_msg(&s_vnd_models[0], ctx, RELAY_MESH_OP_STATUS,
                                                       (uint16_t)n, (uint8_t *)msg);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "INFO to 0x%04x: %s", ctx->addr, esp_err_to_name(err));
    }
}

static void relay_mesh_model_cb(esp_ble_mesh_model_cb_event_t event,
                                esp_ble_mesh_model_cb_param_t *param)
{
    uint8_t duty = 0;
    if (event == ESP_BLE_MESH_MODEL_OPERATION_EVT &&
        param->model_operation.opcode == RELAY_MESH_OP_SEND &&
        dcp_payload_parse(param->model_operation.msg, param->model_operation.length, &duty) ==
            DCP_PAYLOAD_INFO) {
        relay_mesh_answer_info(param->model_operation.ctx);
    }
}

static void relay_mesh_cfg_server_cb(esp_ble_mesh_cfg_server_cb_event_t event,
                                     esp_ble_mesh_cfg_server_cb_param_t *param)
{
    if (event == ESP_BLE_MESH_CFG_SERVER_STATE_CHANGE_EVT &&
        param->ctx.recv_op == ESP_BLE_MESH_MODEL_OP_MODEL_APP_BIND &&
        param->value.state_change.mod_app_bind.company_id == RELAY_MESH_CID &&
        param->value.state_change.mod_app_bind.model_id == RELAY_MESH_MODEL_SERVER) {
        esp_err_t err = esp_ble_mesh_model_subscribe_group_addr(
            esp_ble_mesh_get_primary_element_address(), RELAY_MESH_CID, RELAY_MESH_MODEL_SERVER,
            DCP_GROUP_ADDR);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "subscribe to 0x%04x: %s", DCP_GROUP_ADDR, esp_err_to_name(err));
        }
    }
}

esp_err_t relay_mesh_init(void)
{
    dcm_ble_host_dev_uuid(s_dev_uuid);
    ESP_RETURN_ON_ERROR(esp_ble_mesh_register_config_server_callback(relay_mesh_cfg_server_cb),
                        TAG, "cfg cb");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_register_custom_model_callback(relay_mesh_model_cb), TAG,
                        "model cb");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_init(&s_provision, &s_composition), TAG, "mesh init");
    if (!esp_ble_mesh_node_is_provisioned()) {
        ESP_RETURN_ON_ERROR(esp_ble_mesh_node_prov_enable((esp_ble_mesh_prov_bearer_t)(
                                ESP_BLE_MESH_PROV_ADV | ESP_BLE_MESH_PROV_GATT)),
                            TAG, "prov enable");
    }
    return ESP_OK;
}
