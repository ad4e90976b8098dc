#include "node_app.h"

#include <string.h>

#include "adv.h"
#include "dcp_adv.h"
#include "dcp_auth.h"
#include "dcp_command.h"
#include "dcp_ota.h"
#include "dcp_payload.h"
#include "dcp_ramp.h"
#include "dcp_reply.h"
#include "dcp_stagger.h"
#include "dcp_tracker.h"
#include "esp_app_desc.h"
#include "esp_ble_mesh_provisioning_api.h"
#include "esp_check.h"
#include "esp_log.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "gatt_svc.h"
#include "mesh_vnd.h"
#include "ota_glue.h"
#include "pwm_load.h"
#include "sdkconfig.h"
#include "sensor_ina260.h"

static const char *TAG = "APP";

/* deep enough for a burst of OTA chunks (write without response, no flow control: a chunk that
 * finds the queue full is lost, as on a busy proxy, and the ACK rewinds the client) */
#define NODE_APP_QUEUE_LEN 16
#define NODE_APP_TICK_MS 50
#define NODE_APP_STACK 6144
#define NODE_APP_PRIO 5
#define NODE_APP_REBOOT_DELAY_MS 1000
#define NODE_APP_SELFTEST_PERIOD_MS 1000

/* One session per GATT connection (gatt_svc allows CONFIG_BT_NIMBLE_MAX_CONNECTIONS). */
#define NODE_APP_SESSIONS CONFIG_BT_NIMBLE_MAX_CONNECTIONS

typedef enum {
    NODE_APP_EV_COMMAND,
    NODE_APP_EV_CONN_CLOSED,
    NODE_APP_EV_CLIENT,
    NODE_APP_EV_MESH_SEND,
    NODE_APP_EV_MESH_STATUS,
    NODE_APP_EV_MESH_READY,
    NODE_APP_EV_OTA_DATA,
} node_app_ev_kind_t;

typedef struct {
    node_app_ev_kind_t kind;
    bool flag;
    uint16_t addr;
    gatt_svc_conn_id_t conn;
    esp_ble_mesh_msg_ctx_t ctx;
    uint8_t len;
    uint8_t data[DCP_OTA_WRITE_MAX]; /* a command, mesh payload or STATUS text, or an OTA chunk */
} node_app_event_t;
_Static_assert(DCP_OTA_WRITE_MAX <= UINT8_MAX && DCP_MESSAGE_MAX <= DCP_OTA_WRITE_MAX,
               "node_app_event_t.len is a uint8_t");

static QueueHandle_t s_queue;
/* state below is owned by the task */
static dcp_tracker_t s_tracker;
/* protocol-v1 section 10: answers to group SENDs wait node id x 100 ms (the mesh context of each
 * held answer is kept beside it, slot by slot) */
static dcp_stagger_t s_stagger;
static esp_ble_mesh_msg_ctx_t s_stagger_ctx[DCP_STAGGER_SLOTS];
static dcp_ramp_t s_ramp;
static uint8_t s_duty;
static uint8_t s_monitor = DCP_MONITOR_OFF;
static uint32_t s_monitor_due_ms;
static bool s_client;
static bool s_ready;
/* protocol-v1 section 7: the node's mesh key and rate limit, and one session per connection */
static dcp_auth_node_t s_auth;
static struct {
    gatt_svc_conn_id_t conn; /* GATT_SVC_CONN_NONE: free */
    dcp_auth_session_t session;
} s_sessions[NODE_APP_SESSIONS];
/* protocol-v1 section 9: the OTA receiver, a pending reboot, the self-test of a new image */
static dcp_ota_t s_ota;
static bool s_reboot;
static uint32_t s_reboot_at_ms;
static bool s_selftest;
static uint32_t s_selftest_deadline_ms;
static uint32_t s_selftest_due_ms;

static uint32_t node_app_now_ms(void)
{
    return (uint32_t)(esp_timer_get_time() / 1000);
}

static uint64_t node_app_now_ms64(void)
{
    return (uint64_t)esp_timer_get_time() / 1000u;
}

