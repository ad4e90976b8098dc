"""A model of a DC-Monitor BLE mesh: nodes, mesh routing, firmware behaviour and faults.

Everything runs on the asyncio event loop that calls into the mesh; every delay comes
from `Latencies` and every random draw from one `random.Random(seed)`, so a run is
reproducible. `Mesh.shutdown()` cancels every timer the mesh scheduled.

Firmware behaviour follows docs/protocol-v1.md and the shared vectors in
firmware/vectors/: commands.tsv (v1) and commands_v07.tsv (v0.7, the field firmware)
for command handling, payloads.tsv for what a vendor server answers, status.tsv for
how the connected node notifies a STATUS. In short:

- Mesh payloads `read`, `duty:<n>`, `r` and `s` are answered with a reading
  (`D:..%,V:..V,I:..mA,P:..mW`, the duty after the payload; v0.7 prints it from
  float32, v1 from fixed point), `info` with the INFO line (v1; v0.7 answers
  `ERR:UNKNOWN:info`), anything else with `ERR:UNKNOWN:<payload>`. The connected node
  notifies a STATUS as `NODE<src - 5>:DATA:<text>` (a v1 INFO line as it is), and a
  payload it handles itself the same way with its own address.
- v1: the parsing, echo rules, SENT text, local/ALL/unicast order, the unicast queue
  (1 in flight + 4 waiting, `ERROR:MESH_BUSY`) and lower-case `TIMEOUT:0x<addr>` are as
  Appendix A says; every valid command answers `ERROR:NOT_READY` while the node is
  unbound or its mesh is not ready after a boot. A write longer than 64 bytes raises
  the ATT error 0x0D (`AttError`). `SENT` for a queued unicast is notified when it is
  actually sent; MONITOR polls (first one after one interval) send no `SENT`.
- v0.7 (command_parser.c, mesh_node.c, monitor.c): strtok/atoi parsing, writes cut to
  64 bytes, `SENT:<token as typed>`, a unicast in flight holds the next write (up to
  `client_timeout`), a lost unicast is `ERROR:MESH_TIMEOUT` (silent while a monitor
  runs), a self-targeted RAMP holds the write until the ramp is over. MONITOR polls
  one address (ALL: the first known node, else node 1) with a unicast `read`; every
  other command, an unknown one too, stops it first. Unbound (`Mesh.set_bound(n,
  False)`, the fallback): MONITOR answers `ERROR:NOT_READY`, its own id is still
  handled locally, every other command becomes a Generic OnOff SET (STOP/OFF: 0,
  else 1) to the id, or for ALL to each known node (`Node.known_nodes`) or node 1,
  answered `SENT:ON(fallback)`/`SENT:OFF(fallback)`, then `NODE<id>:ACK:<0|1>` or
  `TIMEOUT:0x<addr>` after `onoff_timeout`. Ids above 9 exist (up to 250 here) and
  answer ALL as `NODE10`, ...; nothing targets them.
- Large meshes (protocol section 10): v1 nodes have capability 0010 (`Mesh(large_mesh=
  False)` models v1 builds without it): commands name ids 0..99, and every node answers a
  group SEND node id x `Latencies.stagger_slot` after it got it (`wire.Stagger`, the
  firmware's dcp_stagger: one held answer per source and kind, the latest text at the first
  due time, at most 4 held); unicasts and the connected node's own answer go at once.
- An unbound node ignores vendor SENDs but still relays. A relay answers `info` only
  (v1) and nothing at all (v0.7). Only v0.7 universal nodes have a Generic OnOff
  server.
- GATT: 0xDC02 reads `NODE_READY` until the first notification, then the last message
  notified. `GATEWAY_CONNECTED` is notified on subscribe; `MESH_READY:VENDOR` when a
  node's models get bound (`set_bound`) and, for v1, when the mesh becomes ready after
  a boot while subscribed (rare: the client has to reconnect first). A chunk fault
  "fail" gives up the rest of the message and mutes the client until its next write
  or read (v0.7) or subscription (v1), as a failed notify does.
- One GATT connection per node (`Node.max_connections`); further attempts are
  refused. Readings: `physics.Load` gives INA260 counts.
- `Mesh.advertised_mesh_id` replaces the mesh id v1 nodes advertise (not the one
  their INFO names): a device copying another mesh's id.
"""

from __future__ import annotations

import asyncio
from collections import deque
import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
import itertools
import math
import random
import time
from typing import TYPE_CHECKING, Literal

from custom_components.dc_mesh.dcmesh.auth import derive_mesh_key

from . import ota, wire
from .auth import RateLimiter, SessionState, authorise
from .physics import Load

if TYPE_CHECKING:
    from collections.abc import Callable

type ChunkFault = Literal["drop", "duplicate", "corrupt", "fail"]
type SendError = Literal["MESH_SEND_FAIL", "MESH_TIMEOUT"]


class Profile(StrEnum):
    """Firmware generation of a node."""

    V07 = "v0.7"
    V1 = "v1"


class Role(StrEnum):
    """Role of a node in the mesh."""

    UNIVERSAL = "U"
    RELAY = "R"


# What a v1 node asks for in its connection parameter update (DCM_CONN_SUPERVISION_TIMEOUT_MS).
V1_SUPERVISION_TIMEOUT = 0.6


@dataclass(frozen=True, slots=True)
class Latencies:
    """Every delay of the model, in seconds; ranges are drawn uniformly."""

    connect: tuple[float, float]
    connect_failure: float  # a connect to a node that does not answer gives up
    gatt_write: tuple[float, float]
    notify_gap: float  # between consecutive notifications of one connection
    mesh_hop: tuple[float, float]
    supervision_timeout: float
    client_timeout: float  # the firmware's mesh client timeout -> TIMEOUT:0x...
    boot: float  # power on -> advertising and connectable
    mesh_ready: float  # advertising -> mesh ready
    ramp_step: float
    monitor_interval: float
    # v0.7 only: the Generic OnOff client timeout (fallback SET -> TIMEOUT:0x<addr>), the
    # gap between the SETs of ALL in fallback, and how long a command waits for the
    # unicast in flight when it stops a monitor
    onoff_timeout: float = 2.0
    fallback_gap: float = 0.2
    # Whether the central (adapter or proxy) accepts a v1 node's connection parameter
    # update, which asks for a 600 ms supervision timeout (protocol section 8)
    central_accepts_updates: bool = True
    monitor_stop_wait: float = 3.0
    # Firmware update (protocol section 9). The link carries writes without response in
    # connection events: `packets_per_event` ATT PDUs every `conn_interval` (section 8: the
    # node asks for 30..50 ms; BlueZ connects at 30 ms, its le_conn_min_interval). At the
    # v1 firmware's ATT MTU of 23 a PDU carries 16 image bytes, so the default link moves
    # 4 x 16 B / 30 ms = 2133 B/s of image data. A client's write returns once its PDU is in
    # the controller's buffer of `tx_buffer` PDUs (HCI flow control of a local adapter).
    conn_interval: float = 0.030
    packets_per_event: int = 4
    tx_buffer: int = 8
    # Through a proxy (`Mesh.set_ota_proxy`): its Wi-Fi hop (the ESPHome API), one way
    proxy_hop: float = 0.010
    # ESP32-C6 SPI flash through esp_ota_*: esp_ota_begin erases the slot up front (64 KB
    # block erases, ~150-200 ms each: ~300 KB/s; ESP-IDF's own performance floor for
    # 4 KB sector erases is 44-50 KB/s at 70 % of the slowest chip seen,
    # components/idf_test/include/*/idf_performance_target.h), then each in-order chunk is
    # one esp_partition_write: a fixed ~60 us per call plus ~500 KB/s (the same file's floor
    # for 2 KB writes is 300-750 KB/s, for 4-byte writes 16-48 KB/s). A 16-byte chunk so
    # takes 92 us (174 KB/s); a 1.2 MB image 4 s of erase and 7 s of writes (~110 KB/s).
    flash_erase_rate: float = 300_000.0
    flash_write_rate: float = 500_000.0
    flash_write_overhead: float = 60e-6
    ota_reboot: float = 1.0  # OTA:DONE -> esp_restart
    ota_selftest: float = 3.0  # a good new image passes its self-test after this
    ota_selftest_timeout: float = 120.0  # a bad one rolls back after this
    # A large-mesh node answers a group SEND node id x this later (firmware: 100 ms)
    stagger_slot: float = wire.STAGGER_SLOT_MS / 1000

    @classmethod
    def realistic(cls) -> Latencies:
        """Delays seen on real hardware."""
        return cls(
            connect=(0.3, 1.5),
            connect_failure=10.0,
            gatt_write=(0.01, 0.05),
            notify_gap=0.0075,
            mesh_hop=(0.05, 0.3),
            supervision_timeout=4.0,
            client_timeout=5.0,
            boot=1.5,
            mesh_ready=0.8,
            ramp_step=0.5,
            monitor_interval=1.0,
        )

    @classmethod
    def fast(cls) -> Latencies:
        """Millisecond-scale delays for tests, in the same proportions."""
        return cls(
            connect=(0.001, 0.003),
            connect_failure=0.02,
            gatt_write=(0.0, 0.001),
            notify_gap=0.0,
            mesh_hop=(0.001, 0.004),
            supervision_timeout=0.04,
            client_timeout=0.1,
            boot=0.02,
            mesh_ready=0.01,
            ramp_step=0.02,
            monitor_interval=0.04,
            onoff_timeout=0.04,
            fallback_gap=0.004,
            monitor_stop_wait=0.06,
            conn_interval=0.001,
            packets_per_event=8,
            tx_buffer=16,
            proxy_hop=0.0003,
            flash_erase_rate=1e9,
            flash_write_rate=1e9,
            flash_write_overhead=0.0,
            ota_reboot=0.005,
            ota_selftest=0.005,
            ota_selftest_timeout=0.03,
            stagger_slot=0.002,
        )


