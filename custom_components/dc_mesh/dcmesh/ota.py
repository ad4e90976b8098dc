"""Firmware update of one v1 node over its own GATT link (docs/protocol-v1.md section 9).

`FirmwareImage` is what a release manifest describes (version, role, hardware, size,
SHA-256) with the image's bytes; `check()` proves size and hash before anything is sent.
`OtaTransfer` runs one update on a connected, authenticated `DcMeshLink`: it declares the
image (`OTA:SHA` x3, `OTA:VER`), begins (`OTA:BEGIN`: the answer's offset is where it
starts, so a transfer interrupted by a disconnect or a restart of the client resumes),
streams offset-addressed chunks to 0xDC04 with writes without response, at most 8192
bytes beyond the last acknowledged offset, goes back to the node's offset when it reports a
gap, asks `OTA:STATUS` when acknowledgements stop (and after each gap, to confirm the
resend arrived), and ends on `OTA:DONE`. The node then reboots into the image; after
reconnecting, `confirm_installed` tells an installed image from a rolled-back one.

Pacing: an ESPHome proxy returns every write at once and drops those that find its buffer
full, so the chunks must not outrun the link. The first chunks go back to back; when the
transport held them back (a local adapter's flow control) it paces by itself, otherwise a
`Pacer` spaces the chunks at a pace it adapts from the acknowledgements (AIMD: it measures
the node's in-order delivery rate, lowers the pace on a gap, raises it while nothing is
lost). `Pacing` holds its constants; `pacing=None` writes as fast as the transport takes.

Pure asyncio; nothing of Home Assistant.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Final

from .exceptions import AuthRefusedError, DcMeshError, LinkError, NotConnectedError
from .models import NodeInfo, NodeRole

if TYPE_CHECKING:
    from .link import DcMeshLink

_LOGGER = logging.getLogger(__name__)

OTA_CHAR_UUID: Final = "0000dc04-0000-1000-8000-00805f9b34fb"
CAP_OTA: Final = 0x0008
HEADER_LEN: Final = 4
CHUNK_MAX: Final = 240  # data bytes of one chunk, whatever the MTU
WINDOW: Final = 4096  # the node acknowledges each crossing of a multiple of this
IN_FLIGHT: Final = 8192  # bytes beyond the last acknowledged offset (two windows)
SHA_LEN: Final = 32
MAX_SIZE: Final = 9_999_999  # OTA:BEGIN takes 1..7 digits
ATT_OVERHEAD: Final = 3
DEFAULT_MTU: Final = 23
RETRY_CHUNKS: Final = (
    4  # a status probe a congested proxy refused: again this many later
)

_VERSION_RE: Final = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_HARDWARE_RE: Final = re.compile(r"[A-Za-z0-9-]{1,16}")
_REPLY_RE: Final = re.compile(
    r"OTA:(?:(?P<word>OK|DONE|IDLE)|ACK:(?P<ack>[0-9]{1,7})"
    r"|RX:(?P<next>[0-9]{1,7}):(?P<size>[0-9]{1,7}))"
    r"|ERROR:(?P<scope>OTA|AUTH):(?P<kind>[A-Z0-9_]+)"
)


class OtaError(DcMeshError):
    """A firmware update failed."""


class ImageError(OtaError):
    """The image does not match its manifest (size, SHA-256) or cannot be sent."""


class OtaNotSupportedError(OtaError):
    """The node has no firmware update receiver (no capability 0008: v0.7 or early v1)."""


class OtaStalledError(OtaError):
    """The node stopped answering: no acknowledgement, no status."""


class OtaInterruptedError(OtaError):
    """The node no longer holds the transfer (it rebooted, or another client aborted)."""


class RolledBackError(OtaError):
    """After the update the node runs its old version: the image failed its self-test."""

    def __init__(self, expected: str, running: str) -> None:
        """Record what was installed and what runs."""
        super().__init__(f"the node runs {running}, not {expected}: it rolled back")
        self.expected = expected
        self.running = running


class OtaRefusedError(OtaError):
    """`ERROR:OTA:<kind>`: the node refused the update or the image.

    Kinds: MALFORMED, NO_IMAGE, ROLE, HARDWARE, TOO_BIG, BUSY, BAD_HASH, IMAGE, VERSION,
    FLASH; an unknown kind is a failed update too.
    """

    def __init__(self, kind: str, detail: str | None = None) -> None:
        """Keep the node's error kind."""
        super().__init__(f"ERROR:OTA:{kind}" + (f" ({detail})" if detail else ""))
        self.kind = kind