/* Node nonces from the hardware RNG (true random while the radio runs, as it does here). */
static bool node_app_nonce(void *ctx, uint8_t nonce[DCP_AUTH_NONCE_LEN])
{
    (void)ctx;
    esp_fill_random(nonce, DCP_AUTH_NONCE_LEN);
    return true;
}

static bool node_app_post(const node_app_event_t *ev)
{
    if (xQueueSend(s_queue, ev, 0) != pdTRUE) {
        ESP_LOGW(TAG, "queue full: event %d dropped", ev->kind);
        return false;
    }
    return true;
}

static bool node_app_post_data(node_app_event_t *ev, const uint8_t *data, size_t len)
{
    if (len > sizeof(ev->data)) {
        ESP_LOGW(TAG, "%u-byte message dropped", (unsigned)len);
        return false;
    }
    memcpy(ev->data, data, len);
    ev->len = (uint8_t)len;
    return node_app_post(ev);
}

esp_err_t node_app_post_command(gatt_svc_conn_id_t conn, const uint8_t *data, size_t len)
{
    node_app_event_t ev = {.kind = NODE_APP_EV_COMMAND, .conn = conn};
    return node_app_post_data(&ev, data, len) ? ESP_OK : ESP_ERR_NO_MEM;
}

void node_app_post_conn_closed(gatt_svc_conn_id_t conn)
{
    /* best effort: a lost event leaves a session no later write can reach (ids are not reused) */
    node_app_event_t ev = {.kind = NODE_APP_EV_CONN_CLOSED, .conn = conn};
    node_app_post(&ev);
}

void node_app_post_ota_data(gatt_svc_conn_id_t conn, const uint8_t *data, size_t len)
{
    node_app_event_t ev = {.kind = NODE_APP_EV_OTA_DATA, .conn = conn};
    node_app_post_data(&ev, data, len);
}

void node_app_post_client(bool subscribed)
{
    node_app_event_t ev = {.kind = NODE_APP_EV_CLIENT, .flag = subscribed};
    node_app_post(&ev);
}

void node_app_post_mesh_send(const esp_ble_mesh_msg_ctx_t *ctx, const uint8_t *payload, size_t len)
{
    node_app_event_t ev = {.kind = NODE_APP_EV_MESH_SEND, .ctx = *ctx};
    node_app_post_data(&ev, payload, len);
}

void node_app_post_mesh_status(uint16_t src, const uint8_t *text, size_t len)
{
    node_app_event_t ev = {.kind = NODE_APP_EV_MESH_STATUS, .addr = src};
    node_app_post_data(&ev, text, len);
}

void node_app_post_mesh_ready(bool ready)
{
    node_app_event_t ev = {.kind = NODE_APP_EV_MESH_READY, .flag = ready};
    node_app_post(&ev);
}

static void node_app_notify(const char *msg, int len)
{
    if (len > 0) {
        esp_err_t err = gatt_svc_notify(msg, (size_t)len);
        if (err != ESP_OK && err != ESP_ERR_INVALID_STATE) {
            ESP_LOGW(TAG, "notify: %s", esp_err_to_name(err));
        }
    }
}

static void node_app_notify_error(const char *kind)
{
    char msg[DCP_MESSAGE_MAX];
    node_app_notify(msg, dcp_fmt_error(msg, sizeof(msg), kind, NULL, 0));
}

static void node_app_update_adv(void)
{
    uint8_t flags = (s_client ? DCP_ADV_FLAG_CONNECTED : 0u) | (s_ready ? DCP_ADV_FLAG_MESH_READY : 0u);
    esp_err_t err = adv_update(mesh_vnd_mesh_id(), mesh_vnd_node_id(), flags);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "advertising: %s", esp_err_to_name(err));
    }
}

static void node_app_apply_duty(uint8_t duty)
{
    esp_err_t err = pwm_load_set(duty);
    if (err == ESP_OK) {
        s_duty = duty;
    } else {
        ESP_LOGE(TAG, "duty %u: %s", duty, esp_err_to_name(err));
    }
}

static void node_app_reply(const esp_ble_mesh_msg_ctx_t *ctx, const char *text, size_t len)
{
    if (mesh_vnd_reply(ctx, text, len) != ESP_OK) {
        ESP_LOGW(TAG, "STATUS to 0x%04x failed", ctx->addr);
    }
}

