#include "mesh_vnd.h"

#include <inttypes.h>
#include <string.h>

#include "dcm_ble_host.h"
#include "dcp_adv.h"
#include "dcp_auth.h"
#include "dcp_common.h"
#include "dcp_crypto.h"
#include "esp_ble_mesh_common_api.h"
#include "esp_ble_mesh_config_model_api.h"
#include "esp_ble_mesh_local_data_operation_api.h"
#include "esp_ble_mesh_networking_api.h"
#include "esp_ble_mesh_provisioning_api.h"
#include "esp_check.h"
#include "esp_log.h"
#include "sdkconfig.h"

static const char *TAG = "MESH";

#define MESH_VND_CID 0x02E5
#define MESH_VND_MODEL_CLIENT 0x0000
#define MESH_VND_MODEL_SERVER 0x0001
#define MESH_VND_OP_SEND ESP_BLE_MESH_MODEL_OP_3(0x00, MESH_VND_CID)
#define MESH_VND_OP_STATUS ESP_BLE_MESH_MODEL_OP_3(0x01, MESH_VND_CID)
#define MESH_VND_NET_IDX ESP_BLE_MESH_KEY_PRIMARY

static uint8_t s_dev_uuid[16];

static esp_ble_mesh_cfg_srv_t s_cfg_srv = {
    .relay = ESP_BLE_MESH_RELAY_ENABLED,
    .beacon = ESP_BLE_MESH_BEACON_ENABLED,
#if defined(CONFIG_BLE_MESH_FRIEND)
    .friend_state = ESP_BLE_MESH_FRIEND_ENABLED,
#else
    .friend_state = ESP_BLE_MESH_FRIEND_NOT_SUPPORTED,
#endif
#if defined(CONFIG_BLE_MESH_GATT_PROXY_SERVER)
    .gatt_proxy = ESP_BLE_MESH_GATT_PROXY_ENABLED,
#else
    .gatt_proxy = ESP_BLE_MESH_GATT_PROXY_NOT_SUPPORTED,
#endif
    .default_ttl = CONFIG_DCM_MESH_TTL,
    .net_transmit = ESP_BLE_MESH_TRANSMIT(2, 20),
    .relay_retransmit = ESP_BLE_MESH_TRANSMIT(2, 20),
};

static esp_ble_mesh_model_t s_root_models[] = {
    ESP_BLE_MESH_MODEL_CFG_SRV(&s_cfg_srv),
};

static const esp_ble_mesh_client_op_pair_t s_op_pairs[] = {
    {MESH_VND_OP_SEND, MESH_VND_OP_STATUS},
};

static esp_ble_mesh_client_t s_vnd_client = {
    .op_pair_size = sizeof(s_op_pairs) / sizeof(s_op_pairs[0]),
    .op_pair = s_op_pairs,
};

static esp_ble_mesh_model_op_t s_client_ops[] = {
    ESP_BLE_MESH_MODEL_OP(MESH_VND_OP_STATUS, 1),
    ESP_BLE_MESH_MODEL_OP_END,
};

static esp_ble_mesh_model_op_t s_server_ops[] = {
    ESP_BLE_MESH_MODEL_OP(MESH_VND_OP_SEND, 1),
    ESP_BLE_MESH_MODEL_OP_END,
};

enum { MESH_VND_CLIENT_IDX, MESH_VND_SERVER_IDX };

static esp_ble_mesh_model_t s_vnd_models[] = {
    [MESH_VND_CLIENT_IDX] = ESP_BLE_MESH_VENDOR_MODEL(MESH_VND_CID, MESH_VND_MODEL_CLIENT,
                                                      s_client_ops, NULL, &s_vnd_client),
    [MESH_VND_SERVER_IDX] = ESP_BLE_MESH_VENDOR_MODEL(MESH_VND_CID, MESH_VND_MODEL_SERVER,
                                                      s_server_ops, NULL, NULL),
};

static esp_ble_mesh_elem_t s_elements[] = {
    ESP_BLE_MESH_ELEMENT(0, s_root_models, s_vnd_models),
};

static esp_ble_mesh_comp_t s_composition = {
    .cid = MESH_VND_CID,
    .element_count = sizeof(s_elements) / sizeof(s_elements[0]),
    .elements = s_elements,
};

static esp_ble_mesh_prov_t s_provision = {
    .uuid = s_dev_uuid,
};

static mesh_vnd_callbacks_t s_cbs;
static bool s_ready;

