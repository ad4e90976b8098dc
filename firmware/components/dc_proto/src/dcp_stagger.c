#include "dcp_stagger.h"

#include <string.h>

uint32_t dcp_stagger_delay_ms(uint8_t node, uint16_t recv_dst)
{
    if (recv_dst != DCP_GROUP_ADDR || node >= DCP_MAX_NODES) {
        return 0;
    }
    return (uint32_t)node * DCP_STAGGER_SLOT_MS;
}

void dcp_stagger_init(dcp_stagger_t *s)
{
    memset(s, 0, sizeof(*s));
}

/* Wrapping order of due times: true when a is due before b. */
static bool earlier(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* The used slot due first, SIZE_MAX when none is used. */
static size_t first_due(const dcp_stagger_t *s)
{
    size_t pick = SIZE_MAX;
    for (size_t i = 0; i < DCP_STAGGER_SLOTS; i++) {
        if (s->slots[i].used &&
            (pick == SIZE_MAX || earlier(s->slots[i].due_ms, s->slots[pick].due_ms))) {
            pick = i;
        }
    }
    return pick;
}

size_t dcp_stagger_put(dcp_stagger_t *s, uint32_t now_ms, uint32_t delay_ms, uint16_t dst,
                       uint8_t kind, const char *text, size_t len, dcp_stagger_entry_t *evicted,
                       bool *has_evicted)
{
    *has_evicted = false;
    if (text == NULL || len >= DCP_MESSAGE_MAX) {
        return SIZE_MAX;
    }
    size_t slot = SIZE_MAX;
    for (size_t i = 0; i < DCP_STAGGER_SLOTS && slot == SIZE_MAX; i++) {
        if (s->slots[i].used && s->slots[i].dst == dst && s->slots[i].kind == kind) {
            slot = i; /* same address and kind: new text, same due time */
        }
    }
    for (size_t i = 0; i < DCP_STAGGER_SLOTS && slot == SIZE_MAX; i++) {
        if (!s->slots[i].used) {
            slot = i;
            s->slots[i].due_ms = now_ms + delay_ms;
        }
    }
    if (slot == SIZE_MAX) {
        slot = first_due(s);
        *evicted = s->slots[slot];
        *has_evicted = true;
        s->slots[slot].due_ms = now_ms + delay_ms;
    }
    dcp_stagger_entry_t *e = &s->slots[slot];
    e->used = true;
    e->dst = dst;
    e->kind = kind;
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    e->len = (uint8_t)len;
    return slot;
}

bool dcp_stagger_take(dcp_stagger_t *s, uint32_t now_ms, dcp_stagger_entry_t *out, size_t *slot)
{
    size_t i = first_due(s);
    if (i == SIZE_MAX || earlier(now_ms, s->slots[i].due_ms)) {
        return false;
    }
    *out = s->slots[i];
    *slot = i;
    s->slots[i].used = false;
    return true;
}

uint32_t dcp_stagger_wait_ms(const dcp_stagger_t *s, uint32_t now_ms)
{
    size_t i = first_due(s);
    if (i == SIZE_MAX) {
        return UINT32_MAX;
    }
    uint32_t due = s->slots[i].due_ms;
    return earlier(now_ms, due) ? due - now_ms : 0u;
}
