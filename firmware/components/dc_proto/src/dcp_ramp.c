#include "dcp_ramp.h"

/* Duty of each step; the last step (0 %) ends the ramp. */
static const uint8_t s_steps[] = {0, 25, 50, 75, 100, 0};
#define DCP_RAMP_STEPS (sizeof(s_steps) / sizeof(s_steps[0]))

uint8_t dcp_ramp_start(dcp_ramp_t *r, uint32_t now_ms)
{
    r->active = true;
    r->step = 0;
    r->start_ms = now_ms;
    return s_steps[0];
}

bool dcp_ramp_poll(dcp_ramp_t *r, uint32_t now_ms, uint8_t *duty)
{
    if (!r->active) {
        return false;
    }
    uint32_t elapsed = now_ms - r->start_ms;
    uint32_t due = elapsed / DCP_RAMP_STEP_MS;
    if (due >= DCP_RAMP_STEPS - 1u) {
        due = DCP_RAMP_STEPS - 1u;
    }
    if (due == r->step) {
        return false;
    }
    r->step = (uint8_t)due;
    *duty = s_steps[due];
    if (due == DCP_RAMP_STEPS - 1u) {
        r->active = false;
    }
    return true;
}

void dcp_ramp_stop(dcp_ramp_t *r)
{
    r->active = false;
}

bool dcp_ramp_active(const dcp_ramp_t *r)
{
    return r->active;
}
