/* libFuzzer target: command parser, payload parser, chunking/reassembly, the session handler and
 * the OTA receiver of the core. Invariants are checked with abort() so the fuzzer reports any violation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcp_auth.h"
#include "dcp_chunk.h"
#include "dcp_command.h"
#include "dcp_ota.h"
#include "dcp_payload.h"
#include "dcp_reply.h"
#include "dcp_stagger.h"

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

static void check_text(const char *text, size_t len)
{
    check(len < DCP_ACTION_TEXT_MAX && strlen(text) == len);
    for (size_t i = 0; i < len; i++) {
        check(text[i] >= 0x20 && text[i] <= 0x7E && text[i] != '+');
    }
}

static void fuzz_command(const uint8_t *data, size_t size, uint8_t self)
{
    dcp_plan_t plan;
    dcp_plan_command(data, size, self, &plan);
    check(plan.count >= 1 && plan.count <= DCP_PLAN_MAX_ACTIONS);
    for (size_t i = 0; i < plan.count; i++) {
        const dcp_action_t *a = &plan.actions[i];
        if (a->kind == DCP_ACT_LOCAL || a->kind == DCP_ACT_MESH || a->kind == DCP_ACT_REPLY) {
            check_text(a->text, a->len);
        }
        if (a->kind == DCP_ACT_LOCAL || a->kind == DCP_ACT_MESH) {
            uint8_t duty = 0;
            check(a->len < DCP_PAYLOAD_MAX);
            check(dcp_payload_parse((const uint8_t *)a->text, a->len, &duty) !=
                  DCP_PAYLOAD_UNKNOWN);
        }
    }
    if (plan.actions[0].kind == DCP_ACT_ATT_ERROR) {
        check(size > DCP_MAX_COMMAND_LEN);
    }
    for (size_t i = 0; i < plan.count; i++) {
        /* a unicast goes to a node's address: 0x0005..0x0068 (ids 0..99), never to the node itself */
        const dcp_action_t *a = &plan.actions[i];
        if (a->kind == DCP_ACT_MESH && a->dst != DCP_GROUP_ADDR) {
            check(a->dst >= DCP_BASE_UNICAST && a->dst < DCP_BASE_UNICAST + DCP_MAX_NODES);
            check(a->dst != DCP_BASE_UNICAST + self);
        }
    }
}

static void fuzz_payload(const uint8_t *data, size_t size)
{
    uint8_t duty = 0;
    if (dcp_payload_parse(data, size, &duty) == DCP_PAYLOAD_DUTY) {
        check(duty <= 100);
    }
    char buf[DCP_MESSAGE_MAX];
    int n = dcp_fmt_err_unknown(buf, sizeof(buf), data, size);
    check(n == -1 || (size_t)n == strlen(buf));
    check(strlen(buf) < sizeof(buf));
    dcp_serve_t serve;
    dcp_payload_serve(data, size, &serve);
    check(serve.action != DCP_SERVE_SET || serve.duty <= 100);
    /* a forwarded STATUS: never a '+' or a byte outside 0x20..0x7e, never over the buffer */
    uint16_t src = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    n = dcp_fmt_status(buf, sizeof(buf), src, data, size);
    check(n == -1 || (size_t)n == strlen(buf));
    for (int i = 0; i < n; i++) {
        check(buf[i] >= 0x20 && buf[i] <= 0x7E && buf[i] != '+');
    }
}

static void fuzz_round_trip(const uint8_t *data, size_t size)
{
    size_t len = size > DCP_MAX_MESSAGE_LEN ? DCP_MAX_MESSAGE_LEN : size;
    if (len == 0 || data[0] == '+') {
        return; /* a message never starts with '+' */
    }
    for (size_t i = 19; i < len; i += 19) {
        if (data[i] == '+' && i + 20 >= len) {
            return; /* the '+' gap of section 1: firmware never sends such a message */
        }
        if (dcp_message_start(data + i, len - i)) {
            return; /* a chunk would look like a new message: firmware never sends one */
        }
    }
    dcp_reasm_t r;
    dcp_reasm_reset(&r);
    size_t count = dcp_chunk_count(len);
    const uint8_t *out = NULL;
    size_t out_len = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t c[DCP_NOTIFY_CHUNK_SIZE];
        size_t n = dcp_chunk_get(data, len, i, c);
        check(n >= 1 && n <= DCP_NOTIFY_CHUNK_SIZE);
        dcp_reasm_result_t res = dcp_reasm_feed(&r, c, n, &out, &out_len);
        check(res == ((i + 1 < count) ? DCP_REASM_MORE : DCP_REASM_DONE));
    }
    check(out_len == len && memcmp(out, data, len) == 0);
}

