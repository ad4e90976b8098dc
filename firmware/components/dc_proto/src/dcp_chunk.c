#include "dcp_chunk.h"

#include <string.h>

#define DCP_CONT '+'
#define DCP_CONT_DATA (DCP_NOTIFY_CHUNK_SIZE - 1u)

size_t dcp_chunk_count(size_t len)
{
    size_t count = 1;
    while (len > DCP_NOTIFY_CHUNK_SIZE) {
        len -= DCP_CONT_DATA;
        count++;
    }
    return count;
}

size_t dcp_chunk_get(const uint8_t *msg, size_t len, size_t index,
                     uint8_t out[DCP_NOTIFY_CHUNK_SIZE])
{
    size_t count = dcp_chunk_count(len);
    if (index >= count) {
        return 0;
    }
    size_t offset = index * DCP_CONT_DATA;
    if (index + 1u < count) {
        out[0] = DCP_CONT;
        memcpy(out + 1, msg + offset, DCP_CONT_DATA);
        return DCP_NOTIFY_CHUNK_SIZE;
    }
    size_t rest = len - offset;
    if (rest > 0) {
        memcpy(out, msg + offset, rest);
    }
    return rest;
}

void dcp_reasm_reset(dcp_reasm_t *r)
{
    r->len = 0;
    r->pending = false;
    r->skipping = false;
    r->discarded = 0;
}

static bool starts_with(const uint8_t *data, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(data, word, n) == 0;
}

bool dcp_message_start(const uint8_t *data, size_t len)
{
    static const char *const keywords[] = {"NODE_READY", "SENT:", "ERROR:", "ERR:",
                                           "TIMEOUT:", "MESH_READY", "GATEWAY_"};
    if (data == NULL) {
        return false;
    }
    if (len >= 5 && memcmp(data, "NODE", 4) == 0 && data[4] >= '0' && data[4] <= '9') {
        return true;
    }
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (starts_with(data, len, keywords[i])) {
            return true;
        }
    }
    return false;
}

static void reasm_clear(dcp_reasm_t *r)
{
    r->len = 0;
    r->pending = false;
    r->skipping = false;
}

dcp_reasm_result_t dcp_reasm_feed(dcp_reasm_t *r, const uint8_t *chunk, size_t len,
                                  const uint8_t **msg, size_t *msg_len)
{
    if (chunk == NULL || len == 0 || len > DCP_NOTIFY_CHUNK_SIZE) {
        if (r->pending && !r->skipping) {
            r->discarded++;
        }
        reasm_clear(r);
        return DCP_REASM_BAD_CHUNK;
    }
    bool more = (chunk[0] == DCP_CONT);
    const uint8_t *data = more ? chunk + 1 : chunk;
    size_t n = more ? len - 1u : len;
    if ((r->pending || r->skipping) && dcp_message_start(data, n)) {
        if (!r->skipping) {
            r->discarded++; /* its end was lost: this chunk starts a new message */
        }
        reasm_clear(r);
    }
    if (r->skipping) {
        r->skipping = more; /* an unprefixed chunk ends the message given up */
        return DCP_REASM_SKIPPED;
    }
    if (r->len + n > sizeof(r->buf)) {
        r->discarded++;
        reasm_clear(r);
        r->skipping = more;
        return DCP_REASM_TOO_LONG;
    }
    if (n > 0) {
        memcpy(r->buf + r->len, data, n);
    }
    r->len += n;
    if (more) {
        r->pending = true;
        return DCP_REASM_MORE;
    }
    *msg = r->buf;
    *msg_len = r->len;
    reasm_clear(r);
    return DCP_REASM_DONE;
}
