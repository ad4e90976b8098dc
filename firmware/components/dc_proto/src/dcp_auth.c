#include "dcp_auth.h"

#include <string.h>

#include "dcp_crypto.h"
#include "dcp_ota.h"
#include "dcp_psa.h"
#include "dcp_reply.h"
#include "dcp_sb.h"

#define DCP_HMAC PSA_ALG_HMAC(PSA_ALG_SHA_256)
#define DCP_HMAC_LEN 32u
/* Longest HMAC input: "DCM1 cmd" || counter || a 64-byte command. */
#define DCP_AUTH_MSG_MAX (8u + 4u + DCP_MAX_COMMAND_LEN)

static const char s_kdf_info[] = "DC Mesh v1 mesh key";
static const char s_label_node[] = "DCM1 node";
static const char s_label_client[] = "DCM1 client";
static const char s_label_session[] = "DCM1 session";
static const char s_label_cmd[] = "DCM1 cmd";

/* ---- crypto ---------------------------------------------------------------------------- */

bool dcp_mesh_key_derive(const uint8_t app_key[16], const uint8_t network_id[8],
                         uint8_t mesh_key[DCP_AUTH_KEY_LEN])
{
    psa_key_derivation_operation_t op = PSA_KEY_DERIVATION_OPERATION_INIT;
    psa_status_t st = psa_crypto_init();
    if (st == PSA_SUCCESS) {
        st = psa_key_derivation_setup(&op, PSA_ALG_HKDF(PSA_ALG_SHA_256));
    }
    if (st == PSA_SUCCESS) { /* HKDF takes the salt before the secret */
        st = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_SALT, network_id, 8);
    }
    if (st == PSA_SUCCESS) {
        st = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_SECRET, app_key, 16);
    }
    if (st == PSA_SUCCESS) {
        st = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_INFO,
                                            (const uint8_t *)s_kdf_info,
                                            sizeof(s_kdf_info) - 1u);
    }
    if (st == PSA_SUCCESS) {
        st = psa_key_derivation_output_bytes(&op, mesh_key, DCP_AUTH_KEY_LEN);
    }
    psa_key_derivation_abort(&op);
    if (st != PSA_SUCCESS) {
        dcp_wipe(mesh_key, DCP_AUTH_KEY_LEN);
    }
    return st == PSA_SUCCESS;
}

bool dcp_mesh_key_from_keys(const uint8_t app_key[16], const uint8_t net_key[16],
                            uint8_t mesh_key[DCP_AUTH_KEY_LEN])
{
    uint8_t network_id[8];
    return dcp_mesh_network_id(net_key, network_id) &&
           dcp_mesh_key_derive(app_key, network_id, mesh_key);
}

static psa_status_t hmac_import(const uint8_t *key, psa_key_id_t *id)
{
    /* one key for the full HMAC (sign) and its 8-byte truncation (verify) */
    return dcp_psa_import(PSA_KEY_TYPE_HMAC,
                          PSA_KEY_USAGE_SIGN_MESSAGE | PSA_KEY_USAGE_VERIFY_MESSAGE,
                          PSA_ALG_AT_LEAST_THIS_LENGTH_MAC(DCP_HMAC, DCP_AUTH_MAC_LEN), key,
                          DCP_AUTH_KEY_LEN, id);
}

/* HMAC-SHA256(key, msg)[0..out_len) */
static bool hmac_trunc(const uint8_t *key, const uint8_t *msg, size_t len, uint8_t *out,
                       size_t out_len)
{
    uint8_t full[DCP_HMAC_LEN];
    size_t n = 0;
    psa_key_id_t id = PSA_KEY_ID_NULL;
    psa_status_t st = hmac_import(key, &id);
    if (st == PSA_SUCCESS) {
        st = psa_mac_compute(id, DCP_HMAC, msg, len, full, sizeof(full), &n);
        psa_destroy_key(id);
    }
    bool ok = (st == PSA_SUCCESS && n == DCP_HMAC_LEN);
    if (ok) {
        memcpy(out, full, out_len);
    }
    dcp_wipe(full, sizeof(full));
    return ok;
}