class WrongRoleError(OtaRefusedError):
    """ROLE: the image is for another role."""


class WrongHardwareError(OtaRefusedError):
    """HARDWARE: the image is for another hardware model."""


class ImageTooBigError(OtaRefusedError):
    """TOO_BIG: the image does not fit the node's update slot."""


class TransferBusyError(OtaRefusedError):
    """BUSY: another connected client owns a transfer on this node."""


class BadHashError(OtaRefusedError):
    """BAD_HASH: the received bytes do not have the declared SHA-256 (restart from 0)."""


class ImageRejectedError(OtaRefusedError):
    """IMAGE: ESP-IDF refused the image (format, signature, other project)."""


class VersionMismatchError(OtaRefusedError):
    """VERSION: the image does not carry the declared version."""


class FlashError(OtaRefusedError):
    """FLASH: a flash error, or the running image is still on trial (its self-test)."""


_REFUSALS: Final[dict[str, type[OtaRefusedError]]] = {
    "ROLE": WrongRoleError,
    "HARDWARE": WrongHardwareError,
    "TOO_BIG": ImageTooBigError,
    "BUSY": TransferBusyError,
    "BAD_HASH": BadHashError,
    "IMAGE": ImageRejectedError,
    "VERSION": VersionMismatchError,
    "FLASH": FlashError,
}


def refusal(kind: str, detail: str | None = None) -> OtaRefusedError:
    """The typed error of `ERROR:OTA:<kind>`."""
    return _REFUSALS.get(kind, OtaRefusedError)(kind, detail)


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    """An application image and what its manifest says about it."""

    data: bytes
    version: str
    role: NodeRole
    hardware: str
    size: int
    sha256: bytes

    @classmethod
    def from_bytes(
        cls, data: bytes, *, version: str, role: NodeRole | str, hardware: str
    ) -> FirmwareImage:
        """An image whose size and SHA-256 are taken from its bytes."""
        return cls(
            data,
            version,
            NodeRole(role),
            hardware,
            len(data),
            hashlib.sha256(data).digest(),
        )

    def check(self) -> None:
        """Raise `ImageError` unless the bytes match the manifest and can be declared."""
        if not _VERSION_RE.fullmatch(self.version):
            raise ImageError(
                f"version {self.version!r} is not x.y.z (1..3 digits each)"
            )
        if not _HARDWARE_RE.fullmatch(self.hardware):
            raise ImageError(f"hardware {self.hardware!r} is not a hardware model")
        if not 0 < self.size <= MAX_SIZE:
            raise ImageError(f"size {self.size} cannot be declared")
        if len(self.data) != self.size:
            raise ImageError(f"the image has {len(self.data)} bytes, not {self.size}")
        if len(self.sha256) != SHA_LEN:
            raise ImageError("a SHA-256 has 32 bytes")
        if hashlib.sha256(self.data).digest() != self.sha256:
            raise ImageError("the image's SHA-256 is not the manifest's")

    def declaration(self) -> list[bytes]:
        """`OTA:SHA:0..2` and `OTA:VER`, as written (each within the session's 36 bytes)."""
        pieces = ((0, 12), (12, 12), (24, 8))
        commands = [
            b"OTA:SHA:%d:%s" % (i, self.sha256[at : at + n].hex().encode())
            for i, (at, n) in enumerate(pieces)
        ]
        return [*commands, b"OTA:VER:" + self.version.encode()]

    def begin(self) -> bytes:
        """`OTA:BEGIN:<size>:<role>:<hw>`."""
        return b"OTA:BEGIN:%d:%s:%s" % (
            self.size,
            NodeRole(self.role).value.encode(),
            self.hardware.encode(),
        )


