#include "relay_mesh.h"

#include "dcm_ble_host.h"
#include "dcp_common.h"
#include "dcp_crypto.h"
#include "dcp_payload.h"
#include "dcp_reply.h"
#include "dcp_stagger.h"
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
#include "freertos/FreeRTOS.h"
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

/* protocol-v1 section 10: an INFO answer to the group waits node id x 100 ms. The model callback
 * (BTC task) holds answers, a one-shot timer (esp_timer task) sends them: a lock between both. */
static dcp_stagger_t s_stagger;
static esp_ble_mesh_msg_ctx_t s_stagger_ctx[DCP_STAGGER_SLOTS];
static portMUX_TYPE s_stagger_lock = portMUX_INITIALIZER_UNLOCKED;
static esp_timer_handle_t s_stagger_timer;

static uint32_t relay_mesh_now_ms(void)
{
    return (uint32_t)(esp_timer_get_time() / 1000);
}

static void relay_mesh_send(esp_ble_mesh_msg_ctx_t *ctx, const char *msg, size_t len)
{
    ctx->send_ttl = CONFIG_DCM_MESH_TTL;
    esp_err_t err = esp_ble_mesh_server_model_send_msg(&s_vnd_models[0], ctx, RELAY_MESH_OP_STATUS,
                                                       (uint16_t)len, (uint8_t *)msg);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "INFO to 0x%04x: %s", ctx->addr, esp_err_to_name(err));
    }
}

/* (Re)arms the timer for the held answer due first. */
static void relay_mesh_arm(void)
{
    portENTER_CRITICAL(&s_stagger_lock);
    uint32_t wait = dcp_stagger_wait_ms(&s_stagger, relay_mesh_now_ms());
    portEXIT_CRITICAL(&s_stagger_lock);
    if (wait == UINT32_MAX || s_stagger_timer == NULL) {
        return;
    }
    esp_timer_stop(s_stagger_timer); /* ESP_ERR_INVALID_STATE when it was not running */
    esp_err_t err = esp_timer_start_once(s_stagger_timer, (uint64_t)wait * 1000u);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "stagger timer: %s", esp_err_to_name(err));
    }
}

static void relay_mesh_stagger_due(void *arg)
{
    (void)arg;
    for (;;) {
        dcp_stagger_entry_t held;
        esp_ble_mesh_msg_ctx_t ctx = {0};
        size_t slot = 0;
        portENTER_CRITICAL(&s_stagger_lock);
        bool due = dcp_stagger_take(&s_stagger, relay_mesh_now_ms(), &held, &slot);
        if (due) {
            ctx = s_stagger_ctx[slot];
        }
        portEXIT_CRITICAL(&s_stagger_lock);
        if (!due) {
            break;
        }
        relay_mesh_send(&ctx, held.text, held.len);
    }
    relay_mesh_arm();
}

static void relay_mesh_answer(esp_ble_mesh_msg_ctx_t *ctx, uint8_t node, const char *msg,
                              size_t len)
{
    uint32_t delay = dcp_stagger_delay_ms(node, ctx->recv_dst);
    if (delay == 0 || s_stagger_timer == NULL) {
        relay_mesh_send(ctx, msg, len);
        return;
    }
    dcp_stagger_entry_t evicted;
    esp_ble_mesh_msg_ctx_t evicted_ctx = {0};
    bool has_evicted = false;
    portENTER_CRITICAL(&s_stagger_lock);
    size_t slot = dcp_stagger_put(&s_stagger, relay_mesh_now_ms(), delay, ctx->addr,
                                  (uint8_t)DCP_SERVE_INFO, msg, len, &evicted, &has_evicted);
    if (slot < DCP_STAGGER_SLOTS) {
        evicted_ctx = s_stagger_ctx[slot];
        s_stagger_ctx[slot] = *ctx;
    }
    portEXIT_CRITICAL(&s_stagger_lock);
    if (slot >= DCP_STAGGER_SLOTS) {
        relay_mesh_send(ctx, msg, len);
        return;
    }
    if (has_evicted) {
        relay_mesh_send(&evicted_ctx, evicted.text, evicted.len);
    }
    relay_mesh_arm();
}

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
        .capabilities = DCP_CAP_INFO | DCP_CAP_LARGE_MESH,
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
    relay_mesh_answer(ctx, node, msg, (size_t)n);
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
    dcp_stagger_init(&s_stagger);
    const esp_timer_create_args_t stagger_timer = {
        .callback = relay_mesh_stagger_due,
        .name = "dcm_stagger",
    };
    ESP_RETURN_ON_ERROR(esp_timer_create(&stagger_timer, &s_stagger_timer), TAG, "timer");
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