static void fuzz_reader(const uint8_t *data, size_t size)
{
    /* arbitrary notifications: a length byte (0..31) then that many bytes */
    static dcp_reasm_t r;
    dcp_reasm_reset(&r);
    size_t i = 0;
    while (i < size) {
        size_t n = data[i++] & 0x1Fu;
        if (n > size - i) {
            n = size - i;
        }
        const uint8_t *out = NULL;
        size_t out_len = 0;
        dcp_reasm_result_t res = dcp_reasm_feed(&r, data + i, n, &out, &out_len);
        if (res == DCP_REASM_DONE) {
            check(out_len <= DCP_MAX_MESSAGE_LEN);
        }
        check(r.len <= DCP_MAX_MESSAGE_LEN);
        check(!(r.pending && r.skipping));
        i += n;
    }
}

/* Staggered answers: records [node][ms delta][src low byte][group?]; invariants: an answer never
 * leaves before it is due unless evicted, at most DCP_STAGGER_SLOTS wait, one per source. */
static void fuzz_stagger(const uint8_t *data, size_t size)
{
    static dcp_stagger_t s;
    dcp_stagger_init(&s);
    uint32_t now = 0xFFFFF000u; /* crosses the wrap */
    size_t i = 0;
    while (i + 4 <= size) {
        uint8_t node = data[i] % 120u;
        now += (uint32_t)data[i + 1] * 37u;
        uint16_t src = (uint16_t)(DCP_BASE_UNICAST + data[i + 2] % 8u);
        uint16_t dst = (data[i + 3] & 1u) ? DCP_GROUP_ADDR : (uint16_t)(DCP_BASE_UNICAST + node);
        i += 4;
        uint32_t delay = dcp_stagger_delay_ms(node, dst);
        check(delay == ((dst == DCP_GROUP_ADDR && node < DCP_MAX_NODES) ? node * 100u : 0u));
        dcp_stagger_entry_t e;
        bool evicted = false;
        uint8_t kind = (uint8_t)((data[i - 1] >> 1) % 3u);
        size_t slot = dcp_stagger_put(&s, now, delay, src, kind, "D:1%", 4, &e, &evicted);
        check(slot < DCP_STAGGER_SLOTS && s.slots[slot].used && s.slots[slot].dst == src &&
              s.slots[slot].kind == kind);
        check(!evicted || e.dst != src || e.kind != kind);
        unsigned used = 0;
        for (size_t k = 0; k < DCP_STAGGER_SLOTS; k++) {
            for (size_t m = k + 1; m < DCP_STAGGER_SLOTS; m++) {
                check(!(s.slots[k].used && s.slots[m].used && s.slots[k].dst == s.slots[m].dst &&
                        s.slots[k].kind == s.slots[m].kind));
            }
            used += s.slots[k].used;
        }
        check(used >= 1 && used <= DCP_STAGGER_SLOTS);
        size_t at = 0;
        uint32_t wait = dcp_stagger_wait_ms(&s, now);
        while (dcp_stagger_take(&s, now, &e, &at)) {
            check(!s.slots[at].used && (int32_t)(now - e.due_ms) >= 0);
        }
        check(wait > 0 || dcp_stagger_wait_ms(&s, now) != 0);
    }
}

static bool fuzz_nonce(void *ctx, uint8_t nonce[DCP_AUTH_NONCE_LEN])
{
    uint8_t *seed = ctx;
    memset(nonce, (*seed)++, DCP_AUTH_NONCE_LEN);
    return true;
}

static void check_auth_result(const dcp_auth_result_t *r, const uint8_t *w, size_t n)
{
    if (r->verdict == DCP_AUTH_REPLY) {
        check(r->reply_len > 0 && r->reply_len < DCP_AUTH_REPLY_MAX &&
              strlen(r->reply) == r->reply_len);
        check(strncmp(r->reply, "AUTH:", 5) == 0 || strncmp(r->reply, "ERROR:AUTH:", 11) == 0);
        for (size_t i = 0; i < r->reply_len; i++) {
            check(r->reply[i] >= 0x20 && r->reply[i] <= 0x7E && r->reply[i] != '+');
        }
    } else {
        check(r->verdict == DCP_AUTH_RUN && r->cmd >= w && r->cmd + r->len == w + n);
    }
}

