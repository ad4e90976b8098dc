/* 20-byte notification chunking ('+' continuation) and the matching reader. */
#ifndef DCP_CHUNK_H
#define DCP_CHUNK_H

#include "dcp_common.h"

/* Number of notifications for a message of len bytes (1 for an empty message). */
size_t dcp_chunk_count(size_t len);

/* Writes chunk number index of msg into out (DCP_NOTIFY_CHUNK_SIZE bytes) and returns its
 * length; 0 when index is past the last chunk. */
size_t dcp_chunk_get(const uint8_t *msg, size_t len, size_t index,
                     uint8_t out[DCP_NOTIFY_CHUNK_SIZE]);

typedef enum {
    DCP_REASM_MORE,     /* a '+' chunk was added; wait for more */
    DCP_REASM_DONE,     /* a message is complete */
    DCP_REASM_TOO_LONG, /* the message would pass DCP_MAX_MESSAGE_LEN; state was reset */
    DCP_REASM_BAD_CHUNK /* an empty or over-long notification; state was reset */
} dcp_reasm_result_t;

typedef struct {
    size_t len;
    uint8_t buf[DCP_MAX_MESSAGE_LEN];
} dcp_reasm_t;

void dcp_reasm_reset(dcp_reasm_t *r);
/* Feeds one notification. On DCP_REASM_DONE *msg and *msg_len describe the message, valid
 * until the next call. */
dcp_reasm_result_t dcp_reasm_feed(dcp_reasm_t *r, const uint8_t *chunk, size_t len,
                                  const uint8_t **msg, size_t *msg_len);

#endif
