"""The simulated firmware's own view of the wire format.

Written independently of the integration's protocol package so that tests comparing
the two are not tautological: command parsing, message formatting and 20-byte '+'
chunking as a DC-Monitor node does them.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_UUID = "0000dc01-0000-1000-8000-00805f9b34fb"
DATA_CHAR_UUID = "0000dc02-0000-1000-8000-00805f9b34fb"
COMMAND_CHAR_UUID = "0000dc03-0000-1000-8000-00805f9b34fb"
LOCAL_NAME = "DC-Monitor"
BASE_UNICAST = 0x0005
GROUP_ADDR = 0xC000
MAX_NODES = 10
MAX_COMMAND_LEN = 64
CHUNK_SIZE = 20
DEFAULT_DUTY = 50


MAX_QUEUED_UNICASTS = 4

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


def parse_command(raw: bytes, *, info_supported: bool) -> Command:
    """Parse a write to 0xDC03 (at most 64 bytes) or raise CommandRejectedError.

    Checks in the firmware's order: empty target, bad target, no command, unknown
    command, bad DUTY value.
    """
    target_raw, _, rest = raw.partition(b":")
    command_raw, _, value_raw = rest.partition(b":")
    if not target_raw:
        raise CommandRejectedError("ERROR:NO_NODE_ID")
    target: int | None
    if target_raw.upper() == b"ALL":
        target = None
    elif len(target_raw) == 1 and target_raw.isdigit():
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


def format_data(node_id: int, duty: int, millivolts: int, centi_ma: int) -> str:
    """Format a reading from the firmware's fixed-point values.

    P = |V x I| in tenths of a milliwatt, rounded half up.
    """
    deci_mw = (abs(millivolts * centi_ma) + 5000) // 10000
    sign = "-" if centi_ma < 0 else ""
    return (
        f"NODE{node_id}:DATA:D:{duty}%,"
        f"V:{millivolts // 1000}.{millivolts % 1000:03d}V,"
        f"I:{sign}{abs(centi_ma) // 100}.{abs(centi_ma) % 100:02d}mA,"
        f"P:{deci_mw // 10}.{deci_mw % 10}mW"
    )


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