/* Writes to a node holding a key, over two connections and advancing time. Each write is a
 * control byte then data: bits 0..5 its length, bit 6 the second connection, bit 7 set: the
 * harness writes a valid hello + proof (length 0) or a correctly wrapped command of the data. */
static void fuzz_auth(const uint8_t *data, size_t size)
{
    static const uint8_t key[DCP_AUTH_KEY_LEN] = {0x93, 0x27, 0x04, 0x8f, 0x20, 0x90, 0xd5, 0xf7,
                                                  0x10, 0x89, 0xb5, 0x58, 0x18, 0xb1, 0xf6, 0x5f};
    uint8_t seed = 0;
    uint64_t now = 0;
    dcp_auth_node_t node;
    dcp_auth_session_t sessions[2];
    uint32_t counters[2] = {0, 0};
    uint8_t session_keys[2][DCP_AUTH_KEY_LEN] = {{0}};
    dcp_auth_node_init(&node, fuzz_nonce, &seed, now);
    dcp_auth_node_set_key(&node, key);
    dcp_auth_session_reset(&sessions[0]);
    dcp_auth_session_reset(&sessions[1]);
    size_t i = 0;
    while (i < size) {
        uint8_t ctl = data[i++];
        size_t n = ctl & 0x3Fu;
        if (n > size - i) {
            n = size - i;
        }
        unsigned c = (ctl >> 6) & 1u;
        dcp_auth_session_t *s = &sessions[c];
        uint8_t w[DCP_MAX_COMMAND_LEN + 1];
        size_t wn = n;
        memcpy(w, data + i, n);
        i += n;
        now += (uint64_t)ctl * 97u;
        dcp_auth_result_t r;
        if ((ctl & 0x80u) && n == 0) {
            /* a valid handshake (unless locked) */
            uint8_t nn[DCP_AUTH_NONCE_LEN];
            uint8_t nc[DCP_AUTH_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, (uint8_t)i};
            uint8_t proof[DCP_AUTH_PROOF_LEN];
            char text[32];
            memset(nn, seed, sizeof(nn));
            static const char hex[] = "0123456789abcdef";
            memcpy(text, "AUTH:", 5);
            for (size_t k = 0; k < 8; k++) {
                text[5 + 2 * k] = hex[nc[k] >> 4];
                text[6 + 2 * k] = hex[nc[k] & 15];
            }
            dcp_auth_handle(&node, s, now, (const uint8_t *)text, 21, &r);
            check_auth_result(&r, (const uint8_t *)text, 21);
            check(s->state != DCP_AUTH_ESTABLISHED);
            if (s->state != DCP_AUTH_CHALLENGED) {
                check(strcmp(r.reply, "ERROR:AUTH:LOCKED") == 0);
                continue;
            }
            check(dcp_auth_client_proof(key, nc, nn, proof));
            check(dcp_auth_session_key(key, nc, nn, session_keys[c]));
            memcpy(text, "AUTH:P:", 7);
            for (size_t k = 0; k < 8; k++) {
                text[7 + 2 * k] = hex[proof[k] >> 4];
                text[8 + 2 * k] = hex[proof[k] & 15];
            }
            dcp_auth_handle(&node, s, now, (const uint8_t *)text, 23, &r);
            check(r.verdict == DCP_AUTH_REPLY && strcmp(r.reply, "AUTH:OK") == 0);
            check(s->state == DCP_AUTH_ESTABLISHED && s->counter == 0);
            counters[c] = 0;
            continue;
        }
        if ((ctl & 0x80u) && s->state == DCP_AUTH_ESTABLISHED &&
            n <= DCP_MAX_COMMAND_LEN - DCP_AUTH_WRAP_OVERHEAD) {
            /* a correctly wrapped command: it runs, exactly */
            char text[DCP_MAX_COMMAND_LEN + 1];
            int len = dcp_auth_wrap(text, sizeof(text), session_keys[c], ++counters[c], w, n);
            check(len == (int)(n + DCP_AUTH_WRAP_OVERHEAD));
            dcp_auth_handle(&node, s, now, (const uint8_t *)text, (size_t)len, &r);
            check(r.verdict == DCP_AUTH_RUN && r.len == n && memcmp(r.cmd, w, n) == 0);
            check(s->counter == counters[c]);
            continue;
        }
        dcp_auth_state_t before = s->state;
        uint32_t counter = s->counter;
        dcp_auth_handle(&node, s, now, w, wn, &r);
        check_auth_result(&r, w, wn);
        check(s->state <= DCP_AUTH_ESTABLISHED);
        /* fuzzed bytes never open a session nor get a wrapped command through */
        check(s->state != DCP_AUTH_ESTABLISHED || before == DCP_AUTH_ESTABLISHED);
        if (r.verdict == DCP_AUTH_RUN) {
            check(r.cmd == w && r.len == wn && s->counter == counter);
            check(!dcp_auth_needs_session(w, wn));
        }
        if (s->state == DCP_AUTH_ESTABLISHED) {
            counters[c] = s->counter;
        }
        check(node.credit_ms <= DCP_AUTH_TOKENS * DCP_AUTH_REFILL_MS);
    }
}

