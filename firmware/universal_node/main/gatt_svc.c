#include "gatt_svc.h"

#include <string.h>

#include "dcp_chunk.h"
#include "dcp_common.h"
#include "dcp_ota.h"
#include "dcp_reply.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "host/ble_hs.h"
#include "sdkconfig.h"

static const char *TAG = "GATT";

static int gatt_svc_access(uint16_t conn_handle, uint16_t attr_handle,
                           struct ble_gatt_access_ctxt *ctxt, void *arg);

static const ble_uuid16_t s_svc_uuid = BLE_UUID16_INIT(0xDC01);
static const ble_uuid16_t s_data_uuid = BLE_UUID16_INIT(0xDC02);
static const ble_uuid16_t s_cmd_uuid = BLE_UUID16_INIT(0xDC03);
static const ble_uuid16_t s_ota_uuid = BLE_UUID16_INIT(0xDC04);
static uint16_t s_data_handle;
static uint16_t s_cmd_handle;
static uint16_t s_ota_handle;

static const struct ble_gatt_svc_def s_services[] = {
    {
        .type = BLE_GATT_SVC_TYPE_PRIMARY,
        .uuid = &s_svc_uuid.u,
        .characteristics =
            (struct ble_gatt_chr_def[]){
                {
                    .uuid = &s_data_uuid.u,
                    .access_cb = gatt_svc_access,
                    .flags = BLE_GATT_CHR_F_READ | BLE_GATT_CHR_F_NOTIFY,
                    .val_handle = &s_data_handle,
                },
                {
                    .uuid = &s_cmd_uuid.u,
                    .access_cb = gatt_svc_access,
                    .flags = BLE_GATT_CHR_F_WRITE | BLE_GATT_CHR_F_WRITE_NO_RSP,
                    .val_handle = &s_cmd_handle,
                },
                {
                    /* OTA data chunks (protocol-v1 section 9): offset u32 LE + data */
                    .uuid = &s_ota_uuid.u,
                    .access_cb = gatt_svc_access,
                    .flags = BLE_GATT_CHR_F_WRITE_NO_RSP | BLE_GATT_CHR_F_WRITE,
                    .val_handle = &s_ota_handle,
                },
                {0},
            },
    },
    {0},
};

static gatt_svc_callbacks_t s_cbs;
static struct ble_gap_event_listener s_listener;
static portMUX_TYPE s_lock = portMUX_INITIALIZER_UNLOCKED;
/* guarded by s_lock */
static uint16_t s_conn = BLE_HS_CONN_HANDLE_NONE;
static char s_value[DCP_MESSAGE_MAX] = DCP_MSG_NODE_READY;
static size_t s_value_len = sizeof(DCP_MSG_NODE_READY) - 1u;
/* connection handle -> connection id (protocol-v1 7.5: a session belongs to one connection) */
static struct {
    uint16_t handle;
    gatt_svc_conn_id_t id;
} s_conns[CONFIG_BT_NIMBLE_MAX_CONNECTIONS];
static gatt_svc_conn_id_t s_next_id;
/* connections already asked for link parameters (section 8: once per connection); host task only */
static uint16_t s_asked[CONFIG_BT_NIMBLE_MAX_CONNECTIONS];
static bool s_asked_init;

#if CONFIG_DCM_CONN_UPDATE
/* Marks handle as asked; false when it was already. */
static bool gatt_svc_first_ask(uint16_t handle)
{
    if (!s_asked_init) {
        for (size_t i = 0; i < CONFIG_BT_NIMBLE_MAX_CONNECTIONS; i++) {
            s_asked[i] = BLE_HS_CONN_HANDLE_NONE;
        }
        s_asked_init = true;
    }
    for (size_t i = 0; i < CONFIG_BT_NIMBLE_MAX_CONNECTIONS; i++) {
        if (s_asked[i] == handle) {
            return false;
        }
    }
    for (size_t i = 0; i < CONFIG_BT_NIMBLE_MAX_CONNECTIONS; i++) {
        if (s_asked[i] == BLE_HS_CONN_HANDLE_NONE) {
            s_asked[i] = handle;
            return true;
        }
    }
    return false; /* cannot happen: one slot per connection */
}
#endif

