"""The BLE link to one DC-Monitor node, and through it to the whole mesh.

The link owns the GATT connection: it connects (clearing a stale service cache once
when the characteristics are missing), subscribes to the data characteristic,
reassembles and parses notifications, negotiates the protocol version, serialises
commands and correlates the replies, which carry no request id, by node id and time.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass
import logging
from typing import TYPE_CHECKING, Literal

from bleak.exc import BleakError
import bleak_retry_connector
from bleak_retry_connector import establish_connection

from .auth import ClientSession, needs_session
from .codec import Reassembler, encode_command, max_target, parse_message
from .const import (
    CAP_AUTH,
    COMMAND_CHAR_UUID,
    DATA_CHAR_UUID,
    GROUP_REPLY_SLOT,
    SERVICE_UUID,
)
from .exceptions import (
    AuthenticationError,
    AuthRefusedError,
    CharacteristicMissingError,
    CommandError,
    DeviceError,
    FallbackModeError,
    InvalidNodeError,
    KeyRequiredError,
    LinkError,
    MeshSendError,
    MeshTimeoutError,
    NotConnectedError,
    NotReadyError,
    ProtocolError,
    ResponseTimeoutError,
)
from .models import (
    AuthMessage,
    ErrorReply,
    Event,
    MeshTimeout,
    NodeInfo,
    ProtocolMode,
    Reading,
    Sent,
    StatusLine,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection

    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice
    from bleak_retry_connector import BleakClientWithServiceCache

_LOGGER = logging.getLogger(__name__)

_ERRORS: dict[str, type[DeviceError]] = {
    "NOT_READY": NotReadyError,
    "INVALID_NODE": InvalidNodeError,
    "MESH_SEND_FAIL": MeshSendError,
    "AUTH": AuthRefusedError,
}


@dataclass(slots=True)
class LinkStats:
    """Counters of what the link has seen since it was created."""

    notifications: int = 0
    messages: int = 0
    malformed: int = 0
    connects: int = 0
    link_losses: int = 0
    cache_clears: int = 0


class _Inbox:
    """The events (or the link loss) delivered to the one command in flight.

    `opened` is the number of the first notification that can belong to an answer: a message
    that began before the command was written is not delivered here.
    """

    def __init__(self, opened: int) -> None:
        self._queue: asyncio.Queue[Event | LinkError] = asyncio.Queue()
        self.opened = opened

    def put(self, item: Event | LinkError) -> None:
        self._queue.put_nowait(item)

    async def next(self, deadline: float) -> Event | None:
        """Return the next event, None once `deadline` (loop time) has passed."""
        if self._queue.empty():
            try:
                async with asyncio.timeout_at(deadline):
                    item = await self._queue.get()
            except TimeoutError:
                return None
        else:
            item = self._queue.get_nowait()
        if isinstance(item, LinkError):
            raise item
        return item


def _device_error(reply: ErrorReply, node: int | None) -> DeviceError:
    if reply.kind == "MESH_TIMEOUT":
        return MeshTimeoutError(reply.kind, reply.detail, node_id=node)
    return _ERRORS.get(reply.kind, DeviceError)(reply.kind, reply.detail)


# The vendor models got their application key: the mesh left fallback mode.
MESH_READY_VENDOR = "MESH_READY:VENDOR"
# A command no firmware knows: v0.7 stops a running MONITOR before it refuses any command,
# so this ends the fallback probe's monitor without actuating anything.
STOP_MONITOR_PROBE = b"0:NOP"


def _raise_on_failure(event: Event, node: int | None) -> None:
    """Raise on an error reply, a fallback acknowledgement, or a mesh timeout of `node`.

    A mesh timeout counts when it names `node`, or any node when `node` is None.
    """
    if isinstance(event, Sent) and event.fallback:
        raise FallbackModeError(event.command)
    if isinstance(event, ErrorReply):
        raise _device_error(event, node)
    if isinstance(event, MeshTimeout) and (node is None or event.node_id == node):
        raise MeshTimeoutError(
            "TIMEOUT", f"0x{event.address:04x}", node_id=event.node_id
        )


class DcMeshLink:
    """A connection to one DC-Monitor node and the mesh behind it."""

    def __init__(
        self,
        ble_device: BLEDevice,
        *,
        name: str | None = None,
        ble_device_callback: Callable[[], BLEDevice] | None = None,
        connect_timeout: float = 20.0,
        reply_timeout: float = 6.0,
        quiet_period: float = 0.6,
        info_timeout: float = 2.0,
        write_timeout: float = 5.0,
        max_attempts: int = 3,
        mesh_key: bytes | None = None,
        group_reply_slot: float | None = None,
    ) -> None:
        """Prepare a link; nothing happens on the radio until `connect`.

        `mesh_key`: the mesh's key (protocol section 7). A node that requires sessions
        must prove it before the link counts as connected. `group_reply_slot`: how long
        each node id staggers its answer to a group read (protocol section 10; default
        `GROUP_REPLY_SLOT`).
        """
        self._ble_device = ble_device
        self._name = name or ble_device.name or ble_device.address
        self._ble_device_callback = ble_device_callback
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._quiet_period = quiet_period
        self._info_timeout = info_timeout
        self._write_timeout = write_timeout
        self._max_attempts = max_attempts
        self._client: BleakClientWithServiceCache | None = None
        self._established = False
        self._connect_lock = asyncio.Lock()
        self._operation_lock = asyncio.Lock()
        self._reassembler = Reassembler()
        self._inbox: _Inbox | None = None
        self._callbacks: list[Callable[[Event], None]] = []
        self._message_callbacks: list[Callable[[bytes], None]] = []
        self._disconnect_callbacks: list[Callable[[], None]] = []
        self._mode: ProtocolMode | None = None
        self._infos: dict[int, NodeInfo] = {}
        self._local_node_id: int | None = None
        self._fallback = False
        self._mesh_key = mesh_key
        self._session: ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._group_reply_slot = (
            GROUP_REPLY_SLOT if group_reply_slot is None else group_reply_slot
        )
        self.stats = LinkStats()

    @property
    def address(self) -> str:
        """The BLE address of the node the link connects to."""
        return self._ble_device.address

    @property
    def is_connected(self) -> bool:
        """Whether the link is up and negotiated."""
        return self._is_up()

    @property
    def mode(self) -> ProtocolMode | None:
        """The negotiated protocol, None before the first connection."""
        return self._mode

    @property
    def fallback(self) -> bool:
        """Whether the mesh answered a command in fallback mode (until MESH_READY:VENDOR)."""
        return self._fallback

    @property
    def authenticated(self) -> bool:
        """Whether the link holds a session: the node proved the mesh key, and we did."""
        return self._session is not None

    @property
    def requires_key(self) -> bool:
        """Whether the connected node requires sessions for state-changing commands."""
        info = self.gateway_info
        return info is not None and bool(info.capabilities & CAP_AUTH)

    @property
    def large_mesh(self) -> bool:
        """Whether the connected node takes node ids 0..99 (CAP_LARGE_MESH, section 10).

        Without it (v0.7, older v1) commands reach node ids 0..9 only.
        """
        info = self.gateway_info
        return info is not None and info.large_mesh

    @property
    def max_target(self) -> int:
        """The highest node id a command through the connected node can name."""
        return max_target(large_mesh=self.large_mesh)

    @property
    def gateway_info(self) -> NodeInfo | None:
        """The INFO line of the connected node itself (`GW:1`, v1 only)."""
        return next((info for info in self._infos.values() if info.gateway), None)

    @property
    def infos(self) -> dict[int, NodeInfo]:
        """The latest INFO of every node that sent one (v1 only)."""
        return dict(self._infos)

    @property
    def gateway_node_id(self) -> int | None:
        """The node id of the connected node.

        v1 nodes say it (`GW:1` in INFO); with v0.7 nodes it is known after the first
        `read_all`, from the reading the node answers itself before forwarding.
        """
        return next(
            (info.node_id for info in self._infos.values() if info.gateway),
            self._local_node_id,
        )

    def register_callback(
        self, callback: Callable[[Event], None]
    ) -> Callable[[], None]:
        """Call `callback` with every parsed event; return the unregister function."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def register_message_callback(
        self, callback: Callable[[bytes], None]
    ) -> Callable[[], None]:
        """Call `callback` with every reassembled message, before it is parsed.

        For messages the event parser does not know (the firmware update's `OTA:...`).
        """
        self._message_callbacks.append(callback)
        return lambda: self._message_callbacks.remove(callback)

    @property
    def mtu_size(self) -> int | None:
        """The connection's ATT MTU, None while disconnected."""
        return self._client.mtu_size if self._client is not None else None

    async def send_raw(self, payload: bytes) -> None:
        """Write a command as it is (in the session when it needs one); return at once.

        Its replies come through `register_message_callback`.
        """
        async with self._exchange(payload):
            pass

    async def write_characteristic(
        self, uuid: str, data: bytes, *, response: bool
    ) -> None:
        """Write raw bytes to another characteristic of the node (0xDC04: update data)."""
        client = self._client
        if client is None:
            raise NotConnectedError(f"{self._name}: not connected")
        await self._write(client, uuid, data, response=response)

    async def _write(
        self,
        client: BleakClientWithServiceCache,
        uuid: str,
        data: bytes,
        *,
        response: bool,
    ) -> None:
        """Write with a deadline; a stalled or failed write on a dead link loses it."""
        try:
            async with asyncio.timeout(self._write_timeout):
                await client.write_gatt_char(uuid, data, response=response)
        except TimeoutError as err:
            if client is self._client:
                self._lose_link()
                self._disconnect_in_background(client)
            raise LinkError(f"{self._name}: write timed out") from err
        except BleakError as err:
            if client is self._client and not client.is_connected:
                self._lose_link()
            raise LinkError(f"{self._name}: write failed: {err}") from err

    def register_disconnect_callback(
        self, callback: Callable[[], None]
    ) -> Callable[[], None]:
        """Call `callback` once per unexpected link loss; return the unregister function."""
        self._disconnect_callbacks.append(callback)
        return lambda: self._disconnect_callbacks.remove(callback)

    async def connect(self) -> None:
        """Connect, subscribe to the data characteristic and negotiate the protocol."""
        if self._is_up():
            return
        async with self._connect_lock:
            if self._is_up():
                return
            try:
                async with asyncio.timeout(self._connect_timeout):
                    client = await self._establish()
            except TimeoutError as err:
                raise LinkError(f"{self._name}: connecting timed out") from err
            except BleakError as err:
                raise LinkError(f"{self._name}: cannot connect: {err}") from err
            self._client = client
            try:
                async with asyncio.timeout(self._write_timeout):
                    await client.start_notify(DATA_CHAR_UUID, self._on_notification)
                await self._negotiate()
                if self._mode is ProtocolMode.LEGACY:
                    await self._probe_fallback()
                elif self.requires_key:
                    await self._authenticate()
            except BaseException as err:
                await self._close(client)
                if isinstance(err, BleakError):
                    raise LinkError(f"{self._name}: cannot subscribe: {err}") from err
                if isinstance(err, TimeoutError):
                    raise LinkError(f"{self._name}: subscribing timed out") from err
                raise
            self._established = True
            self.stats.connects += 1
            _LOGGER.debug("%s: connected, protocol %s", self._name, self._mode)

    async def disconnect(self) -> None:
        """Disconnect on purpose; no disconnect callback fires. Idempotent."""
        async with self._connect_lock:
            if self._client is None:
                return
            await self._close(self._client)

    async def read_all(self, expected: Collection[int] = ()) -> dict[int, Reading]:
        """Read every node (ALL:READ) and return each node's answer by node id.

        Only a node's own answer to this read counts. Both firmwares handle ALL on the
        connected node first (its reading), then send it to the group and say SENT:READ;
        the other nodes answer after that. Any other reading (one that began before the
        write, another node's before the connected node answered, the connected node's
        after SENT, a node's second one) was pushed by something else: a MONITOR, another
        client. Pushed readings still reach the event callbacks (they refresh the node),
        but they answer nothing here.

        Gathers until every node in `expected` answered, or `quiet_period` passed without
        a new answer, and at most `reply_timeout`. Nodes with CAP_LARGE_MESH answer node id
        x `group_reply_slot` after the group got the read: the wait stretches over that
        window for the highest id known (from `expected`, INFO and answers).
        """
        wanted = set(expected)
        answers: dict[int, Reading] = {}
        gateway = self.gateway_node_id
        own_answered = forwarded = False
        loop = asyncio.get_running_loop()
        async with self._exchange(encode_command("ALL", "READ")) as inbox:
            deadline = loop.time() + self._reply_timeout + self._group_window(wanted)
            until = deadline
            forwarded_at = last = loop.time()

            def settle() -> float:
                """Quiet for `quiet_period` after the last answer (and the stagger)."""
                quiet = last + self._quiet_period
                if forwarded:
                    window = self._group_window(wanted | answers.keys())
                    quiet = max(quiet, forwarded_at + window + self._quiet_period)
                return min(deadline, quiet)

            while (event := await inbox.next(until)) is not None:
                if isinstance(event, Sent):
                    if event.fallback:
                        raise FallbackModeError(event.command)
                    if not forwarded and event.command.upper() == "READ":
                        forwarded, forwarded_at = True, loop.time()
                        if answers:
                            until = settle()
                elif isinstance(event, Reading):
                    node = event.node_id
                    if not forwarded and not own_answered and gateway in (None, node):
                        # ALL is handled on the connected node before it goes to the
                        # group (and SENT follows): this is its own answer.
                        own_answered = True
                        gateway = self._local_node_id = node
                    elif (
                        not forwarded
                        and own_answered
                        and node != gateway
                        and self._mode is ProtocolMode.V1
                    ):
                        # v1 notifies SENT right after its own answer (one task): another
                        # node's reading means that SENT was lost on the way
                        forwarded, forwarded_at = True, loop.time()
                    if not forwarded and node != gateway:
                        continue  # before the group got the read: pushed
                    if forwarded and (node == gateway or node in answers):
                        continue  # the gateway answers before SENT; one answer each
                    answers[node] = event
                    if wanted and wanted <= answers.keys():
                        break
                    last = loop.time()
                    until = settle()
                elif isinstance(event, ErrorReply):
                    if not answers:
                        raise _device_error(event, None)
                    _LOGGER.debug("%s: ALL:READ ended by %s", self._name, event)
                    break
        if not answers:
            raise ResponseTimeoutError(
                f"{self._name}: no reading within {self._reply_timeout} s"
            )
        return answers

    def _group_window(self, ids: Collection[int]) -> float:
        """How long after the group got a read the highest id of `ids` (or INFO) answers."""
        if not self.large_mesh:
            return 0.0
        highest = max([*ids, *self._infos], default=0)
        return highest * self._group_reply_slot

    async def read(self, node: int) -> Reading:
        """Read one node."""
        async with self._exchange(self._encode(node, "READ")) as inbox:
            deadline = asyncio.get_running_loop().time() + self._reply_timeout
            while (event := await inbox.next(deadline)) is not None:
                if isinstance(event, Reading) and event.node_id == node:
                    return event
                _raise_on_failure(event, node)
        raise ResponseTimeoutError(
            f"{self._name}: node {node} did not answer READ within {self._reply_timeout} s"
        )

    async def set_duty(self, target: int | Literal["ALL"], duty: int) -> None:
        """Set the PWM duty (0..100 %) of one node or of all."""
        await self._command(target, "DUTY", duty)

    async def set_duty_confirmed(self, node: int, duty: int) -> Reading:
        """Set one node's duty and read it back, both under one hold of the link.

        Nothing else (a poll, the balancer) can send in between. The confirmation is the
        node's own reading: the one that answers the DUTY (both firmwares send it), else the
        answer to a READ. A reading with another duty (a leftover of an earlier poll) does
        not end the wait; the last one is returned if none matches.
        """
        async with self._operation_lock:
            if (answer := await self._duty_locked(node, duty)) is not None:
                return answer
            async with self._send(self._encode(node, "READ")) as inbox:
                deadline = asyncio.get_running_loop().time() + self._reply_timeout
                last: Reading | None = None
                while (event := await inbox.next(deadline)) is not None:
                    if isinstance(event, Reading) and event.node_id == node:
                        last = event
                        if event.duty == duty:
                            break
                    else:
                        _raise_on_failure(event, node)
        if last is None:
            raise ResponseTimeoutError(
                f"{self._name}: node {node} did not answer READ within "
                f"{self._reply_timeout} s"
            )
        return last

    async def _duty_locked(self, node: int, duty: int) -> Reading | None:
        """Send DUTY to one node; return its answering reading with that duty, or None.

        None when no such answer came in time (lost on the way back, or a leftover with
        another duty): whether the duty was taken is then for a READ to tell.
        """
        async with self._send(self._encode(node, "DUTY", duty)) as inbox:
            deadline = asyncio.get_running_loop().time() + self._reply_timeout
            while (event := await inbox.next(deadline)) is not None:
                if isinstance(event, Reading) and event.node_id == node:
                    if event.duty == duty:
                        return event
                elif not isinstance(event, Sent) or event.fallback:
                    _raise_on_failure(event, node)
        return None

    async def ramp(self, target: int | Literal["ALL"]) -> None:
        """Run the duty ramp on one node or on all."""
        await self._command(target, "RAMP")

    async def stop(self, target: int | Literal["ALL"]) -> None:
        """Set duty 0 on one node or on all."""
        await self._command(target, "STOP")

    async def info(self, node: int) -> NodeInfo:
        """Ask one node for its INFO line (v1 only)."""
        if self._mode is ProtocolMode.LEGACY:
            raise CommandError("INFO needs protocol v1, the node speaks v0.7")
        async with self._exchange(self._encode(node, "INFO")) as inbox:
            deadline = asyncio.get_running_loop().time() + self._reply_timeout
            while (event := await inbox.next(deadline)) is not None:
                if isinstance(event, NodeInfo) and event.node_id == node:
                    return event
                _raise_on_failure(event, node)
        raise ResponseTimeoutError(
            f"{self._name}: node {node} did not answer INFO within {self._reply_timeout} s"
        )

    async def read_infos(self) -> dict[int, NodeInfo]:
        """Ask every node for its INFO line (v1); gather until the mesh goes quiet."""
        if self._mode is not ProtocolMode.V1:
            raise CommandError("INFO needs protocol v1")
        infos: dict[int, NodeInfo] = {}
        async with self._exchange(encode_command("ALL", "INFO")) as inbox:
            loop = asyncio.get_running_loop()
            sent_at = loop.time()
            deadline = sent_at + self._reply_timeout + self._group_window(())
            until = deadline
            while (event := await inbox.next(until)) is not None:
                if isinstance(event, NodeInfo):
                    infos[event.node_id] = event
                    window = sent_at + self._group_window(())  # staggered (section 10)
                    quiet = max(loop.time(), window) + self._quiet_period
                    until = min(deadline, quiet)
        return infos

    def _encode(
        self, target: int | Literal["ALL"], verb: str, value: int | None = None
    ) -> bytes:
        """A command for the connected node: node ids up to `max_target`."""
        return encode_command(target, verb, value, large_mesh=self.large_mesh)

    async def _command(
        self, target: int | Literal["ALL"], verb: str, value: int | None = None
    ) -> None:
        async with self._operation_lock:
            await self._command_locked(target, verb, value)

    async def _command_locked(
        self, target: int | Literal["ALL"], verb: str, value: int | None = None
    ) -> None:
        """Send a command; return once it is acknowledged by SENT, ACK, ONOFF or DATA.

        A fallback acknowledgement is a failure (`FallbackModeError`): the node did
        something else than what was asked.
        """
        payload = self._encode(target, verb, value)
        node = None if isinstance(target, str) else target
        async with self._send(payload) as inbox:
            deadline = asyncio.get_running_loop().time() + self._reply_timeout
            while (event := await inbox.next(deadline)) is not None:
                if (
                    isinstance(event, Sent)
                    and not event.fallback
                    and event.command.partition(":")[0] == verb
                ):
                    return
                if isinstance(event, Reading) and (
                    node is None or event.node_id == node
                ):
                    return
                _raise_on_failure(event, node)
        raise ResponseTimeoutError(
            f"{self._name}: {payload.decode()} not acknowledged within "
            f"{self._reply_timeout} s"
        )

    def _is_up(self) -> bool:
        return (
            self._established and self._client is not None and self._client.is_connected
        )

    async def _establish(self) -> BleakClientWithServiceCache:
        """Connect; on missing characteristics clear the service cache and retry once."""
        client = await self._open()
        if self._has_characteristics(client):
            return client
        _LOGGER.debug("%s: characteristics missing, clearing the cache", self._name)
        self.stats.cache_clears += 1
        await client.clear_cache()
        await self._close(client)
        client = await self._open()
        if self._has_characteristics(client):
            return client
        await self._close(client)
        raise CharacteristicMissingError(
            f"{self._name}: 0xDC02/0xDC03 missing after clearing the service cache"
        )

    async def _open(self) -> BleakClientWithServiceCache:
        # HA swaps this class for its own at run time: look it up at every call.
        return await establish_connection(
            bleak_retry_connector.BleakClientWithServiceCache,
            self._ble_device,
            self._name,
            disconnected_callback=self._on_disconnected,
            max_attempts=self._max_attempts,
            ble_device_callback=self._ble_device_callback,
            use_services_cache=True,
        )

    @staticmethod
    def _has_characteristics(client: BleakClientWithServiceCache) -> bool:
        service = client.services.get_service(SERVICE_UUID)
        return (
            service is not None
            and service.get_characteristic(DATA_CHAR_UUID) is not None
            and service.get_characteristic(COMMAND_CHAR_UUID) is not None
        )

    async def _close(self, client: BleakClientWithServiceCache) -> None:
        """Disconnect `client` on purpose and fail whatever waits on it."""
        if client is self._client:
            self._client = None
            self._session = None
            self._established = False
            self._reassembler.reset()
            self._fail_pending(NotConnectedError(f"{self._name}: disconnected"))
        try:
            await client.disconnect()
        except BleakError as err:
            _LOGGER.debug("%s: error while disconnecting: %s", self._name, err)

    async def _negotiate(self) -> None:
        """Send ALL:INFO and settle the protocol from the answers.

        `ERROR:UNKNOWN_CMD:INFO` means v0.7. INFO lines mean v1, and so does any other
        error: a v0.7 node refuses the unknown command before anything else, so only a
        v1 node answers INFO with, say, `ERROR:NOT_READY` (its mesh is not up yet).
        The connected node's own line (`GW:1`) settles it at once: the other nodes'
        lines keep arriving through the mesh and update `infos` as they come, so a
        failover does not wait for the whole mesh to answer.
        """
        self._infos = {}
        self._local_node_id = None
        answered = False
        async with self._exchange(encode_command("ALL", "INFO")) as inbox:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._info_timeout
            until = deadline
            while (event := await inbox.next(until)) is not None:
                if isinstance(event, ErrorReply) and (
                    event.kind == "UNKNOWN_CMD" and event.detail == "INFO"
                ):
                    self._mode = ProtocolMode.LEGACY
                    return
                if isinstance(event, NodeInfo) and event.gateway:
                    break
                if isinstance(event, NodeInfo | ErrorReply):
                    answered = True
                    until = min(deadline, loop.time() + self._quiet_period)
            else:
                if not answered:
                    raise ResponseTimeoutError(
                        f"{self._name}: no answer to ALL:INFO within {self._info_timeout} s"
                    )
        self._mode = ProtocolMode.V1

    async def _authenticate(self) -> None:
        """Run the handshake of protocol section 7: the node proves the key, then we do.

        Raises `KeyRequiredError` without a key, `AuthenticationError` when the node
        cannot prove the key or refuses ours, `AuthRefusedError` when it refuses to
        start (LOCKED after too many failures).
        """
        self._session = None
        if self._mesh_key is None:
            raise KeyRequiredError(f"{self._name}: the node requires the mesh key")
        session = ClientSession(self._mesh_key)
        async with self._operation_lock:
            challenge = await self._auth_step(session.hello())
            try:
                proof = session.answer(challenge)
            except (AuthenticationError, ProtocolError) as err:
                raise AuthenticationError(f"{self._name}: {err}") from None
            if await self._auth_step(proof) != "AUTH:OK":
                raise AuthenticationError(f"{self._name}: the handshake did not end")
        self._session = session

    async def _auth_step(self, payload: bytes) -> str:
        """Write one handshake message; return the node's AUTH answer."""
        async with self._send(payload) as inbox:
            deadline = asyncio.get_running_loop().time() + self._reply_timeout
            while (event := await inbox.next(deadline)) is not None:
                if isinstance(event, AuthMessage):
                    return event.text
                if isinstance(event, ErrorReply) and event.kind == "AUTH":
                    if event.detail == "BAD_PROOF":
                        raise AuthenticationError(
                            f"{self._name}: the node refused our proof of the mesh key"
                        )
                    raise AuthRefusedError(event.kind, event.detail)
        raise ResponseTimeoutError(
            f"{self._name}: no answer to the handshake within {self._reply_timeout} s"
        )

    async def probe_fallback(self) -> bool:
        """v0.7: ask again whether the mesh is in fallback mode; return the answer."""
        await self._probe_fallback()
        return self._fallback

    async def _probe_fallback(self) -> None:
        """Find out, without actuating anything, whether a v0.7 mesh is in fallback mode.

        In fallback (vendor client model unbound) a v0.7 node turns every command but
        STOP/OFF into Generic OnOff = 1, READ included, and nothing it sends on its own
        tells the state. MONITOR is the one command whose answer depends on it with no side
        effect: `ERROR:NOT_READY` in fallback; `SENT:MONITOR` when bound, which starts a
        read-only 1 s poll that an unknown command then stops.
        """
        async with self._exchange(encode_command("ALL", "MONITOR")) as inbox:
            deadline = asyncio.get_running_loop().time() + self._reply_timeout
            while (event := await inbox.next(deadline)) is not None:
                if isinstance(event, ErrorReply) and event.kind == "NOT_READY":
                    self._fallback = True
                    return
                if isinstance(event, Sent) and event.command.upper() == "MONITOR":
                    break
            else:
                raise ResponseTimeoutError(
                    f"{self._name}: no answer to ALL:MONITOR within {self._reply_timeout} s"
                )
        self._fallback = False
        async with self._exchange(STOP_MONITOR_PROBE) as inbox:
            deadline = asyncio.get_running_loop().time() + self._reply_timeout
            while (event := await inbox.next(deadline)) is not None:
                if isinstance(event, ErrorReply) and event.kind == "UNKNOWN_CMD":
                    return
        _LOGGER.debug("%s: the monitor probe's stop was not answered", self._name)

    @asynccontextmanager
    async def _exchange(self, payload: bytes) -> AsyncIterator[_Inbox]:
        """Hold the operation lock, write `payload` and yield the replies' inbox."""
        async with self._operation_lock, self._send(payload) as inbox:
            yield inbox

    @asynccontextmanager
    async def _send(self, payload: bytes) -> AsyncIterator[_Inbox]:
        """Write `payload` (the caller holds the operation lock); yield the replies' inbox.

        The write has a deadline: a proxy that stalls it holds every other command, so a
        stalled write counts as a lost link.
        """
        client = self._client
        if client is None:
            raise NotConnectedError(f"{self._name}: not connected")
        if self._session is not None and needs_session(payload):
            payload = self._session.wrap(payload)
        inbox = self._inbox = _Inbox(self._reassembler.fed + 1)
        try:
            await self._write(client, COMMAND_CHAR_UUID, payload, response=True)
        except LinkError:
            self._inbox = None
            raise
        try:
            yield inbox
        finally:
            self._inbox = None

    def _disconnect_in_background(self, client: BleakClientWithServiceCache) -> None:
        task = asyncio.get_running_loop().create_task(self._close(client))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _fail_pending(self, error: LinkError) -> None:
        if self._inbox is not None:
            self._inbox.put(error)

    def _on_disconnected(self, client: BleakClientWithServiceCache) -> None:
        # A client we closed on purpose is forgotten before it disconnects, so only
        # the loss of the current client is unexpected (and worth a warning).
        if client is not self._client:
            _LOGGER.debug("%s: disconnected as requested", self._name)
            return
        _LOGGER.debug("%s: link lost", self._name)
        self._lose_link()

    def _lose_link(self) -> None:
        """Forget the dead client, fail the command in flight, tell the listeners."""
        was_established = self._established
        self._client = None
        self._session = None
        self._established = False
        self._reassembler.reset()
        self.stats.link_losses += 1
        self._fail_pending(LinkError(f"{self._name}: link lost"))
        if not was_established:
            return
        for callback in list(self._disconnect_callbacks):
            try:
                callback()
            except Exception:
                _LOGGER.exception("%s: disconnect callback failed", self._name)

    def _on_notification(
        self, _characteristic: BleakGATTCharacteristic, data: bytearray
    ) -> None:
        stats = self.stats
        stats.notifications += 1
        reassembler = self._reassembler
        given_up = reassembler.discarded
        message = reassembler.feed(data)
        if reassembler.discarded != given_up:
            stats.malformed += reassembler.discarded - given_up
        if message is None:
            return
        stats.messages += 1
        if self._message_callbacks:  # only while a firmware update runs
            for raw_callback in list(self._message_callbacks):
                try:
                    raw_callback(message)
                except Exception:
                    _LOGGER.exception("%s: message callback failed", self._name)
        try:
            event = parse_message(message)
        except ProtocolError as err:
            self.stats.malformed += 1
            _LOGGER.debug("%s: dropped malformed notification: %s", self._name, err)
            return
        if isinstance(event, NodeInfo):
            self._infos[event.node_id] = event
        elif isinstance(event, Sent) and event.fallback:
            self._fallback = True
        elif isinstance(event, StatusLine) and event.text == MESH_READY_VENDOR:
            self._fallback = False
        inbox = self._inbox
        if inbox is not None and self._reassembler.started >= inbox.opened:
            inbox.put(event)  # (a message begun before the command answers nothing)
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                _LOGGER.exception("%s: event callback failed", self._name)
