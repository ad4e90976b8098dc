/* Mesh payloads a server model receives in a vendor SEND. */
#ifndef DCP_PAYLOAD_H
#define DCP_PAYLOAD_H

#include "dcp_common.h"

typedef enum {
    DCP_PAYLOAD_READ,
    DCP_PAYLOAD_DUTY,
    DCP_PAYLOAD_RAMP,
    DCP_PAYLOAD_STOP,
    DCP_PAYLOAD_INFO,
    DCP_PAYLOAD_UNKNOWN,
} dcp_payload_kind_t;

/* Kind of payload p; *duty is set for DCP_PAYLOAD_DUTY (duty:<0..100>, 1..3 digits). */
dcp_payload_kind_t dcp_payload_parse(const uint8_t *p, size_t len, uint8_t *duty);

typedef enum {
    DCP_SERVE_KEEP,  /* the duty is left as it is */
    DCP_SERVE_SET,   /* stop a ramp, apply dcp_serve_t.duty */
    DCP_SERVE_RAMP,  /* start (or restart) the ramp */
} dcp_serve_duty_t;

typedef enum {
    DCP_SERVE_READING,     /* a reading after the duty change (dcp_fmt_reading) */
    DCP_SERVE_INFO,        /* the INFO line (dcp_fmt_info) */
    DCP_SERVE_ERR_UNKNOWN, /* ERR:UNKNOWN:<payload> (dcp_fmt_err_unknown) */
} dcp_serve_reply_t;

typedef struct {
    dcp_payload_kind_t kind;
    dcp_serve_duty_t action;
    uint8_t duty;
    dcp_serve_reply_t reply;
} dcp_serve_t;

/*
 * What the vendor server does with a payload (and a node with a payload it handles itself):
 * read, duty:<n>, r and s are all answered with a reading taken after the duty change, as v0.7
 * does (command.c:27-53); info with the INFO line; anything else with ERR:UNKNOWN:<payload>.
 */
void dcp_payload_serve(const uint8_t *p, size_t len, dcp_serve_t *out);

#endif
