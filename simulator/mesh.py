"""A model of a DC-Monitor BLE mesh: nodes, mesh routing, firmware behaviour and faults.

Everything runs on the asyncio event loop that calls into the mesh; every delay comes
from `Latencies` and every random draw from one `random.Random(seed)`, so a run is
reproducible. `Mesh.shutdown()` cancels every timer the mesh scheduled.

Firmware behaviour follows docs/protocol-v1.md (Appendix A) and the shared vectors in
firmware/vectors/ (commands.tsv is normative for command handling). What the model
decides on its own, where those are silent:

- Parsing, echo rules, SENT text, local/ALL/unicast order, payloads and STATUS texts
  (`r` -> `NODE<id>:ONOFF:1`, `s` -> `NODE<id>:ONOFF:0`, `duty:n` -> `ACK`), the
  unicast queue (1 in flight + 4 waiting, `ERROR:MESH_BUSY`) and lower-case
  `TIMEOUT:0x<addr>` are as Appendix A says. Every STATUS that reaches the connected
  node is notified, also one arriving after its TIMEOUT.
- A write longer than 64 bytes raises the ATT error 0x0D (`AttError`).
- `SENT` for a queued unicast is notified when it is actually sent. MONITOR polls
  (first one after one interval) send no `SENT`.
- A v0.7 node ignores the `info` payload and answers INFO with
  `ERROR:UNKNOWN_CMD:INFO`; unbound (`Mesh.set_bound(n, False)`) it answers RAMP/ON
  and STOP/OFF with `SENT:ON(fallback)` / `SENT:OFF(fallback)` and generic OnOff
  (duty 100 / 0, `NODE<id>:ONOFF:<0|1>`), everything else with `ERROR:NOT_READY`.
  A v1 node answers every valid command with `ERROR:NOT_READY` while unbound or
  while its mesh is not ready after a boot.
- An unbound node ignores vendor SENDs but still relays. A relay answers `info` only
  (v1) and nothing at all (v0.7). Unknown payloads answer `ERR:UNKNOWN:<payload>`,
  sanitised but not upper-cased.
- GATT: 0xDC02 reads `NODE_READY` until the first notification, then the last
  notified chunk. `GATEWAY_CONNECTED` is notified on subscribe, `MESH_READY:VENDOR`
  when the mesh becomes ready after a boot while subscribed (a client cannot be
  connected then unless the boot was quicker than the supervision timeout: rare).
- One GATT connection per node (`Node.max_connections`); further attempts are
  refused. Readings: `physics.Load` gives INA260 counts; the firmware prints whole
  millivolts and hundredths of mA, P = |V x I| rounded half up.
"""

from __future__ import annotations

import asyncio
from collections import deque
import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
import random
import time
from typing import TYPE_CHECKING, Literal

from . import wire
from .physics import Load

if TYPE_CHECKING:
    from collections.abc import Callable

type ChunkFault = Literal["drop", "duplicate", "corrupt"]
type SendError = Literal["MESH_SEND_FAIL", "MESH_TIMEOUT"]


class Profile(StrEnum):
    """Firmware generation of a node."""

    V07 = "v0.7"
    V1 = "v1"