def encode_chunk(offset: int, data: bytes) -> bytes:
    """A write to 0xDC04: offset (u32 little-endian) and 1..240 data bytes."""
    if not 0 <= offset <= 0xFFFFFFFF:
        raise ValueError(f"offset {offset} is not a u32")
    if not 0 < len(data) <= CHUNK_MAX:
        raise ValueError(f"a chunk carries 1..{CHUNK_MAX} bytes, not {len(data)}")
    return offset.to_bytes(HEADER_LEN, "little") + data


def decode_chunk(write: bytes) -> tuple[int, bytes]:
    """The offset and data of a write to 0xDC04."""
    if not HEADER_LEN < len(write) <= HEADER_LEN + CHUNK_MAX:
        raise ValueError(f"a chunk write has 5..244 bytes, not {len(write)}")
    return int.from_bytes(write[:HEADER_LEN], "little"), write[HEADER_LEN:]


def chunk_size_for(mtu: int | None) -> int:
    """Data bytes per chunk at an ATT MTU: MTU - 3 - 4, at most 240 (16 at MTU 23)."""
    return max(1, min(CHUNK_MAX, (mtu or DEFAULT_MTU) - ATT_OVERHEAD - HEADER_LEN))


class ReplyKind(StrEnum):
    """What an `OTA:` reply says."""

    OK = "OK"
    ACK = "ACK"
    RX = "RX"
    DONE = "DONE"
    IDLE = "IDLE"
    ERROR = "ERROR"  # ERROR:OTA:<kind>
    AUTH_ERROR = "AUTH_ERROR"  # ERROR:AUTH:<kind>: the session does not cover it


@dataclass(frozen=True, slots=True)
class OtaReply:
    """One reply of the node's update receiver."""

    kind: ReplyKind
    offset: int = 0  # ACK: the next expected offset; RX: the same
    size: int = 0  # RX: the image size
    error: str = ""  # ERROR, AUTH_ERROR: the kind


def parse_reply(message: bytes) -> OtaReply | None:
    """An update reply, None for any other message."""
    text = message.decode("ascii", "replace").strip(" \t\r\n\x00")
    match = _REPLY_RE.fullmatch(text)
    if match is None:
        return None
    if word := match["word"]:
        return OtaReply(ReplyKind(word))
    if match["ack"] is not None:
        return OtaReply(ReplyKind.ACK, int(match["ack"]))
    if match["next"] is not None:
        return OtaReply(ReplyKind.RX, int(match["next"]), int(match["size"]))
    scope = ReplyKind.ERROR if match["scope"] == "OTA" else ReplyKind.AUTH_ERROR
    return OtaReply(scope, error=match["kind"])


type ProgressCallback = Callable[[int, int], None]


@dataclass(slots=True)
class TransferStats:
    """What one `OtaTransfer.run` did (a resumed run starts new counters)."""

    started_at: int = 0  # the offset the node gave at OTA:BEGIN (> 0: resumed)
    bytes_written: int = 0  # data bytes written to 0xDC04, resends included
    resent: int = 0  # data bytes written again (after gaps or status)
    gaps: int = 0  # gap acknowledgements acted on
    status_probes: int = 0
    seconds: float = 0.0
    begin_seconds: float = 0.0  # until OTA:BEGIN answered (the erase)
    starts: list[int] = field(default_factory=list)  # BEGIN offsets of every run
    flow_controlled: bool = False  # the transport held writes back: sent unpaced
    rate: float = 0.0  # the last pace, data bytes per second (0: unpaced)
    slowdowns: int = 0  # losses the pace was lowered for
    failed_probes: int = 0  # OTA:STATUS writes that failed (a congested proxy)
    rtt: float = 0.0  # the quickest command round trip (s): the pace starts from it


