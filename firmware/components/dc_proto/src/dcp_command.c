#include "dcp_command.h"

#include <string.h>

#include "dcp_reply.h"

#define DCP_DEFAULT_DUTY 50u

typedef struct {
    const char *name;
    const char *payload; /* NULL: no mesh payload (MONITOR) */
} dcp_cmd_desc_t;

static const dcp_cmd_desc_t s_cmds[DCP_CMD_COUNT] = {
    [DCP_CMD_READ] = {"READ", "read"},   [DCP_CMD_STATUS] = {"STATUS", "read"},
    [DCP_CMD_DUTY] = {"DUTY", "duty:"},  [DCP_CMD_RAMP] = {"RAMP", "r"},
    [DCP_CMD_ON] = {"ON", "r"},          [DCP_CMD_STOP] = {"STOP", "s"},
    [DCP_CMD_OFF] = {"OFF", "s"},        [DCP_CMD_MONITOR] = {"MONITOR", NULL},
    [DCP_CMD_INFO] = {"INFO", "info"},
};

const char *dcp_cmd_name(dcp_cmd_t cmd)
{
    return ((unsigned)cmd < DCP_CMD_COUNT) ? s_cmds[cmd].name : NULL;
}

static uint8_t to_upper(uint8_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
}

static bool equals_ci(const uint8_t *s, size_t n, const char *word)
{
    if (strlen(word) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (to_upper(s[i]) != (uint8_t)word[i]) {
            return false;
        }
    }
    return true;
}

static size_t find_colon(const uint8_t *s, size_t from, size_t len)
{
    while (from < len && s[from] != ':') {
        from++;
    }
    return from;
}

static dcp_action_t *push(dcp_plan_t *plan, dcp_action_kind_t kind)
{
    dcp_action_t *a = &plan->actions[plan->count++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    return a;
}

static void set_text(dcp_action_t *a, int len)
{
    /* Every text below fits DCP_ACTION_TEXT_MAX by construction (command <= 64 bytes). */
    a->len = (len > 0) ? (uint8_t)len : 0u;
}

static void push_error(dcp_plan_t *plan, const char *kind, const uint8_t *detail, size_t n)
{
    dcp_action_t *a = push(plan, DCP_ACT_REPLY);
    set_text(a, dcp_fmt_error(a->text, sizeof(a->text), kind, detail, n));
}

static void push_payload(dcp_plan_t *plan, dcp_action_kind_t kind, uint16_t dst, dcp_cmd_t cmd,
                         uint8_t duty)
{
    dcp_action_t *a = push(plan, kind);
    a->dst = dst;
    size_t n = strlen(s_cmds[cmd].payload);
    memcpy(a->text, s_cmds[cmd].payload, n);
    if (cmd == DCP_CMD_DUTY) {
        if (duty >= 100u) {
            a->text[n++] = (char)('0' + duty / 100u);
        }
        if (duty >= 10u) {
            a->text[n++] = (char)('0' + (duty / 10u) % 10u);
        }
        a->text[n++] = (char)('0' + duty % 10u);
    }
    a->text[n] = '\0';
    a->len = (uint8_t)n;
}

static void push_sent(dcp_plan_t *plan, dcp_cmd_t cmd, uint8_t duty)
{
    dcp_action_t *a = push(plan, DCP_ACT_REPLY);
    set_text(a, dcp_fmt_sent(a->text, sizeof(a->text), cmd, duty));
}

static void push_monitor(dcp_plan_t *plan, uint8_t target)
{
    push(plan, DCP_ACT_MONITOR)->arg = target;
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* A node id as a command names it: one digit, or two without a leading zero (0..99). */
static bool parse_target(const uint8_t *s, size_t n, uint8_t *node)
{
    if (n == 1 && is_digit(s[0])) {
        *node = (uint8_t)(s[0] - '0');
        return true;
    }
    if (n == 2 && is_digit(s[0]) && s[0] != '0' && is_digit(s[1])) {
        *node = (uint8_t)((s[0] - '0') * 10 + (s[1] - '0'));
        return true;
    }
    return false;
}

/* DUTY value: empty means the default; otherwise 1..3 ASCII digits, at most 100. */
static bool parse_duty(const uint8_t *v, size_t n, uint8_t *duty)
{
    if (n == 0) {
        *duty = DCP_DEFAULT_DUTY;
        return true;
    }
    if (n > 3) {
        return false;
    }
    unsigned value = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return false;
        }
        value = value * 10u + (unsigned)(v[i] - '0');
    }
    if (value > 100u) {
        return false;
    }
    *duty = (uint8_t)value;
    return true;
}