static uint16_t mesh_vnd_app_idx(const esp_ble_mesh_model_t *model)
{
    for (size_t i = 0; i < sizeof(model->keys) / sizeof(model->keys[0]); i++) {
        if (model->keys[i] != ESP_BLE_MESH_KEY_UNUSED) {
            return model->keys[i];
        }
    }
    return ESP_BLE_MESH_KEY_UNUSED;
}

static void mesh_vnd_update_ready(void)
{
    bool ready = esp_ble_mesh_node_is_provisioned() &&
                 mesh_vnd_app_idx(&s_vnd_models[MESH_VND_CLIENT_IDX]) != ESP_BLE_MESH_KEY_UNUSED &&
                 mesh_vnd_app_idx(&s_vnd_models[MESH_VND_SERVER_IDX]) != ESP_BLE_MESH_KEY_UNUSED;
    if (ready != s_ready) {
        s_ready = ready;
        ESP_LOGI(TAG, "vendor models %s", ready ? "ready" : "not ready");
        s_cbs.on_ready(ready);
    }
}

static void mesh_vnd_prov_cb(esp_ble_mesh_prov_cb_event_t event, esp_ble_mesh_prov_cb_param_t *param)
{
    switch (event) {
    case ESP_BLE_MESH_NODE_PROV_COMPLETE_EVT:
        ESP_LOGI(TAG, "provisioned: address 0x%04x", param->node_prov_complete.addr);
        mesh_vnd_update_ready();
        break;
    case ESP_BLE_MESH_NODE_PROV_RESET_EVT:
        ESP_LOGW(TAG, "provisioning reset");
        mesh_vnd_update_ready();
        break;
    default:
        break;
    }
}

static void mesh_vnd_cfg_server_cb(esp_ble_mesh_cfg_server_cb_event_t event,
                                   esp_ble_mesh_cfg_server_cb_param_t *param)
{
    if (event != ESP_BLE_MESH_CFG_SERVER_STATE_CHANGE_EVT ||
        param->ctx.recv_op != ESP_BLE_MESH_MODEL_OP_MODEL_APP_BIND ||
        param->value.state_change.mod_app_bind.company_id != MESH_VND_CID) {
        return;
    }
    if (param->value.state_change.mod_app_bind.model_id == MESH_VND_MODEL_SERVER) {
        /* every server listens to the DC-Monitor group, whatever the provisioner configures */
        esp_err_t err = esp_ble_mesh_model_subscribe_group_addr(
            esp_ble_mesh_get_primary_element_address(), MESH_VND_CID, MESH_VND_MODEL_SERVER,
            DCP_GROUP_ADDR);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "subscribe to 0x%04x: %s", DCP_GROUP_ADDR, esp_err_to_name(err));
        }
    }
    mesh_vnd_update_ready();
}

static void mesh_vnd_model_cb(esp_ble_mesh_model_cb_event_t event, esp_ble_mesh_model_cb_param_t *param)
{
    switch (event) {
    case ESP_BLE_MESH_MODEL_OPERATION_EVT: {
        const esp_ble_mesh_msg_ctx_t *ctx = param->model_operation.ctx;
        if (param->model_operation.opcode == MESH_VND_OP_SEND &&
            param->model_operation.model == &s_vnd_models[MESH_VND_SERVER_IDX]) {
            if (ctx->addr != esp_ble_mesh_get_primary_element_address()) { /* group loop-back */
                s_cbs.on_send(ctx, param->model_operation.msg, param->model_operation.length);
            }
        } else if (param->model_operation.opcode == MESH_VND_OP_STATUS) {
            s_cbs.on_status(ctx->addr, param->model_operation.msg, param->model_operation.length);
        }
        break;
    }
    case ESP_BLE_MESH_CLIENT_MODEL_RECV_PUBLISH_MSG_EVT:
        if (param->client_recv_publish_msg.opcode == MESH_VND_OP_STATUS) {
            s_cbs.on_status(param->client_recv_publish_msg.ctx->addr,
                            param->client_recv_publish_msg.msg,
                            param->client_recv_publish_msg.length);
        }
        break;
    case ESP_BLE_MESH_MODEL_SEND_COMP_EVT:
        if (param->model_send_comp.err_code != 0) {
            ESP_LOGW(TAG, "send 0x%06" PRIx32 " failed: %d", param->model_send_comp.opcode,
                     param->model_send_comp.err_code);
        }
        break;
    default:
        break;
    }
}

