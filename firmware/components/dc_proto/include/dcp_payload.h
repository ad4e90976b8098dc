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

#endif