@dataclass(slots=True)
class ChunkFaults:
    """Per-chunk fault probabilities of one node's notifications."""

    drop: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0  # one byte of the chunk becomes 0xFF


class SimError(Exception):
    """Base of the simulator's link errors."""


class ConnectRefusedError(SimError):
    """The node refused the connection."""


class ConnectTimeoutError(SimError, TimeoutError):
    """The node did not answer the connection request."""


class LinkLostError(SimError):
    """The GATT link is gone (or was never up)."""


class AttError(SimError):
    """The node answered an ATT request with an error code."""

    def __init__(self, code: int) -> None:
        """Keep the ATT error code."""
        super().__init__(f"ATT error 0x{code:02X}")
        self.code = code


ATT_INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
ATT_CONGESTED = 0x8F  # ESP_GATT_CONGESTED: an ESP-IDF central refuses while congested
# An ESPHome proxy's queue of ATT PDUs for one link (ESP-IDF Bluedroid:
# L2CAP_CACHE_ATT_ACL_NUM, 10; esp_ble_gattc_write_char fails while the channel is congested)
PROXY_BUFFER = 10
ATT_WRITE_NOT_PERMITTED = 0x03
MAX_V07_NODE_ID = 250


class GattSession:
    """One client's GATT connection to a universal node.

    `on_notify` gets each notification chunk, `on_lost` is called once when the link
    drops without the client asking for it.
    """

    def __init__(self, node: Node) -> None:
        """Attach to a node; `Mesh.connect` builds sessions."""
        self.node = node
        self.connected = True
        self.subscribed = False
        self.on_notify: Callable[[bytes], None] | None = None
        self.on_lost: Callable[[], None] | None = None
        # the node forgot this client after a failed notify (chunk fault "fail"): v0.7
        # captures it again on its next write or read, v1 on its next subscribe
        self.muted = False
        self._queue: deque[bytes] = deque()
        self._draining = False
        self._lost = asyncio.Event()
        self.auth = SessionState()  # its session ends with the connection
        self.supervision_timeout = node.mesh.latencies.supervision_timeout
        # firmware update: the connection's id (never reused) and its link model
        self.conn_id = node.mesh.next_conn_id()
        self.mtu = node.att_mtu
        self._tx_origin = asyncio.get_running_loop().time()
        self._tx_event = -1
        self._tx_count = 0
        self._tx_pending: deque[float] = deque()  # departure times of buffered PDUs
        self._in_air: deque[tuple[bytes, bool]] = deque()  # PDU, lost on the way
        self.data_writes = 0  # writes to 0xDC04 that reached the node
        self.data_dropped = 0  # writes to 0xDC04 a proxy-like fault dropped
        self.proxy_overflows = 0  # of them: found the proxy's buffer full
        self._replies: deque[Callable[[], None]] = deque()  # OTA replies on their way
        self._replies_due = 0.0

    def _departure(self) -> float:
        """The connection event that carries the next PDU (loop time)."""
        latencies = self.node.mesh.latencies
        now = asyncio.get_running_loop().time()
        event = max(
            self._tx_event, math.ceil((now - self._tx_origin) / latencies.conn_interval)
        )
        if event == self._tx_event and self._tx_count >= latencies.packets_per_event:
            event += 1
        if event != self._tx_event:
            self._tx_event, self._tx_count = event, 0
        self._tx_count += 1
        # PDUs of one event follow each other (strictly later: timers keep their order)
        spacing = latencies.conn_interval / (4 * latencies.packets_per_event)
        return (
            self._tx_origin
            + event * latencies.conn_interval
            + (self._tx_count - 1) * spacing
        )

    async def _wait_for_buffer(self, free: int) -> None:
        """Wait until at most `tx_buffer - free` PDUs wait in the controller."""
        loop = asyncio.get_running_loop()
        limit = self.node.mesh.latencies.tx_buffer - free
        while True:
            now = loop.time()
            while self._tx_pending and self._tx_pending[0] <= now:
                self._tx_pending.popleft()
            if len(self._tx_pending) <= limit:
                return
            await asyncio.sleep(self._tx_pending[0] - now)
            self._check()

    async def write_data(self, data: bytes, *, response: bool) -> None:
        """Write to 0xDC04 (firmware update data), with or without response.

        Without response the write returns once its PDU is buffered; the PDU reaches the node
        in its connection event, unless a proxy-like fault drops it. With response the write
        returns after the node's response (the next event).

        Through a proxy (`Mesh.set_ota_proxy`) a write without response returns at once (no
        flow control back to the client): the proxy queues its PDU for the link, or drops it
        when its buffer of `ota_proxy_buffer` PDUs is full (the sender outran the link).
        """
        self._check()
        if self.node.ota is None:
            raise AttError(ATT_WRITE_NOT_PERMITTED)
        if len(data) > self.mtu - 3 or len(data) > ota.WRITE_MAX:
            raise AttError(ATT_INVALID_ATTRIBUTE_VALUE_LENGTH)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # a write goes through the event loop, as bleak's do
        self._check()
        if self.node.faults.ota_proxy_buffer is None:
            await self._wait_for_buffer(1)
        elif self._proxy_full():
            if response:
                raise AttError(ATT_CONGESTED)
            self.data_dropped += 1
            self.proxy_overflows += 1
            return
        departure = self._departure()
        self._tx_pending.append(departure)
        node = self.node
        dropped = not response and node.mesh.rng.random() < node.faults.ota_drop
        # PDUs arrive in the order they were written, whatever order equal timers run in
        self._in_air.append((bytes(data), dropped))

        def arrive() -> None:
            pdu, lost = self._in_air.popleft()
            if not self.connected or not node.powered:
                return
            if lost:
                self.data_dropped += 1
                return
            self.data_writes += 1
            node.ota_chunk(self, pdu)

        node.mesh.schedule(departure - loop.time(), arrive)
        if response:
            await asyncio.sleep(
                departure + node.mesh.latencies.conn_interval - loop.time()
            )
            self._check()

    def reply_delay(self) -> float:
        """Until a notification queued now reaches the client (an update's round trip).

        It leaves in the link's next connection event, and through a proxy it crosses
        the proxy's Wi-Fi, both ways (the write that caused it came that way too).
        """
        latencies = self.node.mesh.latencies
        now = self.node.mesh.event_now()
        wait = -(now - self._tx_origin) % latencies.conn_interval
        if self.node.faults.ota_proxy_buffer is not None:
            wait += 2 * latencies.proxy_hop
        return wait

    def after_reply_delay(self, action: Callable[[], None]) -> None:
        """Run `action` when a notification queued now reaches the client, in order."""
        mesh = self.node.mesh
        now = mesh.event_now()
        self._replies_due = max(now + self.reply_delay(), self._replies_due)
        self._replies.append(action)

        def arrive() -> None:
            # equal timers may run in any order: the replies keep theirs
            self._replies.popleft()()

        mesh.schedule(self._replies_due - now, arrive)

    def _proxy_full(self) -> bool:
        """Whether the proxy's buffer holds `ota_proxy_buffer` PDUs still to be sent."""
        now = asyncio.get_running_loop().time()
        while self._tx_pending and self._tx_pending[0] <= now:
            self._tx_pending.popleft()
        limit = self.node.faults.ota_proxy_buffer
        return limit is not None and len(self._tx_pending) >= limit

    async def write(self, data: bytes) -> None:
        """Write a command to 0xDC03 (write with response).

        Through a proxy whose buffer is full the write fails (ATT error 0x8F, congested).
        """
        self._check()
        if self._proxy_full():
            raise AttError(ATT_CONGESTED)
        if self._tx_pending:
            # one ATT bearer: during an update the request takes the next free PDU slot
            # after the buffered writes, and the node takes it in that order
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._departure() - loop.time()))
        else:
            await asyncio.sleep(
                self.node.mesh.draw(self.node.mesh.latencies.gatt_write)
            )
        self._check()
        if not self.node.powered:  # no write response ever comes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.supervision_timeout)
            raise LinkLostError("link lost during write")
        if self.node.v07:
            self.muted = False  # gatt_service.c:97-118: a write captures the client
        elif len(data) > wire.MAX_COMMAND_LEN:
            raise AttError(ATT_INVALID_ATTRIBUTE_VALUE_LENGTH)
        await self.node.handle_write(bytes(data), self)

    def read(self) -> bytes:
        """Read 0xDC02: the last message notified (NODE_READY before the first)."""
        self._check()
        if self.node.v07:
            self.muted = False
        return self.node.value

    def subscribe(self, callback: Callable[[bytes], None]) -> None:
        """Enable notifications on 0xDC02."""
        self._check()
        self.on_notify = callback
        self.subscribed = True
        self.muted = False
        requested = self.node.requested_supervision_timeout
        if requested is not None and self.node.mesh.latencies.central_accepts_updates:
            # the node's connection parameter update request (once, on subscribe)
            self.supervision_timeout = min(self.supervision_timeout, requested)
        self.node.notify_session(self, "GATEWAY_CONNECTED")

    def unsubscribe(self) -> None:
        """Disable notifications."""
        self.subscribed = False
        self.on_notify = None

    def disconnect(self) -> None:
        """Close the link from the client side (idempotent)."""
        if self.connected:
            self._close()

    def push(self, chunks: list[bytes]) -> None:
        """Queue notification chunks; they go out in order, `notify_gap` apart."""
        self._queue.extend(chunks)
        if not self._draining:
            self._draining = True
            self.node.mesh.schedule(0.0, self._drain)

    def drop(self) -> None:
        """Drop the link (supervision timeout) and tell the client once."""
        if self.connected:
            self._close()
            if self.on_lost is not None:
                self.on_lost()

    def _drain(self) -> None:
        if not self.connected or not self._queue:
            self._draining = False
            return
        data = self._queue.popleft()
        if self.subscribed and self.on_notify is not None:
            self.on_notify(data)
        self.node.mesh.schedule(self.node.mesh.latencies.notify_gap, self._drain)

    def _close(self) -> None:
        self.connected = False
        self.subscribed = False
        self._queue.clear()
        self._lost.set()
        if self in self.node.sessions:
            self.node.sessions.remove(self)
            if not self.node.v07:  # v0.7 keeps polling with nobody listening
                self.node.stop_monitor()
        if self.node.ota is not None:
            self.node.ota.conn_closed(self.conn_id)
        self.node.mesh.changed()

    def _check(self) -> None:
        if not self.connected:
            raise LinkLostError("not connected")


