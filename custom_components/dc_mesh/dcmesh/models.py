"""Typed values decoded from DC-Monitor messages and advertisements."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NodeRole(StrEnum):
    """What a node does in the mesh."""

    UNIVERSAL = "U"
    RELAY = "R"


class ProtocolMode(StrEnum):
    """The protocol the connected node speaks, found by the INFO negotiation."""

    LEGACY = "v0.7"
    V1 = "v1"


@dataclass(frozen=True, slots=True)
class Reading:
    """`NODE<id>:DATA:...`: one sensor reading of a node."""

    node_id: int
    duty: int
    voltage: float
    current_ma: float
    power_mw: float


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """`NODE<id>:INFO:...` (v1): what a node is and how it is doing."""

    node_id: int
    firmware: str
    hardware: str
    role: NodeRole
    capabilities: int
    uptime: int
    free_heap: int
    mesh_id: int
    gateway: bool


@dataclass(frozen=True, slots=True)
class Sent:
    """`SENT:<COMMAND>`: the connected node forwarded a command over the mesh."""

    command: str
    fallback: bool


@dataclass(frozen=True, slots=True)
class Ack:
    """`NODE<id>:ACK:<n>`: a node applied duty `n`."""

    node_id: int
    duty: int


@dataclass(frozen=True, slots=True)
class OnOff:
    """`NODE<id>:ONOFF:<0|1>`: the on/off state of a node."""

    node_id: int
    on: bool


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """`ERROR:<kind>[:<detail>]`: the connected node refused or failed a command."""

    kind: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class MeshTimeout:
    """`TIMEOUT:0x<addr>`: a unicast target did not answer over the mesh."""

    address: int
    node_id: int | None


@dataclass(frozen=True, slots=True)
class StatusLine:
    """`NODE_READY`, `GATEWAY_CONNECTED`, `MESH_READY:VENDOR`."""

    text: str


@dataclass(frozen=True, slots=True)
class UnknownPayload:
    """`ERR:UNKNOWN[:<x>]`: a node could not parse a mesh payload."""

    detail: str


type Event = (
    Reading
    | NodeInfo
    | Sent
    | Ack
    | OnOff
    | ErrorReply
    | MeshTimeout
    | StatusLine
    | UnknownPayload
)


@dataclass(frozen=True, slots=True)
class Advertisement:
    """The 0xDC01 service data a v1 node advertises."""

    version: int
    mesh_id: int
    node_id: int | None
    role: NodeRole
    flags: int

    @property
    def client_connected(self) -> bool:
        """Whether a GATT client is connected to the node (flag bit 0)."""
        return bool(self.flags & 0x01)

    @property
    def mesh_ready(self) -> bool:
        """Whether the node's mesh is ready (flag bit 1)."""
        return bool(self.flags & 0x02)
