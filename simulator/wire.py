"""The simulated firmware's own view of the wire format.

Written independently of the integration's protocol package so that tests comparing
the two are not tautological: command parsing, message formatting and 20-byte '+'
chunking as a DC-Monitor node does them.
"""

from __future__ import annotations

from dataclasses import dataclass
import struct

SERVICE_UUID = "0000dc01-0000-1000-8000-00805f9b34fb"
DATA_CHAR_UUID = "0000dc02-0000-1000-8000-00805f9b34fb"
COMMAND_CHAR_UUID = "0000dc03-0000-1000-8000-00805f9b34fb"
LOCAL_NAME = "DC-Monitor"
BASE_UNICAST = 0x0005
GROUP_ADDR = 0xC000
# Node ids in commands: v1 with the large-mesh capability (0010) takes 0..99 (one digit, or
# two without a leading zero; addresses 0x0005..0x0068), v0.7 and older v1 take 0..9.
MAX_NODES = 100
V07_MAX_NODES = 10
CAP_LARGE_MESH = 0x0010
# A large-mesh node answers a group SEND node id x this many ms later (firmware
# DCP_STAGGER_SLOT_MS); the simulator scales it with its latencies (`Latencies.stagger_slot`).
STAGGER_SLOT_MS = 100
STAGGER_SLOTS = 4
MAX_COMMAND_LEN = 64
CHUNK_SIZE = 20
DEFAULT_DUTY = 50


MAX_QUEUED_UNICASTS = 4
# v0.7: the command buffer (gatt_service.h COMMAND_MAX_LEN; longer writes are cut, not
# refused), the echo buffers `char resp[48]` and the notify buffer (SENSOR_DATA_MAX_LEN 128).
V07_COMMAND_LEN = 64
V07_ECHO_MAX = 47
V07_MESSAGE_MAX = 127

