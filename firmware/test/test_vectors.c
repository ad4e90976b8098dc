/* Vector-driven tests: the shared files in firmware/vectors against the firmware core. */
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_adv.h"
#include "dcp_chunk.h"
#include "dcp_command.h"
#include "dcp_payload.h"
#include "dcp_reply.h"
#include "dcp_stagger.h"
#include "tsv.h"

#define BUF 1024

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 0xF];
    }
    out[2 * n] = '\0';
}

static void test_chunks(void **state)
{
    (void)state;
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "chunks.tsv");
    while (tsv_next(&t)) {
        assert_true(t.ncols == 2 || t.ncols == 3); /* message, chunks[, source] */
        uint8_t msg[BUF];
        size_t len = tsv_unescape(t.cols[0], msg, sizeof(msg));
        char got[4 * BUF] = "";
        size_t count = dcp_chunk_count(len);
        dcp_reasm_t r;
        dcp_reasm_reset(&r);
        for (size_t i = 0; i < count; i++) {
            uint8_t chunk[DCP_NOTIFY_CHUNK_SIZE];
            size_t n = dcp_chunk_get(msg, len, i, chunk);
            char hex[2 * DCP_NOTIFY_CHUNK_SIZE + 1];
            hex_of(chunk, n, hex);
            if (i > 0) {
                strcat(got, " ");
            }
            strcat(got, hex);
            const uint8_t *out = NULL;
            size_t out_len = 0;
            dcp_reasm_result_t res = dcp_reasm_feed(&r, chunk, n, &out, &out_len);
            if (i + 1 < count) {
                assert_int_equal(res, DCP_REASM_MORE);
            } else {
                assert_int_equal(res, DCP_REASM_DONE);
                assert_int_equal(out_len, len);
                assert_memory_equal(out, msg, len);
            }
        }
        if (strcmp(got, t.cols[1]) != 0) {
            fail_msg("chunks.tsv:%u: got %s", t.lineno, got);
        }
        rows++;
    }
    tsv_close(&t);
    assert_true(rows >= 15);
}

/* Renders one action in the outcome grammar of commands.tsv (unescaped). */
static void render_action(const dcp_action_t *a, char *out, size_t cap)
{
    switch (a->kind) {
    case DCP_ACT_LOCAL:
        snprintf(out, cap, "local:%s", a->text);
        break;
    case DCP_ACT_MESH:
        snprintf(out, cap, "mesh:%04x:%s", a->dst, a->text);
        break;
    case DCP_ACT_REPLY:
        snprintf(out, cap, "reply:%s", a->text);
        break;
    case DCP_ACT_MONITOR:
        if (a->arg == DCP_MONITOR_OFF) {
            snprintf(out, cap, "monitor:off");
        } else if (a->arg == DCP_TARGET_ALL) {
            snprintf(out, cap, "monitor:all");
        } else {
            snprintf(out, cap, "monitor:%u", a->arg);
        }
        break;
    case DCP_ACT_ATT_ERROR:
        snprintf(out, cap, "att_error:0x%02x", a->arg);
        break;
    }
}

static void test_commands(void **state)
{
    (void)state;
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "commands.tsv");
    while (tsv_next(&t)) {
        assert_int_equal(t.ncols, 3);
        uint8_t self = DCP_NODE_NONE;
        if (strcmp(t.cols[0], "-") != 0) {
            self = (uint8_t)atoi(t.cols[0]);
        }
        uint8_t cmd[BUF];
        size_t len = tsv_unescape(t.cols[1], cmd, sizeof(cmd));
        dcp_plan_t plan;
        dcp_plan_command(cmd, len, self, &plan);

        char *expected = t.cols[2];
        size_t i = 0;
        for (char *tok = strtok(expected, ";"); tok != NULL; tok = strtok(NULL, ";"), i++) {
            uint8_t want[BUF];
            size_t wlen = tsv_unescape(tok, want, sizeof(want) - 1);
            want[wlen] = '\0';
            if (i >= plan.count) {
                fail_msg("commands.tsv:%u: missing action %s", t.lineno, (char *)want);
            }
            char got[BUF];
            render_action(&plan.actions[i], got, sizeof(got));
            if (strcmp(got, (char *)want) != 0) {
                fail_msg("commands.tsv:%u: action %zu: got \"%s\" want \"%s\"", t.lineno, i, got,
                         (char *)want);
            }
            if (plan.actions[i].kind != DCP_ACT_MONITOR &&
                plan.actions[i].kind != DCP_ACT_ATT_ERROR) {
                assert_int_equal(plan.actions[i].len, strlen(plan.actions[i].text));
            }
        }
        if (i != plan.count) {
            fail_msg("commands.tsv:%u: %zu extra actions", t.lineno, plan.count - i);
        }
        rows++;
    }
    tsv_close(&t);
    assert_true(rows >= 80);
}