/* OTA receiver: records [kind][len][bytes]; kind 0xff closes connection 1 + len % 3, an odd kind
 * is a command, an even one a 0xDC04 write, from connection 1 + (kind >> 1) % 3. A mock slot
 * checks that every byte is written once, in order, inside the announced size. */
#define FUZZ_SLOT 8192u
static uint8_t s_written[FUZZ_SLOT];
static uint32_t s_erased;
static bool s_open;

static bool fz_begin(void *ctx, uint32_t size)
{
    (void)ctx;
    check(!s_open && size >= 1 && size <= FUZZ_SLOT);
    memset(s_written, 0, sizeof(s_written));
    s_erased = size;
    s_open = true;
    return true;
}

static bool fz_write(void *ctx, uint32_t off, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)data;
    check(s_open && len >= 1 && (uint64_t)off + len <= s_erased);
    check(off == 0 || s_written[off - 1]);
    for (size_t i = 0; i < len; i++) {
        check(!s_written[off + i]);
        s_written[off + i] = 1;
    }
    return true;
}

static dcp_ota_finish_t fz_finish(void *ctx, const char *version)
{
    (void)ctx;
    check(s_open && strlen(version) >= 5 && strlen(version) < DCP_OTA_VERSION_MAX);
    s_open = false;
    return DCP_OTA_FINISH_OK;
}

static void fz_abort(void *ctx)
{
    (void)ctx;
    check(s_open);
    s_open = false;
}

static void fuzz_ota(const uint8_t *data, size_t size)
{
    static const dcp_ota_io_t io = {fz_begin, fz_write, fz_finish, fz_abort, NULL};
    static dcp_ota_t ota;
    s_open = false;
    dcp_ota_init(&ota, &io, FUZZ_SLOT, 'U', "ESP32-C6");
    size_t i = 0;
    while (i + 2 <= size) {
        uint8_t kind = data[i];
        size_t n = data[i + 1];
        i += 2;
        if (n > size - i) {
            n = size - i;
        }
        dcp_ota_conn_t conn = 1u + (uint32_t)((kind >> 1) % 3u);
        dcp_ota_result_t r;
        memset(&r, 0, sizeof(r));
        if (kind == 0xFF) {
            dcp_ota_conn_closed(&ota, 1u + (uint32_t)(n % 3u));
            n = 0;
        } else if (kind & 1u) {
            dcp_ota_command(&ota, conn, data + i, n, &r);
        } else {
            dcp_ota_data(&ota, conn, data + i, n, &r);
        }
        check(r.reply_len < DCP_OTA_REPLY_MAX && strlen(r.reply) == r.reply_len);
        for (size_t k = 0; k < r.reply_len; k++) {
            check(r.reply[k] >= 0x20 && r.reply[k] <= 0x7E && r.reply[k] != '+');
        }
        check(!r.reboot || strcmp(r.reply, "OTA:DONE") == 0);
        i += n;
    }
    if (ota.state == DCP_OTA_RECEIVING) {
        psa_hash_abort(&ota.hash);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    uint8_t mode = data[0];
    data++;
    size--;
    switch (mode & 3u) {
    case 0:
        fuzz_command(data, size, (uint8_t)((mode >> 2) * 2u)); /* 100..126: not ready */
        break;
    case 1:
        fuzz_payload(data, size);
        break;
    case 2:
        fuzz_round_trip(data, size);
        break;
    default:
        if (mode & 0x80u) {
            fuzz_auth(data, size);
        } else if (mode & 0x40u) {
            fuzz_ota(data, size);
        } else if (mode & 0x20u) {
            fuzz_stagger(data, size);
        } else {
            fuzz_reader(data, size);
        }
        break;
    }
    return 0;
}