static void gatt_svc_forget_ask(uint16_t handle)
{
    for (size_t i = 0; s_asked_init && i < CONFIG_BT_NIMBLE_MAX_CONNECTIONS; i++) {
        if (s_asked[i] == handle) {
            s_asked[i] = BLE_HS_CONN_HANDLE_NONE;
        }
    }
}

/* The id of handle's connection, allocated on its first write; GATT_SVC_CONN_NONE when the
 * table is full (cannot happen: one slot per possible connection). */
static gatt_svc_conn_id_t gatt_svc_conn_id(uint16_t handle)
{
    gatt_svc_conn_id_t id = GATT_SVC_CONN_NONE;
    taskENTER_CRITICAL(&s_lock);
    for (size_t i = 0; i < CONFIG_BT_NIMBLE_MAX_CONNECTIONS && id == GATT_SVC_CONN_NONE; i++) {
        if (s_conns[i].id != GATT_SVC_CONN_NONE && s_conns[i].handle == handle) {
            id = s_conns[i].id;
        }
    }
    for (size_t i = 0; i < CONFIG_BT_NIMBLE_MAX_CONNECTIONS && id == GATT_SVC_CONN_NONE; i++) {
        if (s_conns[i].id == GATT_SVC_CONN_NONE) {
            if (++s_next_id == GATT_SVC_CONN_NONE) {
                ++s_next_id;
            }
            s_conns[i].handle = handle;
            s_conns[i].id = id = s_next_id;
        }
    }
    taskEXIT_CRITICAL(&s_lock);
    return id;
}

/* Forgets handle's connection id (on connect and disconnect); the id it had, or NONE. */
static gatt_svc_conn_id_t gatt_svc_conn_drop(uint16_t handle)
{
    gatt_svc_conn_id_t id = GATT_SVC_CONN_NONE;
    taskENTER_CRITICAL(&s_lock);
    for (size_t i = 0; i < CONFIG_BT_NIMBLE_MAX_CONNECTIONS; i++) {
        if (s_conns[i].id != GATT_SVC_CONN_NONE && s_conns[i].handle == handle) {
            id = s_conns[i].id;
            s_conns[i].id = GATT_SVC_CONN_NONE;
        }
    }
    taskEXIT_CRITICAL(&s_lock);
    return id;
}

static int gatt_svc_access(uint16_t conn_handle, uint16_t attr_handle,
                           struct ble_gatt_access_ctxt *ctxt, void *arg)
{
    (void)arg;
    if (attr_handle == s_data_handle && ctxt->op == BLE_GATT_ACCESS_OP_READ_CHR) {
        char value[DCP_MESSAGE_MAX];
        size_t len;
        taskENTER_CRITICAL(&s_lock);
        len = s_value_len;
        memcpy(value, s_value, len);
        taskEXIT_CRITICAL(&s_lock);
        return os_mbuf_append(ctxt->om, value, (uint16_t)len) == 0 ? 0
                                                                    : BLE_ATT_ERR_INSUFFICIENT_RES;
    }
    if (attr_handle == s_cmd_handle && ctxt->op == BLE_GATT_ACCESS_OP_WRITE_CHR) {
        uint8_t cmd[DCP_MAX_COMMAND_LEN];
        uint16_t len = 0;
        if (OS_MBUF_PKTLEN(ctxt->om) > DCP_MAX_COMMAND_LEN) {
            return BLE_ATT_ERR_INVALID_ATTR_VALUE_LEN; /* commands.tsv: att_error:0x0d */
        }
        if (ble_hs_mbuf_to_flat(ctxt->om, cmd, sizeof(cmd), &len) != 0) {
            return BLE_ATT_ERR_UNLIKELY;
        }
        return s_cbs.on_command(gatt_svc_conn_id(conn_handle), cmd, len) == ESP_OK
                   ? 0
                   : BLE_ATT_ERR_INSUFFICIENT_RES;
    }
    if (attr_handle == s_ota_handle && ctxt->op == BLE_GATT_ACCESS_OP_WRITE_CHR) {
        uint8_t chunk[DCP_OTA_WRITE_MAX];
        uint16_t len = 0;
        if (OS_MBUF_PKTLEN(ctxt->om) > DCP_OTA_WRITE_MAX) {
            return BLE_ATT_ERR_INVALID_ATTR_VALUE_LEN;
        }
        if (ble_hs_mbuf_to_flat(ctxt->om, chunk, sizeof(chunk), &len) != 0) {
            return BLE_ATT_ERR_UNLIKELY;
        }
        /* a full queue drops the chunk, as a busy proxy would: the node's ACK rewinds the client */
        s_cbs.on_ota_data(gatt_svc_conn_id(conn_handle), chunk, len);
        return 0;
    }
    return BLE_ATT_ERR_UNLIKELY;
}

