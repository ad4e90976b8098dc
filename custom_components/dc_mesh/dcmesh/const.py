"""Constants of the DC-Monitor wire protocol (v0.7 and v1)."""

from __future__ import annotations

from typing import Final

SERVICE_UUID: Final = "0000dc01-0000-1000-8000-00805f9b34fb"
DATA_CHAR_UUID: Final = "0000dc02-0000-1000-8000-00805f9b34fb"
COMMAND_CHAR_UUID: Final = "0000dc03-0000-1000-8000-00805f9b34fb"

LOCAL_NAME: Final = "DC-Monitor"

# Node id = unicast address - BASE_UNICAST. The address plan (protocol section 10) gives ids
# 0..99 (0x0005..0x0068): a gateway with CAP_LARGE_MESH takes them in commands (one digit, or
# two without a leading zero); v0.7 and v1 gateways without it take one digit: 0..9.
MAX_NODES: Final = 10
MAX_NODES_LARGE: Final = 100
BASE_UNICAST: Final = 0x0005
GROUP_ADDR: Final = 0xC000
# Nodes with CAP_LARGE_MESH answer a group SEND node id x this many seconds after they got it
# (protocol section 10), so the answers of a large mesh reach the gateway one after the other.
GROUP_REPLY_SLOT: Final = 0.1
# Replies name the sender as `NODE<src - BASE_UNICAST>` with no cap (v0.7 mesh_node.c:459):
# a mesh provisioned beyond the plan reports ids that no command can target. The largest
# unicast address bounds the ids a reply can carry.
MAX_UNICAST: Final = 0x7FFF
MAX_REPLY_NODE_ID: Final = MAX_UNICAST - BASE_UNICAST

# The mesh GATT proxy path limits the ATT MTU to 23, so a notification carries 20 bytes.
NOTIFY_CHUNK_SIZE: Final = 20
# A command written to 0xDC03 is at most 64 bytes of ASCII.
MAX_COMMAND_LEN: Final = 64
# Readers bound a reassembled message to this many bytes.
MAX_MESSAGE_LEN: Final = 512

# Service data (UUID 0xDC01) of a v1 advertisement.
SERVICE_DATA_VERSION: Final = 0x01
SERVICE_DATA_LEN: Final = 8
UNPROVISIONED_NODE_ID: Final = 0xFF

# INFO capability bits (CAP, protocol section 4).
CAP_INFO: Final = 0x0001
CAP_ADV_MESH_ID: Final = 0x0002
CAP_AUTH: Final = 0x0004  # state-changing commands need a session (section 7)
# node ids 0..99 in commands, group answers staggered by node id (section 10)
CAP_LARGE_MESH: Final = 0x0010