/* Whether mac equals HMAC-SHA256(key, msg)[0..8): psa_mac_verify, constant-time compare. */
static bool hmac_verify8(const uint8_t *key, const uint8_t *msg, size_t len, const uint8_t *mac)
{
    psa_key_id_t id = PSA_KEY_ID_NULL;
    psa_status_t st = hmac_import(key, &id);
    if (st == PSA_SUCCESS) {
        st = psa_mac_verify(id, PSA_ALG_TRUNCATED_MAC(DCP_HMAC, DCP_AUTH_MAC_LEN), msg, len, mac,
                            DCP_AUTH_MAC_LEN);
        psa_destroy_key(id);
    }
    return st == PSA_SUCCESS;
}

/* label || Nc || Nn */
static size_t nonce_msg(uint8_t *msg, const char *label, const uint8_t *nc, const uint8_t *nn)
{
    size_t n = strlen(label);
    memcpy(msg, label, n);
    memcpy(msg + n, nc, DCP_AUTH_NONCE_LEN);
    memcpy(msg + n + DCP_AUTH_NONCE_LEN, nn, DCP_AUTH_NONCE_LEN);
    return n + 2u * DCP_AUTH_NONCE_LEN;
}

static bool nonce_mac(const uint8_t *key, const char *label, const uint8_t *nc, const uint8_t *nn,
                      uint8_t *out, size_t out_len)
{
    uint8_t msg[16u + 2u * DCP_AUTH_NONCE_LEN];
    return hmac_trunc(key, msg, nonce_msg(msg, label, nc, nn), out, out_len);
}

bool dcp_auth_node_proof(const uint8_t key[DCP_AUTH_KEY_LEN], const uint8_t nc[DCP_AUTH_NONCE_LEN],
                         const uint8_t nn[DCP_AUTH_NONCE_LEN], uint8_t proof[DCP_AUTH_PROOF_LEN])
{
    return nonce_mac(key, s_label_node, nc, nn, proof, DCP_AUTH_PROOF_LEN);
}

bool dcp_auth_client_proof(const uint8_t key[DCP_AUTH_KEY_LEN],
                           const uint8_t nc[DCP_AUTH_NONCE_LEN],
                           const uint8_t nn[DCP_AUTH_NONCE_LEN], uint8_t proof[DCP_AUTH_PROOF_LEN])
{
    return nonce_mac(key, s_label_client, nc, nn, proof, DCP_AUTH_PROOF_LEN);
}

bool dcp_auth_session_key(const uint8_t key[DCP_AUTH_KEY_LEN], const uint8_t nc[DCP_AUTH_NONCE_LEN],
                          const uint8_t nn[DCP_AUTH_NONCE_LEN],
                          uint8_t session_key[DCP_AUTH_KEY_LEN])
{
    return nonce_mac(key, s_label_session, nc, nn, session_key, DCP_AUTH_KEY_LEN);
}

/* "DCM1 cmd" || counter (u32 big-endian) || command; 0 when the command is too long. */
static size_t command_msg(uint8_t *msg, uint32_t counter, const uint8_t *cmd, size_t len)
{
    size_t n = sizeof(s_label_cmd) - 1u;
    if (len > DCP_MAX_COMMAND_LEN || (cmd == NULL && len > 0)) {
        return 0;
    }
    memcpy(msg, s_label_cmd, n);
    msg[n++] = (uint8_t)(counter >> 24);
    msg[n++] = (uint8_t)(counter >> 16);
    msg[n++] = (uint8_t)(counter >> 8);
    msg[n++] = (uint8_t)counter;
    if (len > 0) {
        memcpy(msg + n, cmd, len);
    }
    return n + len;
}

bool dcp_auth_command_mac(const uint8_t session_key[DCP_AUTH_KEY_LEN], uint32_t counter,
                          const uint8_t *cmd, size_t len, uint8_t mac[DCP_AUTH_MAC_LEN])
{
    uint8_t msg[DCP_AUTH_MSG_MAX];
    size_t n = command_msg(msg, counter, cmd, len);
    return n != 0 && hmac_trunc(session_key, msg, n, mac, DCP_AUTH_MAC_LEN);
}