@dataclass(frozen=True, slots=True)
class Pacing:
    """How `Pacer` paces the chunks (seconds, chunks per second, shares)."""

    probe_chunks: int = 16  # written back to back first: does the transport hold back?
    held_back: float = 0.002  # mean seconds per write of those: the transport paces
    start_rate: float = 64.0  # chunks per second first,
    start_per_rtt: float = 1.0  # or per command round trip (the declaration's) if more
    min_rate: float = 8.0  # chunks per second the pace never goes below
    sample_seconds: float = 1.0  # a delivery rate is measured over at least this long,
    sample_rtts: float = 100.0  # or this many round trips where they are shorter
    growth: float = 0.01  # after the start, the pace grows by this share per second
    growth_far: float = 0.1  # or this while below `far` of the pace that lost last
    far: float = 0.9
    backoff: float = 0.95  # a loss: the pace drops to this share of the delivery rate
    lagging: float = 0.9  # the node gets less than this share of the pace: it lags
    burst: int = 2  # chunks a late sender may write back to back to catch up


class Pacer:
    """The pace of the chunks where nothing holds the writes back (AIMD on the ACKs).

    A proxy forwards writes without response with no flow control and drops those that
    find its buffer full, so the sender has to find the link's rate itself. It starts at
    `start_rate` chunks per second (or `start_per_rtt` per round trip `rtt` where that is
    more: a quick link) and measures the delivery rate: bytes the node took in order
    between two window acknowledgements at least a sample apart (`sample_seconds`, or
    `sample_rtts` round trips where that is shorter; the growth rates below are per second
    of the full sample and scale with it), without a go-back between them. While the node
    keeps up the pace doubles per sample (the start); after the first loss it grows by
    `growth` per second, `growth_far` while it is below `far` of the pace that lost last
    (back quickly to where the link's rate was found, slowly beyond). When the node gets
    less than `lagging` of the pace (a queue grows) the pace drops to the delivery rate.

    A gap (a lost chunk) is answered once per loss event (gaps before `recover`, what was
    out when it was answered, belong to it, unless the node made no progress since the
    last gap: then the resend was lost too): the pace drops to `backoff` of the delivery
    rate, never below `min_rate`. So the pace saws between `backoff` and a little above the
    link's rate, and a proxy's buffer overflows about once per sawtooth. Every loss counts:
    losses that do not come from the pace (at random) push it down all the same.
    """

    def __init__(
        self,
        chunk: int,
        now: float,
        pacing: Pacing,
        *,
        recover: int = 0,
        rtt: float | None = None,
    ) -> None:
        """Start with chunks of `chunk` bytes; `rtt`: a command's round trip (s)."""
        self.pacing = pacing
        start = max(pacing.start_rate, pacing.start_per_rtt / rtt if rtt else 0.0)
        self.rate = start * chunk  # data bytes per second
        self.sample = pacing.sample_seconds  # seconds a delivery sample spans at least
        if rtt:
            self.sample = min(self.sample, pacing.sample_rtts * rtt)
        self._speed = pacing.sample_seconds / self.sample  # growth per second scaled
        self.floor = pacing.min_rate * chunk
        self.starting = True
        self.recover = recover
        self.delivery = 0.0  # the best recent delivery rate (bytes per second)
        self._samples: deque[float] = deque(maxlen=3)
        self._mark: tuple[int, float] | None = None  # where the sample started
        self._grown_at = now
        self._gap = -1  # the offset of the last gap
        self.ceiling = 0.0  # the pace of the last answered loss

    def _grow(self, now: float) -> None:
        pacing = self.pacing
        elapsed, self._grown_at = now - self._grown_at, now
        if self.starting:
            return
        elapsed *= self._speed
        below = pacing.far * self.ceiling
        if self.rate < below:  # back to where the last loss was, quickly
            self.rate = min(below, self.rate * (1 + pacing.growth_far * elapsed))
        else:
            self.rate *= 1 + pacing.growth * elapsed

    def acknowledged(self, offset: int, now: float) -> None:
        """A window acknowledgement: the node holds every byte below `offset`."""
        self._grow(now)
        if self._mark is None:
            self._mark = (offset, now)
            return
        start, since = self._mark
        if now - since < self.sample:
            return
        rate = (offset - start) / (now - since)
        self._mark = (offset, now)
        self._samples.append(rate)
        self.delivery = max(self._samples)
        if rate < self.pacing.lagging * self.rate:  # the link lags: a queue grows
            self.starting = False
            self.rate = max(self.floor, min(self.rate, self.delivery))
        elif self.starting:
            self.rate *= 2

    def lost(self, offset: int, sent: int, now: float) -> bool:
        """The node reported a gap at `offset` with `sent` bytes out: slow down once.

        Whatever happened, the next delivery sample starts at the next acknowledgement
        (the go-back's dead time is not the link's rate). True when the pace dropped.
        """
        self._mark = None
        again, self._gap = offset <= self._gap, offset
        if offset < self.recover and not again:
            return False
        self.recover = sent
        self._grow(now)
        self.starting = False
        self.ceiling = self.rate
        base = min(self.rate, self.delivery) if self.delivery else self.rate
        self.rate = max(self.floor, self.pacing.backoff * base)
        return True

    def interval(self, length: int) -> float:
        """Seconds a chunk of `length` bytes takes at the pace."""
        return length / self.rate