/* "12.003" with 3 decimals -> 12003; exactly that many decimals. */
static int64_t fixed(const char *s, unsigned decimals)
{
    bool neg = (*s == '-');
    if (neg) {
        s++;
    }
    int64_t v = 0;
    unsigned frac = 0;
    bool point = false;
    for (; *s != '\0'; s++) {
        if (*s == '.') {
            point = true;
            continue;
        }
        assert_true(*s >= '0' && *s <= '9');
        v = v * 10 + (*s - '0');
        frac += point ? 1u : 0u;
    }
    assert_int_equal(frac, decimals);
    return neg ? -v : v;
}

static const char *need(const char *fields, const char *key, char *buf, size_t cap)
{
    if (!tsv_field(fields, key, buf, cap)) {
        fail_msg("field %s missing in \"%s\"", key, fields);
    }
    return buf;
}

static int format_reply(const char *kind, const char *f, char *out, size_t cap)
{
    char a[BUF];
    char b[BUF];
    char c[BUF];
    if (strcmp(kind, "reading") == 0) {
        int32_t mv = (int32_t)fixed(need(f, "voltage", a, sizeof(a)), 3);
        int32_t ca = (int32_t)fixed(need(f, "current_ma", b, sizeof(b)), 2);
        int n = dcp_fmt_data(out, cap, (uint8_t)atoi(need(f, "node", c, sizeof(c))),
                             (uint8_t)atoi(need(f, "duty", a, sizeof(a))), mv, ca);
        int64_t power = fixed(need(f, "power_mw", b, sizeof(b)), 1);
        assert_int_equal(dcp_power_dmw(mv, ca), (uint64_t)power);
        return n;
    }
    if (strcmp(kind, "info") == 0) {
        char fw[64];
        char hw[64];
        char role[8];
        dcp_info_t info = {
            .firmware = need(f, "firmware", fw, sizeof(fw)),
            .hardware = need(f, "hardware", hw, sizeof(hw)),
            .role = need(f, "role", role, sizeof(role))[0],
            .capabilities = (uint16_t)strtoul(need(f, "capabilities", a, sizeof(a)), NULL, 0),
            .uptime_s = (uint32_t)strtoul(need(f, "uptime", b, sizeof(b)), NULL, 0),
            .free_heap = (uint32_t)strtoul(need(f, "free_heap", c, sizeof(c)), NULL, 0),
            .mesh_id = (uint32_t)strtoul(need(f, "mesh_id", a, sizeof(a)), NULL, 0),
            .gateway = atoi(need(f, "gateway", b, sizeof(b))) == 1,
        };
        return dcp_fmt_info(out, cap, (uint8_t)atoi(need(f, "node", c, sizeof(c))), &info);
    }
    if (strcmp(kind, "sent") == 0) {
        assert_string_equal(need(f, "fallback", b, sizeof(b)), "0");
        need(f, "command", a, sizeof(a));
        char *colon = strchr(a, ':');
        uint8_t duty = 0;
        if (colon != NULL) {
            *colon = '\0';
            duty = (uint8_t)atoi(colon + 1);
        }
        for (unsigned i = 0; i < DCP_CMD_COUNT; i++) {
            if (strcmp(dcp_cmd_name((dcp_cmd_t)i), a) == 0) {
                return dcp_fmt_sent(out, cap, (dcp_cmd_t)i, duty);
            }
        }
        fail_msg("unknown command %s", a);
        return -1;
    }
    if (strcmp(kind, "error") == 0) {
        need(f, "kind", a, sizeof(a));
        if (tsv_field(f, "detail", b, sizeof(b))) {
            return dcp_fmt_error(out, cap, a, (const uint8_t *)b, strlen(b));
        }
        return dcp_fmt_error(out, cap, a, NULL, 0);
    }
    if (strcmp(kind, "mesh_timeout") == 0) {
        uint16_t addr = (uint16_t)strtoul(need(f, "address", a, sizeof(a)), NULL, 16);
        bool unicast = addr >= DCP_BASE_UNICAST && addr <= 0x7FFFu;
        assert_int_equal(unicast, tsv_field(f, "node", b, sizeof(b)));
        if (unicast) {
            assert_int_equal(addr - DCP_BASE_UNICAST, atoi(b));
        }
        return dcp_fmt_timeout(out, cap, addr);
    }
    if (strcmp(kind, "node_error") == 0) {
        /* a vendor server's ERR:UNKNOWN, as the gateway forwards it */
        char status[DCP_MESSAGE_MAX];
        need(f, "detail", a, sizeof(a));
        int n = dcp_fmt_err_unknown(status, sizeof(status), (const uint8_t *)a, strlen(a));
        assert_true(n > 0);
        uint16_t src = (uint16_t)(DCP_BASE_UNICAST + atoi(need(f, "node", b, sizeof(b))));
        return dcp_fmt_status(out, cap, src, (const uint8_t *)status, (size_t)n);
    }
    if (strcmp(kind, "status") == 0) {
        need(f, "text", a, sizeof(a));
        bool known = strcmp(a, DCP_MSG_NODE_READY) == 0 ||
                     strcmp(a, DCP_MSG_GATEWAY_CONNECTED) == 0 ||
                     strcmp(a, DCP_MSG_MESH_READY) == 0;
        assert_true(known);
        return snprintf(out, cap, "%s", a);
    }
    if (strcmp(kind, "unknown_payload") == 0) {
        need(f, "detail", a, sizeof(a));
        return dcp_fmt_err_unknown(out, cap, (const uint8_t *)a, strlen(a));
    }
    fail_msg("unknown kind %s", kind);
    return -1;
}

