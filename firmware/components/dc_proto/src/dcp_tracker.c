#include "dcp_tracker.h"

#include <string.h>

static bool time_reached(uint32_t now_ms, uint32_t deadline_ms)
{
    return (int32_t)(now_ms - deadline_ms) >= 0;
}

static void drop_head(dcp_tracker_t *t)
{
    t->head = (uint8_t)((t->head + 1u) % DCP_TRACKER_SLOTS);
    t->count--;
    t->in_flight = false;
}

void dcp_tracker_init(dcp_tracker_t *t, uint32_t timeout_ms)
{
    memset(t, 0, sizeof(*t));
    t->timeout_ms = timeout_ms;
}

bool dcp_tracker_enqueue(dcp_tracker_t *t, uint16_t dst, const char *payload, size_t len)
{
    if (t->count >= DCP_TRACKER_SLOTS || payload == NULL || len >= DCP_PAYLOAD_MAX) {
        return false;
    }
    dcp_send_t *s = &t->slots[(t->head + t->count) % DCP_TRACKER_SLOTS];
    s->dst = dst;
    s->len = (uint8_t)len;
    memcpy(s->payload, payload, len);
    s->payload[len] = '\0';
    t->count++;
    return true;
}

bool dcp_tracker_next(dcp_tracker_t *t, uint32_t now_ms, dcp_send_t *out)
{
    if (t->in_flight || t->count == 0) {
        return false;
    }
    t->in_flight = true;
    t->deadline_ms = now_ms + t->timeout_ms;
    *out = t->slots[t->head];
    return true;
}

bool dcp_tracker_on_status(dcp_tracker_t *t, uint16_t src)
{
    if (!t->in_flight || t->slots[t->head].dst != src) {
        return false;
    }
    drop_head(t);
    return true;
}

bool dcp_tracker_expired(dcp_tracker_t *t, uint32_t now_ms, uint16_t *addr)
{
    if (!t->in_flight || !time_reached(now_ms, t->deadline_ms)) {
        return false;
    }
    *addr = t->slots[t->head].dst;
    drop_head(t);
    return true;
}

void dcp_tracker_abort(dcp_tracker_t *t)
{
    if (t->in_flight) {
        drop_head(t);
    }
}

bool dcp_tracker_busy(const dcp_tracker_t *t)
{
    return t->count > 0;
}