/* protocol-v1 section 8: once per subscription, ask the client for the Kconfig link parameters
 * unless its own are already as strict. The central decides; a refusal is logged, not retried
 * (BlueZ disconnects a peripheral that keeps asking). */
#if CONFIG_DCM_CONN_UPDATE
/* Bluetooth Core Vol 6 Part B 4.5.2: timeout > (1 + latency) * interval max * 2 */
_Static_assert(CONFIG_DCM_CONN_SUPERVISION_TIMEOUT_MS >
                   (1 + CONFIG_DCM_CONN_LATENCY) * CONFIG_DCM_CONN_ITVL_MAX_MS * 2,
               "DCM_CONN_SUPERVISION_TIMEOUT_MS too short for the interval and latency");
_Static_assert(CONFIG_DCM_CONN_ITVL_MIN_MS <= CONFIG_DCM_CONN_ITVL_MAX_MS,
               "DCM_CONN_ITVL_MIN_MS above DCM_CONN_ITVL_MAX_MS");
#endif

static void gatt_svc_request_params(uint16_t conn_handle)
{
#if CONFIG_DCM_CONN_UPDATE
    const struct ble_gap_upd_params params = {
        .itvl_min = (uint16_t)(CONFIG_DCM_CONN_ITVL_MIN_MS * 4 / 5), /* 1.25 ms units */
        .itvl_max = (uint16_t)(CONFIG_DCM_CONN_ITVL_MAX_MS * 4 / 5),
        .latency = CONFIG_DCM_CONN_LATENCY,
        .supervision_timeout = (uint16_t)(CONFIG_DCM_CONN_SUPERVISION_TIMEOUT_MS / 10),
        .min_ce_len = 0,
        .max_ce_len = 0,
    };
    struct ble_gap_conn_desc desc;
    if (ble_gap_conn_find(conn_handle, &desc) != 0 || !gatt_svc_first_ask(conn_handle)) {
        return;
    }
    if (desc.supervision_timeout <= params.supervision_timeout &&
        desc.conn_itvl >= params.itvl_min && desc.conn_itvl <= params.itvl_max &&
        desc.conn_latency <= params.latency) {
        return; /* already as strict as what we would ask for */
    }
    int rc = ble_gap_update_params(conn_handle, &params);
    if (rc != 0) {
        ESP_LOGW(TAG, "connection parameter update not sent (rc %d)", rc);
    }
#else
    (void)conn_handle;
#endif
}

static void gatt_svc_forget(uint16_t conn_handle)
{
    bool was = false;
    taskENTER_CRITICAL(&s_lock);
    if (s_conn == conn_handle && conn_handle != BLE_HS_CONN_HANDLE_NONE) {
        s_conn = BLE_HS_CONN_HANDLE_NONE;
        was = true;
    }
    taskEXIT_CRITICAL(&s_lock);
    if (was) {
        s_cbs.on_client(false);
    }
}

