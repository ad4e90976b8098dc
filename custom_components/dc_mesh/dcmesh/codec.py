"""Encoding and decoding of the DC-Monitor wire protocol (v0.7 and v1).

Everything here is pure: bytes in, typed values out. Every decoding failure is a
`ProtocolError` with a stable `reason`; every encoding failure is a `CommandError`.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from .const import (
    BASE_UNICAST,
    GROUP_REPLY_SLOT,
    MAX_MESSAGE_LEN,
    MAX_NODES,
    MAX_NODES_LARGE,
    MAX_REPLY_NODE_ID,
    MAX_UNICAST,
    NOTIFY_CHUNK_SIZE,
    SERVICE_DATA_LEN,
    SERVICE_DATA_VERSION,
    UNPROVISIONED_NODE_ID,
)
from .exceptions import CommandError, ProtocolError
from .models import (
    Ack,
    Advertisement,
    AuthMessage,
    ErrorReply,
    Event,
    MeshTimeout,
    NodeError,
    NodeInfo,
    NodeRole,
    OnOff,
    OtaMessage,
    Reading,
    Sent,
    StatusLine,
    UnknownPayload,
)

CHUNK_PREFIX: Final = b"+"
# Every chunk but the last carries the prefix and this many bytes of the message.
_CHUNK_BODY: Final = NOTIFY_CHUNK_SIZE - len(CHUNK_PREFIX)

# Commands the node understands (v1 adds INFO); DUTY is the only one with a value.
COMMANDS: Final = frozenset(
    {"READ", "STATUS", "DUTY", "RAMP", "ON", "STOP", "OFF", "MONITOR", "INFO"}
)
DUTY_MIN: Final = 0
DUTY_MAX: Final = 100

# The largest values the firmware can print, so that no real reading is ever refused.
# v0.7 (command.c:15-21, sensor.c:139-140,166-167) prints float32: V = raw_u16 x 1.25 mV
# (65535 -> 81.919), I = |raw_s16| x 1.25 mA (-32768 -> 40960.00, never negative) and
# P = |V x I| (3355392.0). v1 prints fixed point: 81919 mV, -40960.00..40958.75 mA and
# P = |mV x cmA| rounded (81919 x -4096000 -> 3355402.2 mW, a little above v0.7's).
VOLTAGE_MAX: Final = 81.919
CURRENT_MAX_MA: Final = 40960.0
POWER_MAX_MW: Final = 3355402.2
U32_MAX: Final = 0xFFFFFFFF

STATUS_LINES: Final = frozenset(
    {
        "NODE_READY",
        "GATEWAY_READY",
        "GATEWAY_CONNECTED",
        "MESH_READY",
        "MESH_READY:VENDOR",
    }
)
# v0.7 passes 15 for the 16-byte literal "ERROR:NO_NODE_ID" (command_parser.c:55): the
# truncated kind means the same thing and is reported under the full name.
_ERROR_KIND_ALIASES: Final = {"NO_NODE_I": "NO_NODE_ID"}
# Nothing terminates a message on the wire; a sender that appends CR/LF (or a NUL) and
# the whitespace the Pi gateway stripped (dc_gateway.py:173) are tolerated.
_SPACE: Final = " \t\n\r\x0b\x0c"

# Message shapes. Keywords are case-sensitive, only the unit letters of DATA are not.
# Number fields are captured loosely here and checked after the node id, so that the
# reason reported follows the precedence unknown_message > bad_node_id > bad_number >
# out_of_range (see firmware/vectors/hostile_messages.tsv).
_NODE_RE: Final = re.compile(
    r"NODE(?P<id>[^:]*):(?P<kind>DATA|ACK|ONOFF|INFO):(?P<body>.*)", re.DOTALL
)
_DATA_RE: Final = re.compile(
    r"D:(?P<d>[^,]*)%,V:(?P<v>[^,]*)[Vv],I:(?P<i>[^,]*)[Mm][Aa],P:(?P<p>[^,]*)[Mm][Ww]"
)
_NODE_ERROR_RE: Final = re.compile(r"ERR:UNKNOWN:(?P<detail>.*)", re.DOTALL)
_INFO_RE: Final = re.compile(
    r"FW:(?P<fw>[^,]*),HW:(?P<hw>[A-Za-z0-9-]{1,16}),ROLE:(?P<role>[UR]),"
    r"CAP:(?P<cap>[^,]*),UP:(?P<up>[^,]*),HEAP:(?P<heap>[^,]*),MESH:(?P<mesh>[^,]*),"
    r"GW:(?P<gw>[^,]*)(?:,[A-Za-z0-9_]+:[^,]*)*"
)
_SENT_RE: Final = re.compile(r"SENT:(?P<cmd>.+?)(?P<fallback>\(fallback\))?", re.DOTALL)
_ERROR_RE: Final = re.compile(
    r"ERROR:(?P<kind>[A-Z0-9_]+)(?::(?P<detail>.+))?", re.DOTALL
)
_ERR_UNKNOWN_RE: Final = re.compile(r"ERR:UNKNOWN:(?P<detail>.+)", re.DOTALL)
_TIMEOUT_RE: Final = re.compile(r"TIMEOUT:(?P<addr>.*)", re.DOTALL)
_AUTH_RE: Final = re.compile(r"AUTH:(?:OK|N:[0-9a-f]{16}:[0-9a-f]{16})")
_OTA_RE: Final = re.compile(r"OTA:(?:OK|DONE|IDLE|ACK:[0-9]+|RX:[0-9]+:[0-9]+)")

# `%d` of src - 5: no sign, no leading zero.
_NODE_ID_RE: Final = re.compile(r"0|[1-9][0-9]{0,4}")
_UINT_RE: Final = re.compile(r"[0-9]+")
_DECIMAL_RE: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_ADDRESS_RE: Final = re.compile(r"0x[0-9A-Fa-f]{4}")
_SEMVER_RE: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
_HEX4_RE: Final = re.compile(r"[0-9A-Fa-f]{4}")
_HEX8_RE: Final = re.compile(r"[0-9A-Fa-f]{8}")
# The message that comes most, a reading as the firmware prints it, in one match. Anything
# else, or a value out of range, takes the general path (same Reading; the refusal's reason).
_READING_RE: Final = re.compile(
    rb"NODE(" + _NODE_ID_RE.pattern.encode() + rb"):DATA:D:([0-9]+)%,"
    rb"V:([0-9]+(?:\.[0-9]+)?)V,I:(-?[0-9]+(?:\.[0-9]+)?)mA,P:([0-9]+(?:\.[0-9]+)?)mW"
)

# How every message the firmware sends begins (v0.7 and v1). The reassembler uses it to
# resynchronise after a lost chunk: see `Reassembler`.
_MESSAGE_KEYWORDS: Final = (
    rb"NODE(?:[0-9]|_READY)",
    rb"SENT:",
    rb"ERROR:",
    rb"ERR:",
    rb"TIMEOUT:",
    rb"MESH_READY",
    rb"GATEWAY_",
    rb"AUTH:",
    rb"OTA:",
)
_MESSAGE_START: Final = re.compile(b"|".join(_MESSAGE_KEYWORDS))
# Their first bytes: most chunks that continue a message start with none of them (a cheaper
# test than the match, made first)
_MESSAGE_INITIALS: Final = frozenset(keyword[0] for keyword in _MESSAGE_KEYWORDS)


def node_id_from_address(addr: int) -> int | None:
    """Return the node id (0..99, the address plan) of a unicast address, or None if none."""
    node = addr - BASE_UNICAST
    return node if 0 <= node < MAX_NODES_LARGE else None


def reply_node_id_from_address(addr: int) -> int | None:
    """Return the node id replies use for a unicast address (no cap), None if none.

    v0.7 names a sender `NODE<addr - 5>` whatever its address, so a mesh provisioned
    beyond the plan reports ids that no command can target.
    """
    return addr - BASE_UNICAST if BASE_UNICAST <= addr <= MAX_UNICAST else None


def address_from_node_id(node: int) -> int:
    """Return the unicast address of node `node` (0..99)."""
    if not 0 <= node < MAX_NODES_LARGE:
        raise ValueError(f"node id {node} is not in 0..{MAX_NODES_LARGE - 1}")
    return BASE_UNICAST + node


def max_target(*, large_mesh: bool) -> int:
    """The highest node id a command can name: 99 through a gateway with CAP_LARGE_MESH, else 9."""
    return (MAX_NODES_LARGE if large_mesh else MAX_NODES) - 1


def group_reply_delay(node: int) -> float:
    """Seconds a node with CAP_LARGE_MESH waits before it answers a group SEND (section 10)."""
    return node * GROUP_REPLY_SLOT if 0 <= node < MAX_NODES_LARGE else 0.0


def encode_command(
    target: int | Literal["ALL"],
    command: str,
    value: int | None = None,
    *,
    large_mesh: bool = False,
) -> bytes:
    """Build the bytes to write to the command characteristic.

    `target` is "ALL" or a node id: 0..9, or 0..99 with `large_mesh` (the gateway has
    CAP_LARGE_MESH); `value` is the duty for DUTY and nothing else. Commands are a closed
    set, so the result ("ALL:MONITOR", "99:DUTY:100", ...) is never longer than 12 bytes,
    far within MAX_COMMAND_LEN.
    """
    if isinstance(target, str):
        if target.upper() != "ALL":
            raise CommandError(f"target {target!r} is neither ALL nor a node id")
        target_text = "ALL"
    elif isinstance(target, int) and not isinstance(target, bool):
        highest = max_target(large_mesh=large_mesh)
        if not 0 <= target <= highest:
            raise CommandError(f"node id {target} is not in 0..{highest}")
        target_text = str(target)
    else:
        raise CommandError(f"target {target!r} is neither ALL nor a node id")
    if not isinstance(command, str) or command.upper() not in COMMANDS:
        raise CommandError(f"unknown command {command!r}")
    command = command.upper()
    if command == "DUTY":
        if not isinstance(value, int) or isinstance(value, bool):
            raise CommandError(f"DUTY needs an integer value, got {value!r}")
        if not DUTY_MIN <= value <= DUTY_MAX:
            raise CommandError(f"duty {value} is not in {DUTY_MIN}..{DUTY_MAX}")
        text = f"{target_text}:DUTY:{value}"
    elif value is not None:
        raise CommandError(f"{command} takes no value")
    else:
        text = f"{target_text}:{command}"
    return text.encode("ascii")


def chunk_message(message: bytes) -> list[bytes]:
    """Split a message into the notifications a node sends for it."""
    if not message or message.startswith(CHUNK_PREFIX):
        raise ProtocolError(
            "unknown_message", "a message is not empty nor starts with '+'"
        )
    if len(message) > MAX_MESSAGE_LEN:
        raise ProtocolError("too_long", f"{len(message)} bytes > {MAX_MESSAGE_LEN}")
    chunks = []
    rest = message
    while len(rest) > NOTIFY_CHUNK_SIZE:
        chunks.append(CHUNK_PREFIX + rest[:_CHUNK_BODY])
        rest = rest[_CHUNK_BODY:]
    chunks.append(rest)
    return chunks


class Reassembler:
    """Joins notifications back into messages, and loses as little as possible.

    A '+' chunk continues the message, any other chunk (even an empty one) ends it. The
    firmware sends the chunks of one message back to back (gatt_service.c:58-87) but
    gives up the rest of a message when a notify fails, and skips a chunk when it runs
    out of buffers: the reader then sees a message with no end, which would swallow the
    next one. Every message starts with a known keyword (NODE<digit>, NODE_READY,
    SENT:, ERROR:, ERR:, TIMEOUT:, MESH_READY, GATEWAY_), so a chunk that starts with
    one while a partial message is pending starts a new message and the partial one is
    given up. A lost chunk thus costs only the message it belonged to.

    `feed` never raises. Every message given up (a dangling partial, a message over
    MAX_MESSAGE_LEN, a partial dropped by `reset`) adds one to `discarded`; a '+' flood
    that overflows is one message, whose chunks are skipped until it ends or a keyword
    starts the next. A chunk that starts with no keyword and nothing pending is kept:
    the parser decides what it is.
    """

    def __init__(self) -> None:
        """Start with no partial message."""
        self._parts: list[bytes | bytearray] = []
        self._length = 0
        self._skipping = False
        self.discarded = 0
        # Chunks fed so far, and the number of the chunk that began the partial message (or,
        # once `feed` returned a message, that message): a message that began before a
        # command was written cannot be its answer.
        self.fed = 0
        self.started = 0

    @property
    def pending(self) -> bool:
        """Whether a partial message is waiting for its last chunk."""
        return bool(self._parts) or self._skipping

    def reset(self) -> None:
        """Give up any partial message (call it on every new connection)."""
        if self._parts:
            self.discarded += 1
        self._clear()

    def _clear(self) -> None:
        self._parts.clear()
        self._length = 0
        self._skipping = False

    def feed(self, chunk: bytes | bytearray) -> bytes | None:
        """Add one notification; return the message it completes, if any."""
        self.fed += 1
        prefixed = chunk.startswith(CHUNK_PREFIX)
        body = chunk[len(CHUNK_PREFIX) :] if prefixed else chunk
        if (
            self.pending
            and body
            and body[0] in _MESSAGE_INITIALS
            and _MESSAGE_START.match(body)
        ):
            self.reset()  # the pending message lost its end: this one is new
        if self._skipping:
            if not prefixed:
                self._skipping = False  # the end of the overlong message
            return None
        if self._length + len(body) > MAX_MESSAGE_LEN:
            self.discarded += 1
            self._clear()
            self._skipping = prefixed
            return None
        if not self._parts:
            self.started = self.fed
        self._parts.append(body)
        self._length += len(body)
        if prefixed:
            return None
        message = b"".join(self._parts)
        self._clear()
        return message


def parse_message(message: bytes) -> Event:
    """Decode one reassembled message into a typed event.

    ASCII whitespace around the message and NUL bytes at its end are ignored.
    """
    if len(message) > MAX_MESSAGE_LEN:
        raise ProtocolError("too_long", f"{len(message)} bytes > {MAX_MESSAGE_LEN}")
    if (reading := _READING_RE.fullmatch(message)) is not None:
        node_text, duty_text, volts, milliamps, milliwatts = reading.groups()
        node_id = int(node_text)
        duty = int(duty_text)
        voltage = float(volts)
        current = float(milliamps)
        power = float(milliwatts)
        if (
            node_id <= MAX_REPLY_NODE_ID
            and duty <= DUTY_MAX
            and voltage <= VOLTAGE_MAX
            and abs(current) <= CURRENT_MAX_MA
            and power <= POWER_MAX_MW
        ):
            return Reading(
                node_id=node_id,
                duty=duty,
                voltage=voltage,
                current_ma=current,
                power_mw=power,
            )
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProtocolError("bad_utf8", str(err)) from None
    text = text.rstrip(_SPACE + "\x00").lstrip(_SPACE)
    if text in STATUS_LINES:
        return StatusLine(text)
    if match := _NODE_RE.fullmatch(text):
        return _parse_node(match["id"], match["kind"], match["body"])
    if match := _SENT_RE.fullmatch(text):
        return Sent(match["cmd"], match["fallback"] is not None)
    if match := _ERROR_RE.fullmatch(text):
        kind = _ERROR_KIND_ALIASES.get(match["kind"], match["kind"])
        return ErrorReply(kind, match["detail"])
    if match := _ERR_UNKNOWN_RE.fullmatch(text):
        return UnknownPayload(match["detail"])
    if _AUTH_RE.fullmatch(text):
        return AuthMessage(text)
    if _OTA_RE.fullmatch(text):
        return OtaMessage(text)
    if match := _TIMEOUT_RE.fullmatch(text):
        if not _ADDRESS_RE.fullmatch(match["addr"]):
            raise ProtocolError("bad_number", f"address {match['addr']!r}")
        address = int(match["addr"], 16)
        return MeshTimeout(address, reply_node_id_from_address(address))
    raise ProtocolError("unknown_message", repr(text[:64]))


def _parse_node(id_text: str, kind: str, body: str) -> Event:
    fields: re.Match[str] | None = None
    if kind == "DATA":
        fields = _DATA_RE.fullmatch(body) or _NODE_ERROR_RE.fullmatch(body)
    elif kind == "INFO":
        fields = _INFO_RE.fullmatch(body)
    if kind in {"DATA", "INFO"} and fields is None:
        raise ProtocolError("unknown_message", f"NODE{id_text}:{kind} {body[:64]!r}")
    if not _NODE_ID_RE.fullmatch(id_text) or int(id_text) > MAX_REPLY_NODE_ID:
        raise ProtocolError("bad_node_id", f"node id {id_text!r}")
    node_id = int(id_text)
    if fields is None:
        state = _in_range(_uint(body, kind.lower()), 0, 1, "on/off") == 1
        return Ack(node_id, state) if kind == "ACK" else OnOff(node_id, state)
    if kind == "INFO":
        return _parse_info(node_id, fields)
    if fields.re is _NODE_ERROR_RE:
        return NodeError(node_id, fields["detail"])
    return _parse_data(node_id, fields)


def _uint(text: str, name: str) -> int:
    if not _UINT_RE.fullmatch(text):
        raise ProtocolError("bad_number", f"{name} {text!r} is not an unsigned integer")
    return int(text)


def _decimal(text: str, name: str) -> float:
    if not _DECIMAL_RE.fullmatch(text):
        raise ProtocolError("bad_number", f"{name} {text!r} is not a decimal number")
    return float(text)


def _in_range[T: (int, float)](value: T, low: T, high: T, name: str) -> T:
    if not low <= value <= high:
        raise ProtocolError("out_of_range", f"{name} {value} is not in {low}..{high}")
    return value


def _parse_data(node_id: int, fields: re.Match[str]) -> Reading:
    duty = _uint(fields["d"], "duty")
    voltage = _decimal(fields["v"], "voltage")
    current = _decimal(fields["i"], "current")
    power = _decimal(fields["p"], "power")
    return Reading(
        node_id=node_id,
        duty=_in_range(duty, DUTY_MIN, DUTY_MAX, "duty"),
        voltage=_in_range(voltage, 0.0, VOLTAGE_MAX, "voltage"),
        current_ma=_in_range(current, -CURRENT_MAX_MA, CURRENT_MAX_MA, "current"),
        power_mw=_in_range(power, 0.0, POWER_MAX_MW, "power"),
    )


def _parse_info(node_id: int, fields: re.Match[str]) -> NodeInfo:
    if not _SEMVER_RE.fullmatch(fields["fw"]):
        raise ProtocolError("bad_number", f"firmware version {fields['fw']!r}")
    for key, pattern in (("cap", _HEX4_RE), ("mesh", _HEX8_RE)):
        if not pattern.fullmatch(fields[key]):
            raise ProtocolError("bad_number", f"{key} {fields[key]!r}")
    uptime = _uint(fields["up"], "uptime")
    free_heap = _uint(fields["heap"], "free heap")
    gateway = _uint(fields["gw"], "gateway flag")
    return NodeInfo(
        node_id=node_id,
        firmware=fields["fw"],
        hardware=fields["hw"],
        role=NodeRole(fields["role"]),
        capabilities=int(fields["cap"], 16),
        uptime=_in_range(uptime, 0, U32_MAX, "uptime"),
        free_heap=_in_range(free_heap, 0, U32_MAX, "free heap"),
        mesh_id=int(fields["mesh"], 16),
        gateway=_in_range(gateway, 0, 1, "gateway flag") == 1,
    )


_ROLE_BYTES: Final = {0x00: NodeRole.UNIVERSAL, 0x01: NodeRole.RELAY}


def parse_service_data(data: bytes) -> Advertisement:
    """Decode the 0xDC01 service data of a v1 advertisement.

    Bytes after the eighth are ignored, so a later format can append fields.
    """
    if len(data) < SERVICE_DATA_LEN:
        raise ProtocolError("too_short", f"{len(data)} bytes < {SERVICE_DATA_LEN}")
    if data[0] != SERVICE_DATA_VERSION:
        raise ProtocolError("bad_version", f"service data version {data[0]}")
    node_byte = data[5]
    if node_byte != UNPROVISIONED_NODE_ID and node_byte >= MAX_NODES_LARGE:
        raise ProtocolError("bad_node_id", f"node id {node_byte} >= {MAX_NODES_LARGE}")
    role = _ROLE_BYTES.get(data[6])
    if role is None:
        raise ProtocolError("out_of_range", f"role byte 0x{data[6]:02x}")
    return Advertisement(
        version=data[0],
        mesh_id=int.from_bytes(data[1:5], "big"),
        node_id=None if node_byte == UNPROVISIONED_NODE_ID else node_byte,
        role=role,
        flags=data[7],
    )