COMMAND_PAYLOADS = {
    "READ": "read",
    "STATUS": "read",
    "DUTY": "duty",
    "RAMP": "r",
    "ON": "r",
    "STOP": "s",
    "OFF": "s",
    "INFO": "info",
    "MONITOR": None,
}


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command.

    `target` is a node id or None for ALL; `name` the upper-case command as written
    (SENT echoes it); `payload` the mesh payload (`duty:<n>` resolved), None for
    MONITOR.
    """

    target: int | None
    name: str
    payload: str | None

    @property
    def sent(self) -> str:
        """Return the SENT acknowledgement for this command."""
        if self.payload is not None and self.payload.startswith("duty:"):
            return f"SENT:DUTY:{self.payload.removeprefix('duty:')}"
        return f"SENT:{self.name}"


class CommandRejectedError(Exception):
    """The command is answered with this error line instead of being executed."""

    def __init__(self, line: str) -> None:
        """Keep the error line to notify."""
        super().__init__(line)
        self.line = line


def sanitise(raw: bytes, *, upper: bool) -> str:
    """Echo untrusted bytes: outside 0x20..0x7E and '+' become '?'."""
    text = "".join(
        chr(byte) if 0x20 <= byte <= 0x7E and byte != ord("+") else "?" for byte in raw
    )
    return text.upper() if upper else text


def _is_node_id(raw: bytes, *, large_mesh: bool) -> bool:
    """One ASCII digit; with the large-mesh capability also two without a leading zero."""
    digits = all(0x30 <= byte <= 0x39 for byte in raw)
    if len(raw) == 1:
        return digits
    return large_mesh and len(raw) == 2 and digits and raw[0] != 0x30


def parse_command(
    raw: bytes, *, info_supported: bool, large_mesh: bool = True
) -> Command:
    """Parse a write to 0xDC03 (at most 64 bytes) or raise CommandRejectedError.

    Checks in the firmware's order: empty target, bad target, no command, unknown
    command, bad DUTY value. `large_mesh`: targets 0..99 (else 0..9).
    """
    target_raw, _, rest = raw.partition(b":")
    command_raw, _, value_raw = rest.partition(b":")
    if not target_raw:
        raise CommandRejectedError("ERROR:NO_NODE_ID")
    target: int | None
    if target_raw.upper() == b"ALL":
        target = None
    elif _is_node_id(target_raw, large_mesh=large_mesh):
        target = int(target_raw)
    else:
        raise CommandRejectedError("ERROR:INVALID_NODE")
    if not command_raw:
        raise CommandRejectedError("ERROR:NO_COMMAND")
    name = sanitise(command_raw, upper=True)
    if name not in COMMAND_PAYLOADS or (name == "INFO" and not info_supported):
        raise CommandRejectedError(f"ERROR:UNKNOWN_CMD:{name}")
    payload = COMMAND_PAYLOADS[name]
    if payload == "duty":
        if not value_raw:
            payload = f"duty:{DEFAULT_DUTY}"
        elif (duty := parse_duty(value_raw)) is not None:
            payload = f"duty:{duty}"
        else:
            raise CommandRejectedError(
                f"ERROR:INVALID_VALUE:{sanitise(value_raw, upper=True)}"
            )
    return Command(target=target, name=name, payload=payload)


def parse_duty(raw: bytes) -> int | None:
    """Return a duty of 1..3 ASCII digits up to 100, None otherwise."""
    if not 1 <= len(raw) <= 3 or not all(0x30 <= byte <= 0x39 for byte in raw):
        return None
    duty = int(raw)
    return duty if duty <= 100 else None


def format_reading(duty: int, millivolts: int, centi_ma: int) -> str:
    """Format a reading (a STATUS text, no node id) from v1's fixed-point values.

    P = |V x I| in tenths of a milliwatt, rounded half up.
    """
    deci_mw = (abs(millivolts * centi_ma) + 5000) // 10000
    sign = "-" if centi_ma < 0 else ""
    return (
        f"D:{duty}%,"
        f"V:{millivolts // 1000}.{millivolts % 1000:03d}V,"
        f"I:{sign}{abs(centi_ma) // 100}.{abs(centi_ma) % 100:02d}mA,"
        f"P:{deci_mw // 10}.{deci_mw % 10}mW"
    )


def format_data(node_id: int, duty: int, millivolts: int, centi_ma: int) -> str:
    """Format a v1 reading notification: `NODE<id>:DATA:` and the reading."""
    return f"NODE{node_id}:DATA:{format_reading(duty, millivolts, centi_ma)}"


def _f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def format_reading_v07(duty: int, volt_counts: int, amp_counts: int) -> str:
    """Format a reading as v0.7 does, from the INA260 register counts.

    command.c:15-21 and sensor.c:139-140,166-167: float32 arithmetic (each product and
    quotient rounded to float32 as the C code does), the current made positive.
    """
    volts = _f32(_f32(volt_counts * 1.25) / 1000.0)
    milliamps = abs(_f32(amp_counts * 1.25))
    milliwatts = abs(_f32(volts * milliamps))
    return "D:%d%%,V:%.3fV,I:%.2fmA,P:%.1fmW" % (  # noqa: UP031  (printf, as the C code)
        duty,
        volts,
        milliamps,
        milliwatts,
    )


def atoi(raw: bytes) -> int:
    """C `atoi` (newlib: strtol clamped to 32 bits): spaces, a sign, digits, then stop."""
    text = raw.lstrip(b" \t\n\v\f\r")
    sign = -1 if text[:1] == b"-" else 1
    if text[:1] in (b"-", b"+"):
        text = text[1:]
    digits = b""
    for byte in text:
        if not 0x30 <= byte <= 0x39:
            break
        digits += bytes([byte])
    value = sign * int(digits) if digits else 0
    return max(-(2**31), min(2**31 - 1, value))


@dataclass(frozen=True, slots=True)
class LegacyCommand:
    """A command as v0.7 parses it (command_parser.c:38-124).

    `target` is a node id or None for ALL; `token` the command as typed (SENT and
    UNKNOWN_CMD echo it); `payload` the vendor payload, None for MONITOR and for an
    unknown command (the node stops a monitor before it finds out).
    """

    target: int | None
    token: str
    payload: str | None

    @property
    def name(self) -> str:
        """The command in upper case (strcasecmp)."""
        return self.token.upper()

    @property
    def is_monitor(self) -> bool:
        """MONITOR: the one command that does not stop a running monitor."""
        return self.name == "MONITOR"

    @property
    def sent(self) -> str:
        """`SENT:<token>` in v0.7's 48-byte buffer."""
        return f"SENT:{self.token}"[:V07_ECHO_MAX]

    @property
    def unknown(self) -> str:
        """`ERROR:UNKNOWN_CMD:<token>` in v0.7's 48-byte buffer."""
        return f"ERROR:UNKNOWN_CMD:{self.token}"[:V07_ECHO_MAX]


