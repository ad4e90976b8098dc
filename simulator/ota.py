"""The firmware update receiver of v1 universal nodes (docs/protocol-v1.md section 9).

`OtaReceiver` is the state machine of the firmware's `dcp_ota.c`, line for line: the OTA
commands written to 0xDC03 (`OTA:SHA`, `OTA:VER`, `OTA:BEGIN`, `OTA:ABORT`, `OTA:STATUS`),
the chunks written to 0xDC04 (offset u32 little-endian + 1..240 data bytes) and the
acknowledgements. `Flash` is the update slot (what `esp_ota_*` does on the device): it
keeps what is written, counts writes per byte (no byte may be written twice) and, at the
end, checks the image the way `esp_ota_end` and the node's glue do.

Simulated images (`build_image`) carry an ESP-IDF-like app descriptor (magic 0xABCD5432 at
offset 32, version at 48, project name at 80, as `esp_app_desc_t` after the image and
segment headers), so the slot's final check can read the version and project back. A
simulator convention marks a bad image: `SELFTEST:FAIL` in the descriptor's time field
(offset 112): such an image installs, boots, fails its self-test and rolls back.
Checked against firmware/vectors/ota.tsv (tests/simulator/test_ota.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import hashlib
import random
import re
from typing import Final, Protocol

OTA_CHAR_UUID: Final = "0000dc04-0000-1000-8000-00805f9b34fb"
CAP_OTA: Final = 0x0008
WINDOW: Final = 4096  # an ACK each time `next` crosses a multiple of this
HEADER_LEN: Final = 4
CHUNK_MAX: Final = 240
WRITE_MAX: Final = HEADER_LEN + CHUNK_MAX
SHA_LEN: Final = 32
# The standard partition table's update slot (firmware partitions.csv).
SLOT_SIZE: Final = 1966080
# The 16-slot queue between the BLE callbacks and the app task (firmware gatt_svc.c).
APP_QUEUE_SLOTS: Final = 16

_PIECES: Final = ((0, 12), (12, 12), (24, 8))  # OTA:SHA:<i>: (offset, length)
_VERSION_RE: Final = re.compile(rb"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")

APP_DESC_MAGIC: Final = 0xABCD5432
DESC_MAGIC_AT: Final = 32
DESC_VERSION_AT: Final = 48
DESC_PROJECT_AT: Final = 80
DESC_TIME_AT: Final = 112
SELFTEST_FAIL: Final = b"SELFTEST:FAIL"
PROJECTS: Final = {"U": "dc_universal_node", "R": "dc_relay_node"}


class Finish(StrEnum):
    """What the flash layer's final check answers (`dcp_ota_finish_t`)."""

    OK = "OK"
    INVALID_IMAGE = "INVALID_IMAGE"
    VERSION = "VERSION"
    FLASH = "FLASH"


class State(StrEnum):
    """The receiver's state."""

    IDLE = "IDLE"
    RECEIVING = "RECEIVING"  # owner 0: suspended, waiting for a resume
    DONE = "DONE"  # image accepted: the node reboots


class FlashIo(Protocol):
    """The flash side (`dcp_ota_io_t`)."""

    def begin(self, size: int) -> bool:
        """Open the slot for `size` bytes (erases them)."""

    def write(self, offset: int, data: bytes) -> bool:
        """Write at `offset` (each byte once)."""

    def finish(self, version: str) -> Finish:
        """All bytes written and hashed: check the image, set the boot slot."""

    def abort(self) -> None:
        """Drop the open slot."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a simulated image says about itself."""

    version: str
    project: str
    selftest_ok: bool


