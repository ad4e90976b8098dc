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
}

dcp_reasm_result_t dcp_reasm_feed(dcp_reasm_t *r, const uint8_t *chunk, size_t len,
                                  const uint8_t **msg, size_t *msg_len)
{
    if (chunk == NULL || len == 0 || len > DCP_NOTIFY_CHUNK_SIZE) {
        dcp_reasm_reset(r);
        return DCP_REASM_BAD_CHUNK;
    }
    bool more = (chunk[0] == DCP_CONT);
    const uint8_t *data = more ? chunk + 1 : chunk;
    size_t n = more ? len - 1u : len;
    if (r->len + n > sizeof(r->buf)) {
        dcp_reasm_reset(r);
        return DCP_REASM_TOO_LONG;
    }
    if (n > 0) {
        memcpy(r->buf + r->len, data, n);
    }
    r->len += n;
    if (more) {
        return DCP_REASM_MORE;
    }
    *msg = r->buf;
    *msg_len = r->len;
    r->len = 0;
    return DCP_REASM_DONE;
}
