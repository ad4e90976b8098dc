/* RAMP: duty 0, 25, 50, 75, 100 % at 500 ms a step, then 0. Time is passed in. */
#ifndef DCP_RAMP_H
#define DCP_RAMP_H

#include "dcp_common.h"

#define DCP_RAMP_STEP_MS 500u

typedef struct {
    bool active;
    uint8_t step;
    uint32_t start_ms;
} dcp_ramp_t;

/* Starts (or restarts) the ramp and returns the duty to apply now. */
uint8_t dcp_ramp_start(dcp_ramp_t *r, uint32_t now_ms);
/* True with *duty when a new duty is due; the ramp ends after the final 0. */
bool dcp_ramp_poll(dcp_ramp_t *r, uint32_t now_ms, uint8_t *duty);
void dcp_ramp_stop(dcp_ramp_t *r);
bool dcp_ramp_active(const dcp_ramp_t *r);

#endif
