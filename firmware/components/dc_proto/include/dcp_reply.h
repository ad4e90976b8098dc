/* Messages the node notifies on 0xDC02. Every formatter writes a NUL-terminated message into
 * buf and returns its length, or -1 when an argument is invalid or buf is too small. */
#ifndef DCP_REPLY_H
#define DCP_REPLY_H

#include "dcp_command.h"

#define DCP_MSG_NODE_READY "NODE_READY"
#define DCP_MSG_GATEWAY_CONNECTED "GATEWAY_CONNECTED"
#define DCP_MSG_MESH_READY "MESH_READY:VENDOR"

#define DCP_ROLE_CHAR_UNIVERSAL 'U'
#define DCP_ROLE_CHAR_RELAY 'R'
#define DCP_CAP_INFO 0x0001u
#define DCP_CAP_ADV_MESH_ID 0x0002u
#define DCP_CAP_AUTH 0x0004u
/* node ids 0..99 in commands, answers to group SENDs staggered by node id (dcp_stagger.h) */
#define DCP_CAP_LARGE_MESH 0x0010u

typedef struct {
    const char *firmware; /* "x.y.z", at most 16 characters */
    const char *hardware; /* [A-Za-z0-9-]{1,16} */
    char role;            /* DCP_ROLE_CHAR_* */
    uint16_t capabilities;
    uint32_t uptime_s;
    uint32_t free_heap;
    uint32_t mesh_id;
    bool gateway;
} dcp_info_t;

/* |V x I| in tenths of a milliwatt, rounded half up. */
uint64_t dcp_power_dmw(int32_t voltage_mv, int32_t current_cma);

/* D:<duty>%,V:<V>V,I:<mA>mA,P:<mW>mW: a reading as a vendor STATUS carries it (v0.7
 * command.c:15-21); current in hundredths of a mA. The answer to read, duty:<n>, r and s. */
int dcp_fmt_reading(char *buf, size_t size, uint8_t duty, int32_t voltage_mv, int32_t current_cma);
/* NODE<id>:DATA:<reading>: the notification of a reading of node id 0..99. */
int dcp_fmt_data(char *buf, size_t size, uint8_t node, uint8_t duty, int32_t voltage_mv,
                 int32_t current_cma);
int dcp_fmt_info(char *buf, size_t size, uint8_t node, const dcp_info_t *info);
/*
 * The notification for a vendor STATUS text from unicast address src (or for the node's own
 * answer to a local payload, src = its own address). A text that starts with "NODE" (a v1 INFO
 * line) is notified as it is; any other (a reading, ERR:UNKNOWN:<x>) becomes
 * NODE<src - 5>:DATA:<text>, as v0.7 does (mesh_node.c:459-473: no cap on the id, a source below
 * 0x0005 gives NODE0). Bytes outside 0x20..0x7e and '+' become '?'. -1 when it does not fit (v0.7
 * drops it too).
 */
int dcp_fmt_status(char *buf, size_t size, uint16_t src, const uint8_t *text, size_t len);
/* SENT:<COMMAND>, SENT:DUTY:<n> for DUTY. */
int dcp_fmt_sent(char *buf, size_t size, dcp_cmd_t cmd, uint8_t duty);
/* ERROR:<kind>[:<detail>]; detail (may be NULL) is echoed upper-cased and sanitised. */
int dcp_fmt_error(char *buf, size_t size, const char *kind, const uint8_t *detail,
                  size_t detail_len);
/* TIMEOUT:0x<addr>, four lower-case hex digits. */
int dcp_fmt_timeout(char *buf, size_t size, uint16_t addr);
/* ERR:UNKNOWN:<payload>, payload sanitised (case kept). */
int dcp_fmt_err_unknown(char *buf, size_t size, const uint8_t *payload, size_t len);

#endif