class Role(StrEnum):
    """Role of a node in the mesh."""

    UNIVERSAL = "U"
    RELAY = "R"


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
        self._queue: deque[bytes] = deque()
        self._draining = False
        self._lost = asyncio.Event()

    async def write(self, data: bytes) -> None:
        """Write a command to 0xDC03 (write with response)."""
        self._check()
        await asyncio.sleep(self.node.mesh.draw(self.node.mesh.latencies.gatt_write))
        self._check()
        if not self.node.powered:  # no write response ever comes
            supervision = self.node.mesh.latencies.supervision_timeout
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), supervision)
            raise LinkLostError("link lost during write")
        if len(data) > wire.MAX_COMMAND_LEN:
            raise AttError(ATT_INVALID_ATTRIBUTE_VALUE_LENGTH)
        self.node.handle_write(bytes(data))

    def read(self) -> bytes:
        """Read 0xDC02."""
        self._check()
        return self.node.value

    def subscribe(self, callback: Callable[[bytes], None]) -> None:
        """Enable notifications on 0xDC02."""
        self._check()
        self.on_notify = callback
        self.subscribed = True
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
            self.node.value = data
            self.on_notify(data)
        self.node.mesh.schedule(self.node.mesh.latencies.notify_gap, self._drain)

    def _close(self) -> None:
        self.connected = False
        self.subscribed = False
        self._queue.clear()
        self._lost.set()
        if self in self.node.sessions:
            self.node.sessions.remove(self)
            self.node.stop_monitor()
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
    stale_cache: bool = False


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
        self.duty = 0
        self.value = b"NODE_READY"
        self.sessions: list[GattSession] = []
        self.faults = _Faults()
        self.epoch = 0  # bumped at every power loss
        self._boot_time = mesh.now()
        self._ramp: asyncio.Handle | None = None
        self._monitor: asyncio.Handle | None = None
        self._monitor_target: int | None = None
        self._awaiting: int | None = None  # address of the unicast in flight
        self._timeout: asyncio.Handle | None = None
        self._queue: deque[tuple[int, str, str | None]] = deque()  # dst, payload, SENT

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
        """What an active MONITOR polls: a node id, "all", or None when off."""
        if self._monitor is None:
            return None
        return "all" if self._monitor_target is None else self._monitor_target

    # --- the vendor server model -------------------------------------------------

    def handle_payload(self, payload: str, *, gateway: bool) -> str | None:
        """Run a mesh payload on this node; return its STATUS text, None for silence."""
        if payload == "info":
            return self.info(gateway=gateway) if self.profile is Profile.V1 else None
        if self.load is None:
            return None  # a relay answers info and nothing else
        if payload == "read":
            return self.reading()
        if payload == "r":
            self._start_ramp()
            return f"NODE{self.node_id}:ONOFF:1"
        if payload == "s":
            self._set_duty(0)
            return f"NODE{self.node_id}:ONOFF:0"
        name, _, value = payload.partition(":")
        if name == "duty" and (duty := wire.parse_duty(value.encode())) is not None:
            self._set_duty(duty)
            return f"NODE{self.node_id}:ACK:{duty}"
        return f"ERR:UNKNOWN:{wire.sanitise(payload.encode(), upper=False)}"

    def handle_onoff(self, on: bool) -> str | None:
        """Run a generic OnOff set (the v0.7 fallback): full duty or off."""
        if self.load is None:
            return None
        self._set_duty(100 if on else 0)
        return f"NODE{self.node_id}:ONOFF:{int(on)}"

    def reading(self) -> str:
        """Return a DATA line from the sensor at the current duty."""
        assert self.load is not None
        millivolts, centi_ma = self.load.measure(self.duty, self.mesh.rng)
        return wire.format_data(self.node_id, self.duty, millivolts, centi_ma)

    def info(self, *, gateway: bool) -> str:
        """Return the v1 INFO line."""
        capabilities = 0x0003 if self.role is Role.UNIVERSAL else 0x0001
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

    def _cancel_ramp(self) -> None:
        if self._ramp is not None:
            self.mesh.cancel(self._ramp)
            self._ramp = None

    # --- GATT side ----------------------------------------------------------------

    def notify(self, line: str) -> None:
        """Notify a message to every subscribed client, chunked, through the faults."""
        for session in list(self.sessions):
            self.notify_session(session, line)

    def notify_session(self, session: GattSession, line: str) -> None:
        """Notify one client."""
        if not session.subscribed or not self.powered:
            return
        out: list[bytes] = []
        for data in wire.chunk(line.encode("latin-1")):
            fault = self._chunk_fault()
            sent = data
            if fault == "drop":
                continue
            if fault == "corrupt":
                position = self.mesh.rng.randrange(len(data))
                sent = data[:position] + b"\xff" + data[position + 1 :]
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

    def handle_write(self, raw: bytes) -> None:
        """Handle a write to 0xDC03 as the firmware's command handler does."""
        try:
            command = wire.parse_command(raw, info_supported=self.profile is Profile.V1)
        except wire.CommandRejectedError as rejected:
            self.notify(rejected.line)
            return
        if not self.ready:
            if self.profile is Profile.V07 and command.payload in ("r", "s"):
                self._fallback(command)
            else:
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
        """Receive a STATUS: forward it to the client; it ends the wait on `source`."""
        self.notify(text)
        if source == self._awaiting:
            self._end_unicast()

    def _local(self, payload: str) -> None:
        line = self.handle_payload(payload, gateway=True)
        if line is not None:
            self.notify(line)

    def _send(self, destination: int, payload: str) -> bool:
        """Hand a SEND to the stack; False (and ERROR notified) when it refuses."""
        if (kind := self.faults.next_send_error) is not None:
            self.faults.next_send_error = None
            self.notify(f"ERROR:{kind}")
            return False
        self.mesh.send(self, destination, payload)
        return True

    def _fallback(self, command: wire.Command) -> None:
        on = command.payload == "r"
        self.notify(f"SENT:{'ON' if on else 'OFF'}(fallback)")
        if command.target in (self.node_id, None) and (line := self.handle_onoff(on)):
            self.notify(line)
        if command.target != self.node_id:
            destination = (
                wire.GROUP_ADDR
                if command.target is None
                else wire.address(command.target)
            )
            self.mesh.send(self, destination, "", onoff=on)

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

    def _poll(self) -> None:
        target = self._monitor_target
        if target in (self.node_id, None):
            self._local("read")
        if target is None:
            self._send(wire.GROUP_ADDR, "read")
        elif target != self.node_id and self._awaiting is None and not self._queue:
            self._queue.append((wire.address(target), "read", None))
            self._next_unicast()
        self._monitor = self.mesh.schedule(
            self.mesh.latencies.monitor_interval, self._poll
        )

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
        self._awaiting = None
        self._queue.clear()
        self.duty = 0
        self.value = b"NODE_READY"
        for session in self.sessions:
            self.mesh.schedule(self.mesh.latencies.supervision_timeout, session.drop)
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
                if self.bound:
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
    ) -> None:
        """Create an empty mesh."""
        self.latencies = latencies or Latencies.fast()
        self.rng = random.Random(seed)
        self.profile = profile
        self.mesh_id = mesh_id
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
        """Provision a node with the next unicast address."""
        node_id = len(self.nodes)
        if node_id >= wire.MAX_NODES:
            raise ValueError("a DC-Monitor mesh holds at most 10 nodes")
        universal = role is Role.UNIVERSAL
        mac = None
        if universal:
            tail = self.rng.getrandbits(24).to_bytes(3) + bytes([node_id])
            mac = ":".join(f"{byte:02X}" for byte in b"\xdc\x4d" + tail)
        node = Node(
            self,
            node_id,
            role=role,
            profile=profile or self.profile,
            mac=mac,
            load=(load or Load()) if universal else None,
            rssi=rssi if rssi is not None else -self.rng.randrange(55, 85),
        )
        self.nodes.append(node)
        return node

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
        """Send a vendor SEND (or, with `onoff`, a generic OnOff set) over the mesh.

        Every node the message reaches answers with a STATUS to the sender, which
        travels back hop by hop; `radio_log` records the send.
        """
        self.radio_log.append((sender.address, destination, payload))
        for node in self.nodes:
            if node is not sender and destination in (node.address, wire.GROUP_ADDR):
                self._carry(sender, node, payload, onoff)

    def _carry(
        self, sender: Node, target: Node, payload: str, onoff: bool | None
    ) -> None:
        hops = self.hops(sender, target)
        if hops is None:
            return
        sender_epoch, target_epoch = sender.epoch, target.epoch

        def arrive() -> None:
            if target.epoch != target_epoch or not _alive(target):
                return
            if onoff is None:
                if not target.bound:
                    return
                text = target.handle_payload(payload, gateway=False)
            else:
                text = target.handle_onoff(onoff)
            back = self.hops(target, sender)
            if text is not None and back is not None:
                self.schedule(self._travel(back), lambda: answer(text))

        def answer(text: str) -> None:
            if sender.epoch == sender_epoch and sender.powered:
                sender.on_status(target.address, text)

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
                service_data[wire.SERVICE_UUID] = (
                    bytes([1])
                    + self.mesh_id.to_bytes(4)
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
        """Apply a fault to the node's next `count` notification chunks."""
        self.nodes[node_id].faults.one_shot.extend([fault] * count)

    def set_unreachable(self, node_id: int, unreachable: bool = True) -> None:
        """Make a powered node deaf and mute on the mesh (unicasts time out)."""
        self.nodes[node_id].faults.unreachable = unreachable

    def fail_next_send(self, node_id: int, kind: SendError = "MESH_SEND_FAIL") -> None:
        """Make the node answer its next mesh send with ERROR:<kind> instead."""
        self.nodes[node_id].faults.next_send_error = kind

    def set_bound(self, node_id: int, bound: bool) -> None:
        """Bind or unbind the node's vendor models (MESH_READY:VENDOR on binding)."""
        node = self.nodes[node_id]
        if bound and not node.bound and node.mesh_ready:
            node.notify("MESH_READY:VENDOR")
        node.bound = bound

    def set_stale_gatt_cache(self, node_id: int) -> None:
        """Serve a GATT table without 0xDC02/0xDC03 until the client clears its cache."""
        self.nodes[node_id].faults.stale_cache = True

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
) -> Mesh:
    """Build a mesh of `universal` universal nodes followed by `relays` relays."""
    mesh = Mesh(latencies=latencies, seed=seed, profile=profile)
    for _ in range(universal):
        mesh.add_node()
    for _ in range(relays):
        mesh.add_node(Role.RELAY)
    return mesh