DEFAULT_PACING: Final = Pacing()


class _Sender:
    """When the next chunk may go: at once where the transport paces, else a `Pacer`.

    The first `probe_chunks` chunks go back to back. When they took `held_back` seconds
    each on average the transport holds writes back (a local adapter's flow control): it
    paces, and chunks go as fast as it takes them. Otherwise (a proxy returns every write
    at once) a `Pacer` spaces them. A gap while the last writes were not held back (a
    pause of this process made the probe look slow) starts pacing after all.
    """

    def __init__(
        self,
        pacing: Pacing | None,
        chunk: int,
        start: int,
        now: float,
        rtt: float | None = None,
    ) -> None:
        """Nothing written yet; `pacing` None: never paced; `rtt` for the `Pacer`."""
        self.pacing = pacing
        self.chunk = chunk
        self.rtt = rtt
        self.burst = 0 if pacing is None else pacing.probe_chunks  # back to back left
        self.pacer: Pacer | None = None
        if pacing is not None:
            recover = start + self.burst * chunk  # the probe's own losses are no signal
            self.pacer = Pacer(chunk, now, pacing, recover=recover, rtt=rtt)
        self.next_at = now  # when the pace allows the next chunk
        self.flow_controlled = False
        self._took: deque[float] = deque(maxlen=max(1, self.burst))

    @property
    def paced(self) -> bool:
        """Whether the pace (not the transport) decides when the next chunk goes."""
        return self.pacer is not None and not self.burst

    def _held_back(self) -> bool:
        took = self._took
        return (
            self.pacing is not None
            and len(took) == took.maxlen
            and sum(took) >= len(took) * self.pacing.held_back
        )

    def wrote(self, length: int, began: float, now: float) -> None:
        """A chunk of `length` bytes was written from `began` to `now`."""
        if self.pacing is None:
            return
        self._took.append(now - began)
        pacer = self.pacer
        if self.burst:
            self.burst -= 1
            if not self.burst and self._held_back():
                self.pacer = None  # flow control: the transport paces
                self.flow_controlled = True
        elif pacer is not None:
            earliest = began - self.pacing.burst * pacer.interval(self.chunk)
            self.next_at = max(self.next_at, earliest) + pacer.interval(length)

    def acknowledged(self, offset: int, now: float) -> None:
        """A window acknowledgement."""
        if self.pacer is not None:
            self.pacer.acknowledged(offset, now)

    def went_back(self, offset: int, out: int, highest: int, now: float) -> bool:
        """Back to `offset` from `out`: pace down; True when the pace dropped.

        What went out after the lost chunk may still wait in a proxy's buffer: a resend
        written at once would find it full again, so the next chunk waits until that much
        could have drained (at most a delivery sample's time).
        """
        if self.pacing is None:
            return False
        if self.pacer is None:
            if self._held_back():
                return False  # the transport paces: the loss was not the sender's
            self.pacer = Pacer(
                self.chunk, now, self.pacing, recover=highest, rtt=self.rtt
            )
            self.flow_controlled = False
        slowed = self.pacer.lost(offset, highest, now)
        drain = min(self.pacer.interval(out - offset), self.pacer.sample)
        self.next_at = now + drain
        return slowed

    @property
    def rate(self) -> float:
        """The pace in data bytes per second, 0 when unpaced."""
        return self.pacer.rate if self.pacer is not None else 0.0


