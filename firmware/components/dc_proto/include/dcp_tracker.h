/* Unicast send tracker: one SEND in flight, a bounded queue, the mesh client timeout. Time is
 * passed in as a wrapping millisecond counter. */
#ifndef DCP_TRACKER_H
#define DCP_TRACKER_H

#include "dcp_common.h"

#define DCP_TRACKER_SLOTS 5u /* the send in flight plus four waiting */

typedef struct {
    uint16_t dst;
    uint8_t len;
    char payload[DCP_PAYLOAD_MAX];
} dcp_send_t;

typedef struct {
    dcp_send_t slots[DCP_TRACKER_SLOTS];
    uint8_t head;
    uint8_t count;
    bool in_flight; /* slots[head] has been sent and is awaited */
    uint32_t deadline_ms;
    uint32_t timeout_ms;
} dcp_tracker_t;

void dcp_tracker_init(dcp_tracker_t *t, uint32_t timeout_ms);
/* Queues a unicast SEND; false when the queue is full or the payload too long. */
bool dcp_tracker_enqueue(dcp_tracker_t *t, uint16_t dst, const char *payload, size_t len);
/* When nothing is in flight, takes the oldest queued SEND into flight and copies it to out. */
bool dcp_tracker_next(dcp_tracker_t *t, uint32_t now_ms, dcp_send_t *out);
/* A STATUS arrived from src; true when it answered the SEND in flight (which is done). */
bool dcp_tracker_on_status(dcp_tracker_t *t, uint16_t src);
/* True (with *addr) when the SEND in flight passed its deadline; it is dropped. */
bool dcp_tracker_expired(dcp_tracker_t *t, uint32_t now_ms, uint16_t *addr);
/* The SEND in flight could not be handed to the stack: drop it. */
void dcp_tracker_abort(dcp_tracker_t *t);
/* Anything in flight or queued. */
bool dcp_tracker_busy(const dcp_tracker_t *t);

#endif
