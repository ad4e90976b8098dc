"""Typed values decoded from DC-Monitor messages and advertisements."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .const import CAP_LARGE_MESH


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
    """`NODE<id>:DATA:D:<duty>%,V:<V>V,I:<mA>mA,P:<mW>mW`: one sensor reading of a node.

    The answer to READ/STATUS and also to DUTY, RAMP/ON and STOP/OFF (`duty` is the duty
    after the command). `node_id` is the sender's unicast address - 5: 0..99 in the address
    plan (a command reaches 10..99 only through a gateway with CAP_LARGE_MESH), possibly
    higher from a mesh provisioned beyond it. v0.7 prints V and I from float32 (I is never
    negative there); v1 prints fixed point and may report a negative current.
    """

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

    @property
    def large_mesh(self) -> bool:
        """Whether the node takes node ids 0..99 and staggers its group answers (CAP 0010)."""
        return bool(self.capabilities & CAP_LARGE_MESH)


@dataclass(frozen=True, slots=True)
class Sent:
    """`SENT:<COMMAND>`: the connected node forwarded a command over the mesh."""

    command: str
    fallback: bool


@dataclass(frozen=True, slots=True)
class Ack:
    """`NODE<id>:ACK:<0|1>`: Generic OnOff status, the answer to a fallback OnOff SET.

    Only a v0.7 node in fallback mode (vendor client unbound) sends it, after
    `SENT:ON(fallback)` / `SENT:OFF(fallback)`: `on` is the present OnOff state the
    target reported, i.e. whether its load is now at 100 % (True) or 0 % (False). It is
    never an acknowledgement of a duty.
    """

    node_id: int
    on: bool


@dataclass(frozen=True, slots=True)
class OnOff:
    """`NODE<id>:ONOFF:<0|1>`: Generic OnOff GET status (v0.7 has it, never triggers it)."""

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
    """A status line, `text` exactly as sent.

    `MESH_READY:VENDOR` (the vendor client got bound: fallback mode is over),
    `MESH_READY` (old dedicated gateway: some other model got bound),
    `GATEWAY_CONNECTED`, and the initial read value of 0xDC02: `NODE_READY` (universal
    node) or `GATEWAY_READY` (old gateway).
    """

    text: str


@dataclass(frozen=True, slots=True)
class UnknownPayload:
    """`ERR:UNKNOWN:<x>` without a node id: how early v1 builds reported a refused payload.

    Current firmware (v0.7 and v1) sends `NODE<id>:DATA:ERR:UNKNOWN:<x>` (`NodeError`).
    """

    detail: str


@dataclass(frozen=True, slots=True)
class NodeError:
    """`NODE<id>:DATA:ERR:UNKNOWN:<x>`: node `id` refused the mesh payload `<x>`.

    The sender's vendor server did not know the payload; only a foreign vendor client
    can cause it (this integration sends only known payloads). `detail` is the payload
    as echoed, possibly empty.
    """

    node_id: int
    detail: str


@dataclass(frozen=True, slots=True)
class AuthMessage:
    """A handshake message of an authenticated session (v1, protocol section 7).

    `AUTH:N:<node nonce>:<node proof>` (the challenge) or `AUTH:OK`, `text` as sent.
    """

    text: str


@dataclass(frozen=True, slots=True)
class OtaMessage:
    """A firmware-update message (v1, protocol section 9), `text` as sent.

    `OTA:OK`, `OTA:ACK:<next>`, `OTA:RX:<next>:<size>`, `OTA:DONE`, `OTA:IDLE`; the update
    client (`ota.py`) reads them, everyone else ignores them.
    """

    text: str


type Event = (
    Reading
    | AuthMessage
    | OtaMessage
    | NodeInfo
    | Sent
    | Ack
    | OnOff
    | ErrorReply
    | MeshTimeout
    | StatusLine
    | UnknownPayload
    | NodeError
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
