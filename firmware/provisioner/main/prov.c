#include "prov.h"

#include <inttypes.h>
#include <string.h>

#include "dcm_ble_host.h"
#include "dcp_auth.h"
#include "dcp_common.h"
#include "dcp_crypto.h"
#include "esp_ble_mesh_common_api.h"
#include "esp_ble_mesh_config_model_api.h"
#include "esp_ble_mesh_networking_api.h"
#include "esp_ble_mesh_provisioning_api.h"
#include "esp_check.h"
#include "esp_log.h"
#include "qrcode.h"
#include "sdkconfig.h"

static const char *TAG = "PROV";

#define PROV_CID 0x02E5
#define PROV_MODEL_CLIENT 0x0000
#define PROV_MODEL_SERVER 0x0001
#define PROV_OWN_ADDR 0x0001
#define PROV_NET_IDX ESP_BLE_MESH_KEY_PRIMARY
#define PROV_APP_IDX 0x0000
#define PROV_COMP_PAGE 0x00

static uint8_t s_dev_uuid[16];
static unsigned s_retries;

static esp_ble_mesh_cfg_srv_t s_cfg_srv = {
    .relay = ESP_BLE_MESH_RELAY_DISABLED,
    .beacon = ESP_BLE_MESH_BEACON_ENABLED,
    .friend_state = ESP_BLE_MESH_FRIEND_NOT_SUPPORTED,
    .gatt_proxy = ESP_BLE_MESH_GATT_PROXY_NOT_SUPPORTED,
    .default_ttl = CONFIG_DCM_PROV_TTL,
    .net_transmit = ESP_BLE_MESH_TRANSMIT(2, 20),
    .relay_retransmit = ESP_BLE_MESH_TRANSMIT(2, 20),
};

static esp_ble_mesh_client_t s_cfg_cli;

static esp_ble_mesh_model_t s_root_models[] = {
    ESP_BLE_MESH_MODEL_CFG_SRV(&s_cfg_srv),
    ESP_BLE_MESH_MODEL_CFG_CLI(&s_cfg_cli),
};

static esp_ble_mesh_elem_t s_elements[] = {
    ESP_BLE_MESH_ELEMENT(0, s_root_models, ESP_BLE_MESH_MODEL_NONE),
};

static esp_ble_mesh_comp_t s_composition = {
    .cid = PROV_CID,
    .element_count = sizeof(s_elements) / sizeof(s_elements[0]),
    .elements = s_elements,
};

static esp_ble_mesh_prov_t s_provision = {
    .prov_uuid = s_dev_uuid,
    .prov_unicast_addr = PROV_OWN_ADDR,
    .prov_start_address = DCP_BASE_UNICAST,
};

static void prov_common(esp_ble_mesh_client_common_param_t *common, uint16_t addr, uint32_t opcode)
{
    memset(common, 0, sizeof(*common));
    common->opcode = opcode;
    common->model = s_cfg_cli.model;
    common->ctx.net_idx = PROV_NET_IDX;
    common->ctx.app_idx = PROV_APP_IDX; /* config messages use the device key anyway */
    common->ctx.addr = addr;
    common->ctx.send_ttl = CONFIG_DCM_PROV_TTL;
    common->msg_timeout = CONFIG_DCM_PROV_CFG_TIMEOUT_MS;
}

static esp_err_t prov_get_composition(uint16_t addr)
{
    esp_ble_mesh_client_common_param_t common;
    esp_ble_mesh_cfg_client_get_state_t get = {0};
    prov_common(&common, addr, ESP_BLE_MESH_MODEL_OP_COMPOSITION_DATA_GET);
    get.comp_data_get.page = PROV_COMP_PAGE;
    return esp_ble_mesh_config_client_get_state(&common, &get);
}

static esp_err_t prov_add_app_key(uint16_t addr)
{
    const uint8_t *key = esp_ble_mesh_provisioner_get_local_app_key(PROV_NET_IDX, PROV_APP_IDX);
    ESP_RETURN_ON_FALSE(key != NULL, ESP_ERR_INVALID_STATE, TAG, "no local app key");
    esp_ble_mesh_client_common_param_t common;
    esp_ble_mesh_cfg_client_set_state_t set = {0};
    prov_common(&common, addr, ESP_BLE_MESH_MODEL_OP_APP_KEY_ADD);
    set.app_key_add.net_idx = PROV_NET_IDX;
    set.app_key_add.app_idx = PROV_APP_IDX;
    memcpy(set.app_key_add.app_key, key, sizeof(set.app_key_add.app_key));
    return esp_ble_mesh_config_client_set_state(&common, &set);
}

static esp_err_t prov_bind(uint16_t addr, uint16_t model_id)
{
    esp_ble_mesh_client_common_param_t common;
    esp_ble_mesh_cfg_client_set_state_t set = {0};
    prov_common(&common, addr, ESP_BLE_MESH_MODEL_OP_MODEL_APP_BIND);
    set.model_app_bind.element_addr = addr;
    set.model_app_bind.model_app_idx = PROV_APP_IDX;
    set.model_app_bind.model_id = model_id;
    set.model_app_bind.company_id = PROV_CID;
    return esp_ble_mesh_config_client_set_state(&common, &set);
}