/* The STATUS answering a mesh SEND: at once for a unicast; for the group node id x 100 ms later
 * (dcp_stagger.h), so that the segmented answers of a large mesh reach the gateway one by one. */
static void node_app_answer(const esp_ble_mesh_msg_ctx_t *ctx, uint8_t node,
                            dcp_serve_reply_t kind, const char *text, size_t len)
{
    uint32_t delay = dcp_stagger_delay_ms(node, ctx->recv_dst);
    if (delay == 0) {
        node_app_reply(ctx, text, len);
        return;
    }
    dcp_stagger_entry_t evicted;
    bool has_evicted = false;
    size_t slot = dcp_stagger_put(&s_stagger, node_app_now_ms(), delay, ctx->addr,
                                  (uint8_t)kind, text, len, &evicted, &has_evicted);
    if (slot >= DCP_STAGGER_SLOTS) {
        node_app_reply(ctx, text, len);
        return;
    }
    if (has_evicted) {
        node_app_reply(&s_stagger_ctx[slot], evicted.text, evicted.len);
    }
    s_stagger_ctx[slot] = *ctx;
}

/* A mesh payload for this node, from the mesh (ctx) or from the GATT client (ctx NULL). The
 * STATUS text is what v0.7 sends: a bare reading (read, duty:<n>, r, s), ERR:UNKNOWN:<payload>,
 * or (v1) the INFO line; a local answer is notified as the gateway would forward it. */
static void node_app_handle_payload(const uint8_t *p, size_t len, const esp_ble_mesh_msg_ctx_t *ctx)
{
    char status[DCP_MESSAGE_MAX];
    int n = -1;
    uint8_t node = mesh_vnd_node_id();
    int32_t mv = 0;
    int32_t cma = 0;
    dcp_serve_t serve;
    dcp_payload_serve(p, len, &serve);
    switch (serve.action) {
    case DCP_SERVE_KEEP:
        break;
    case DCP_SERVE_SET:
        dcp_ramp_stop(&s_ramp);
        node_app_apply_duty(serve.duty);
        break;
    case DCP_SERVE_RAMP:
        node_app_apply_duty(dcp_ramp_start(&s_ramp, node_app_now_ms()));
        break;
    }
    switch (serve.reply) {
    case DCP_SERVE_READING:
        if (ina260_read(&mv, &cma) != ESP_OK) {
            ESP_LOGE(TAG, "sensor read failed: no DATA sent");
            return;
        }
        n = dcp_fmt_reading(status, sizeof(status), s_duty, mv, cma);
        break;
    case DCP_SERVE_INFO: {
        const dcp_info_t info = {
            .firmware = esp_app_get_description()->version,
            .hardware = CONFIG_DCM_HARDWARE,
            .role = DCP_ROLE_CHAR_UNIVERSAL,
            .capabilities = DCP_CAP_INFO | DCP_CAP_ADV_MESH_ID | DCP_CAP_LARGE_MESH |
                            dcp_auth_capabilities(&s_auth) |
                            (s_ota.slot_size > 0 ? DCP_CAP_OTA : 0u),
            .uptime_s = (uint32_t)(esp_timer_get_time() / 1000000),
            .free_heap = esp_get_free_heap_size(),
            .mesh_id = mesh_vnd_mesh_id(),
            .gateway = (ctx == NULL),
        };
        n = dcp_fmt_info(status, sizeof(status), node, &info);
        break;
    }
    case DCP_SERVE_ERR_UNKNOWN:
        n = dcp_fmt_err_unknown(status, sizeof(status), p, len);
        break;
    }
    if (n < 0) {
        ESP_LOGE(TAG, "reply does not format (node %u)", node);
        return;
    }
    if (ctx != NULL) {
        node_app_answer(ctx, node, serve.reply, status, (size_t)n);
        return;
    }
    char msg[DCP_MESSAGE_MAX];
    node_app_notify(msg, dcp_fmt_status(msg, sizeof(msg), dcp_addr_from_node(node),
                                        (const uint8_t *)status, (size_t)n));
}