class OtaTransfer:
    """One firmware update of the node a `DcMeshLink` is connected to.

    `run()` needs a connected link (authenticated where the node holds a mesh key) and
    returns once the node answered `OTA:DONE`; the node reboots about 1 s later. After a
    disconnect (`LinkError` out of `run`) the caller reconnects the link and calls `run()`
    again: the node tells where to continue. `progress(acknowledged, total)` is called for
    every acknowledgement.
    """

    def __init__(
        self,
        link: DcMeshLink,
        image: FirmwareImage,
        *,
        progress: ProgressCallback | None = None,
        chunk_size: int | None = None,
        in_flight: int = IN_FLIGHT,
        reply_timeout: float = 5.0,
        begin_timeout: float = 30.0,
        status_after: float = 2.0,
        attempts: int = 3,
        precheck: bool = True,
        pacing: Pacing | None = DEFAULT_PACING,
    ) -> None:
        """Prepare; nothing is sent before `run`.

        `precheck`: refuse locally (before any command) an image whose role or hardware is
        not the connected node's (from its INFO line). `pacing`: how chunks are paced where
        the transport does not hold writes back (a proxy); None writes them as fast as the
        transport takes them, within `in_flight`.
        """
        self._link = link
        self._image = image
        self._progress = progress
        self._chunk_size = chunk_size
        self._in_flight = in_flight
        self._reply_timeout = reply_timeout
        self._begin_timeout = begin_timeout
        self._status_after = status_after
        self._attempts = attempts
        self._precheck = precheck
        self._pacing = pacing
        self._replies: asyncio.Queue[OtaReply] = asyncio.Queue()
        self.stats = TransferStats()
        self.acknowledged = 0
        self._probe_task: asyncio.Task[None] | None = None
        self._rtt: float | None = None  # the quickest command round trip of this run

    @property
    def image(self) -> FirmwareImage:
        """The image being sent."""
        return self._image

    def _on_message(self, message: bytes) -> None:
        reply = parse_reply(message)
        if reply is not None:
            self._replies.put_nowait(reply)

    def _check_node(self) -> None:
        info = self._link.gateway_info
        if info is None or not info.capabilities & CAP_OTA:
            raise OtaNotSupportedError("the node has no firmware update receiver")
        if not self._precheck:
            return
        if info.role is not NodeRole(self._image.role):
            raise WrongRoleError("ROLE", f"the node is {info.role.value}")
        if info.hardware != self._image.hardware:
            raise WrongHardwareError("HARDWARE", f"the node is {info.hardware}")

    async def run(self) -> TransferStats:
        """Declare, begin (or resume), stream until `OTA:DONE`; return the counters."""
        self._image.check()
        if not self._link.is_connected:
            raise NotConnectedError("the link is not connected")
        self._check_node()
        self.stats = TransferStats(starts=self.stats.starts)
        self._rtt = None
        self._replies = asyncio.Queue()
        unregister = self._link.register_message_callback(self._on_message)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            reply = await self._declare_and_begin()
            self.stats.begin_seconds = loop.time() - started
            if reply.kind is ReplyKind.ACK:
                self.stats.started_at = reply.offset
                self.stats.starts.append(reply.offset)
                await self._stream(reply.offset)
            else:
                self._acknowledge(self._image.size)
        finally:
            unregister()
            if self._probe_task is not None:
                self._probe_task.cancel()
                self._probe_task = None
            self.stats.seconds = loop.time() - started
        return self.stats

    async def _declare_and_begin(self) -> OtaReply:
        """The declaration and OTA:BEGIN; all again when BEGIN's answer is lost."""
        for _ in range(self._attempts):
            for command in self._image.declaration():
                await self._command(command, {ReplyKind.OK}, self._reply_timeout)
            await self._link.send_raw(self._image.begin())
            deadline = asyncio.get_running_loop().time() + self._begin_timeout
            while (reply := await self._next_reply(deadline)) is not None:
                self._raise_on_error(reply)
                if reply.kind in (ReplyKind.ACK, ReplyKind.DONE):
                    return reply
        raise OtaStalledError("no answer to OTA:BEGIN")

    async def abort(self) -> None:
        """`OTA:ABORT`: the node drops the transfer; the running firmware stays."""
        unregister = self._link.register_message_callback(self._on_message)
        self._replies = asyncio.Queue()
        try:
            await self._command(
                b"OTA:ABORT", {ReplyKind.IDLE, ReplyKind.DONE}, self._reply_timeout
            )
        finally:
            unregister()

    async def _command(
        self, command: bytes, wanted: set[ReplyKind], wait: float
    ) -> OtaReply:
        """Write a command and wait for its answer; write it again when none comes.

        Every command of the declaration and BEGIN can be repeated safely (a BEGIN of the
        same image resumes).
        """
        loop = asyncio.get_running_loop()
        for attempt in range(self._attempts):
            written = loop.time()
            await self._link.send_raw(command)
            deadline = loop.time() + wait
            while (reply := await self._next_reply(deadline)) is not None:
                self._raise_on_error(reply)
                if reply.kind in wanted:
                    if not attempt:  # (a late answer to an earlier write is no measure)
                        rtt = loop.time() - written
                        self._rtt = rtt if self._rtt is None else min(self._rtt, rtt)
                        self.stats.rtt = self._rtt
                    return reply
        raise OtaStalledError(f"no answer to {command.decode()!r}")

    async def _next_reply(self, deadline: float) -> OtaReply | None:
        try:
            async with asyncio.timeout_at(deadline):
                return await self._replies.get()
        except TimeoutError:
            return None

    @staticmethod
    def _raise_on_error(reply: OtaReply) -> None:
        if reply.kind is ReplyKind.ERROR:
            raise refusal(reply.error)
        if reply.kind is ReplyKind.AUTH_ERROR:
            raise AuthRefusedError("AUTH", reply.error)

    def _acknowledge(self, offset: int) -> None:
        if offset != self.acknowledged:
            self.acknowledged = offset
            if self._progress is not None:
                self._progress(offset, self._image.size)

    async def _stream(self, start: int) -> None:
        """Send from `start` until OTA:DONE, going back wherever the node says.

        `_Sender` decides when each chunk goes: as fast as a flow-controlled transport
        takes them, or at a `Pacer`'s pace.
        """
        size = self._image.size
        data = self._image.data
        step = self._chunk_size or chunk_size_for(self._link.mtu_size)
        loop = asyncio.get_running_loop()
        self._acknowledge(start)
        acked = start
        sent = start
        highest = start  # the furthest offset ever sent (resends count below it)
        regular: set[int] = set()  # ends of chunks that cross a window boundary
        seen: set[int] = set()  # regular acknowledgements already taken
        probe_at: int | None = None  # `sent` when the pending OTA:STATUS was written
        probe_after_gap: int | None = None  # probe once the resend of this offset went
        rewound: int | None = None  # lowest go-back since the pending probe was written
        last_news = loop.time()
        sender = _Sender(self._pacing, step, start, loop.time(), self._rtt)

        def went_back(offset: int, out: int) -> None:
            if sender.went_back(offset, out, highest, loop.time()):
                self.stats.slowdowns += 1

        try:
            while True:
                if self._check_link():  # the last OTA:STATUS could not be written
                    probe_at = rewound = None
                    probe_after_gap = sent + RETRY_CHUNKS * step  # a few chunks later
                # Send while the window (and the pace) allow.
                while (
                    sent < size
                    and sent - acked < self._in_flight
                    and self._replies.empty()
                ):
                    now = loop.time()
                    if sender.paced and now < sender.next_at:
                        break
                    end = min(size, sent + step)
                    await self._link.write_characteristic(
                        OTA_CHAR_UUID,
                        encode_chunk(sent, data[sent:end]),
                        response=False,
                    )
                    sender.wrote(end - sent, now, loop.time())
                    self.stats.bytes_written += end - sent
                    if end <= highest:
                        self.stats.resent += end - sent
                    if sent // WINDOW != end // WINDOW and end < size:
                        regular.add(end)
                    sent = end
                    highest = max(highest, sent)
                    if probe_after_gap is not None and sent > probe_after_gap:
                        probe_after_gap = None
                        if self._probe():
                            probe_at, rewound = sent, None
                # Wait for news: until the pace allows the next chunk, or for a while.
                open_window = sent < size and sent - acked < self._in_flight
                if not open_window:
                    deadline = last_news + self._status_after
                elif sender.paced:
                    deadline = sender.next_at
                else:
                    deadline = loop.time()
                reply = await self._next_reply(deadline)
                if reply is None:
                    if open_window:
                        continue
                    last_news = loop.time()
                    if self._probe():
                        probe_at, rewound = sent, None
                    continue
                last_news = loop.time()
                self._raise_on_error(reply)
                if reply.kind is ReplyKind.DONE:
                    self._acknowledge(size)
                    return
                if reply.kind is ReplyKind.IDLE:
                    raise OtaInterruptedError("the node holds no transfer any more")
                if reply.kind is ReplyKind.RX:
                    node_next = reply.offset
                    taken_all = probe_at is None or node_next >= probe_at
                    resent_since = rewound is not None and rewound <= node_next
                    probe_at = rewound = None
                    acked = max(acked, node_next)
                    self._acknowledge(acked)
                    if not taken_all and not resent_since and node_next < sent:
                        went_back(node_next, sent)
                        sent = node_next  # something before the probe was lost
                        regular = {r for r in regular if r <= sent}
                        probe_after_gap = sent
                    continue
                if reply.kind is not ReplyKind.ACK:
                    continue
                offset = reply.offset
                if offset in regular and offset not in seen:
                    seen.add(offset)  # the node crossed a window boundary
                    acked = max(acked, offset)
                    self._acknowledge(acked)
                    sender.acknowledged(offset, loop.time())
                    continue
                # A gap: the chunk at `offset` was lost and later ones are ignored.
                self.stats.gaps += 1
                acked = max(acked, offset)
                self._acknowledge(acked)
                if offset < sent:
                    went_back(offset, sent)
                    sent = offset
                    regular = {r for r in regular if r <= sent}
                    seen = {r for r in seen if r <= sent}
                    probe_after_gap = sent
                    if probe_at is not None:
                        rewound = offset if rewound is None else min(rewound, offset)
        finally:
            self.stats.rate = sender.rate
            self.stats.flow_controlled = sender.flow_controlled

    def _check_link(self) -> bool:
        """Raise a lost link; True when the last status probe could not be written."""
        failed = self._reap_probe()
        if not self._link.is_connected:
            raise NotConnectedError("the link was lost during the update")
        return failed

    def _reap_probe(self) -> bool:
        """Take the result of a finished status probe; True when it could not be written.

        A proxy whose buffer is full refuses a command while the link stays up: the probe
        is written again later. Any other failure ends the transfer.
        """
        task = self._probe_task
        if task is None or not task.done():
            return False
        self._probe_task = None
        if task.cancelled() or (error := task.exception()) is None:
            return False
        if not isinstance(error, LinkError) or not self._link.is_connected:
            raise error
        _LOGGER.debug("OTA:STATUS not written: %s", error)
        self.stats.failed_probes += 1
        return True

    def _probe(self) -> bool:
        """Write OTA:STATUS in the background (streaming goes on); False if one is out."""
        if self._probe_task is not None and not self._probe_task.done():
            return False
        self._reap_probe()
        self.stats.status_probes += 1
        self._probe_task = asyncio.get_running_loop().create_task(
            self._link.send_raw(b"OTA:STATUS")
        )
        return True


async def abort_update(link: DcMeshLink, *, reply_timeout: float = 5.0) -> None:
    """`OTA:ABORT` on the node `link` is connected to (any authenticated client may)."""
    image = FirmwareImage(b"\0", "0.0.0", NodeRole.UNIVERSAL, "x", 1, bytes(SHA_LEN))
    await OtaTransfer(link, image, reply_timeout=reply_timeout).abort()


def confirm_installed(info: NodeInfo, image: FirmwareImage) -> None:
    """After the reboot and reconnect: raise `RolledBackError` unless `info` runs `image`.

    A new image runs on trial until its self-test passes (usually a few seconds; up to
    120 s before the node rolls back): check once the node had that time.
    """
    if info.firmware != image.version:
        raise RolledBackError(image.version, info.firmware)