static void prov_log(esp_err_t err, const char *step, uint16_t addr)
{
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "%s for 0x%04x: %s", step, addr, esp_err_to_name(err));
    }
}

static void prov_cfg_client_cb(esp_ble_mesh_cfg_client_cb_event_t event,
                               esp_ble_mesh_cfg_client_cb_param_t *param)
{
    uint16_t addr = param->params->ctx.addr;
    uint32_t opcode = param->params->opcode;
    if (param->error_code != 0) {
        ESP_LOGE(TAG, "config 0x%04" PRIx32 " to 0x%04x failed: %d", opcode, addr,
                 param->error_code);
        return;
    }
    switch (event) {
    case ESP_BLE_MESH_CFG_CLIENT_GET_STATE_EVT:
        if (opcode == ESP_BLE_MESH_MODEL_OP_COMPOSITION_DATA_GET) {
            s_retries = 0;
            prov_log(prov_add_app_key(addr), "AppKey Add", addr);
        }
        break;
    case ESP_BLE_MESH_CFG_CLIENT_SET_STATE_EVT:
        s_retries = 0;
        if (opcode == ESP_BLE_MESH_MODEL_OP_APP_KEY_ADD) {
            prov_log(prov_bind(addr, PROV_MODEL_SERVER), "bind server", addr);
        } else if (opcode == ESP_BLE_MESH_MODEL_OP_MODEL_APP_BIND &&
                   param->status_cb.model_app_status.model_id == PROV_MODEL_SERVER) {
            /* universal nodes also have the client; a relay node answers "invalid model" */
            prov_log(prov_bind(addr, PROV_MODEL_CLIENT), "bind client", addr);
        } else if (opcode == ESP_BLE_MESH_MODEL_OP_MODEL_APP_BIND) {
            ESP_LOGI(TAG, "node 0x%04x configured (client bind status %u)", addr,
                     param->status_cb.model_app_status.status);
        }
        break;
    case ESP_BLE_MESH_CFG_CLIENT_TIMEOUT_EVT:
        if (s_retries++ >= CONFIG_DCM_PROV_CFG_RETRIES) {
            ESP_LOGE(TAG, "node 0x%04x: giving up on 0x%04" PRIx32, addr, opcode);
            s_retries = 0;
            break;
        }
        if (opcode == ESP_BLE_MESH_MODEL_OP_COMPOSITION_DATA_GET) {
            prov_log(prov_get_composition(addr), "Composition Data Get", addr);
        } else if (opcode == ESP_BLE_MESH_MODEL_OP_APP_KEY_ADD) {
            prov_log(prov_add_app_key(addr), "AppKey Add", addr);
        } else if (opcode == ESP_BLE_MESH_MODEL_OP_MODEL_APP_BIND) {
            /* restart binding at the server: binding twice is harmless */
            prov_log(prov_bind(addr, PROV_MODEL_SERVER), "bind server", addr);
        }
        break;
    default:
        break;
    }
}

/* Prints the mesh key (protocol-v1 7.1) the user enters in Home Assistant: the shown form and a
 * QR code of DCMESH1:<mesh id>:<key>. Called once the NetKey and the AppKey exist. */
static void prov_show_mesh_key(void)
{
    const uint8_t *net_key = esp_ble_mesh_provisioner_get_local_net_key(PROV_NET_IDX);
    const uint8_t *app_key = esp_ble_mesh_provisioner_get_local_app_key(PROV_NET_IDX, PROV_APP_IDX);
    uint8_t key[DCP_AUTH_KEY_LEN];
    char shown[DCP_AUTH_KEY_SHOWN_MAX];
    char qr[DCP_AUTH_QR_TEXT_MAX];
    if (net_key == NULL || app_key == NULL || !dcp_mesh_key_from_keys(app_key, net_key, key)) {
        ESP_LOGE(TAG, "no mesh key yet (NetKey %s, AppKey %s)", net_key ? "ok" : "missing",
                 app_key ? "ok" : "missing");
        return;
    }
    uint32_t mesh_id = dcp_mesh_id(net_key);
    if (dcp_mesh_key_format(shown, sizeof(shown), key) < 0 ||
        dcp_mesh_key_qr_text(qr, sizeof(qr), mesh_id, key) < 0) {
        return;
    }
    memset(key, 0, sizeof(key));
    ESP_LOGI(TAG, "mesh %08" PRIx32 ": mesh key %s", mesh_id, shown);
    ESP_LOGI(TAG, "enter it in Home Assistant (DC Mesh), or scan: %s", qr);
    esp_qrcode_config_t cfg = ESP_QRCODE_CONFIG_DEFAULT();
    esp_err_t err = esp_qrcode_generate(&cfg, qr);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "QR code: %s", esp_err_to_name(err));
    }
}

/* The address plan (protocol-v1 section 10): node ids 0..99 = unicast 0x0005..0x0068, handed out
 * in provisioning order by the stack (one element per node; CONFIG_BLE_MESH_MAX_PROV_NODES=100 and
 * nothing is ever deleted, so the addresses stay contiguous). A device provisioned before keeps its
 * address (the stack reuses it). A full mesh takes no new device. */
