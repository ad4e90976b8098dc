/* Commands written to 0xDC03: parsing and the action plan a node carries out. */
#ifndef DCP_COMMAND_H
#define DCP_COMMAND_H

#include "dcp_common.h"

typedef enum {
    DCP_CMD_READ,
    DCP_CMD_STATUS,
    DCP_CMD_DUTY,
    DCP_CMD_RAMP,
    DCP_CMD_ON,
    DCP_CMD_STOP,
    DCP_CMD_OFF,
    DCP_CMD_MONITOR,
    DCP_CMD_INFO,
    DCP_CMD_COUNT
} dcp_cmd_t;

typedef enum {
    DCP_ACT_LOCAL,     /* handle text (a mesh payload) on this node */
    DCP_ACT_MESH,      /* vendor SEND of text (a mesh payload) to dst */
    DCP_ACT_REPLY,     /* notify text on 0xDC02 */
    DCP_ACT_MONITOR,   /* arg: node id, DCP_TARGET_ALL or DCP_MONITOR_OFF */
    DCP_ACT_ATT_ERROR, /* refuse the write with ATT error arg */
} dcp_action_kind_t;

#define DCP_MONITOR_OFF 0xFFu
#define DCP_ATT_ERR_INVALID_LEN 0x0Du
#define DCP_PLAN_MAX_ACTIONS 4u
/* Longest action text: "ERROR:UNKNOWN_CMD:" plus a 62-byte echo, NUL included. */
#define DCP_ACTION_TEXT_MAX 96u

typedef struct {
    dcp_action_kind_t kind;
    uint16_t dst;
    uint8_t arg;
    uint8_t len;
    char text[DCP_ACTION_TEXT_MAX];
} dcp_action_t;

typedef struct {
    size_t count;
    dcp_action_t actions[DCP_PLAN_MAX_ACTIONS];
} dcp_plan_t;

/* Upper-case name of a command ("READ", ...); NULL for an invalid value. */
const char *dcp_cmd_name(dcp_cmd_t cmd);

/*
 * What a node whose own id is self_id (DCP_NODE_NONE when not ready) does with the bytes
 * written to 0xDC03. Never fails: errors become a reply or an ATT error action.
 */
void dcp_plan_command(const uint8_t *cmd, size_t len, uint8_t self_id, dcp_plan_t *plan);

/* One MONITOR poll of target (node id or DCP_TARGET_ALL); empty when nothing is due. */
void dcp_plan_monitor_tick(uint8_t target, uint8_t self_id, bool unicast_busy, dcp_plan_t *plan);

#endif