static int gatt_svc_gap_event(struct ble_gap_event *event, void *arg)
{
    (void)arg;
    switch (event->type) {
    case BLE_GAP_EVENT_SUBSCRIBE:
        if (event->subscribe.attr_handle != s_data_handle) {
            break;
        }
        if (event->subscribe.cur_notify) {
            taskENTER_CRITICAL(&s_lock);
            s_conn = event->subscribe.conn_handle;
            taskEXIT_CRITICAL(&s_lock);
            s_cbs.on_client(true);
            gatt_svc_request_params(event->subscribe.conn_handle);
        } else {
            gatt_svc_forget(event->subscribe.conn_handle);
        }
        break;
    case BLE_GAP_EVENT_CONN_UPDATE: {
        struct ble_gap_conn_desc desc;
        if (ble_gap_conn_find(event->conn_update.conn_handle, &desc) == 0) {
            ESP_LOGI(TAG, "link %u: interval %u x 1.25 ms, latency %u, timeout %u0 ms (status %d)",
                     (unsigned)desc.conn_handle, (unsigned)desc.conn_itvl,
                     (unsigned)desc.conn_latency, (unsigned)desc.supervision_timeout,
                     event->conn_update.status);
        }
        break;
    }
    case BLE_GAP_EVENT_CONNECT: {
        /* a new connection on a handle starts without a session, whatever came before */
        gatt_svc_forget_ask(event->connect.conn_handle);
        gatt_svc_conn_id_t id = gatt_svc_conn_drop(event->connect.conn_handle);
        if (event->connect.status == 0 && id != GATT_SVC_CONN_NONE) {
            s_cbs.on_conn_closed(id);
        }
        break;
    }
    case BLE_GAP_EVENT_DISCONNECT: {
        gatt_svc_forget_ask(event->disconnect.conn.conn_handle);
        gatt_svc_conn_id_t id = gatt_svc_conn_drop(event->disconnect.conn.conn_handle);
        if (id != GATT_SVC_CONN_NONE) {
            s_cbs.on_conn_closed(id);
        }
        gatt_svc_forget(event->disconnect.conn.conn_handle);
        break;
    }
    default:
        break;
    }
    return 0;
}

esp_err_t gatt_svc_init(const gatt_svc_callbacks_t *callbacks)
{
    if (callbacks == NULL || callbacks->on_command == NULL || callbacks->on_client == NULL ||
        callbacks->on_conn_closed == NULL || callbacks->on_ota_data == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    s_cbs = *callbacks;
    /* No ble_svc_gap_init()/ble_svc_gatt_init() here: on a mesh node ESP-BLE-MESH's NimBLE adapter
     * (bt_mesh_gatt_init) registers the GAP and GATT services itself, and registering them twice
     * would put 0x1800/0x1801 in the table twice. The GAP device name is set by mesh_vnd_init(). */
    if (ble_gatts_count_cfg(s_services) != 0 || ble_gatts_add_svcs(s_services) != 0) {
        ESP_LOGE(TAG, "cannot register service 0xDC01");
        return ESP_FAIL;
    }
    return ESP_OK;
}

esp_err_t gatt_svc_start(void)
{
    int rc = ble_gap_event_listener_register(&s_listener, gatt_svc_gap_event, NULL);
    if (rc != 0) {
        ESP_LOGE(TAG, "GAP listener: rc %d", rc);
        return ESP_FAIL;
    }
    return ESP_OK;
}

esp_err_t gatt_svc_notify(const char *msg, size_t len)
{
    if (len > DCP_MESSAGE_MAX) {
        return ESP_ERR_INVALID_SIZE;
    }
    uint16_t conn;
    taskENTER_CRITICAL(&s_lock);
    memcpy(s_value, msg, len);
    s_value_len = len;
    conn = s_conn;
    taskEXIT_CRITICAL(&s_lock);
    if (conn == BLE_HS_CONN_HANDLE_NONE) {
        return ESP_ERR_INVALID_STATE;
    }
    size_t count = dcp_chunk_count(len);
    for (size_t i = 0; i < count; i++) {
        uint8_t chunk[DCP_NOTIFY_CHUNK_SIZE];
        size_t n = dcp_chunk_get((const uint8_t *)msg, len, i, chunk);
        struct os_mbuf *om = ble_hs_mbuf_from_flat(chunk, (uint16_t)n);
        if (om == NULL) {
            return ESP_ERR_NO_MEM;
        }
        int rc = ble_gatts_notify_custom(conn, s_data_handle, om); /* consumes om */
        if (rc != 0) {
            ESP_LOGW(TAG, "notify failed (rc %d): forgetting the client", rc);
            gatt_svc_forget(conn);
            return ESP_FAIL;
        }
    }
    return ESP_OK;
}