/* ---- text ------------------------------------------------------------------------------ */

static void put_bytes_hex(dcp_sb_t *sb, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dcp_sb_put_hex(sb, b[i], 2);
    }
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Exactly 2 * n hex digits (either case) into out. */
static bool parse_hex(const uint8_t *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 * i]);
        int lo = hex_digit(s[2 * i + 1u]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

int dcp_mesh_key_format(char *buf, size_t size, const uint8_t key[DCP_AUTH_KEY_LEN])
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    for (size_t i = 0; i < DCP_AUTH_KEY_LEN; i += 2u) {
        if (i > 0) {
            dcp_sb_putc(&sb, '-');
        }
        put_bytes_hex(&sb, key + i, 2);
    }
    return dcp_sb_result(&sb);
}

int dcp_mesh_key_qr_text(char *buf, size_t size, uint32_t mesh_id,
                         const uint8_t key[DCP_AUTH_KEY_LEN])
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    dcp_sb_puts(&sb, "DCMESH1:");
    dcp_sb_put_hex(&sb, mesh_id, 8);
    dcp_sb_putc(&sb, ':');
    put_bytes_hex(&sb, key, DCP_AUTH_KEY_LEN);
    return dcp_sb_result(&sb);
}

int dcp_auth_wrap(char *buf, size_t size, const uint8_t session_key[DCP_AUTH_KEY_LEN],
                  uint32_t counter, const uint8_t *cmd, size_t len)
{
    uint8_t mac[DCP_AUTH_MAC_LEN];
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    if (counter == 0 || len > DCP_MAX_COMMAND_LEN - DCP_AUTH_WRAP_OVERHEAD ||
        !dcp_auth_command_mac(session_key, counter, cmd, len, mac)) {
        return -1;
    }
    dcp_sb_puts(&sb, "S:");
    dcp_sb_put_hex(&sb, counter, 8);
    dcp_sb_putc(&sb, ':');
    put_bytes_hex(&sb, mac, sizeof(mac));
    dcp_sb_putc(&sb, ':');
    for (size_t i = 0; i < len; i++) {
        dcp_sb_putc(&sb, (char)cmd[i]);
    }
    return dcp_sb_result(&sb);
}

static uint8_t to_upper(uint8_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
}

bool dcp_auth_needs_session(const uint8_t *cmd, size_t len)
{
    static const char *const words[] = {"DUTY", "RAMP", "ON", "STOP", "OFF"};
    if (cmd == NULL) {
        return false;
    }
    if (dcp_ota_needs_session(cmd, len)) {
        return true; /* protocol-v1 section 9: OTA:SHA, VER, BEGIN, ABORT */
    }
    size_t start = 0;
    while (start < len && cmd[start] != ':') {
        start++;
    }
    if (start == len) {
        return false; /* no second field */
    }
    start++;
    size_t end = start;
    while (end < len && cmd[end] != ':') {
        end++;
    }
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        size_t n = strlen(words[w]);
        if (end - start != n) {
            continue;
        }
        size_t i = 0;
        while (i < n && to_upper(cmd[start + i]) == (uint8_t)words[w][i]) {
            i++;
        }
        if (i == n) {
            return true;
        }
    }
    return false;
}

/* ---- node and sessions ----------------------------------------------------------------- */

#define DCP_AUTH_CREDIT_MAX (DCP_AUTH_TOKENS * DCP_AUTH_REFILL_MS)

void dcp_auth_node_init(dcp_auth_node_t *node, dcp_nonce_fn nonce, void *nonce_ctx,
                        uint64_t now_ms)
{
    dcp_wipe(node, sizeof(*node));
    node->has_key = false;
    node->credit_ms = DCP_AUTH_CREDIT_MAX;
    node->credit_at_ms = now_ms;
    node->nonce = nonce;
    node->nonce_ctx = nonce_ctx;
}

void dcp_auth_node_set_key(dcp_auth_node_t *node, const uint8_t mesh_key[DCP_AUTH_KEY_LEN])
{
    if (mesh_key == NULL) {
        dcp_wipe(node->mesh_key, sizeof(node->mesh_key));
        node->has_key = false;
        return;
    }
    memcpy(node->mesh_key, mesh_key, sizeof(node->mesh_key));
    node->has_key = true;
}