def build_image(
    version: str,
    size: int = 65536,
    *,
    role: str = "U",
    selftest_ok: bool = True,
    seed: int = 0,
) -> bytes:
    """A simulated application image: descriptor, then deterministic noise."""
    if size < 256:
        raise ValueError("a simulated image has at least 256 bytes")
    body = bytearray(random.Random(f"image {version} {seed}").randbytes(size))
    body[0] = 0xE9  # ESP image magic
    body[DESC_MAGIC_AT : DESC_MAGIC_AT + 4] = APP_DESC_MAGIC.to_bytes(4, "little")
    body[DESC_VERSION_AT : DESC_VERSION_AT + 32] = version.encode().ljust(32, b"\0")
    project = PROJECTS[role].encode()
    body[DESC_PROJECT_AT : DESC_PROJECT_AT + 32] = project.ljust(32, b"\0")
    mark = b"" if selftest_ok else SELFTEST_FAIL
    body[DESC_TIME_AT : DESC_TIME_AT + 16] = mark.ljust(16, b"\0")
    return bytes(body)


def read_descriptor(image: bytes) -> Descriptor | None:
    """The descriptor of a simulated image, None when there is none."""
    if len(image) < DESC_TIME_AT + 16:
        return None
    magic = int.from_bytes(image[DESC_MAGIC_AT : DESC_MAGIC_AT + 4], "little")
    if image[0] != 0xE9 or magic != APP_DESC_MAGIC:
        return None

    def text(at: int, length: int) -> str:
        return image[at : at + length].split(b"\0", 1)[0].decode("ascii", "replace")

    return Descriptor(
        version=text(DESC_VERSION_AT, 32),
        project=text(DESC_PROJECT_AT, 32),
        selftest_ok=not image[DESC_TIME_AT:].startswith(SELFTEST_FAIL),
    )


def vector_image(size: int, a: int, b: int) -> bytes:
    """A test image of ota.tsv: byte i is (a * i + b) mod 256."""
    return bytes((a * i + b) % 256 for i in range(size))


class Flash:
    """The update slot: keeps what is written and how often each byte was written.

    `finish_override` answers the final check as a scripted vector says; otherwise the image
    is checked as the glue does: a descriptor (else IMAGE, as `esp_ota_end` refuses it), the
    running image's project (else IMAGE) and the declared version (else VERSION).
    `begin_fails` makes `begin` fail (a new image still on trial, or a flash error).
    """

    def __init__(
        self, slot_size: int = SLOT_SIZE, *, project: str = PROJECTS["U"]
    ) -> None:
        """An erased, closed slot."""
        self.slot_size = slot_size
        self.project = project
        self.data = bytearray()
        self.counts = bytearray()
        self.rewrites = 0  # bytes written a second time (must stay 0)
        self.written = 0
        self.erases = 0
        self.open = False
        self.finish_override: Finish | None = None
        self.begin_fails = False
        self.accepted: Descriptor | None = None  # the image set to boot

    def begin(self, size: int) -> bool:
        """esp_ota_begin: erase `size` bytes."""
        if self.begin_fails or size > self.slot_size:
            return False
        self.data = bytearray(b"\xff" * size)
        self.counts = bytearray(size)
        self.written = 0
        self.erases += 1
        self.open = True
        return True

    def write(self, offset: int, data: bytes) -> bool:
        """esp_ota_write_with_offset."""
        end = offset + len(data)
        if not self.open or end > len(self.data):
            return False
        self.data[offset:end] = data
        if any(self.counts[offset:end]):
            self.rewrites += sum(1 for c in self.counts[offset:end] if c)
            for i in range(offset, end):
                self.counts[i] = min(255, self.counts[i] + 1)
        else:
            self.counts[offset:end] = b"\x01" * len(data)
        self.written += len(data)
        return True

    def finish(self, version: str) -> Finish:
        """esp_ota_end, the descriptor checks, esp_ota_set_boot_partition."""
        self.open = False
        if self.finish_override is not None:
            if self.finish_override is Finish.OK:
                found = read_descriptor(bytes(self.data))
                self.accepted = found or Descriptor(version, self.project, True)
            return self.finish_override
        found = read_descriptor(bytes(self.data))
        if found is None or found.project != self.project:
            return Finish.INVALID_IMAGE
        if found.version != version:
            return Finish.VERSION
        self.accepted = found
        return Finish.OK

    def abort(self) -> None:
        """esp_ota_abort."""
        self.open = False

    def holds(self, image: bytes) -> bool:
        """Whether the slot holds exactly `image`, each byte written once."""
        return bytes(self.data) == image and self.counts == b"\x01" * len(self.counts)