esp_err_t mesh_vnd_init(const mesh_vnd_callbacks_t *callbacks)
{
    ESP_RETURN_ON_FALSE(callbacks != NULL && callbacks->on_send != NULL &&
                            callbacks->on_status != NULL && callbacks->on_ready != NULL,
                        ESP_ERR_INVALID_ARG, TAG, "callbacks");
    s_cbs = *callbacks;
    dcm_ble_host_dev_uuid(s_dev_uuid);
    ESP_RETURN_ON_ERROR(esp_ble_mesh_register_prov_callback(mesh_vnd_prov_cb), TAG, "prov cb");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_register_config_server_callback(mesh_vnd_cfg_server_cb), TAG,
                        "cfg cb");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_register_custom_model_callback(mesh_vnd_model_cb), TAG,
                        "model cb");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_init(&s_provision, &s_composition), TAG, "mesh init");
    /* esp_ble_mesh_init() sets the GAP device name to "ESP-BLE-MESH" (proxy server init); this
     * puts ours back (GAP Device Name characteristic and the PB-GATT scan response). */
    esp_err_t err = esp_ble_mesh_set_unprovisioned_device_name(DCP_ADV_LOCAL_NAME);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "device name: %s", esp_err_to_name(err));
    }
    ESP_RETURN_ON_ERROR(esp_ble_mesh_client_model_init(&s_vnd_models[MESH_VND_CLIENT_IDX]), TAG,
                        "client init");
    if (!esp_ble_mesh_node_is_provisioned()) {
        ESP_RETURN_ON_ERROR(esp_ble_mesh_node_prov_enable((esp_ble_mesh_prov_bearer_t)(
                                ESP_BLE_MESH_PROV_ADV | ESP_BLE_MESH_PROV_GATT)),
                            TAG, "prov enable");
    }
    mesh_vnd_update_ready(); /* state restored from NVS */
    return ESP_OK;
}

bool mesh_vnd_ready(void)
{
    return s_ready;
}

uint8_t mesh_vnd_node_id(void)
{
    uint8_t node = DCP_NODE_NONE;
    if (!esp_ble_mesh_node_is_provisioned() ||
        !dcp_node_from_addr(esp_ble_mesh_get_primary_element_address(), &node)) {
        return DCP_NODE_NONE;
    }
    return node;
}

uint32_t mesh_vnd_mesh_id(void)
{
    const uint8_t *net_key = esp_ble_mesh_node_get_local_net_key(MESH_VND_NET_IDX);
    return net_key != NULL ? dcp_mesh_id(net_key) : 0u;
}

bool mesh_vnd_mesh_key(uint8_t key[16])
{
    /* ESP-BLE-MESH keeps the keys a node was given (and restores them from NVS with
     * CONFIG_BLE_MESH_SETTINGS); during a key refresh these return the new keys */
    uint16_t app_idx = mesh_vnd_app_idx(&s_vnd_models[MESH_VND_SERVER_IDX]);
    if (!esp_ble_mesh_node_is_provisioned() || app_idx == ESP_BLE_MESH_KEY_UNUSED) {
        return false;
    }
    const uint8_t *app_key = esp_ble_mesh_node_get_local_app_key(app_idx);
    const uint8_t *net_key = esp_ble_mesh_node_get_local_net_key(MESH_VND_NET_IDX);
    if (app_key == NULL || net_key == NULL || !dcp_mesh_key_from_keys(app_key, net_key, key)) {
        ESP_LOGE(TAG, "no mesh key (AppKey 0x%03x)", app_idx);
        return false;
    }
    return true;
}

esp_err_t mesh_vnd_send(uint16_t dst, const char *payload, size_t len)
{
    ESP_RETURN_ON_FALSE(s_ready, ESP_ERR_INVALID_STATE, TAG, "not ready");
    esp_ble_mesh_msg_ctx_t ctx = {
        .net_idx = MESH_VND_NET_IDX,
        .app_idx = mesh_vnd_app_idx(&s_vnd_models[MESH_VND_CLIENT_IDX]),
        .addr = dst,
        .send_ttl = CONFIG_DCM_MESH_TTL,
    };
    /* no stack-side response tracking: the node's own tracker (dcp_tracker) times out */
    return esp_ble_mesh_client_model_send_msg(&s_vnd_models[MESH_VND_CLIENT_IDX], &ctx,
                                              MESH_VND_OP_SEND, (uint16_t)len,
                                              (uint8_t *)payload, 0, false, ROLE_NODE);
}

esp_err_t mesh_vnd_reply(const esp_ble_mesh_msg_ctx_t *ctx, const char *text, size_t len)
{
    esp_ble_mesh_msg_ctx_t reply = *ctx;
    reply.send_ttl = CONFIG_DCM_MESH_TTL;
    return esp_ble_mesh_server_model_send_msg(&s_vnd_models[MESH_VND_SERVER_IDX], &reply,
                                              MESH_VND_OP_STATUS, (uint16_t)len,
                                              (uint8_t *)text);
}