uint16_t dcp_auth_capabilities(const dcp_auth_node_t *node)
{
    return (node != NULL && node->has_key) ? DCP_CAP_AUTH : 0u;
}

static void refill(dcp_auth_node_t *node, uint64_t now_ms)
{
    if (now_ms > node->credit_at_ms) {
        uint64_t credit = node->credit_ms + (now_ms - node->credit_at_ms);
        node->credit_ms = (uint32_t)(credit > DCP_AUTH_CREDIT_MAX ? DCP_AUTH_CREDIT_MAX : credit);
    }
    node->credit_at_ms = now_ms; /* a clock that went back only delays the refill */
}

bool dcp_auth_locked(dcp_auth_node_t *node, uint64_t now_ms)
{
    refill(node, now_ms);
    return node->credit_ms < DCP_AUTH_REFILL_MS;
}

static void spend_token(dcp_auth_node_t *node, uint64_t now_ms)
{
    refill(node, now_ms);
    node->credit_ms = node->credit_ms > DCP_AUTH_REFILL_MS ? node->credit_ms - DCP_AUTH_REFILL_MS
                                                           : 0u;
}

void dcp_auth_session_reset(dcp_auth_session_t *session)
{
    dcp_wipe(session, sizeof(*session));
    session->state = DCP_AUTH_NONE;
}

static void reply(dcp_auth_result_t *r, const char *kind)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, r->reply, sizeof(r->reply));
    dcp_sb_puts(&sb, "ERROR:AUTH:");
    dcp_sb_puts(&sb, kind);
    r->verdict = DCP_AUTH_REPLY;
    r->reply_len = (size_t)dcp_sb_result(&sb);
}

