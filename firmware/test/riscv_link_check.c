/* Links every public function of the core into one RISC-V image, so the cross build proves
 * the archive needs nothing beyond picolibc and the PSA Crypto API (stubbed here by
 * riscv_psa_stubs.c; built by scripts/firmware-test, never run). */
#include "dcp_adv.h"
#include "dcp_auth.h"
#include "dcp_chunk.h"
#include "dcp_command.h"
#include "dcp_crypto.h"
#include "dcp_ota.h"
#include "dcp_payload.h"
#include "dcp_ramp.h"
#include "dcp_reply.h"
#include "dcp_stagger.h"
#include "dcp_tracker.h"

static volatile uint32_t g_sink;

static bool nonce(void *ctx, uint8_t out[DCP_AUTH_NONCE_LEN])
{
    (void)ctx;
    (void)out;
    return false;
}

int main(void)
{
    static dcp_plan_t plan;
    static dcp_tracker_t tracker;
    static dcp_reasm_t reasm;
    static char buf[DCP_MESSAGE_MAX];
    static const uint8_t key[16];
    uint8_t out[DCP_NOTIFY_CHUNK_SIZE];
    const uint8_t *msg = NULL;
    size_t msg_len = 0;
    dcp_send_t send;
    dcp_ramp_t ramp;
    uint8_t duty = 0;
    uint16_t addr = 0;
    dcp_info_t info = {"1.0.0", "ESP32-C6", DCP_ROLE_CHAR_UNIVERSAL, 3, 0, 0, 0, true};

    dcp_plan_command((const uint8_t *)"ALL:READ", 8, 0, &plan);
    dcp_plan_monitor_tick(1, 0, false, &plan);
    dcp_tracker_init(&tracker, 5000);
    g_sink += dcp_tracker_enqueue(&tracker, 6, "read", 4);
    g_sink += dcp_tracker_next(&tracker, 0, &send);
    g_sink += dcp_tracker_on_status(&tracker, 6);
    g_sink += dcp_tracker_expired(&tracker, 1, &addr);
    dcp_tracker_abort(&tracker);
    g_sink += dcp_tracker_busy(&tracker);
    g_sink += dcp_ramp_start(&ramp, 0);
    g_sink += dcp_ramp_poll(&ramp, 500, &duty);
    dcp_ramp_stop(&ramp);
    g_sink += dcp_ramp_active(&ramp);
    g_sink += (uint32_t)dcp_fmt_data(buf, sizeof(buf), 0, 50, 12003, 25000);
    g_sink += (uint32_t)dcp_fmt_info(buf, sizeof(buf), 0, &info);
    g_sink += (uint32_t)dcp_fmt_reading(buf, sizeof(buf), 50, 12003, 25000);
    g_sink += (uint32_t)dcp_fmt_status(buf, sizeof(buf), 6, key, 3);
    g_sink += (uint32_t)dcp_fmt_sent(buf, sizeof(buf), DCP_CMD_READ, 0);
    g_sink += (uint32_t)dcp_fmt_error(buf, sizeof(buf), "NOT_READY", NULL, 0);
    g_sink += (uint32_t)dcp_fmt_timeout(buf, sizeof(buf), 8);
    g_sink += (uint32_t)dcp_fmt_err_unknown(buf, sizeof(buf), key, 3);
    g_sink += (uint32_t)dcp_power_dmw(1, 2);
    g_sink += dcp_payload_parse(key, 4, &duty);
    dcp_serve_t serve;
    dcp_payload_serve(key, 4, &serve);
    g_sink += serve.duty;
    g_sink += dcp_message_start(key, 4);
    g_sink += (uint32_t)dcp_chunk_get((const uint8_t *)buf, 48, dcp_chunk_count(48) - 1, out);
    dcp_reasm_reset(&reasm);
    g_sink += dcp_reasm_feed(&reasm, out, 9, &msg, &msg_len);
    g_sink += (uint32_t)dcp_adv_service_data(out, sizeof(out), 1, 0, 0, 3);
    g_sink += dcp_mesh_id(key);
    g_sink += (uint32_t)dcp_adv_data((uint8_t *)buf, sizeof(buf), 1, 0, 0, 3);
    g_sink += dcp_node_from_addr(6, &duty) + dcp_addr_from_node(1);
    g_sink += dcp_cmd_name(DCP_CMD_INFO)[0];
    static dcp_auth_node_t node;
    static dcp_auth_session_t session;
    static dcp_auth_result_t result;
    uint8_t mesh_key[DCP_AUTH_KEY_LEN];
    g_sink += dcp_crypto_init();
    g_sink += dcp_aes128_encrypt(key, key, mesh_key);
    g_sink += dcp_mesh_key_from_keys(key, key, mesh_key);
    g_sink += (uint32_t)dcp_mesh_key_format(buf, sizeof(buf), mesh_key);
    g_sink += (uint32_t)dcp_mesh_key_qr_text(buf, sizeof(buf), 1, mesh_key);
    g_sink += dcp_auth_node_proof(key, key, key, out);
    g_sink += dcp_auth_client_proof(key, key, key, out);
    g_sink += dcp_auth_session_key(key, key, key, out);
    g_sink += (uint32_t)dcp_auth_wrap(buf, sizeof(buf), key, 1, key, 4);
    dcp_auth_node_init(&node, nonce, NULL, 0);
    dcp_auth_node_set_key(&node, mesh_key);
    g_sink += dcp_auth_capabilities(&node);
    g_sink += dcp_auth_locked(&node, 1);
    dcp_auth_session_reset(&session);
    dcp_auth_handle(&node, &session, 2, (const uint8_t *)"AUTH:0102030405060708", 21, &result);
    g_sink += (uint32_t)result.verdict;
    static dcp_ota_t ota;
    static const dcp_ota_io_t io;
    static dcp_ota_result_t ota_result;
    dcp_ota_init(&ota, &io, 0x1e0000, 'U', "ESP32-C6");
    g_sink += dcp_ota_is_command(key, 4) + dcp_ota_needs_session(key, 4);
    dcp_ota_command(&ota, 1, (const uint8_t *)"OTA:STATUS", 10, &ota_result);
    dcp_ota_data(&ota, 1, key, 8, &ota_result);
    dcp_ota_conn_closed(&ota, 1);
    g_sink += (uint32_t)ota_result.reply_len;
    static dcp_stagger_t stagger;
    static dcp_stagger_entry_t held;
    bool evicted = false;
    size_t slot = 0;
    dcp_stagger_init(&stagger);
    g_sink += dcp_stagger_delay_ms(3, DCP_GROUP_ADDR);
    g_sink += (uint32_t)dcp_stagger_put(&stagger, 0, 300, 5, 0, "D:1%", 4, &held, &evicted);
    g_sink += dcp_stagger_wait_ms(&stagger, 0);
    g_sink += dcp_stagger_take(&stagger, 300, &held, &slot);
    return 0;
}
