"""The mesh coordinator: one GATT link per mesh, polling, push readings, failover, node registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
import time

from bleak.backends.device import BLEDevice
from homeassistant.components import bluetooth
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    BALANCER_COOLDOWN,
    BALANCER_HEADROOM_MW,
    BALANCER_MAX_STEP,
    CANDIDATE_FRESH_SECONDS,
    CONF_ADDRESS,
    CONF_EXCLUDED_ADDRESSES,
    CONF_MESH_ID,
    CONF_POLL_INTERVAL,
    CONF_STALE_TIMEOUT,
    DEFAULT_BUDGET_W,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_STALE_TIMEOUT,
    DOMAIN,
    HUB_MODEL,
    LINK_CONNECT_TIMEOUT,
    LINK_QUIET_PERIOD,
    LINK_REPLY_TIMEOUT,
    LOGGER,
    MANUFACTURER,
    UNREACHABLE_ISSUE_AFTER,
)
from .dcmesh import (
    DcMeshError,
    DcMeshLink,
    Event,
    LinkError,
    NodeInfo,
    NodeRole,
    ProtocolMode,
    Reading,
)
from .discovery import mesh_id_of
from .power import NodeLoad, PowerBalancer

type DcMeshConfigEntry = ConfigEntry[DcMeshCoordinator]

# Push readings (MONITOR, other clients) are coalesced into one entity update per this window.
PUSH_COALESCE_SECONDS = 0.25
# Polls in a row that the gateway answers with errors (or not at all) before failing over.
MAX_READ_FAILURES = 3
# mW x s -> kWh
MWS_PER_KWH = 3.6e9


@dataclass(slots=True)
class NodeData:
    """Everything known about one mesh node."""

    node_id: int
    reading: Reading | None = None
    info: NodeInfo | None = None
    last_seen: datetime | None = None
    energy_kwh: float | None = None
    available: bool = False
    last_monotonic: float | None = field(default=None, repr=False)

    @property
    def is_sensor(self) -> bool:
        """Whether the node measures a load (universal node), as far as we know."""
        return self.reading is not None or (
            self.info is not None and self.info.role is NodeRole.UNIVERSAL
        )


@dataclass(slots=True)
class MeshData:
    """The state of one mesh, shared by all entities of the entry."""

    nodes: dict[int, NodeData] = field(default_factory=dict)
    connected: bool = False
    gateway_address: str | None = None
    gateway_node_id: int | None = None
    mode: ProtocolMode | None = None
    failover_count: int = 0

    @property
    def total_power_mw(self) -> float:
        """Sum of the latest power of the nodes that are available."""
        return sum(
            node.reading.power_mw
            for node in self.nodes.values()
            if node.available and node.reading is not None
        )


class DcMeshCoordinator(DataUpdateCoordinator[MeshData]):
    """Owns the GATT link of one mesh and keeps its node registry up to date."""

    config_entry: DcMeshConfigEntry

    def __init__(self, hass: HomeAssistant, entry: DcMeshConfigEntry) -> None:
        """Set up the coordinator (nothing is connected yet)."""
        poll = entry.options.get(CONF_POLL_INTERVAL, DEFAULT_POLL_INTERVAL)
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=entry.title,
            update_interval=timedelta(seconds=poll),
        )
        self.mesh_id: str = entry.data[CONF_MESH_ID]
        self.stale_timeout: float = entry.options.get(
            CONF_STALE_TIMEOUT, DEFAULT_STALE_TIMEOUT
        )
        self.balancer = PowerBalancer(
            threshold_mw=DEFAULT_BUDGET_W * 1000 + BALANCER_HEADROOM_MW,
            headroom_mw=BALANCER_HEADROOM_MW,
            max_step=BALANCER_MAX_STEP,
            cooldown=BALANCER_COOLDOWN,
        )
        self.data = MeshData()
        self.link: DcMeshLink | None = None
        # The hub device first: node devices point to it (via_device_id).
        self.hub_device_id = (
            dr.async_get(hass)
            .async_get_or_create(
                config_entry_id=entry.entry_id,
                identifiers={self.hub_identifier},
                manufacturer=MANUFACTURER,
                model=HUB_MODEL,
                name=entry.title,
            )
            .id
        )
        self._connect_lock = asyncio.Lock()
        self._failed_at: dict[str, float] = {}
        self._failover_task: asyncio.Task[None] | None = None
        self._unreachable_since: float | None = None
        self._polling = False
        self._discovery_poll = True
        self._read_failures = 0
        self._forget_callbacks: list[Callable[[int], None]] = []
        self._energy_restored: set[int] = set()
        self._push_unsub: CALLBACK_TYPE | None = None
        self._link_unsubs: list[Callable[[], None]] = []

    @property
    def hub_identifier(self) -> tuple[str, str]:
        """Device registry identifier of the mesh's hub device."""
        return (DOMAIN, self.mesh_id)

    def node_identifier(self, node_id: int) -> tuple[str, str]:
        """Device registry identifier of a mesh node (never its BLE address)."""
        return (DOMAIN, f"{self.mesh_id}_{node_id}")

    # ------------------------------------------------------------------ candidates
    def belongs(self, service_info: bluetooth.BluetoothServiceInfoBleak) -> bool:
        """Whether an advertising DC-Monitor node is part of this entry's mesh."""
        if mesh_id_of(service_info) != self.mesh_id:
            return False
        excluded: list[str] = self.config_entry.options.get(CONF_EXCLUDED_ADDRESSES, [])
        return service_info.address not in excluded

    def candidates(self) -> list[bluetooth.BluetoothServiceInfoBleak]:
        """Connectable nodes of this mesh, best first.

        Ranking: not recently failed (a node that failed is tried last until it advertises
        again), recently seen, the entry's preferred node, strongest RSSI.
        """
        now = bluetooth.MONOTONIC_TIME()
        preferred = self.config_entry.data.get(CONF_ADDRESS)

        def rank(
            info: bluetooth.BluetoothServiceInfoBleak,
        ) -> tuple[bool, bool, bool, int]:
            failed_at = self._failed_at.get(info.address)
            failed = failed_at is not None and info.time <= failed_at
            stale = now - info.time > CANDIDATE_FRESH_SECONDS
            return (failed, stale, info.address != preferred, -info.rssi)

        return sorted(
            (
                info
                for info in bluetooth.async_discovered_service_info(
                    self.hass, connectable=True
                )
                if self.belongs(info)
            ),
            key=rank,
        )

    # ------------------------------------------------------------------ link
    async def _async_connect_best(self) -> None:
        """Connect to the best candidate; raise UpdateFailed when none answers."""
        async with self._connect_lock:
            if self.link is not None and self.link.is_connected:
                return
            candidates = self.candidates()
            if not candidates:
                raise UpdateFailed(
                    translation_domain=DOMAIN, translation_key="no_nodes"
                )
            last_error: Exception | None = None
            for info in candidates:
                link = DcMeshLink(
                    info.device,
                    name=info.name,
                    ble_device_callback=self._ble_device_getter(info),
                    connect_timeout=LINK_CONNECT_TIMEOUT,
                    reply_timeout=LINK_REPLY_TIMEOUT,
                    quiet_period=LINK_QUIET_PERIOD,
                    max_attempts=1,
                )
                try:
                    await link.connect()
                except DcMeshError as err:
                    LOGGER.debug("Could not connect to %s: %s", info.address, err)
                    self._failed_at[info.address] = bluetooth.MONOTONIC_TIME()
                    last_error = err
                    continue
                self._adopt(link)
                return
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(last_error)},
            )

    def _ble_device_getter(
        self, service_info: bluetooth.BluetoothServiceInfoBleak
    ) -> Callable[[], BLEDevice]:
        """The newest BLEDevice of a node for each connection attempt."""

        def _get() -> BLEDevice:
            return (
                bluetooth.async_ble_device_from_address(
                    self.hass, service_info.address, connectable=True
                )
                or service_info.device
            )

        return _get

    @callback
    def _adopt(self, link: DcMeshLink) -> None:
        """Make a freshly connected link the mesh's link."""
        self._drop_link_callbacks()
        self.link = link
        self._discovery_poll = True
        self._read_failures = 0
        self._link_unsubs = [
            link.register_callback(self._handle_event),
            link.register_disconnect_callback(partial(self._handle_link_lost, link)),
        ]
        data = self.data
        data.connected = True
        data.gateway_address = link.address
        data.gateway_node_id = link.gateway_node_id
        data.mode = link.mode
        for info in link.infos.values():
            self._take_info(info)
        if self._unreachable_since is not None:
            self._unreachable_since = None
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id)
        LOGGER.info(
            "Connected to mesh %s through %s (node %s, protocol %s)",
            self.mesh_id,
            link.address,
            link.gateway_node_id,
            link.mode,
        )

    def _drop_link_callbacks(self) -> None:
        for unsub in self._link_unsubs:
            unsub()
        self._link_unsubs = []

    @callback
    def _handle_link_lost(self, link: DcMeshLink) -> None:
        """The mesh's link dropped: fail over at once, without a scan."""
        if link is not self.link:
            return  # a link we already replaced
        self.link = None
        self._drop_link_callbacks()
        self._failed_at[link.address] = bluetooth.MONOTONIC_TIME()
        LOGGER.info(
            "Lost the link to mesh %s through %s; failing over",
            self.mesh_id,
            link.address,
        )
        self.data.connected = False
        self.data.gateway_address = None
        self.data.gateway_node_id = None
        self._unreachable_since = self._unreachable_since or time.monotonic()
        self._update_availability()
        self.async_update_listeners()
        if self._failover_task is None or self._failover_task.done():
            self._failover_task = self.config_entry.async_create_background_task(
                self.hass, self._async_failover(), f"{DOMAIN} failover {self.mesh_id}"
            )

    async def _async_failover(self) -> None:
        """Connect to the next best node until one holds; back off while none answers."""
        delay = BACKOFF_INITIAL
        while self.link is None or not self.link.is_connected:
            try:
                await self._async_connect_best()
            except UpdateFailed as err:
                LOGGER.debug(
                    "Failover of mesh %s: %s; retry in %.0f s", self.mesh_id, err, delay
                )
                self._check_unreachable()
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            self.data.failover_count += 1
            delay = BACKOFF_INITIAL
            await self.async_refresh()

    async def async_shutdown(self) -> None:
        """Stop failover and close the link."""
        await super().async_shutdown()
        if self._failover_task is not None:
            self._failover_task.cancel()
        if self._push_unsub is not None:
            self._push_unsub()
            self._push_unsub = None
        link, self.link = self.link, None
        self._drop_link_callbacks()
        if link is not None:
            await link.disconnect()

    # ------------------------------------------------------------------ data
    def _node(self, node_id: int) -> NodeData:
        node = self.data.nodes.get(node_id)
        if node is None:
            node = self.data.nodes[node_id] = NodeData(node_id)
        return node

    @callback
    def _handle_event(self, event: Event) -> None:
        """Take every event of the link: readings of polls, MONITOR and other clients."""
        if isinstance(event, Reading):
            self._ingest(event)
        elif isinstance(event, NodeInfo):
            self._take_info(event)
        else:
            return
        if not self._polling and self._push_unsub is None:
            self._push_unsub = self.hass.loop.call_later(
                PUSH_COALESCE_SECONDS, self._flush_push
            ).cancel

    @callback
    def _flush_push(self) -> None:
        self._push_unsub = None
        self._update_availability()
        self.async_update_listeners()

    def _take_info(self, info: NodeInfo) -> None:
        """Store a node's INFO (v1) and keep its device's versions current."""
        node = self._node(info.node_id)
        node.info = info
        if not node.is_sensor:  # a relay: nothing to stale-check, it never reads
            node.available = self.data.connected
        registry = dr.async_get(self.hass)
        device = registry.async_get_device_by_identifier(
            self.node_identifier(info.node_id), self.config_entry.entry_id
        )
        if device is not None and (
            device.sw_version != info.firmware or device.hw_version != info.hardware
        ):
            registry.async_update_device(
                device.id, sw_version=info.firmware, hw_version=info.hardware
            )

    def _ingest(self, reading: Reading) -> None:
        node = self._node(reading.node_id)
        now = time.monotonic()
        previous = node.reading
        if node.energy_kwh is None:
            node.energy_kwh = 0.0
        elif previous is not None and node.last_monotonic is not None:
            elapsed = now - node.last_monotonic
            if elapsed <= self.stale_timeout:  # never integrate across a gap
                node.energy_kwh += (
                    (previous.power_mw + reading.power_mw) / 2 * elapsed / MWS_PER_KWH
                )
        node.reading = reading
        node.last_monotonic = now
        node.last_seen = dt_util.utcnow()

    def _update_availability(self) -> None:
        now = time.monotonic()
        for node in self.data.nodes.values():
            if not node.is_sensor:  # relays: available while the mesh is reachable
                node.available = self.data.connected and node.info is not None
                continue
            fresh = (
                node.last_monotonic is not None
                and now - node.last_monotonic <= self.stale_timeout
            )
            if fresh != node.available:
                node.available = fresh
                if fresh:
                    LOGGER.info(
                        "Node %s of mesh %s is back", node.node_id, self.mesh_id
                    )
                elif node.last_monotonic is not None:
                    LOGGER.info(
                        "Node %s of mesh %s has not answered for %.0f s: unavailable",
                        node.node_id,
                        self.mesh_id,
                        self.stale_timeout,
                    )

    @property
    def _issue_id(self) -> str:
        return f"mesh_unreachable_{self.config_entry.entry_id}"

    def _check_unreachable(self) -> None:
        since = self._unreachable_since
        if (
            since is not None
            and time.monotonic() - since >= UNREACHABLE_ISSUE_AFTER.total_seconds()
        ):
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self._issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="mesh_unreachable",
                translation_placeholders={"mesh": self.config_entry.title},
            )

    async def _async_update_data(self) -> MeshData:
        """Poll the mesh with one ALL:READ (connecting first when needed)."""
        if self.link is None or not self.link.is_connected:
            if self._failover_task is not None and not self._failover_task.done():
                self._update_availability()
                return self.data  # failover owns the reconnection
            try:
                await self._async_connect_best()
            except UpdateFailed:
                self._unreachable_since = self._unreachable_since or time.monotonic()
                self._check_unreachable()
                self._update_availability()
                raise
        link = self.link
        assert link is not None
        # The first poll on a new link gathers until the mesh goes quiet (it finds the
        # nodes); later polls stop as soon as every known node answered.
        expected = set() if self._discovery_poll else self.sensor_node_ids()
        self._polling = True
        try:
            await link.read_all(expected=expected)
            self._discovery_poll = False
            self._read_failures = 0
            self.data.gateway_node_id = link.gateway_node_id
        except DcMeshError as err:
            if isinstance(err, LinkError) and self.link is None:
                return self.data  # lost mid-read: the failover takes over
            self._read_failures += 1
            if self._read_failures >= MAX_READ_FAILURES:
                # The BLE link is up but the node does not reach its mesh: use another.
                LOGGER.info(
                    "Mesh %s does not answer through %s; failing over",
                    self.mesh_id,
                    link.address,
                )
                await link.disconnect()
                self._handle_link_lost(link)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="read_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        finally:
            self._polling = False
            self._update_availability()
        await self._async_balance()
        return self.data

    def restore_energy(self, node_id: int, kwh: float) -> None:
        """Continue a node's energy total from the value restored after a restart."""
        if node_id in self._energy_restored:
            return
        self._energy_restored.add(node_id)
        node = self._node(node_id)
        node.energy_kwh = kwh + (node.energy_kwh or 0.0)

    def forget_node(self, node_id: int) -> None:
        """Drop a node the user removed; it comes back as new if it ever answers again."""
        self.data.nodes.pop(node_id, None)
        self._energy_restored.discard(node_id)
        for forget in self._forget_callbacks:
            forget(node_id)

    @callback
    def async_on_forget(self, forget: Callable[[int], None]) -> CALLBACK_TYPE:
        """Call `forget(node_id)` when the user removes a node (platforms re-add it later)."""
        self._forget_callbacks.append(forget)
        return lambda: self._forget_callbacks.remove(forget)

    def sensor_node_ids(self) -> set[int]:
        """Ids of the nodes that measure a load."""
        return {node.node_id for node in self.data.nodes.values() if node.is_sensor}

    def node_ids(self) -> set[int]:
        """Ids of every known node, relays included."""
        return set(self.data.nodes)

    # ------------------------------------------------------------------ balancer
    async def _async_balance(self) -> None:
        link = self.link
        if not self.balancer.enabled or link is None or not link.is_connected:
            return
        loads = [
            NodeLoad(node.node_id, node.reading.duty, node.reading.power_mw)
            for node in self.data.nodes.values()
            if node.available and node.reading is not None
        ]
        for node_id, duty in self.balancer.plan(loads, time.monotonic()).items():
            try:  # fire-and-forget: the next poll shows the effect
                await link.set_duty(node_id, duty)
            except LinkError:
                return  # paused until the failover is done
            except DcMeshError as err:
                LOGGER.debug(
                    "Balancer could not set node %s to %s %%: %s", node_id, duty, err
                )

    async def async_set_balancing(self, enabled: bool) -> None:
        """Turn the power budget balancer on (freezing user duties) or off (restoring them).

        Turning it off needs the link: the user's duties are sent back to every node that
        answers. If one of them fails, balancing stays on (nothing is lost) and the error
        is raised, so the user can try again.
        """
        if enabled == self.balancer.enabled:
            return
        if enabled:
            self.balancer.enable(
                {
                    node.node_id: node.reading.duty
                    for node in self.data.nodes.values()
                    if node.reading is not None
                }
            )
            self.async_update_listeners()
            return
        self._require_link()
        ceilings = dict(self.balancer.ceilings)
        self.balancer.disable()
        try:
            for node_id, duty in ceilings.items():
                node = self.data.nodes.get(node_id)
                if node is None or not node.available:
                    LOGGER.info(
                        "Node %s is unavailable: its duty is not restored", node_id
                    )
                    continue
                await self.async_set_duty(node_id, duty, user=False)
        except HomeAssistantError:
            self.balancer.enable(ceilings)
            raise
        finally:
            self.async_update_listeners()

    # ------------------------------------------------------------------ commands
    @contextmanager
    def _command(self, target: str) -> Iterator[DcMeshLink]:
        """The link for a user command; library errors become translated HA errors."""
        link = self._require_link()
        try:
            yield link
        except DcMeshError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={"node": target, "error": str(err)},
            ) from err

    def _require_link(self) -> DcMeshLink:
        if self.link is None or not self.link.is_connected:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="not_connected",
                translation_placeholders={"mesh": self.config_entry.title},
            )
        return self.link

    async def async_set_duty(
        self, node_id: int, duty: int, *, user: bool = True
    ) -> None:
        """Set one node's duty and confirm it with a fresh reading."""
        if not 0 <= duty <= 100:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_duty",
                translation_placeholders={"duty": str(duty)},
            )
        with self._command(str(node_id)) as link:
            await link.set_duty(node_id, duty)
            reading = await link.read(node_id)
        if user:
            self.balancer.set_user_duty(node_id, duty)
        self._update_availability()
        self.async_update_listeners()
        if reading.duty != duty:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="duty_not_confirmed",
                translation_placeholders={
                    "node": str(node_id),
                    "duty": str(duty),
                    "actual": str(reading.duty),
                },
            )

    async def async_set_mesh_duty(self, duty: int) -> None:
        """Set every node's duty with one mesh command, then read the mesh back."""
        with self._command("ALL") as link:
            await link.set_duty("ALL", duty)
        for node_id in self.sensor_node_ids():
            self.balancer.set_user_duty(node_id, duty)
        await self.async_request_refresh()

    async def async_ramp(self, node_id: int) -> None:
        """Run the node's RAMP sequence."""
        with self._command(str(node_id)) as link:
            await link.ramp(node_id)
