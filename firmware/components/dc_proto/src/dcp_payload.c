#include "dcp_payload.h"

#include <string.h>

static bool equals(const uint8_t *p, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len == n && memcmp(p, word, n) == 0;
}

static bool parse_duty_digits(const uint8_t *p, size_t len, uint8_t *duty)
{
    if (len == 0 || len > 3) {
        return false;
    }
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10u + (unsigned)(p[i] - '0');
    }
    if (v > 100u) {
        return false;
    }
    *duty = (uint8_t)v;
    return true;
}

dcp_payload_kind_t dcp_payload_parse(const uint8_t *p, size_t len, uint8_t *duty)
{
    static const char duty_prefix[] = "duty:";
    const size_t prefix_len = sizeof(duty_prefix) - 1u;
    if (p == NULL) {
        return DCP_PAYLOAD_UNKNOWN;
    }
    if (equals(p, len, "read")) {
        return DCP_PAYLOAD_READ;
    }
    if (equals(p, len, "r")) {
        return DCP_PAYLOAD_RAMP;
    }
    if (equals(p, len, "s")) {
        return DCP_PAYLOAD_STOP;
    }
    if (equals(p, len, "info")) {
        return DCP_PAYLOAD_INFO;
    }
    if (len > prefix_len && memcmp(p, duty_prefix, prefix_len) == 0 &&
        parse_duty_digits(p + prefix_len, len - prefix_len, duty)) {
        return DCP_PAYLOAD_DUTY;
    }
    return DCP_PAYLOAD_UNKNOWN;
}

void dcp_payload_serve(const uint8_t *p, size_t len, dcp_serve_t *out)
{
    uint8_t duty = 0;
    out->kind = dcp_payload_parse(p, len, &duty);
    out->action = DCP_SERVE_KEEP;
    out->duty = 0;
    out->reply = DCP_SERVE_READING;
    switch (out->kind) {
    case DCP_PAYLOAD_READ:
        break;
    case DCP_PAYLOAD_DUTY:
        out->action = DCP_SERVE_SET;
        out->duty = duty;
        break;
    case DCP_PAYLOAD_RAMP:
        out->action = DCP_SERVE_RAMP;
        break;
    case DCP_PAYLOAD_STOP:
        out->action = DCP_SERVE_SET;
        break;
    case DCP_PAYLOAD_INFO:
        out->reply = DCP_SERVE_INFO;
        break;
    case DCP_PAYLOAD_UNKNOWN:
        out->reply = DCP_SERVE_ERR_UNKNOWN;
        break;
    }
}
