"""Constants of the DC-Monitor wire protocol (v0.7 and v1)."""

from __future__ import annotations

from typing import Final

SERVICE_UUID: Final = "0000dc01-0000-1000-8000-00805f9b34fb"
DATA_CHAR_UUID: Final = "0000dc02-0000-1000-8000-00805f9b34fb"
COMMAND_CHAR_UUID: Final = "0000dc03-0000-1000-8000-00805f9b34fb"

LOCAL_NAME: Final = "DC-Monitor"

# Node ids 0..9 are valid in commands; node id = unicast address - BASE_UNICAST.
MAX_NODES: Final = 10
BASE_UNICAST: Final = 0x0005
GROUP_ADDR: Final = 0xC000
# Replies name the sender as `NODE<src - BASE_UNICAST>` with no cap (v0.7 mesh_node.c:459):
# a mesh provisioned beyond ten nodes reports NODE10, NODE11, ... that no command can
# target. The largest unicast address bounds the ids a reply can carry.
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
