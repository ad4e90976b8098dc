/* libFuzzer target: command parser, payload parser and chunking/reassembly of the core.
 * Invariants are checked with abort() so the fuzzer reports any violation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcp_chunk.h"
#include "dcp_command.h"
#include "dcp_payload.h"
#include "dcp_reply.h"

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
        fuzz_command(data, size, (uint8_t)((mode >> 2) % 12u)); /* 10, 11: not ready */
        break;
    case 1:
        fuzz_payload(data, size);
        break;
    case 2:
        fuzz_round_trip(data, size);
        break;
    default:
        fuzz_reader(data, size);
        break;
    }
    return 0;
}