static void node_app_pump_unicast(uint32_t now)
{
    dcp_send_t send;
    while (dcp_tracker_next(&s_tracker, now, &send)) {
        if (mesh_vnd_send(send.dst, send.payload, send.len) == ESP_OK) {
            return;
        }
        dcp_tracker_abort(&s_tracker);
        node_app_notify_error("MESH_SEND_FAIL");
    }
}

/* Carries out a plan; false when a mesh step failed (the rest of the plan is dropped). */
static bool node_app_run_plan(const dcp_plan_t *plan, uint32_t now)
{
    for (size_t i = 0; i < plan->count; i++) {
        const dcp_action_t *a = &plan->actions[i];
        switch (a->kind) {
        case DCP_ACT_LOCAL:
            node_app_handle_payload((const uint8_t *)a->text, a->len, NULL);
            break;
        case DCP_ACT_MESH:
            if (a->dst == DCP_GROUP_ADDR) {
                if (mesh_vnd_send(a->dst, a->text, a->len) != ESP_OK) {
                    node_app_notify_error("MESH_SEND_FAIL");
                    return false;
                }
            } else if (!dcp_tracker_enqueue(&s_tracker, a->dst, a->text, a->len)) {
                node_app_notify_error("MESH_BUSY");
                return false;
            } else {
                node_app_pump_unicast(now);
            }
            break;
        case DCP_ACT_REPLY:
            node_app_notify(a->text, a->len);
            break;
        case DCP_ACT_MONITOR:
            s_monitor = a->arg;
            s_monitor_due_ms = now;
            break;
        case DCP_ACT_ATT_ERROR: /* refused by gatt_svc before it gets here */
            break;
        }
    }
    return true;
}

static void node_app_reset_sessions(void)
{
    for (size_t i = 0; i < NODE_APP_SESSIONS; i++) {
        s_sessions[i].conn = GATT_SVC_CONN_NONE;
        dcp_auth_session_reset(&s_sessions[i].session);
    }
}

/* The session of connection conn: its slot, else a fresh one (a free slot, or the one of the
 * oldest connection: ids grow, and a connection whose close event was lost has the lowest). */
static dcp_auth_session_t *node_app_session(gatt_svc_conn_id_t conn)
{
    size_t pick = 0;
    for (size_t i = 0; i < NODE_APP_SESSIONS; i++) {
        if (conn != GATT_SVC_CONN_NONE && s_sessions[i].conn == conn) {
            return &s_sessions[i].session;
        }
        gatt_svc_conn_id_t slot = s_sessions[i].conn;
        if (s_sessions[pick].conn != GATT_SVC_CONN_NONE &&
            (slot == GATT_SVC_CONN_NONE || slot < s_sessions[pick].conn)) {
            pick = i;
        }
    }
    s_sessions[pick].conn = conn; /* NONE (no id): a session that the next write resets again */
    dcp_auth_session_reset(&s_sessions[pick].session);
    return &s_sessions[pick].session;
}

static void node_app_close_session(gatt_svc_conn_id_t conn)
{
    for (size_t i = 0; i < NODE_APP_SESSIONS; i++) {
        if (s_sessions[i].conn == conn) {
            s_sessions[i].conn = GATT_SVC_CONN_NONE;
            dcp_auth_session_reset(&s_sessions[i].session);
        }
    }
}

/* The mesh key follows the bound AppKey: set when the vendor models are ready, dropped when the
 * node is reset. Sessions made under another key end. */
static void node_app_update_key(void)
{
    uint8_t key[DCP_AUTH_KEY_LEN];
    bool has = s_ready && mesh_vnd_mesh_key(key);
    if (has != s_auth.has_key || (has && memcmp(key, s_auth.mesh_key, sizeof(key)) != 0)) {
        dcp_auth_node_set_key(&s_auth, has ? key : NULL);
        node_app_reset_sessions();
        ESP_LOGI(TAG, "authenticated sessions %s", has ? "required (CAP 0004)" : "off (no key)");
    }
    memset(key, 0, sizeof(key));
}