_V07_PAYLOADS = {
    "RAMP": "r",
    "STOP": "s",
    "OFF": "s",
    "ON": "r",
    "STATUS": "read",
    "READ": "read",
}


def parse_command_v07(raw: bytes) -> LegacyCommand:
    """Parse a write to 0xDC03 as v0.7 does, or raise CommandRejectedError.

    The write is cut to 64 bytes and read as a C string (up to a NUL); `strtok(":")`
    splits it, so empty fields collapse (`1::DUTY::40` is `1:DUTY:40`) and tokens after
    the value are ignored. The target is ALL or `atoi` of the first token (`abc` is
    node 0); DUTY's value is `atoi` of the third (50 without one), not range-checked.
    """
    text = raw[:V07_COMMAND_LEN].split(b"\0", 1)[0]
    tokens = [token for token in text.split(b":") if token]
    if not tokens:
        # 15 bytes of the 16-byte literal "ERROR:NO_NODE_ID" (command_parser.c:55)
        raise CommandRejectedError("ERROR:NO_NODE_ID"[:15])
    target: int | None = None
    if tokens[0].upper() != b"ALL":
        target = atoi(tokens[0])
        if not 0 <= target < V07_MAX_NODES:
            raise CommandRejectedError("ERROR:INVALID_NODE")
    if len(tokens) < 2:
        raise CommandRejectedError("ERROR:NO_COMMAND")
    token = tokens[1].decode("latin-1")
    name = token.upper()
    payload = _V07_PAYLOADS.get(name)
    if name == "DUTY":
        payload = f"duty:{atoi(tokens[2]) if len(tokens) > 2 else DEFAULT_DUTY}"
    return LegacyCommand(target=target, token=token, payload=payload)


def parse_payload_v07(payload: str) -> tuple[str, int | None] | None:
    """What a v0.7 vendor server does with a payload (command.c:24-67).

    Returns ("set", duty) (duty clamped later), ("ramp", None), ("read", None), or None
    for an unknown payload (answered `ERR:UNKNOWN:<payload>`).
    """
    if payload in ("s", "stop"):
        return ("set", 0)
    if payload in ("r", "ramp"):
        return ("ramp", None)
    if payload.startswith("duty:"):
        return ("set", atoi(payload[5:].encode("latin-1")))
    if payload in ("read", "status"):
        return ("read", None)
    # a bare number: strtol consumed it all (spaces, a sign, at least one digit)
    raw = payload.encode("latin-1")
    stripped = raw.lstrip(b" \t\n\v\f\r")
    body = stripped[1:] if stripped[:1] in (b"-", b"+") else stripped
    if body and all(0x30 <= byte <= 0x39 for byte in body):
        return ("set", atoi(raw))
    return None