static bool prov_has_room(const uint8_t uuid[16])
{
    if (esp_ble_mesh_provisioner_get_node_with_uuid(uuid) != NULL) {
        return true;
    }
    return esp_ble_mesh_provisioner_get_prov_node_count() < DCP_MAX_NODES;
}

static void prov_add_device(const esp_ble_mesh_prov_cb_param_t *param)
{
    if (!prov_has_room(param->provisioner_recv_unprov_adv_pkt.dev_uuid)) {
        ESP_LOGW(TAG, "mesh full: node ids 0..%u are taken, device not provisioned",
                 (unsigned)(DCP_MAX_NODES - 1u));
        return;
    }
    esp_ble_mesh_unprov_dev_add_t dev = {0};
    memcpy(dev.addr, param->provisioner_recv_unprov_adv_pkt.addr, sizeof(dev.addr));
    dev.addr_type = param->provisioner_recv_unprov_adv_pkt.addr_type;
    memcpy(dev.uuid, param->provisioner_recv_unprov_adv_pkt.dev_uuid, sizeof(dev.uuid));
    dev.oob_info = param->provisioner_recv_unprov_adv_pkt.oob_info;
    dev.bearer = param->provisioner_recv_unprov_adv_pkt.bearer; /* one bearer: START_PROV_NOW is allowed */
    esp_err_t err = esp_ble_mesh_provisioner_add_unprov_dev(
        &dev, ADD_DEV_RM_AFTER_PROV_FLAG | ADD_DEV_START_PROV_NOW_FLAG | ADD_DEV_FLUSHABLE_DEV_FLAG);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "cannot start provisioning: %s", esp_err_to_name(err));
    }
}

static void prov_cb(esp_ble_mesh_prov_cb_event_t event, esp_ble_mesh_prov_cb_param_t *param)
{
    switch (event) {
    case ESP_BLE_MESH_PROVISIONER_RECV_UNPROV_ADV_PKT_EVT:
        prov_add_device(param);
        break;
    case ESP_BLE_MESH_PROVISIONER_PROV_ENABLE_COMP_EVT:
        /* keys restored from NVS: the AppKey is there already (first boot: see below) */
        if (param->provisioner_prov_enable_comp.err_code == 0 &&
            esp_ble_mesh_provisioner_get_local_app_key(PROV_NET_IDX, PROV_APP_IDX) != NULL) {
            prov_show_mesh_key();
        }
        break;
    case ESP_BLE_MESH_PROVISIONER_ADD_LOCAL_APP_KEY_COMP_EVT:
        if (param->provisioner_add_app_key_comp.err_code == 0 &&
            param->provisioner_add_app_key_comp.app_idx == PROV_APP_IDX) {
            prov_show_mesh_key();
        } else {
            ESP_LOGE(TAG, "app key: error %d", param->provisioner_add_app_key_comp.err_code);
        }
        break;
    case ESP_BLE_MESH_PROVISIONER_PROV_COMPLETE_EVT: {
        uint16_t addr = param->provisioner_prov_complete.unicast_addr;
        uint8_t node = 0;
        if (!dcp_node_from_addr(addr, &node)) {
            /* outside 0x0005..0x0068: no node id a command can name (NOT_READY as a gateway) */
            ESP_LOGE(TAG, "provisioned 0x%04x: outside the node id plan 0..%u", addr,
                     (unsigned)(DCP_MAX_NODES - 1u));
        } else {
            ESP_LOGI(TAG, "provisioned 0x%04x (node id %u)", addr, (unsigned)node);
        }
        s_retries = 0;
        prov_log(prov_get_composition(addr), "Composition Data Get", addr);
        break;
    }
    default:
        break;
    }
}

esp_err_t prov_init(void)
{
    static const uint8_t match[2] = {0xDD, 0xDD};
    dcm_ble_host_dev_uuid(s_dev_uuid);
    ESP_RETURN_ON_ERROR(esp_ble_mesh_register_prov_callback(prov_cb), TAG, "prov cb");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_register_config_client_callback(prov_cfg_client_cb), TAG,
                        "cfg client cb");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_init(&s_provision, &s_composition), TAG, "mesh init");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_provisioner_set_dev_uuid_match(match, sizeof(match), 0, false),
                        TAG, "uuid match");
    ESP_RETURN_ON_ERROR(esp_ble_mesh_provisioner_prov_enable((esp_ble_mesh_prov_bearer_t)(
                            ESP_BLE_MESH_PROV_ADV | ESP_BLE_MESH_PROV_GATT)),
                        TAG, "prov enable");
    if (esp_ble_mesh_provisioner_get_local_app_key(PROV_NET_IDX, PROV_APP_IDX) == NULL) {
        /* first boot: a random application key (kept in NVS by the mesh settings) */
        ESP_RETURN_ON_ERROR(esp_ble_mesh_provisioner_add_local_app_key(NULL, PROV_NET_IDX,
                                                                       PROV_APP_IDX),
                            TAG, "app key");
    }
    return ESP_OK;
}