@dataclass(slots=True)
class _Faults:
    refuse_connections: int = 0  # how many attempts to refuse; -1 forever
    connect_delay: float = 0.0
    unreachable: bool = False
    chunks: ChunkFaults = field(default_factory=ChunkFaults)
    one_shot: deque[ChunkFault] = field(default_factory=deque)
    next_send_error: SendError | None = None
    # of the next SEND whose payload starts so (upper case; "": any)
    next_send_command: str = ""
    stale_cache: bool = False
    missed_group_messages: int = 0
    ota_drop: float = 0.0  # share of 0xDC04 writes without response lost on the way
    ota_disconnect_at: float | None = None  # drop the link once this share is received
    ota_proxy_buffer: int | None = None  # clients reach the node through a proxy (PDUs)


class Node:
    """One node: a universal node (sensor, load, GATT) or a relay."""

    def __init__(
        self,
        mesh: Mesh,
        node_id: int,
        *,
        role: Role,
        profile: Profile,
        mac: str | None,
        load: Load | None,
        rssi: int,
    ) -> None:
        """Build a powered, booted node; use `Mesh.add_node`."""
        self.mesh = mesh
        self.node_id = node_id
        self.address = wire.address(node_id)
        self.role = role
        self.profile = profile
        self.mac = mac
        self.load = load
        self.rssi = rssi
        self.firmware = "1.0.0" if profile is Profile.V1 else "0.7.0"
        self.hardware = "ESP32-C6"
        self.heap = 142000 - mesh.rng.randrange(0, 4000)
        self.max_connections = 1
        self.powered = True
        self.booted = True  # advertising, connectable
        self.mesh_ready = True
        self.bound = True  # vendor models have their application key
        # v1 universal nodes derive the mesh key once their AppKey is bound (section 7)
        self.mesh_key: bytes | None = (
            mesh.mesh_key
            if mesh.sessions and profile is Profile.V1 and role is Role.UNIVERSAL
            else None
        )
        self.auth_limiter = RateLimiter(mesh.now)
        self.nonces: deque[bytes] = deque()  # tests: the nonces to draw next
        # v1 asks a subscribed client for this supervision timeout (Kconfig default)
        self.requested_supervision_timeout: float | None = (
            V1_SUPERVISION_TIMEOUT if profile is Profile.V1 else None
        )
        self.duty = 0
        self.value = b"NODE_READY"
        self.sessions: list[GattSession] = []
        self.faults = _Faults()
        self.epoch = 0  # bumped at every power loss
        # v0.7: addresses that answered a vendor SEND, at most 10 (node_tracker.c)
        self.known_nodes: list[int] = []
        self._boot_time = mesh.now()
        self._ramp: asyncio.Handle | None = None
        self._monitor: asyncio.Handle | None = None
        self._monitor_target: int | None = None
        self._awaiting: int | None = None  # address of the unicast in flight
        self._timeout: asyncio.Handle | None = None
        self._queue: deque[tuple[int, str, str | None]] = deque()  # dst, payload, SENT
        self._monitor_waiting = False  # v0.7 monitor_waiting_response
        self._onoff_timeouts: dict[int, asyncio.Handle] = {}  # v0.7 OnOff client
        # section 10: node ids 0..99 in commands, answers to group SENDs held a while
        self.large_mesh = profile is Profile.V1 and mesh.large_mesh
        self._stagger: wire.Stagger[Callable[[str], None]] = wire.Stagger()
        self._stagger_timer: asyncio.Handle | None = None
        # firmware update (section 9): v1 universal nodes of a mesh built with `ota`
        self.att_mtu = 23  # ESP-BLE-MESH's preferred MTU (DCM_OTA_ATT_MTU)
        self.flash = ota.Flash(project=ota.PROJECTS[role.value])
        self.ota: ota.OtaReceiver | None = None
        if mesh.ota and profile is Profile.V1 and role is Role.UNIVERSAL:
            self.ota = self._new_receiver()
        self.pending_verify = False  # a new image on trial (before its self-test)
        self.previous_firmware: str | None = None
        self.ota_log: list[str] = []  # "installed x.y.z", "rolled back to x.y.z"
        self._ota_queue: deque[tuple[bool, GattSession | None, bytes]] = deque()
        self._ota_backlog: deque[float] = deque()  # when queued chunks are written
        self._ota_busy = False

    @property
    def v07(self) -> bool:
        """Whether the node runs the v0.7 field firmware."""
        return self.profile is Profile.V07

    @property
    def uptime(self) -> int:
        """Seconds since boot."""
        return int(self.mesh.now() - self._boot_time)

    @property
    def ready(self) -> bool:
        """Whether the node can use the mesh (booted, mesh up, models bound)."""
        return self.mesh_ready and self.bound

    @property
    def monitor(self) -> int | Literal["all"] | None:
        """What an active MONITOR polls: a node id, "all" (v1), or None when off."""
        if self._monitor is None:
            return None
        return "all" if self._monitor_target is None else self._monitor_target

    # --- the vendor server model -------------------------------------------------

    def serve(
        self, payload: str, *, gateway: bool, answer: Callable[[str], None]
    ) -> None:
        """Run a mesh payload on this node; `answer` gets its STATUS text, if any.

        read, duty, r and s are answered with a reading (no node id: the receiving
        gateway adds it); v0.7 blocks in `r` until the ramp is over and answers then.
        """
        if payload == "info" and not self.v07:
            answer(self.info(gateway=gateway))
            return
        if self.load is None:
            return  # a relay answers info (v1) and nothing else
        if self.v07:
            self._serve_v07(payload, answer)
            return
        if payload == "read":
            pass
        elif payload == "r":
            self._start_ramp()
        elif payload == "s":
            self._set_duty(0)
        elif (
            payload.startswith("duty:")
            and (duty := wire.parse_duty(payload[5:].encode("latin-1"))) is not None
        ):
            self._set_duty(duty)
        else:
            unknown = wire.sanitise(payload.encode("latin-1"), upper=False)
            answer(f"ERR:UNKNOWN:{unknown}")
            return
        answer(self.reading())

    def _serve_v07(self, payload: str, answer: Callable[[str], None]) -> None:
        action = wire.parse_payload_v07(payload)
        if action is None:
            answer(f"ERR:UNKNOWN:{payload}")
            return
        kind, duty = action
        if kind == "set" and duty is not None:
            self._set_duty(max(0, min(100, duty)))
        elif kind == "ramp":
            # command.c:31-44: blocks through 0, 25, 50, 75, 100 % then 0 and 200 ms
            self._start_ramp()
            epoch = self.epoch
            step = self.mesh.latencies.ramp_step

            def done() -> None:
                if epoch == self.epoch:
                    answer(self.reading())

            self.mesh.schedule(5 * step + 0.4 * step, done)
            return
        answer(self.reading())

    def handle_onoff(self, on: bool) -> bool | None:
        """Generic OnOff SET (v0.7's fallback): full duty or off; the present state.

        Only v0.7 universal nodes have the Generic OnOff server; others stay silent.
        """
        if self.load is None or not self.v07:
            return None
        self._set_duty(100 if on else 0)
        return on

    def reading(self) -> str:
        """Return a reading (a STATUS text) from the sensor at the current duty."""
        assert self.load is not None
        millivolts, centi_ma = self.load.measure(self.duty, self.mesh.rng)
        if self.v07:
            volt_counts = (millivolts * 4 + 4) // 5  # physics keeps mV = counts x 1.25
            return wire.format_reading_v07(self.duty, volt_counts, centi_ma // 125)
        return wire.format_reading(self.duty, millivolts, centi_ma)

    def info(self, *, gateway: bool) -> str:
        """Return the v1 INFO line."""
        capabilities = 0x0003 if self.role is Role.UNIVERSAL else 0x0001
        if self.large_mesh:
            capabilities |= wire.CAP_LARGE_MESH
        if self.requires_session:
            capabilities |= 0x0004
        if self.ota is not None:
            capabilities |= ota.CAP_OTA
        return (
            f"NODE{self.node_id}:INFO:FW:{self.firmware},HW:{self.hardware},"
            f"ROLE:{self.role.value},CAP:{capabilities:04X},UP:{self.uptime},"
            f"HEAP:{self.heap},MESH:{self.mesh.mesh_id:08x},GW:{int(gateway)}"
        )

    def _set_duty(self, duty: int) -> None:
        self._cancel_ramp()
        self.duty = duty

    def _start_ramp(self) -> None:
        self._set_duty(0)
        steps = deque([25, 50, 75, 100, 0])

        def step() -> None:
            self.duty = steps.popleft()
            self._ramp = (
                self.mesh.schedule(self.mesh.latencies.ramp_step, step)
                if steps
                else None
            )

        self._ramp = self.mesh.schedule(self.mesh.latencies.ramp_step, step)

    def answer_group(self, source: int, text: str, send: Callable[[str], None]) -> None:
        """Answer a group SEND from `source`: node id x `stagger_slot` later (section 10).

        Only large-mesh nodes wait (v0.7 and older v1 answer at once); `send` carries the
        text back to `source`.
        """
        slot = self.mesh.latencies.stagger_slot
        delay = wire.Stagger.delay(self.node_id, wire.GROUP_ADDR, slot)
        if not self.large_mesh or delay <= 0:
            send(text)
            return
        kind = wire.answer_kind(text)
        evicted = self._stagger.put(
            self.mesh.event_now(), delay, source, kind=kind, text=text, context=send
        )
        if evicted is not None:
            evicted.context(evicted.text)
        self._arm_stagger()

    def _arm_stagger(self) -> None:
        if self._stagger_timer is not None:
            self.mesh.cancel(self._stagger_timer)
            self._stagger_timer = None
        if (wait := self._stagger.wait(self.mesh.event_now())) is not None:
            self._stagger_timer = self.mesh.schedule(wait, self._stagger_due)

    def _stagger_due(self) -> None:
        self._stagger_timer = None
        while (held := self._stagger.take(self.mesh.event_now())) is not None:
            held.context(held.text)
        self._arm_stagger()

    def _cancel_ramp(self) -> None:
        if self._ramp is not None:
            self.mesh.cancel(self._ramp)
            self._ramp = None

    # --- GATT side ----------------------------------------------------------------

    def notify(self, line: str) -> None:
        """Notify a message to every subscribed client, chunked, through the faults."""
        data = line.encode("latin-1")
        if self.v07:
            data = data[: wire.V07_MESSAGE_MAX]  # gatt_service.c:36-37
        if any(session.subscribed for session in self.sessions):
            self.value = data  # what a read of 0xDC02 returns from now on
        for session in list(self.sessions):
            self.notify_session(session, data)

    def notify_session(self, session: GattSession, line: str | bytes) -> None:
        """Notify one client."""
        if not session.subscribed or session.muted or not self.powered:
            return
        data = line.encode("latin-1") if isinstance(line, str) else line
        out: list[bytes] = []
        for chunk in wire.chunk(data):
            fault = self._chunk_fault()
            sent = chunk
            if fault == "fail":
                # the notify failed: the rest of the message is given up and the node
                # forgets the client until it writes (v0.7) or subscribes again (v1)
                session.muted = True
                break
            if fault == "drop":
                continue
            if fault == "corrupt":
                position = self.mesh.rng.randrange(len(chunk))
                sent = chunk[:position] + b"\xff" + chunk[position + 1 :]
            out.append(sent)
            if fault == "duplicate":
                out.append(sent)
        session.push(out)

    def _chunk_fault(self) -> ChunkFault | None:
        if self.faults.one_shot:
            return self.faults.one_shot.popleft()
        chance = self.faults.chunks
        draw = self.mesh.rng.random()
        if draw < chance.drop:
            return "drop"
        if draw < chance.drop + chance.duplicate:
            return "duplicate"
        if draw < chance.drop + chance.duplicate + chance.corrupt:
            return "corrupt"
        return None

    def forward(self, source: int, text: str) -> None:
        """Notify a STATUS text from `source` (or a local answer) as the firmware does."""
        if (line := wire.forward_status(source, text, v07=self.v07)) is not None:
            self.notify(line)

    async def handle_write(
        self, raw: bytes, session: GattSession | None = None
    ) -> None:
        """Handle a write to 0xDC03; returns when the firmware sends the write response.

        `session`: the client connection that wrote (None: a client without a session).
        """
        if self.v07:
            await self._handle_write_v07(raw)
        else:
            self._handle_write_v1(raw, session)

    @property
    def requires_session(self) -> bool:
        """Whether state-changing commands need a session (v1, key derived)."""
        return self.mesh_key is not None

    def _draw_nonce(self) -> bytes:
        return self.nonces.popleft() if self.nonces else self.mesh.key_rng.randbytes(8)

    def _handle_write_v1(self, raw: bytes, session: GattSession | None) -> None:
        if (
            self.ota is not None
            and self.mesh_key is not None
            and ota.needs_session(raw)
        ):
            # section 9.2: written plainly, every OTA command but STATUS is refused
            self._ota_answer(session, "ERROR:AUTH:REQUIRED")
            return
        if self.mesh_key is not None:  # kept (NVS) while the models are unbound

            def answer(line: str) -> None:
                if session is None:
                    self.notify(line)
                else:
                    self.notify_session(session, line)

            authorised = authorise(
                raw,
                mesh_key=self.mesh_key,
                state=session.auth if session is not None else SessionState(),
                limiter=self.auth_limiter,
                draw_nonce=self._draw_nonce,
                answer=answer,
            )
            if authorised is None:
                return
            raw = authorised
        if self.ota is not None and ota.is_command(raw):
            self._ota_enqueue(True, session, raw)  # never goes over the mesh
            return
        try:
            command = wire.parse_command(
                raw, info_supported=True, large_mesh=self.large_mesh
            )
        except wire.CommandRejectedError as rejected:
            self.notify(rejected.line)
            return
        if not self.ready:
            self.notify("ERROR:NOT_READY")
            return
        self.stop_monitor()
        if command.payload is None:
            self._start_monitor(command.target)
            self.notify("SENT:MONITOR")
            return
        if command.target in (self.node_id, None):
            self._local(command.payload)
        if command.target is None:
            if self._send(wire.GROUP_ADDR, command.payload):
                self.notify(command.sent)
        elif command.target != self.node_id:
            if len(self._queue) >= wire.MAX_QUEUED_UNICASTS:
                self.notify("ERROR:MESH_BUSY")
                return
            self._queue.append(
                (wire.address(command.target), command.payload, command.sent)
            )
            self._next_unicast()

    def on_status(self, source: int, text: str) -> None:
        """Receive a vendor STATUS: forward it to the client; it may end a wait."""
        if self.v07:
            if source == self._awaiting:
                self._end_unicast_v07()
            if (
                source != self.address
                and source not in self.known_nodes
                and len(self.known_nodes) < wire.V07_MAX_NODES
            ):
                self.known_nodes.append(source)
            self._monitor_waiting = False
            self.forward(source, text)
            return
        self.forward(source, text)
        if source == self._awaiting:
            self._end_unicast()

    def on_onoff_status(self, source: int, on: bool) -> None:
        """Receive a Generic OnOff status (v0.7 fallback): `NODE<id>:ACK:<0|1>`."""
        if (handle := self._onoff_timeouts.pop(source, None)) is not None:
            self.mesh.cancel(handle)
        node = source - wire.BASE_UNICAST if source >= wire.BASE_UNICAST else 0
        self.notify(f"NODE{node}:ACK:{int(on)}")

    def _local(self, payload: str) -> None:
        self.serve(
            payload, gateway=True, answer=lambda text: self.forward(self.address, text)
        )

    def _send_error(self, payload: str) -> SendError | None:
        """The error the stack gives this SEND (`Mesh.fail_next_send`), once."""
        faults = self.faults
        kind = faults.next_send_error
        if kind is None or not payload.upper().startswith(faults.next_send_command):
            return None
        faults.next_send_error = None
        return kind

    def _send(self, destination: int, payload: str) -> bool:
        """Hand a SEND to the stack; False (and ERROR notified) when it refuses."""
        if (kind := self._send_error(payload)) is not None:
            self.notify(f"ERROR:{kind}")
            return False
        self.mesh.send(self, destination, payload)
        return True

    def _next_unicast(self) -> None:
        """Send the next queued unicast unless one is in flight."""
        if self._awaiting is not None or not self._queue:
            return
        destination, payload, sent = self._queue.popleft()
        if not self._send(destination, payload):
            self._next_unicast()
            return
        if sent is not None:
            self.notify(sent)
        self._awaiting = destination

        def timeout() -> None:
            self._timeout = None
            self.notify(f"TIMEOUT:0x{destination:04x}")
            self._end_unicast()

        self._timeout = self.mesh.schedule(self.mesh.latencies.client_timeout, timeout)

    def _end_unicast(self) -> None:
        if self._timeout is not None:
            self.mesh.cancel(self._timeout)
            self._timeout = None
        self._awaiting = None
        self._next_unicast()

    def _start_monitor(self, target: int | None) -> None:
        self._monitor_target = target
        self._monitor = self.mesh.schedule(
            self.mesh.latencies.monitor_interval, self._poll
        )

    def stop_monitor(self) -> None:
        """Stop an active MONITOR (no-op if none)."""
        if self._monitor is not None:
            self.mesh.cancel(self._monitor)
            self._monitor = None
        self._monitor_waiting = False

    def _poll(self) -> None:
        target = self._monitor_target
        self._monitor = self.mesh.schedule(
            self.mesh.latencies.monitor_interval, self._poll
        )
        if self.v07:
            # monitor.c:14-22: one read at a time, none while a unicast is in flight
            idle = not self._monitor_waiting and self._awaiting is None
            if target is not None and self.bound and idle:
                self._monitor_waiting = True
                self._send_v07(wire.address(target), "read")
            return
        if target in (self.node_id, None):
            self._local("read")
        if target is None:
            self._send(wire.GROUP_ADDR, "read")
        elif target != self.node_id and self._awaiting is None and not self._queue:
            self._queue.append((wire.address(target), "read", None))
            self._next_unicast()

    # --- v0.7 command handling (command_parser.c, mesh_node.c) ----------------------

    async def _handle_write_v07(self, raw: bytes) -> None:
        try:
            command = wire.parse_command_v07(raw)
        except wire.CommandRejectedError as rejected:
            self.notify(rejected.line)
            return
        if not command.is_monitor and self._monitor is not None:
            # command_parser.c:81-92: stop, wait up to 3 s for a send in flight, forget it
            self.stop_monitor()
            await self._wait_idle(self.mesh.latencies.monitor_stop_wait)
            self._end_unicast_v07()
        if command.is_monitor:
            if not self.bound:
                self.notify("ERROR:NOT_READY")
                return
            if command.target is None:
                address = self.known_nodes[0] if self.known_nodes else wire.address(1)
            else:
                address = wire.address(command.target)
            self._monitor_target = address - wire.BASE_UNICAST
            self._monitor_waiting = False
            if self._monitor is not None:
                self.mesh.cancel(self._monitor)
            self._monitor = self.mesh.schedule(
                self.mesh.latencies.monitor_interval, self._poll
            )
            self.notify("SENT:MONITOR")
            return
        if command.payload is None:
            self.notify(command.unknown)
            return
        if command.target == self.node_id:
            await self._local_v07(command.payload)  # even in fallback
            return
        if self.bound:
            if command.target is None:
                await self._local_v07(command.payload)
                self._send_v07(wire.GROUP_ADDR, command.payload)
            else:
                # send_vendor_command busy-waits for the unicast in flight (up to 5 s)
                await self._wait_idle(self.mesh.latencies.client_timeout)
                self._end_unicast_v07()
                self._send_v07(wire.address(command.target), command.payload)
            self.notify(command.sent)
            return
        # fallback (vendor client unbound): Generic OnOff only, ON unless STOP/OFF
        on = command.name not in ("STOP", "OFF")
        if command.target is None:
            targets = list(self.known_nodes) or [wire.address(1)]
            for n, destination in enumerate(targets):
                self._send_onoff(destination, on)
                if n < len(targets) - 1:
                    await asyncio.sleep(self.mesh.latencies.fallback_gap)
        else:
            self._send_onoff(wire.address(command.target), on)
        self.notify("SENT:ON(fallback)" if on else "SENT:OFF(fallback)")

    async def _local_v07(self, payload: str) -> None:
        """process_local_and_notify: the write handler waits for it (a RAMP ~2.7 s)."""
        done = asyncio.get_running_loop().create_future()

        def answer(text: str) -> None:
            self.forward(self.address, text)
            if not done.done():
                done.set_result(None)

        self.serve(payload, gateway=True, answer=answer)
        step = self.mesh.latencies.ramp_step
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, 6 * step + self.mesh.latencies.client_timeout)

    async def _wait_idle(self, limit: float) -> None:
        """Poll while a unicast is in flight, at most `limit` seconds (firmware: 100 ms)."""
        step = self.mesh.latencies.client_timeout / 50
        waited = 0.0
        while self._awaiting is not None and waited < limit:
            await asyncio.sleep(step)
            waited += step

    def _send_v07(self, destination: int, payload: str) -> None:
        """send_vendor_command: unicasts are awaited (5 s, ERROR:MESH_TIMEOUT)."""
        kind = self._send_error(payload)
        if kind == "MESH_SEND_FAIL":
            # the stack reports it later (SEND_COMP, mesh_node.c:483-489): after SENT
            self.mesh.schedule(0.0, lambda: self.notify("ERROR:MESH_SEND_FAIL"))
            return
        if kind is None:  # "MESH_TIMEOUT": the SEND is lost on the way
            self.mesh.send(self, destination, payload)
        if destination == wire.GROUP_ADDR:
            return
        self._awaiting = destination

        def timeout() -> None:
            self._timeout = None
            self._awaiting = None
            self._monitor_waiting = False
            if self._monitor is None:  # mesh_node.c:508-510
                self.notify("ERROR:MESH_TIMEOUT")

        self._timeout = self.mesh.schedule(self.mesh.latencies.client_timeout, timeout)

    def _end_unicast_v07(self) -> None:
        if self._timeout is not None:
            self.mesh.cancel(self._timeout)
            self._timeout = None
        self._awaiting = None

    def _send_onoff(self, destination: int, on: bool) -> None:
        """send_mesh_onoff: Generic OnOff SET, 2 s client timeout -> TIMEOUT:0x<addr>."""
        if (old := self._onoff_timeouts.pop(destination, None)) is not None:
            self.mesh.cancel(old)
        self.mesh.send(self, destination, "", onoff=on)

        def timeout() -> None:
            self._onoff_timeouts.pop(destination, None)
            self.notify(f"TIMEOUT:0x{destination:04x}")

        self._onoff_timeouts[destination] = self.mesh.schedule(
            self.mesh.latencies.onoff_timeout, timeout
        )

    # --- firmware update (section 9) -------------------------------------------------

    def _new_receiver(self) -> ota.OtaReceiver:
        return ota.OtaReceiver(self.flash, role=self.role.value, hardware=self.hardware)

    def _ota_answer(self, session: GattSession | None, line: str) -> None:
        if session is None:
            self.notify(line)
            return

        def send() -> None:
            if session in self.sessions:
                self.notify_session(session, line)

        session.after_reply_delay(send)

    def ota_chunk(self, session: GattSession, data: bytes) -> None:
        """A write to 0xDC04 reached the node: into the app task's queue (16 slots)."""
        if self.ota is None:
            return
        # the queue as the firmware's clock sees it (not this process's scheduling lag)
        now = self.mesh.event_now()
        latencies = self.mesh.latencies
        while self._ota_backlog and self._ota_backlog[0] <= now:
            self._ota_backlog.popleft()
        if len(self._ota_backlog) >= ota.APP_QUEUE_SLOTS:
            return  # a full queue drops the chunk (firmware gatt_svc.c)
        start = max(now, self._ota_backlog[-1]) if self._ota_backlog else now
        cost = latencies.flash_write_overhead + len(data) / latencies.flash_write_rate
        self._ota_backlog.append(start + cost)
        self._ota_enqueue(False, session, data)

    def _ota_enqueue(
        self, is_command: bool, session: GattSession | None, data: bytes
    ) -> None:
        self._ota_queue.append((is_command, session, data))
        if not self._ota_busy:
            self._ota_busy = True
            self.mesh.schedule(0.0, self._ota_step)

    def _ota_step(self) -> None:
        """The app task: one command or chunk at a time, as long as the flash takes."""
        receiver = self.ota
        if receiver is None or not self._ota_queue or not self.powered:
            self._ota_busy = False
            return
        is_command, session, data = self._ota_queue.popleft()
        conn = session.conn_id if session is not None else 0
        erases, written = self.flash.erases, self.flash.written
        if is_command:
            result = receiver.command(conn, data)
        else:
            result = receiver.data(conn, data)
        latencies = self.mesh.latencies
        cost = 0.0
        if self.flash.erases != erases:
            cost += len(self.flash.data) / latencies.flash_erase_rate
        if (grown := self.flash.written - written) > 0:
            cost += latencies.flash_write_overhead + grown / latencies.flash_write_rate
        self._ota_disconnect_check(receiver)
        epoch = self.epoch

        def done() -> None:
            if epoch != self.epoch:
                return
            if result.reply is not None:
                self._ota_answer(session, result.reply)
            if result.reboot:
                self.mesh.schedule(latencies.ota_reboot, self._ota_restart)
            self._ota_step()

        self.mesh.schedule(cost, done)

    def _ota_disconnect_check(self, receiver: ota.OtaReceiver) -> None:
        share = self.faults.ota_disconnect_at
        if share is None or receiver.state is not ota.State.RECEIVING:
            return
        if receiver.next >= share * receiver.size:
            self.faults.ota_disconnect_at = None
            for session in list(self.sessions):
                if session.conn_id == receiver.owner:
                    self.mesh.schedule(0.0, session.drop)

    def _ota_reset(self) -> None:
        """A reset: the transfer is gone; a new image on trial rolls back."""
        self._ota_queue.clear()
        self._ota_backlog.clear()
        self._ota_busy = False
        if self.ota is not None:
            self.ota = self._new_receiver()
        if self.pending_verify and self.previous_firmware is not None:
            # the bootloader rolls back an image that did not pass its self-test
            self.pending_verify = False
            self.flash.begin_fails = False
            self.firmware = self.previous_firmware
            self.ota_log.append(f"rolled back to {self.firmware}")

    def _ota_restart(self) -> None:
        """esp_restart 1 s after OTA:DONE: boot the new image and run its self-test."""
        accepted = self.flash.accepted
        self.flash.accepted = None
        self.power_off()
        if accepted is not None:
            self.previous_firmware = self.firmware
            self.firmware = accepted.version
            self.pending_verify = True
            self.flash.begin_fails = True  # no update while on trial (ERROR:OTA:FLASH)
            self.ota_log.append(f"installed {accepted.version}")
        self.power_on()
        epoch = self.epoch
        latencies = self.mesh.latencies

        def passed() -> None:
            if epoch == self.epoch and self.pending_verify:
                self.pending_verify = False
                self.flash.begin_fails = False
                self.ota_log.append(f"self-test passed on {self.firmware}")

        def failed() -> None:
            if epoch == self.epoch and self.pending_verify:
                self.power_off()  # rolls back (see _ota_reset)
                self.power_on()

        if accepted is None:
            return
        if accepted.selftest_ok:
            delay = latencies.boot + latencies.mesh_ready + latencies.ota_selftest
            self.mesh.schedule(delay, passed)
        else:
            self.mesh.schedule(latencies.boot + latencies.ota_selftest_timeout, failed)

    # --- power --------------------------------------------------------------------

    def power_off(self) -> None:
        """Cut power: no radio at once; clients notice after the supervision timeout."""
        if not self.powered:
            return
        self.powered = self.booted = self.mesh_ready = False
        self.epoch += 1
        self._cancel_ramp()
        self.stop_monitor()
        if self._timeout is not None:
            self.mesh.cancel(self._timeout)
            self._timeout = None
        for handle in self._onoff_timeouts.values():
            self.mesh.cancel(handle)
        self._onoff_timeouts.clear()
        self._awaiting = None
        self._queue.clear()
        self.known_nodes.clear()
        self.duty = 0
        self.value = b"NODE_READY"
        self._ota_reset()
        self._stagger.clear()
        if self._stagger_timer is not None:
            self.mesh.cancel(self._stagger_timer)
            self._stagger_timer = None
        for session in self.sessions:
            self.mesh.schedule(session.supervision_timeout, session.drop)
        self.sessions.clear()  # the client keeps its half until the supervision timeout
        self.mesh.changed()

    def power_on(self) -> None:
        """Restore power: boots, advertises, then the mesh becomes ready."""
        if self.powered:
            return
        self.powered = True
        epoch = self.epoch

        def booted() -> None:
            if epoch == self.epoch:
                self.booted = True
                self._boot_time = self.mesh.now()
                self.mesh.changed()
                self.mesh.schedule(self.mesh.latencies.mesh_ready, mesh_ready)

        def mesh_ready() -> None:
            if epoch == self.epoch:
                self.mesh_ready = True
                if self.bound and not self.v07:
                    # v1: the models come up bound after a boot; v0.7 announces
                    # MESH_READY:VENDOR only when the provisioner binds the client
                    self.notify("MESH_READY:VENDOR")
                self.mesh.changed()

        self.mesh.schedule(self.mesh.latencies.boot, booted)


