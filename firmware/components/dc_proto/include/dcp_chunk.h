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
    DCP_REASM_TOO_LONG, /* the message would pass DCP_MAX_MESSAGE_LEN: given up (discarded + 1);
                           its further '+' chunks are skipped */
    DCP_REASM_SKIPPED,  /* a chunk of a message already given up (TOO_LONG) was skipped */
    DCP_REASM_BAD_CHUNK /* an empty or over-long notification; state was reset */
} dcp_reasm_result_t;

/*
 * The reference reader (docs/protocol-v1.md section 1, firmware/vectors/streams.tsv). Every
 * message starts with a keyword (NODE<digit>, NODE_READY, SENT:, ERROR:, ERR:, TIMEOUT:,
 * MESH_READY, GATEWAY_): a chunk whose data starts with one while a message is pending starts a
 * new message and the pending one is given up, so a lost chunk costs only its own message.
 */
typedef struct {
    size_t len;
    bool pending;  /* a message is under way (len may still be 0 after a lone '+') */
    bool skipping; /* skipping the rest of a message given up as too long */
    uint32_t discarded; /* messages given up since the last reset */
    uint8_t buf[DCP_MAX_MESSAGE_LEN];
} dcp_reasm_t;

/* Starts over: no message pending, discarded 0. */
void dcp_reasm_reset(dcp_reasm_t *r);
/* True when data (the chunk without its '+') starts with a message keyword. */
bool dcp_message_start(const uint8_t *data, size_t len);
/* Feeds one notification. On DCP_REASM_DONE *msg and *msg_len describe the message, valid
 * until the next call. */
dcp_reasm_result_t dcp_reasm_feed(dcp_reasm_t *r, const uint8_t *chunk, size_t len,
                                  const uint8_t **msg, size_t *msg_len);

#endif