static void test_replies(void **state)
{
    (void)state;
    tsv_t t;
    unsigned formatted = 0;
    unsigned parser_only = 0;
    unsigned v07 = 0;
    tsv_open(&t, "replies.tsv");
    while (tsv_next(&t)) {
        assert_true(t.ncols == 3 || t.ncols == 4); /* message, kind, fields[, source] */
        if (strcmp(t.section, "v0.7") == 0) {
            assert_int_equal(t.ncols, 4); /* every v0.7 message says where it comes from */
            v07++;
            continue;
        }
        if (strcmp(t.section, "firmware") != 0) {
            assert_string_equal(t.section, "parser-only");
            parser_only++;
            continue;
        }
        uint8_t want[BUF];
        size_t wlen = tsv_unescape(t.cols[0], want, sizeof(want) - 1);
        want[wlen] = '\0';
        char got[DCP_MESSAGE_MAX];
        int n = format_reply(t.cols[1], t.cols[2], got, sizeof(got));
        if (n < 0 || strcmp(got, (char *)want) != 0) {
            fail_msg("replies.tsv:%u: got \"%s\" (%d) want \"%s\"", t.lineno, n < 0 ? "" : got,
                     n, (char *)want);
        }
        assert_int_equal((size_t)n, wlen);
        formatted++;
    }
    tsv_close(&t);
    assert_true(formatted >= 30);
    assert_true(v07 >= 30);
    assert_true(parser_only >= 10);
}