static void node_app_ota_reply(const dcp_ota_result_t *r, uint32_t now)
{
    node_app_notify(r->reply, (int)r->reply_len);
    if (r->reboot && !s_reboot) {
        s_reboot = true; /* after OTA:DONE went out */
        s_reboot_at_ms = now + NODE_APP_REBOOT_DELAY_MS;
    }
}

static void node_app_handle_command(const node_app_event_t *ev, uint32_t now)
{
    dcp_auth_result_t auth;
    dcp_auth_handle(&s_auth, node_app_session(ev->conn), node_app_now_ms64(), ev->data, ev->len,
                    &auth);
    if (auth.verdict == DCP_AUTH_REPLY) {
        node_app_notify(auth.reply, (int)auth.reply_len);
        return;
    }
    if (dcp_ota_is_command(auth.cmd, auth.len)) {
        dcp_ota_result_t r;
        dcp_ota_command(&s_ota, ev->conn, auth.cmd, auth.len, &r);
        node_app_ota_reply(&r, now);
        return;
    }
    dcp_plan_t plan;
    dcp_plan_command(auth.cmd, auth.len, s_ready ? mesh_vnd_node_id() : DCP_NODE_NONE, &plan);
    node_app_run_plan(&plan, now);
}

static void node_app_handle(const node_app_event_t *ev, uint32_t now)
{
    switch (ev->kind) {
    case NODE_APP_EV_COMMAND:
        node_app_handle_command(ev, now);
        break;
    case NODE_APP_EV_CONN_CLOSED:
        node_app_close_session(ev->conn);
        dcp_ota_conn_closed(&s_ota, ev->conn); /* a transfer it owned waits for a resume */
        break;
    case NODE_APP_EV_OTA_DATA: {
        dcp_ota_result_t r;
        dcp_ota_data(&s_ota, ev->conn, ev->data, ev->len, &r);
        node_app_ota_reply(&r, now);
        break;
    }
    case NODE_APP_EV_CLIENT:
        s_client = ev->flag;
        if (s_client) {
            node_app_notify(DCP_MSG_GATEWAY_CONNECTED, (int)strlen(DCP_MSG_GATEWAY_CONNECTED));
        } else {
            s_monitor = DCP_MONITOR_OFF;
        }
        node_app_update_adv();
        break;
    case NODE_APP_EV_MESH_SEND:
        node_app_handle_payload(ev->data, ev->len, &ev->ctx);
        break;
    case NODE_APP_EV_MESH_STATUS: {
        if (dcp_tracker_on_status(&s_tracker, ev->addr)) {
            node_app_pump_unicast(now);
        }
        char msg[DCP_MESSAGE_MAX];
        int n = dcp_fmt_status(msg, sizeof(msg), ev->addr, ev->data, ev->len);
        if (n < 0) {
            ESP_LOGW(TAG, "STATUS from 0x%04x too long: dropped", ev->addr);
        }
        node_app_notify(msg, n);
        break;
    }
    case NODE_APP_EV_MESH_READY:
        s_ready = ev->flag;
        node_app_update_key();
        if (s_ready) {
            node_app_notify(DCP_MSG_MESH_READY, (int)strlen(DCP_MSG_MESH_READY));
        }
        node_app_update_adv();
        break;
    }
}

/* First boot of an updated image: keep it once the sensor answers, the mesh is joined (when the
 * node was provisioned) and GATT is up (it is: this task starts after gatt_svc_start); roll back
 * when that has not happened by the deadline. */
static void node_app_selftest(uint32_t now)
{
    if (!s_selftest || (int32_t)(now - s_selftest_due_ms) < 0) {
        return;
    }
    s_selftest_due_ms = now + NODE_APP_SELFTEST_PERIOD_MS;
    int32_t mv = 0;
    int32_t cma = 0;
#if CONFIG_DCM_OTA_SELFTEST_SENSOR
    bool sensor = ina260_read(&mv, &cma) == ESP_OK;
#else
    bool sensor = true;
    (void)mv;
    (void)cma;
#endif
    bool mesh = !esp_ble_mesh_node_is_provisioned() || s_ready;
    if (sensor && mesh) {
        s_selftest = false;
        ota_glue_confirm(true);
    } else if ((int32_t)(now - s_selftest_deadline_ms) >= 0) {
        ESP_LOGE(TAG, "self-test: sensor %s, mesh %s", sensor ? "ok" : "FAILED",
                 mesh ? "ok" : "FAILED");
        s_selftest = false;
        ota_glue_confirm(false);
    }
}