@dataclass(frozen=True, slots=True)
class Advert:
    """What one universal node advertises right now."""

    mac: str
    local_name: str
    service_uuids: list[str]
    service_data: dict[str, bytes]
    rssi: int


class Mesh:
    """A provisioned DC-Monitor mesh.

    Nodes get unicast addresses from 0x0005 in the order they are added (node id =
    address - 5). By default every node hears every other; `set_links` switches to
    an explicit adjacency (messages then travel hop by hop through powered nodes).
    """

    def __init__(
        self,
        *,
        latencies: Latencies | None = None,
        seed: int = 0,
        profile: Profile = Profile.V1,
        mesh_id: int = 0x1A2B3C4D,
        sessions: bool = True,
        ota: bool = False,
        large_mesh: bool = True,
    ) -> None:
        """Create an empty mesh.

        `sessions`: v1 universal nodes derive the mesh key and require sessions for
        state-changing commands (protocol section 7), as this project's firmware does;
        False models v1 builds from before sessions (tests of command semantics).
        `large_mesh`: v1 nodes have capability 0010 (ids 0..99, staggered group answers,
        section 10); False models v1 builds before it (ids 0..9, answers at once).
        """
        self.latencies = latencies or Latencies.fast()
        self.rng = random.Random(seed)
        self.profile = profile
        self.mesh_id = mesh_id
        # The mesh's keys as the provisioner made them; every v1 node derives the mesh
        # key from them (protocol section 7). Another seed: another mesh key.
        # (their own generator: the radio's draws stay what they were before sessions)
        self.key_rng = random.Random(f"keys {seed}")
        self.app_key = self.key_rng.randbytes(16)
        self.network_id = mesh_id.to_bytes(4) + self.key_rng.randbytes(4)
        self.mesh_key = derive_mesh_key(self.app_key, self.network_id)
        self.sessions = sessions
        # `ota`: v1 universal nodes run the firmware update receiver (section 9, CAP 0008),
        # as the firmware does with its standard partition table. Off by default so that
        # meshes built before it keep their INFO (CAP 0007) and GATT table.
        self.ota = ota
        self.large_mesh = large_mesh
        self._conn_ids = itertools.count(1)
        # When set, v1 nodes advertise this mesh id instead of their own (INFO keeps
        # `mesh_id`): a rogue or misconfigured device copying another mesh's id.
        self.advertised_mesh_id: int | None = None
        self.nodes: list[Node] = []
        self._links: set[frozenset[int]] | None = None
        self._handles: set[asyncio.Handle] = set()
        self._event_time: float | None = None  # due time of the callback running now
        self._listeners: list[Callable[[], None]] = []
        self.radio_log: deque[tuple[int, int, str]] = deque(maxlen=1000)

    # --- building -------------------------------------------------------------------

    def add_node(
        self,
        role: Role = Role.UNIVERSAL,
        *,
        profile: Profile | None = None,
        load: Load | None = None,
        rssi: int | None = None,
    ) -> Node:
        """Provision a node with the next unicast address.

        v1 firmware needs a node id its commands can name: 0..99 with the large-mesh
        capability (section 10), else 0..9. v0.7 nodes can be provisioned beyond 9 (up to
        id 250 here): they answer ALL and report themselves as NODE10, NODE11, ... as the
        field firmware does, and a large-mesh gateway can command them up to 99.
        """
        node_id = len(self.nodes)
        profile = profile or self.profile
        limit = wire.MAX_NODES if self.large_mesh else wire.V07_MAX_NODES
        if node_id >= limit and profile is Profile.V1:
            raise ValueError(f"v1 firmware needs a node id 0..{limit - 1}")
        if node_id > MAX_V07_NODE_ID:
            raise ValueError(f"the simulator holds node ids 0..{MAX_V07_NODE_ID}")
        universal = role is Role.UNIVERSAL
        mac = None
        if universal:
            tail = self.rng.getrandbits(24).to_bytes(3) + bytes([node_id])
            mac = ":".join(f"{byte:02X}" for byte in b"\xdc\x4d" + tail)
        node = Node(
            self,
            node_id,
            role=role,
            profile=profile,
            mac=mac,
            load=(load or Load()) if universal else None,
            rssi=rssi if rssi is not None else -self.rng.randrange(55, 85),
        )
        self.nodes.append(node)
        return node

    def next_conn_id(self) -> int:
        """A new GATT connection id (never reused; firmware update ownership)."""
        return next(self._conn_ids)

    def node(self, node_id: int) -> Node:
        """Return a node by id."""
        return self.nodes[node_id]

    def by_mac(self, mac: str) -> Node:
        """Return a universal node by BLE address (case-insensitive)."""
        for node in self.nodes:
            if node.mac is not None and node.mac == mac.upper():
                return node
        raise KeyError(mac)

    def set_links(self, links: list[tuple[int, int]]) -> None:
        """Who hears whom: only these node pairs (both directions) can talk."""
        self._links = {frozenset(pair) for pair in links}

    def set_link(self, a: int, b: int, *, up: bool) -> None:
        """Add or cut one radio link (switches to explicit adjacency)."""
        if self._links is None:
            ids = range(len(self.nodes))
            self._links = {frozenset((x, y)) for x in ids for y in ids if x < y}
        if up:
            self._links.add(frozenset((a, b)))
        else:
            self._links.discard(frozenset((a, b)))

    # --- time -----------------------------------------------------------------------

    @staticmethod
    def now() -> float:
        """Monotonic time, the clock asyncio's default loop runs on."""
        return time.monotonic()

    def event_now(self) -> float:
        """The due time of the event being handled (loop time outside events)."""
        if self._event_time is not None:
            return self._event_time
        return asyncio.get_running_loop().time()

    def draw(self, span: tuple[float, float]) -> float:
        """Draw a delay from a range."""
        return self.rng.uniform(*span)

    def schedule(self, delay: float, callback: Callable[[], None]) -> asyncio.Handle:
        """Run a callback `delay` seconds after the event being handled.

        Inside a scheduled callback, delays count from that callback's due time, not
        from the wall clock, so the order of a chain of events depends only on the
        seed and on when the client acted. Tracked so `shutdown` can cancel it.
        """
        loop = asyncio.get_running_loop()
        base = loop.time() if self._event_time is None else self._event_time
        when = base + max(delay, 0.0)
        handle: asyncio.Handle

        def run() -> None:
            self._handles.discard(handle)
            self._event_time = when
            try:
                callback()
            finally:
                self._event_time = None

        handle = loop.call_at(when, run)
        self._handles.add(handle)
        return handle

    def cancel(self, handle: asyncio.Handle) -> None:
        """Cancel a scheduled callback."""
        handle.cancel()
        self._handles.discard(handle)

    def shutdown(self) -> None:
        """Cancel every pending timer (ramps, monitors, deliveries, boots)."""
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()

    def add_listener(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call back when advertising state changes; returns a remover."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def changed(self) -> None:
        """Tell listeners that what nodes advertise may have changed."""
        for listener in list(self._listeners):
            listener()

    # --- the mesh radio -------------------------------------------------------------

    def hops(self, source: Node, target: Node) -> int | None:
        """Hops on the shortest path through alive, reachable nodes, None if none."""
        if not _alive(source) or not _alive(target):
            return None
        seen = {source.node_id}
        frontier = [source.node_id]
        distance = 0
        while frontier:
            if target.node_id in frontier:
                return distance
            distance += 1
            following = []
            for current in frontier:
                for other in self.nodes:
                    if (
                        other.node_id not in seen
                        and _alive(other)
                        and self._hears(current, other.node_id)
                    ):
                        seen.add(other.node_id)
                        following.append(other.node_id)
            frontier = following
        return None

    def _hears(self, a: int, b: int) -> bool:
        return self._links is None or frozenset((a, b)) in self._links

    def _travel(self, hops: int) -> float:
        return sum(self.draw(self.latencies.mesh_hop) for _ in range(hops))

    def send(
        self, sender: Node, destination: int, payload: str, *, onoff: bool | None = None
    ) -> None:
        """Send a vendor SEND (or, with `onoff`, a Generic OnOff SET) over the mesh.

        Every node the message reaches answers the sender (a vendor STATUS, or an OnOff
        status), back hop by hop. A node's server ignores its own vendor SENDs (the
        group loop-back); an OnOff SET to its own address is handled (mesh loop-back).
        `radio_log` records the send, an OnOff SET as the payload `onoff:<0|1>`.
        """
        logged = payload if onoff is None else f"onoff:{int(onoff)}"
        self.radio_log.append((sender.address, destination, logged))
        for node in self.nodes:
            if destination not in (node.address, wire.GROUP_ADDR):
                continue
            if node is sender and (onoff is None or destination != node.address):
                continue
            if destination == wire.GROUP_ADDR and node.faults.missed_group_messages:
                node.faults.missed_group_messages -= 1  # unacknowledged: just lost
                continue
            self._carry(
                sender, node, payload, onoff, group=destination == wire.GROUP_ADDR
            )

    def _carry(
        self,
        sender: Node,
        target: Node,
        payload: str,
        onoff: bool | None,
        *,
        group: bool = False,
    ) -> None:
        hops = self.hops(sender, target)
        if hops is None:
            return
        sender_epoch, target_epoch = sender.epoch, target.epoch

        def arrive() -> None:
            if target.epoch != target_epoch or not _alive(target):
                return
            if onoff is None:
                if target.bound:
                    answer = staggered if group else reply
                    target.serve(payload, gateway=False, answer=answer)
                return
            if (state := target.handle_onoff(onoff)) is not None:
                send_back(lambda: sender.on_onoff_status(target.address, state))

        def reply(text: str) -> None:
            send_back(lambda: sender.on_status(target.address, text))

        def staggered(text: str) -> None:
            # an answer to the group: a large-mesh node holds it a while (section 10)
            target.answer_group(sender.address, text, reply)

        def send_back(deliver: Callable[[], None]) -> None:
            back = self.hops(target, sender)
            if back is None or target.epoch != target_epoch:
                return

            def land() -> None:
                if sender.epoch == sender_epoch and sender.powered:
                    deliver()

            self.schedule(self._travel(back), land)

        self.schedule(self._travel(hops), arrive)

    # --- GATT -----------------------------------------------------------------------

    async def connect(self, mac: str, limit: float | None = None) -> GattSession:
        """Open a GATT connection to a universal node, giving up after `limit` s."""
        node = self.by_mac(mac)
        limit = self.latencies.connect_failure if limit is None else limit
        faults = node.faults
        if not node.booted:
            await asyncio.sleep(min(limit, self.latencies.connect_failure))
            raise ConnectTimeoutError(f"{mac}: no answer to the connection request")
        delay = self.draw(self.latencies.connect) + faults.connect_delay
        if delay > limit:
            await asyncio.sleep(limit)
            raise ConnectTimeoutError(f"{mac}: connection timed out")
        await asyncio.sleep(delay)
        if faults.refuse_connections:
            if faults.refuse_connections > 0:
                faults.refuse_connections -= 1
            raise ConnectRefusedError(f"{mac}: connection refused")
        if not node.booted:
            raise ConnectTimeoutError(f"{mac}: the node went away while connecting")
        if len(node.sessions) >= node.max_connections:
            raise ConnectRefusedError(f"{mac}: no free connection")
        session = GattSession(node)
        node.sessions.append(session)
        self.changed()
        return session

    def advertisements(self) -> list[Advert]:
        """Return what every advertising universal node sends now (RSSI with noise)."""
        adverts = []
        for node in self.nodes:
            if node.mac is None or not node.booted:
                continue
            service_data = {}
            if node.profile is Profile.V1:
                flags = int(bool(node.sessions)) | int(node.mesh_ready) << 1
                mesh_id = (
                    self.mesh_id
                    if self.advertised_mesh_id is None
                    else self.advertised_mesh_id
                )
                service_data[wire.SERVICE_UUID] = (
                    bytes([1])
                    + mesh_id.to_bytes(4)
                    + bytes([node.node_id, 0x00, flags])
                )
            adverts.append(
                Advert(
                    mac=node.mac,
                    local_name=wire.LOCAL_NAME,
                    service_uuids=[wire.SERVICE_UUID],
                    service_data=service_data,
                    rssi=node.rssi + round(self.rng.gauss(0.0, 2.0)),
                )
            )
        return adverts

    # --- faults ---------------------------------------------------------------------

    def power_off(self, node_id: int) -> None:
        """Cut a node's power."""
        self.nodes[node_id].power_off()

    def power_on(self, node_id: int) -> None:
        """Restore a node's power; it boots after `Latencies.boot`."""
        self.nodes[node_id].power_on()

    def power_cycle(self, node_id: int, off_seconds: float) -> None:
        """Power a node off now and back on after `off_seconds`."""
        self.power_off(node_id)
        self.schedule(off_seconds, lambda: self.power_on(node_id))

    def refuse_connections(self, node_id: int, count: int = -1) -> None:
        """Refuse the next `count` connection attempts (-1: all, 0: stop refusing)."""
        self.nodes[node_id].faults.refuse_connections = count

    def slow_connections(self, node_id: int, extra: float) -> None:
        """Add `extra` seconds to every connection attempt."""
        self.nodes[node_id].faults.connect_delay = extra

    def set_chunk_faults(self, node_id: int, faults: ChunkFaults) -> None:
        """Per-chunk drop / duplicate / corrupt probabilities of a node's notifications."""
        self.nodes[node_id].faults.chunks = faults

    def inject_chunk_fault(
        self, node_id: int, fault: ChunkFault, count: int = 1
    ) -> None:
        """Apply a fault to the node's next `count` notification chunks.

        "drop" loses one chunk (radio, or v0.7's failed mbuf allocation), "fail" a
        failed notify (the rest of the message, and the client is forgotten).
        """
        self.nodes[node_id].faults.one_shot.extend([fault] * count)

    def set_unreachable(self, node_id: int, unreachable: bool = True) -> None:
        """Make a powered node deaf and mute on the mesh (unicasts time out)."""
        self.nodes[node_id].faults.unreachable = unreachable

    def fail_next_send(
        self, node_id: int, kind: SendError = "MESH_SEND_FAIL", *, command: str = ""
    ) -> None:
        """Make the node's next mesh send fail (of `command`, e.g. "DUTY": other SENDs pass).

        v1 answers ERROR:<kind> instead of sending. v0.7 notifies SENT either way, then
        ERROR:MESH_SEND_FAIL at once, or (MESH_TIMEOUT) loses the SEND: a unicast ends
        in ERROR:MESH_TIMEOUT after `client_timeout`.
        """
        faults = self.nodes[node_id].faults
        faults.next_send_error = kind
        faults.next_send_command = command.upper()

    def miss_group_messages(self, node_id: int, count: int = 1) -> None:
        """Make the node miss the next `count` group messages (never acknowledged)."""
        self.nodes[node_id].faults.missed_group_messages = count

    def set_bound(self, node_id: int, bound: bool) -> None:
        """Bind or unbind the node's vendor models (MESH_READY:VENDOR on binding).

        Unbound, a v1 node answers NOT_READY and a v0.7 node is in fallback mode.
        """
        node = self.nodes[node_id]
        if bound and not node.bound and node.mesh_ready:
            node.notify("MESH_READY:VENDOR")
        node.bound = bound

    def set_stale_gatt_cache(self, node_id: int) -> None:
        """Serve a GATT table without 0xDC02/0xDC03 until the client clears its cache."""
        self.nodes[node_id].faults.stale_cache = True

    def set_ota_drops(self, node_id: int, share: float) -> None:
        """Lose this share of the node's 0xDC04 writes without response (a busy proxy)."""
        self.nodes[node_id].faults.ota_drop = share

    def set_ota_proxy(self, node_id: int, buffer: int | None = PROXY_BUFFER) -> None:
        """Clients reach the node through an ESPHome-like proxy (None: a local adapter).

        A local adapter has HCI flow control: a write without response waits while the
        controller's `tx_buffer` PDUs are taken. The proxy has none towards the client: each
        write returns at once and waits in the proxy's buffer of `buffer` PDUs, drained at the
        link's capacity (`packets_per_event` per `conn_interval`); a write that finds it full
        is dropped (`GattSession.proxy_overflows`), a command written then fails (ATT 0x8F).
        """
        self.nodes[node_id].faults.ota_proxy_buffer = buffer

    def disconnect_ota_at(self, node_id: int, share: float) -> None:
        """Drop the update's link once the node holds `share` of the image (once)."""
        self.nodes[node_id].faults.ota_disconnect_at = share

    def drop_link(self, node_id: int) -> None:
        """Drop every GATT link of a node at once (the node stays up)."""
        for session in list(self.nodes[node_id].sessions):
            session.drop()


def _alive(node: Node) -> bool:
    return node.mesh_ready and not node.faults.unreachable


def build_mesh(
    universal: int = 5,
    relays: int = 1,
    *,
    profile: Profile = Profile.V1,
    latencies: Latencies | None = None,
    seed: int = 0,
    sessions: bool = True,
    ota: bool = False,
    large_mesh: bool = True,
) -> Mesh:
    """Build a mesh of `universal` universal nodes followed by `relays` relays.

    v1 meshes hold up to 100 nodes (ids 0..99, `large_mesh`), else 10.
    """
    mesh = Mesh(
        latencies=latencies,
        seed=seed,
        profile=profile,
        sessions=sessions,
        ota=ota,
        large_mesh=large_mesh,
    )
    for _ in range(universal):
        mesh.add_node()
    for _ in range(relays):
        mesh.add_node(Role.RELAY)
    return mesh