static void test_advertisement(void **state)
{
    (void)state;
    tsv_t t;
    unsigned encoded = 0;
    tsv_open(&t, "advertisement.tsv");
    while (tsv_next(&t)) {
        assert_int_equal(t.ncols, 3);
        uint8_t data[64];
        size_t len = tsv_unhex(t.cols[0], strlen(t.cols[0]), data, sizeof(data));
        if (strcmp(t.cols[1], "ok") != 0 || len != DCP_ADV_SERVICE_DATA_LEN) {
            continue;
        }
        char v[64];
        assert_string_equal(need(t.cols[2], "version", v, sizeof(v)), "1");
        uint32_t mesh = (uint32_t)strtoul(need(t.cols[2], "mesh_id", v, sizeof(v)), NULL, 0);
        uint8_t node = DCP_NODE_NONE;
        if (tsv_field(t.cols[2], "node", v, sizeof(v))) {
            node = (uint8_t)atoi(v);
        }
        uint8_t role = strcmp(need(t.cols[2], "role", v, sizeof(v)), "R") == 0
                           ? DCP_ADV_ROLE_RELAY
                           : DCP_ADV_ROLE_UNIVERSAL;
        uint8_t flags = (uint8_t)strtoul(need(t.cols[2], "flags", v, sizeof(v)), NULL, 0);
        uint8_t out[DCP_ADV_SERVICE_DATA_LEN];
        assert_int_equal(dcp_adv_service_data(out, sizeof(out), mesh, node, role, flags),
                         DCP_ADV_SERVICE_DATA_LEN);
        if (memcmp(out, data, len) != 0) {
            fail_msg("advertisement.tsv:%u: encoding differs", t.lineno);
        }
        encoded++;
    }
    tsv_close(&t);
    assert_true(encoded >= 5);
}

/* Splits a '|'-separated text column into its unescaped parts; "-" is no part. */
static size_t split_parts(char *column, uint8_t parts[][BUF], size_t lens[], size_t max)
{
    size_t n = 0;
    if (strcmp(column, "-") == 0) {
        return 0;
    }
    for (char *p = column;; n++) {
        char *bar = strchr(p, '|');
        if (bar != NULL) {
            *bar = '\0';
        }
        assert_true(n < max);
        lens[n] = tsv_unescape(p, parts[n], BUF);
        if (bar == NULL) {
            return n + 1;
        }
        p = bar + 1;
    }
}

static void test_streams(void **state)
{
    (void)state;
    static uint8_t chunks[64][BUF];
    static uint8_t expected[8][BUF];
    size_t chunk_lens[64];
    size_t expected_lens[8];
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "streams.tsv");
    while (tsv_next(&t)) {
        assert_int_equal(t.ncols, 4);
        size_t nchunks = split_parts(t.cols[0], chunks, chunk_lens, 64);
        size_t nexpected = split_parts(t.cols[1], expected, expected_lens, 8);
        dcp_reasm_t r;
        dcp_reasm_reset(&r);
        size_t got = 0;
        for (size_t i = 0; i < nchunks; i++) {
            const uint8_t *out = NULL;
            size_t out_len = 0;
            if (dcp_reasm_feed(&r, chunks[i], chunk_lens[i], &out, &out_len) == DCP_REASM_DONE) {
                if (got >= nexpected || out_len != expected_lens[got] ||
                    memcmp(out, expected[got], out_len) != 0) {
                    fail_msg("streams.tsv:%u: message %zu \"%.*s\" not expected", t.lineno, got,
                             (int)out_len, (const char *)out);
                }
                got++;
            }
        }
        if (got != nexpected) {
            fail_msg("streams.tsv:%u: %zu messages, want %zu", t.lineno, got, nexpected);
        }
        assert_int_equal(r.discarded, (uint32_t)atoi(t.cols[2]));
        assert_false(r.pending);
        rows++;
    }
    tsv_close(&t);
    assert_true(rows >= 20);
}