static void node_app_tick(uint32_t now)
{
    node_app_selftest(now);
    if (s_reboot && (int32_t)(now - s_reboot_at_ms) >= 0) {
        ESP_LOGI(TAG, "rebooting into the new image");
        esp_restart();
    }
    uint8_t duty = 0;
    if (dcp_ramp_poll(&s_ramp, now, &duty)) {
        node_app_apply_duty(duty);
    }
    dcp_stagger_entry_t held;
    size_t slot = 0;
    while (dcp_stagger_take(&s_stagger, now, &held, &slot)) {
        node_app_reply(&s_stagger_ctx[slot], held.text, held.len);
    }
    uint16_t addr = 0;
    if (dcp_tracker_expired(&s_tracker, now, &addr)) {
        char msg[DCP_MESSAGE_MAX];
        node_app_notify(msg, dcp_fmt_timeout(msg, sizeof(msg), addr));
        node_app_pump_unicast(now);
    }
    if (s_monitor != DCP_MONITOR_OFF && (int32_t)(now - s_monitor_due_ms) >= 0) {
        dcp_plan_t plan;
        s_monitor_due_ms = now + CONFIG_DCM_MONITOR_PERIOD_MS;
        dcp_plan_monitor_tick(s_monitor, s_ready ? mesh_vnd_node_id() : DCP_NODE_NONE,
                              dcp_tracker_busy(&s_tracker), &plan);
        node_app_run_plan(&plan, now);
    }
}

static void node_app_task(void *arg)
{
    (void)arg;
    node_app_event_t ev;
    node_app_update_adv();
    for (;;) {
        /* wake for the next held answer if it is due before the next tick */
        uint32_t wait = dcp_stagger_wait_ms(&s_stagger, node_app_now_ms());
        if (wait > NODE_APP_TICK_MS) {
            wait = NODE_APP_TICK_MS;
        }
        TickType_t ticks = pdMS_TO_TICKS(wait);
        if (wait > 0 && ticks == 0) {
            ticks = 1; /* not a busy loop below one tick */
        }
        if (xQueueReceive(s_queue, &ev, ticks) == pdTRUE) {
            node_app_handle(&ev, node_app_now_ms());
        }
        node_app_tick(node_app_now_ms());
    }
}

esp_err_t node_app_init(void)
{
    s_queue = xQueueCreate(NODE_APP_QUEUE_LEN, sizeof(node_app_event_t));
    ESP_RETURN_ON_FALSE(s_queue != NULL, ESP_ERR_NO_MEM, TAG, "queue");
    dcp_tracker_init(&s_tracker, CONFIG_DCM_MESH_TIMEOUT_MS);
    dcp_stagger_init(&s_stagger);
    dcp_auth_node_init(&s_auth, node_app_nonce, NULL, node_app_now_ms64());
    node_app_reset_sessions();
    dcp_ota_init(&s_ota, ota_glue_io(), ota_glue_slot_size(), DCP_ROLE_CHAR_UNIVERSAL,
                 CONFIG_DCM_HARDWARE);
    return ESP_OK;
}

esp_err_t node_app_start(void)
{
    s_ready = mesh_vnd_ready();
    node_app_update_key(); /* keys restored from NVS */
    s_selftest = ota_glue_pending_verify();
    if (s_selftest) {
        s_selftest_due_ms = node_app_now_ms();
        s_selftest_deadline_ms = s_selftest_due_ms + CONFIG_DCM_OTA_SELFTEST_TIMEOUT_MS;
        ESP_LOGI(TAG, "first boot of this image: self-test");
    }
    BaseType_t ok = xTaskCreate(node_app_task, "dcm_app", NODE_APP_STACK, NULL, NODE_APP_PRIO, NULL);
    return ok == pdPASS ? ESP_OK : ESP_ERR_NO_MEM;
}