void dcp_plan_command(const uint8_t *cmd, size_t len, uint8_t self_id, dcp_plan_t *plan)
{
    plan->count = 0;
    if (len > DCP_MAX_COMMAND_LEN) {
        push(plan, DCP_ACT_ATT_ERROR)->arg = DCP_ATT_ERR_INVALID_LEN;
        return;
    }
    if (cmd == NULL) {
        len = 0;
    }

    size_t target_end = (len == 0) ? 0 : find_colon(cmd, 0, len);
    if (target_end == 0) {
        push_error(plan, "NO_NODE_ID", NULL, 0);
        return;
    }
    uint8_t target;
    if (equals_ci(cmd, target_end, "ALL")) {
        target = DCP_TARGET_ALL;
    } else if (!parse_target(cmd, target_end, &target)) {
        push_error(plan, "INVALID_NODE", NULL, 0);
        return;
    }

    size_t word_start = target_end + 1u;
    size_t word_end = (word_start <= len) ? find_colon(cmd, word_start, len) : word_start;
    if (word_start >= len || word_end == word_start) {
        push_error(plan, "NO_COMMAND", NULL, 0);
        return;
    }
    const uint8_t *word = cmd + word_start;
    size_t word_len = word_end - word_start;
    dcp_cmd_t c = DCP_CMD_COUNT;
    for (unsigned i = 0; i < DCP_CMD_COUNT; i++) {
        if (equals_ci(word, word_len, s_cmds[i].name)) {
            c = (dcp_cmd_t)i;
            break;
        }
    }
    if (c == DCP_CMD_COUNT) {
        push_error(plan, "UNKNOWN_CMD", word, word_len);
        return;
    }

    uint8_t duty = 0;
    if (c == DCP_CMD_DUTY) {
        const uint8_t *value = (word_end < len) ? cmd + word_end + 1u : NULL;
        size_t value_len = (word_end < len) ? len - word_end - 1u : 0u;
        if (!parse_duty(value, value_len, &duty)) {
            push_error(plan, "INVALID_VALUE", value, value_len);
            return;
        }
    }

    if (self_id >= DCP_MAX_NODES) {
        push_error(plan, "NOT_READY", NULL, 0);
        return;
    }
    if (c == DCP_CMD_MONITOR) {
        push_monitor(plan, target);
        push_sent(plan, c, duty);
        return;
    }
    push_monitor(plan, DCP_MONITOR_OFF);
    if (target == self_id) {
        push_payload(plan, DCP_ACT_LOCAL, 0, c, duty);
        return;
    }
    if (target == DCP_TARGET_ALL) {
        push_payload(plan, DCP_ACT_LOCAL, 0, c, duty);
        push_payload(plan, DCP_ACT_MESH, DCP_GROUP_ADDR, c, duty);
    } else {
        push_payload(plan, DCP_ACT_MESH, dcp_addr_from_node(target), c, duty);
    }
    push_sent(plan, c, duty);
}

void dcp_plan_monitor_tick(uint8_t target, uint8_t self_id, bool unicast_busy, dcp_plan_t *plan)
{
    plan->count = 0;
    if (self_id >= DCP_MAX_NODES) {
        return;
    }
    if (target == DCP_TARGET_ALL || target == self_id) {
        push_payload(plan, DCP_ACT_LOCAL, 0, DCP_CMD_READ, 0);
        if (target == DCP_TARGET_ALL) {
            push_payload(plan, DCP_ACT_MESH, DCP_GROUP_ADDR, DCP_CMD_READ, 0);
        }
    } else if (target < DCP_MAX_NODES && !unicast_busy) {
        push_payload(plan, DCP_ACT_MESH, dcp_addr_from_node(target), DCP_CMD_READ, 0);
    }
}