static bool starts_with(const uint8_t *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* AUTH:<Nc> */
static void handle_hello(dcp_auth_node_t *node, dcp_auth_session_t *s, uint64_t now_ms,
                         const uint8_t *w, size_t len, dcp_auth_result_t *r)
{
    uint8_t nc[DCP_AUTH_NONCE_LEN];
    uint8_t nn[DCP_AUTH_NONCE_LEN];
    uint8_t proof[DCP_AUTH_PROOF_LEN];
    if (len != 5u + 2u * DCP_AUTH_NONCE_LEN || !parse_hex(w + 5, DCP_AUTH_NONCE_LEN, nc)) {
        reply(r, "MALFORMED");
        return;
    }
    dcp_auth_session_reset(s); /* a new hello ends the connection's current session */
    if (dcp_auth_locked(node, now_ms)) {
        reply(r, "LOCKED");
        return;
    }
    if (node->nonce == NULL || !node->nonce(node->nonce_ctx, nn) ||
        !dcp_auth_node_proof(node->mesh_key, nc, nn, proof)) {
        reply(r, "LOCKED"); /* no RNG or crypto: the client tries later */
        return;
    }
    memcpy(s->client_nonce, nc, sizeof(nc));
    memcpy(s->node_nonce, nn, sizeof(nn));
    s->state = DCP_AUTH_CHALLENGED;
    dcp_sb_t sb;
    dcp_sb_init(&sb, r->reply, sizeof(r->reply));
    dcp_sb_puts(&sb, "AUTH:N:");
    put_bytes_hex(&sb, nn, sizeof(nn));
    dcp_sb_putc(&sb, ':');
    put_bytes_hex(&sb, proof, sizeof(proof));
    r->verdict = DCP_AUTH_REPLY;
    r->reply_len = (size_t)dcp_sb_result(&sb);
}

/* AUTH:P:<client proof> */
static void handle_proof(dcp_auth_node_t *node, dcp_auth_session_t *s, uint64_t now_ms,
                         const uint8_t *w, size_t len, dcp_auth_result_t *r)
{
    uint8_t proof[DCP_AUTH_PROOF_LEN];
    uint8_t msg[16u + 2u * DCP_AUTH_NONCE_LEN];
    if (len != 7u + 2u * DCP_AUTH_PROOF_LEN || !parse_hex(w + 7, DCP_AUTH_PROOF_LEN, proof)) {
        reply(r, "MALFORMED");
        return;
    }
    if (s->state != DCP_AUTH_CHALLENGED) {
        reply(r, "NO_SESSION");
        return;
    }
    size_t n = nonce_msg(msg, s_label_client, s->client_nonce, s->node_nonce);
    uint8_t session_key[DCP_AUTH_KEY_LEN];
    bool ok = hmac_verify8(node->mesh_key, msg, n, proof) &&
              dcp_auth_session_key(node->mesh_key, s->client_nonce, s->node_nonce, session_key);
    dcp_auth_session_reset(s); /* one proof per challenge */
    if (!ok) {
        spend_token(node, now_ms);
        reply(r, "BAD_PROOF");
        return;
    }
    memcpy(s->session_key, session_key, sizeof(session_key));
    dcp_wipe(session_key, sizeof(session_key));
    s->counter = 0;
    s->state = DCP_AUTH_ESTABLISHED;
    r->verdict = DCP_AUTH_REPLY;
    memcpy(r->reply, "AUTH:OK", sizeof("AUTH:OK"));
    r->reply_len = sizeof("AUTH:OK") - 1u;
}

/* S:<counter, 8 hex>:<MAC, 16 hex>:<command>, checked in the order of section 7.4 */
static void handle_wrapped(dcp_auth_node_t *node, dcp_auth_session_t *s, uint64_t now_ms,
                           const uint8_t *w, size_t len, dcp_auth_result_t *r)
{
    uint8_t ctr[4];
    uint8_t mac[DCP_AUTH_MAC_LEN];
    if (len < DCP_AUTH_WRAP_OVERHEAD || !parse_hex(w + 2, sizeof(ctr), ctr) || w[10] != ':' ||
        !parse_hex(w + 11, sizeof(mac), mac) || w[27] != ':') {
        reply(r, "MALFORMED");
        return;
    }
    uint32_t counter = (uint32_t)ctr[0] << 24 | (uint32_t)ctr[1] << 16 | (uint32_t)ctr[2] << 8 |
                       ctr[3];
    if (counter == 0) {
        reply(r, "MALFORMED");
        return;
    }
    if (s->state != DCP_AUTH_ESTABLISHED) {
        reply(r, "NO_SESSION");
        return;
    }
    if (counter <= s->counter) {
        reply(r, "REPLAY");
        return;
    }
    const uint8_t *cmd = w + DCP_AUTH_WRAP_OVERHEAD;
    size_t cmd_len = len - DCP_AUTH_WRAP_OVERHEAD;
    uint8_t msg[DCP_AUTH_MSG_MAX];
    size_t n = command_msg(msg, counter, cmd, cmd_len);
    if (n == 0 || !hmac_verify8(s->session_key, msg, n, mac)) {
        spend_token(node, now_ms);
        reply(r, "BAD_MAC");
        return;
    }
    s->counter = counter;
    r->verdict = DCP_AUTH_RUN;
    r->cmd = cmd;
    r->len = cmd_len;
}

void dcp_auth_handle(dcp_auth_node_t *node, dcp_auth_session_t *session, uint64_t now_ms,
                     const uint8_t *write, size_t len, dcp_auth_result_t *result)
{
    memset(result, 0, sizeof(*result));
    result->verdict = DCP_AUTH_RUN;
    result->cmd = write;
    result->len = len;
    if (!node->has_key || write == NULL || len > DCP_MAX_COMMAND_LEN) {
        return;
    }
    if (starts_with(write, len, "AUTH:P:") || (len == 6u && starts_with(write, len, "AUTH:P"))) {
        handle_proof(node, session, now_ms, write, len, result);
    } else if (starts_with(write, len, "AUTH:")) {
        handle_hello(node, session, now_ms, write, len, result);
    } else if (starts_with(write, len, "S:")) {
        handle_wrapped(node, session, now_ms, write, len, result);
    } else if (dcp_auth_needs_session(write, len)) {
        reply(result, "REQUIRED");
    }
}