@dataclass(slots=True)
class Result:
    """What one command or chunk makes the node notify; `reboot` after OTA:DONE."""

    reply: str | None = None
    reboot: bool = False


def is_command(cmd: bytes) -> bool:
    """Whether a command's first field is OTA (any case)."""
    return cmd.split(b":", 1)[0].upper() == b"OTA"


def needs_session(cmd: bytes) -> bool:
    """Whether an OTA command needs a session: all but OTA:STATUS (section 9.2)."""
    parts = cmd.split(b":")
    return is_command(cmd) and not (len(parts) > 1 and parts[1].upper() == b"STATUS")


class OtaReceiver:
    """dcp_ota.c in Python: declaration, BEGIN checks, in-order chunks, ACKs, resume."""

    def __init__(
        self, io: FlashIo, *, slot_size: int = SLOT_SIZE, role: str, hardware: str
    ) -> None:
        """A receiver with nothing open and nothing declared."""
        self.io = io
        self.slot_size = slot_size
        self.role = role
        self.hardware = hardware
        self.state = State.IDLE
        self.owner = 0
        self.size = 0
        self.next = 0
        self.gap_acked: int | None = None
        self.sha = b""
        self.version = ""
        self._hash = hashlib.sha256()
        self.decl_conn = 0
        self.decl_sha = bytearray(SHA_LEN)
        self.decl_pieces = 0
        self.decl_version: str | None = None

    # --- helpers ----------------------------------------------------------------

    def _clear_decl(self) -> None:
        self.decl_conn = 0
        self.decl_sha = bytearray(SHA_LEN)
        self.decl_pieces = 0
        self.decl_version = None

    def _decl_for(self, conn: int) -> None:
        if self.decl_conn != conn:
            self._clear_decl()
            self.decl_conn = conn

    def _stop(self, *, abort_slot: bool) -> None:
        if self.state is State.RECEIVING and abort_slot:
            self.io.abort()
        self.state = State.IDLE
        self.owner = 0
        self.size = 0
        self.next = 0
        self.gap_acked = None

    # --- commands ---------------------------------------------------------------

    def command(self, conn: int, cmd: bytes) -> Result:
        """An OTA command (after the session check) from connection `conn`."""
        if not is_command(cmd):
            return Result()
        fields = cmd.split(b":")
        word = fields[1].upper() if len(fields) > 1 else b""
        if word == b"STATUS" and len(fields) == 2:
            return Result(self._status())
        if word == b"ABORT" and len(fields) == 2:
            if self.state is State.RECEIVING:
                self._stop(abort_slot=True)
            if self.state is State.DONE:
                return Result("OTA:DONE")
            self._clear_decl()
            return Result("OTA:IDLE")
        if word == b"SHA":
            return Result(self._sha(conn, fields))
        if word == b"VER":
            return Result(self._ver(conn, fields))
        if word == b"BEGIN":
            return Result(self._begin(conn, fields))
        return Result("ERROR:OTA:MALFORMED")

    def _status(self) -> str:
        if self.state is State.IDLE:
            return "OTA:IDLE"
        if self.state is State.DONE:
            return "OTA:DONE"
        return f"OTA:RX:{self.next}:{self.size}"

    def _sha(self, conn: int, fields: list[bytes]) -> str:
        if len(fields) != 4 or fields[2] not in (b"0", b"1", b"2"):
            return "ERROR:OTA:MALFORMED"
        at, length = _PIECES[int(fields[2])]
        text = fields[3]
        if len(text) != 2 * length or not re.fullmatch(rb"[0-9a-fA-F]*", text):
            return "ERROR:OTA:MALFORMED"
        self._decl_for(conn)
        self.decl_sha[at : at + length] = bytes.fromhex(text.decode())
        self.decl_pieces |= 1 << int(fields[2])
        return "OTA:OK"

    def _ver(self, conn: int, fields: list[bytes]) -> str:
        if len(fields) != 3 or not _VERSION_RE.fullmatch(fields[2]):
            return "ERROR:OTA:MALFORMED"
        self._decl_for(conn)
        self.decl_version = fields[2].decode()
        return "OTA:OK"

    def _begin(self, conn: int, fields: list[bytes]) -> str:
        if len(fields) != 5:
            return "ERROR:OTA:MALFORMED"
        size_text, role, hardware = fields[2], fields[3], fields[4]
        if (
            not re.fullmatch(rb"[0-9]{1,7}", size_text)
            or int(size_text) == 0
            or len(role) != 1
            or not 0 < len(hardware) <= 16
        ):
            return "ERROR:OTA:MALFORMED"
        size = int(size_text)
        if (
            self.decl_conn != conn
            or self.decl_pieces != 0b111
            or self.decl_version is None
        ):
            return "ERROR:OTA:NO_IMAGE"
        if role.upper().decode("latin-1") != self.role:
            return "ERROR:OTA:ROLE"
        if hardware.decode("latin-1") != self.hardware:
            return "ERROR:OTA:HARDWARE"
        if size > self.slot_size:
            return "ERROR:OTA:TOO_BIG"
        if self.state is State.DONE:
            return "OTA:DONE"
        if self.state is State.RECEIVING:
            if self.owner not in (0, conn):
                return "ERROR:OTA:BUSY"
            same = (
                self.size == size
                and self.sha == bytes(self.decl_sha)
                and self.version == self.decl_version
            )
            if same:  # resume: this connection owns it now
                self.owner = conn
                self.gap_acked = None
                self._clear_decl()
                return f"OTA:ACK:{self.next}"
            self._stop(abort_slot=True)  # another image replaces the suspended one
        if not self.io.begin(size):
            return "ERROR:OTA:FLASH"
        self._hash = hashlib.sha256()
        self.state = State.RECEIVING
        self.owner = conn
        self.size = size
        self.next = 0
        self.gap_acked = None
        self.sha = bytes(self.decl_sha)
        self.version = self.decl_version
        self._clear_decl()
        return "OTA:ACK:0"

    # --- data -------------------------------------------------------------------

    def data(self, conn: int, write: bytes) -> Result:
        """A write to 0xDC04 from connection `conn`."""
        if (
            self.state is not State.RECEIVING
            or conn == 0
            or conn != self.owner
            or not HEADER_LEN < len(write) <= WRITE_MAX
        ):
            return Result()  # ignored without a word
        offset = int.from_bytes(write[:HEADER_LEN], "little")
        payload = write[HEADER_LEN:]
        if offset < self.next:
            return Result()  # a duplicate
        if offset > self.next or len(payload) > self.size - self.next:
            if self.gap_acked != self.next:  # a gap or past the end: once per value
                self.gap_acked = self.next
                return Result(f"OTA:ACK:{self.next}")
            return Result()
        if not self.io.write(offset, payload):
            self._stop(abort_slot=True)
            return Result("ERROR:OTA:FLASH")
        self._hash.update(payload)
        before = self.next
        self.next += len(payload)
        if self.next == self.size:
            return self._finish()
        if self.next // WINDOW != before // WINDOW:
            return Result(f"OTA:ACK:{self.next}")
        return Result()

    def _finish(self) -> Result:
        if self._hash.digest() != self.sha:
            self._stop(abort_slot=True)
            return Result("ERROR:OTA:BAD_HASH")
        outcome = self.io.finish(self.version)
        self.state = State.IDLE  # the slot is closed either way
        if outcome is Finish.OK:
            self.state = State.DONE
            self.owner = 0
            return Result("OTA:DONE", reboot=True)
        self._stop(abort_slot=False)
        kind = {Finish.INVALID_IMAGE: "IMAGE", Finish.VERSION: "VERSION"}.get(
            outcome, "FLASH"
        )
        return Result(f"ERROR:OTA:{kind}")

    def conn_closed(self, conn: int) -> None:
        """Connection `conn` closed: its transfer is suspended, its declaration dropped."""
        if conn == 0:
            return
        if self.owner == conn:
            self.owner = 0
            self.gap_acked = None
        if self.decl_conn == conn:
            self._clear_decl()