def forward_status(source: int, text: str, *, v07: bool) -> str | None:
    """The notification a gateway makes of a vendor STATUS from `source` (None: dropped).

    v0.7 (mesh_node.c:459-473) prefixes `NODE<source - 5>:DATA:` (NODE0 below 0x0005,
    no cap) and drops what reaches 128 bytes. v1 does the same but passes a STATUS that
    starts with `NODE` (its INFO line) through and sanitises the text.
    """
    if v07 or not text.startswith("NODE"):
        node = source - BASE_UNICAST if source >= BASE_UNICAST else 0
        text = f"NODE{node}:DATA:{text}"
    if not v07:
        text = sanitise(text.encode("latin-1"), upper=False)
    return text if len(text) <= V07_MESSAGE_MAX else None


def chunk(message: bytes) -> list[bytes]:
    """Split a message into notifications: '+' plus 19 bytes, the rest unprefixed."""
    chunks: list[bytes] = []
    while len(message) > CHUNK_SIZE:
        chunks.append(b"+" + message[: CHUNK_SIZE - 1])
        message = message[CHUNK_SIZE - 1 :]
    chunks.append(message)
    return chunks


def address(node: int) -> int:
    """Unicast address of a node id."""
    return node + BASE_UNICAST


@dataclass(slots=True)
class Held[T]:
    """An answer waiting in a `Stagger`: where it goes, when, its text and its context."""

    dst: int
    kind: str  # reading, info or unknown
    due: float
    text: str
    context: T


def answer_kind(text: str) -> str:
    """What a STATUS text is, for `Stagger`: an INFO line, an ERR:UNKNOWN, else a reading."""
    if text.startswith("NODE"):
        return "info"
    return "unknown" if text.startswith("ERR:") else "reading"


class Stagger[T]:
    """Answers to group SENDs held node id x slot (firmware dcp_stagger.c, stagger.tsv).

    Times are seconds. A second answer of the same kind (`answer_kind`) for the same
    source replaces the text (and the context) and keeps the due time; others wait side by
    side, at most `STAGGER_SLOTS`: a further one sends the answer due first at once. `take` hands out due answers in due order
    (ties: the lower slot; a free slot is taken lowest first).
    """

    def __init__(self) -> None:
        """Hold nothing."""
        self._slots: list[Held[T] | None] = [None] * STAGGER_SLOTS

    @staticmethod
    def delay(node_id: int, destination: int, slot: float) -> float:
        """How long a node waits before it answers a SEND to `destination`."""
        if destination != GROUP_ADDR or not 0 <= node_id < MAX_NODES:
            return 0.0
        return node_id * slot

    def put(
        self, now: float, delay: float, dst: int, *, kind: str, text: str, context: T
    ) -> Held[T] | None:
        """Hold an answer; return the one evicted to make room (send it now), if any."""
        for held in self._slots:
            if held is not None and held.dst == dst and held.kind == kind:
                held.text, held.context = text, context
                return None
        entry = Held(dst, kind, now + delay, text, context)
        for index, held in enumerate(self._slots):
            if held is None:
                self._slots[index] = entry
                return None
        index = self._first()
        evicted = self._slots[index]
        self._slots[index] = entry
        return evicted

    def take(self, now: float) -> Held[T] | None:
        """The answer due first, if due by `now`; it is released."""
        if not self or (held := self._slots[index := self._first()]) is None:
            return None
        if held.due > now + 1e-9:
            return None
        self._slots[index] = None
        return held

    def wait(self, now: float) -> float | None:
        """Seconds until the next answer is due (0: now), None when none is held."""
        if not self:
            return None
        held = self._slots[self._first()]
        assert held is not None
        return max(0.0, held.due - now)

    def clear(self) -> None:
        """Forget every held answer (a reboot)."""
        self._slots = [None] * STAGGER_SLOTS

    def __bool__(self) -> bool:
        """Whether an answer is held."""
        return any(held is not None for held in self._slots)

    def _first(self) -> int:
        used = [i for i, held in enumerate(self._slots) if held is not None]
        return min(used, key=lambda i: (self._slots[i].due, i))  # type: ignore[union-attr]