/* Renders what the server does with a payload in the outcome grammar of payloads.tsv. */
static void render_serve(const uint8_t *p, size_t len, char *out, size_t cap)
{
    dcp_serve_t s;
    dcp_payload_serve(p, len, &s);
    size_t n = 0;
    out[0] = '\0';
    if (s.action == DCP_SERVE_SET) {
        n += (size_t)snprintf(out + n, cap - n, "duty:%u;", s.duty);
    } else if (s.action == DCP_SERVE_RAMP) {
        n += (size_t)snprintf(out + n, cap - n, "ramp;");
    }
    switch (s.reply) {
    case DCP_SERVE_READING:
        snprintf(out + n, cap - n, "status:reading");
        break;
    case DCP_SERVE_INFO:
        snprintf(out + n, cap - n, "status:info");
        break;
    case DCP_SERVE_ERR_UNKNOWN: {
        char text[DCP_MESSAGE_MAX];
        assert_true(dcp_fmt_err_unknown(text, sizeof(text), p, len) > 0);
        snprintf(out + n, cap - n, "status:%s", text);
        break;
    }
    }
}

static void test_payloads(void **state)
{
    (void)state;
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "payloads.tsv");
    while (tsv_next(&t)) {
        assert_true(t.ncols == 3 || t.ncols == 4);
        if (strcmp(t.cols[0], "v1") != 0) {
            assert_string_equal(t.cols[0], "v0.7");
            continue;
        }
        uint8_t payload[BUF];
        size_t len = tsv_unescape(t.cols[1], payload, sizeof(payload));
        uint8_t want[BUF];
        size_t wlen = tsv_unescape(t.cols[2], want, sizeof(want) - 1);
        want[wlen] = '\0';
        char got[BUF];
        render_serve(payload, len, got, sizeof(got));
        if (strcmp(got, (char *)want) != 0) {
            fail_msg("payloads.tsv:%u: got \"%s\" want \"%s\"", t.lineno, got, (char *)want);
        }
        rows++;
    }
    tsv_close(&t);
    assert_true(rows >= 10);
}

static void test_status(void **state)
{
    (void)state;
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "status.tsv");
    while (tsv_next(&t)) {
        assert_true(t.ncols == 4 || t.ncols == 5);
        if (strcmp(t.cols[0], "v1") != 0) {
            assert_string_equal(t.cols[0], "v0.7");
            continue;
        }
        uint16_t src = (uint16_t)strtoul(t.cols[1], NULL, 16);
        uint8_t text[BUF];
        size_t len = tsv_unescape(t.cols[2], text, sizeof(text));
        char got[DCP_MESSAGE_MAX];
        int n = dcp_fmt_status(got, sizeof(got), src, text, len);
        if (strcmp(t.cols[3], "-") == 0) {
            assert_int_equal(n, -1);
        } else {
            uint8_t want[BUF];
            size_t wlen = tsv_unescape(t.cols[3], want, sizeof(want) - 1);
            want[wlen] = '\0';
            if (n < 0 || strcmp(got, (char *)want) != 0) {
                fail_msg("status.tsv:%u: got \"%s\" want \"%s\"", t.lineno, n < 0 ? "" : got,
                         (char *)want);
            }
            assert_int_equal((size_t)n, wlen);
        }
        rows++;
    }
    tsv_close(&t);
    assert_true(rows >= 10);
}

/* The Python-only file is still well-formed: two columns and a known reason on every line. */
static void test_hostile_file_shape(void **state)
{
    (void)state;
    static const char *reasons[] = {"bad_utf8",   "too_long",     "unknown_message",
                                    "bad_number", "out_of_range", "bad_node_id"};
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "hostile_messages.tsv");
    while (tsv_next(&t)) {
        assert_int_equal(t.ncols, 2);
        uint8_t buf[4096];
        (void)tsv_unescape(t.cols[0], buf, sizeof(buf));
        bool known = false;
        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
            known = known || strcmp(t.cols[1], reasons[i]) == 0;
        }
        if (!known) {
            fail_msg("hostile_messages.tsv:%u: unknown reason %s", t.lineno, t.cols[1]);
        }
        rows++;
    }
    tsv_close(&t);
    assert_true(rows >= 50);
}

