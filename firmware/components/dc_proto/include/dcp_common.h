/* DC Mesh protocol core: shared constants (docs/protocol-v1.md). Portable C11, no ESP-IDF. */
#ifndef DCP_COMMON_H
#define DCP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Node ids 0..99 (docs/protocol-v1.md section 10): node id = unicast address - 0x0005, so the
 * address plan is 0x0005..0x0068. A command names a node with one digit, or two without a leading
 * zero (capability 0010); v0.7 and older v1 firmware take one digit only. */
#define DCP_MAX_NODES 100u
#define DCP_BASE_UNICAST 0x0005u
#define DCP_GROUP_ADDR 0xC000u
#define DCP_MAX_COMMAND_LEN 64u
#define DCP_NOTIFY_CHUNK_SIZE 20u
/* Readers bound a reassembled message to this many bytes. */
#define DCP_MAX_MESSAGE_LEN 512u
/* Buffer for any message the firmware formats itself, terminating NUL included. */
#define DCP_MESSAGE_MAX 128u
/* Longest mesh payload the firmware sends ("duty:100" is the longest), NUL included. */
#define DCP_PAYLOAD_MAX 16u

/* Node id of a node that has no unicast address yet. */
#define DCP_NODE_NONE 0xFFu
/* Command target "ALL" (also a monitor target). */
#define DCP_TARGET_ALL 0xFEu

/* Node id for a unicast address; false when the address is not a node's (0x0005..0x0068). */
bool dcp_node_from_addr(uint16_t addr, uint8_t *node);
/* Unicast address of node id 0..99. */
uint16_t dcp_addr_from_node(uint8_t node);

#endif
