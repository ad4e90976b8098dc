/* Staggered answers to group SENDs (docs/protocol-v1.md section 10, vectors/stagger.tsv).
 *
 * A node answers a SEND to the group (ALL:READ, ALL:INFO, ...) node id x DCP_STAGGER_SLOT_MS
 * after it handled it, so that the segmented STATUS messages of a large mesh reach the gateway
 * one after the other instead of all at once. The answer is made when the SEND is handled (a
 * reading after the duty change, as without staggering); only its transmission waits. An answer
 * to a unicast SEND leaves at once. Time is passed in as a wrapping millisecond counter. */
#ifndef DCP_STAGGER_H
#define DCP_STAGGER_H

#include "dcp_common.h"

#define DCP_STAGGER_SLOT_MS 100u
/* Answers held at once, each for another address (another gateway) or kind. */
#define DCP_STAGGER_SLOTS 4u

typedef struct {
    bool used;
    uint16_t dst; /* where the answer goes: the source of the SEND */
    uint8_t kind; /* what it is (the caller's dcp_serve_reply_t): a reading, INFO, ... */
    uint32_t due_ms;
    uint8_t len;
    char text[DCP_MESSAGE_MAX];
} dcp_stagger_entry_t;

typedef struct {
    dcp_stagger_entry_t slots[DCP_STAGGER_SLOTS];
} dcp_stagger_t;

/* How long node waits before it answers a SEND addressed to recv_dst: node x DCP_STAGGER_SLOT_MS
 * for the group address, 0 for anything else (its own unicast address). */
uint32_t dcp_stagger_delay_ms(uint8_t node, uint16_t recv_dst);

void dcp_stagger_init(dcp_stagger_t *s);

/*
 * Holds an answer (len < DCP_MESSAGE_MAX) of a kind for dst, due at now + delay; returns its
 * slot. An answer of the same kind already held for dst takes the new text and keeps its due time
 * (a MONITOR polling faster than the stagger gets the latest reading, not an ever later one);
 * answers of other kinds (an INFO line and a reading) wait side by side. When every slot holds
 * another answer, the one due first is moved to *evicted (*has_evicted: the caller sends it now)
 * and its slot is reused. SIZE_MAX when len does not fit (nothing changes).
 */
size_t dcp_stagger_put(dcp_stagger_t *s, uint32_t now_ms, uint32_t delay_ms, uint16_t dst,
                       uint8_t kind, const char *text, size_t len, dcp_stagger_entry_t *evicted,
                       bool *has_evicted);
/* The held answer due first, if it is due by now: copied to *out (with its slot) and released. */
bool dcp_stagger_take(dcp_stagger_t *s, uint32_t now_ms, dcp_stagger_entry_t *out, size_t *slot);
/* Milliseconds until the next held answer is due (0: due now); UINT32_MAX when none is held. */
uint32_t dcp_stagger_wait_ms(const dcp_stagger_t *s, uint32_t now_ms);

#endif