/* Appends "<ms>:<to>:<answer>" to out (';'-separated), the answers column of stagger.tsv. */
static void emit(char *out, size_t cap, uint32_t ms, uint16_t to, const char *text)
{
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s%lu:%04x:%s", n > 0 ? ";" : "", (unsigned long)ms, to, text);
}

static void test_stagger(void **state)
{
    (void)state;
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "stagger.tsv");
    while (tsv_next(&t)) {
        assert_int_equal(t.ncols, 4);
        uint8_t node = (uint8_t)atoi(t.cols[0]);
        dcp_stagger_t s;
        dcp_stagger_init(&s);
        char got[BUF] = "";
        for (char *ev = strtok(t.cols[1], ";"); ev != NULL; ev = strtok(NULL, ";")) {
            char *rest = NULL;
            if (strncmp(ev, "tick:", 5) == 0) {
                uint32_t now = (uint32_t)strtoul(ev + 5, NULL, 10);
                dcp_stagger_entry_t e;
                size_t slot = 0;
                while (dcp_stagger_take(&s, now, &e, &slot)) {
                    emit(got, sizeof(got), now, e.dst, e.text);
                }
                continue;
            }
            assert_int_equal(strncmp(ev, "send:", 5), 0);
            uint32_t now = (uint32_t)strtoul(ev + 5, &rest, 10);
            assert_true(*rest == ':');
            uint16_t src = (uint16_t)strtoul(rest + 1, &rest, 16);
            assert_true(*rest == ':');
            uint16_t dst = (uint16_t)strtoul(rest + 1, &rest, 16);
            assert_true(*rest == ':');
            char *kind_text = rest + 1;
            rest = strchr(kind_text, ':');
            assert_non_null(rest);
            *rest = '\0';
            uint8_t kind = strcmp(kind_text, "reading") == 0 ? (uint8_t)DCP_SERVE_READING
                           : strcmp(kind_text, "info") == 0  ? (uint8_t)DCP_SERVE_INFO
                                                              : (uint8_t)DCP_SERVE_ERR_UNKNOWN;
            assert_true(kind != DCP_SERVE_ERR_UNKNOWN || strcmp(kind_text, "unknown") == 0);
            uint8_t text[BUF];
            size_t len = tsv_unescape(rest + 1, text, sizeof(text) - 1);
            text[len] = '\0';
            uint32_t delay = dcp_stagger_delay_ms(node, dst);
            if (delay == 0) {
                emit(got, sizeof(got), now, src, (const char *)text);
                continue;
            }
            dcp_stagger_entry_t evicted;
            bool has_evicted = false;
            size_t slot = dcp_stagger_put(&s, now, delay, src, kind, (const char *)text, len,
                                          &evicted, &has_evicted);
            assert_true(slot < DCP_STAGGER_SLOTS);
            if (has_evicted) {
                emit(got, sizeof(got), now, evicted.dst, evicted.text);
            }
        }
        uint8_t want[BUF];
        size_t wlen = tsv_unescape(strcmp(t.cols[2], "-") == 0 ? "" : t.cols[2], want,
                                   sizeof(want) - 1);
        want[wlen] = '\0';
        if (strcmp(got, (char *)want) != 0) {
            fail_msg("stagger.tsv:%u: got \"%s\" want \"%s\"", t.lineno, got, (char *)want);
        }
        rows++;
    }
    tsv_close(&t);
    assert_true(rows >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks),       cmocka_unit_test(test_commands),
        cmocka_unit_test(test_replies),      cmocka_unit_test(test_advertisement),
        cmocka_unit_test(test_hostile_file_shape), cmocka_unit_test(test_streams),
        cmocka_unit_test(test_payloads),     cmocka_unit_test(test_status),
        cmocka_unit_test(test_stagger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
