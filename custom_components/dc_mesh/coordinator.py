"""The mesh coordinator: polls the mesh through its link and publishes what the nodes say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from homeassistant.components import bluetooth
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_ADDRESS
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .balancer import BalancerController
from .connection import MeshConnection
from .const import (
    BALANCER_COOLDOWN,
    BALANCER_HEADROOM_MW,
    BALANCER_MAX_STEP,
    CONF_EXCLUDED_ADDRESSES,
    CONF_MESH_ID,
    CONF_MESH_KEY,
    CONF_STALE_TIMEOUT,
    DEFAULT_BUDGET_W,
    DEFAULT_STALE_TIMEOUT,
    DOMAIN,
    EVENT_NODE_RESTARTED,
    INFO_INTERVAL,
    LOGGER,
    POLL_INTERVAL_BASE,
    POLL_INTERVAL_NODES,
    POLL_INTERVAL_PER_EXTRA_NODE,
    RELAY_STALE_AFTER,
)
from .dcmesh import (
    DcMeshError,
    DcMeshLink,
    Event,
    FallbackModeError,
    LinkError,
    NodeInfo,
    ProtocolMode,
    Reading,
    StatusLine,
)
from .dcmesh.link import MESH_READY_VENDOR
from .helpers import translate_errors
from .models import MeshData, NodeData
from .power import PowerBalancer
from .publisher import MqttPublisher
from .updater import MeshUpdater

# INFO's uptime is whole seconds and comes through the mesh: a boot time that moves less than
# this is the same boot.
BOOT_JITTER = timedelta(seconds=30)

type DcMeshConfigEntry = ConfigEntry[DcMeshCoordinator]

# Pushed readings (MONITOR, other clients) are coalesced into one entity update of the mesh:
# at once when every available measuring node sent one (a MONITOR round or a group read is
# complete), at the latest this long after the first. MONITOR reads every node once a second:
# about one update a second per mesh, whatever its size, each reading shown within a second.
PUSH_COALESCE_SECONDS = 1.0
# Polls in a row that the gateway answers with errors (or not at all) before failing over.
MAX_READ_FAILURES = 3
# mW x s -> kWh
MWS_PER_KWH = 3.6e9


def poll_interval(sensor_nodes: int) -> timedelta:
    """The poll interval for a mesh of this many measuring nodes (see const.py)."""
    extra = max(0, sensor_nodes - POLL_INTERVAL_NODES)
    return timedelta(seconds=POLL_INTERVAL_BASE + extra * POLL_INTERVAL_PER_EXTRA_NODE)


def insecure_issue_id(entry_id: str) -> str:
    """The id of the repair issue of a mesh whose gateway takes commands from anyone."""
    return f"insecure_mesh_{entry_id}"


def legacy_issue_id(entry_id: str) -> str:
    """The id of the repair issue of a mesh of v0.7 nodes (updates need USB once)."""
    return f"legacy_firmware_{entry_id}"


def fallback_issue_id(entry_id: str) -> str:
    """The id of a mesh's fallback-mode repair issue."""
    return f"mesh_fallback_{entry_id}"


# A node's energy total as its sensor shows it: kWh to 4 decimals, the 0.1 Wh it is displayed
# with. A load of a few watts adds a fraction of a mWh per reading: each such invisible step
# would be a state write (and a recorder row) per node and second.
ENERGY_DECIMALS: Final = 4
# The field of a node's pushed data that its energy sensor shows (see ListenerScope.field)
ENERGY_FIELD: Final = "energy"


class ListenerScope(NamedTuple):
    """What a listener shows (its context): a push flush calls only those it concerns.

    `node_id`: one node's (None: the mesh's); `readings`: False when nothing it shows comes
    from readings (INFO, settings, the link), so pushed readings alone do not concern it;
    `field`: the one field of the node's readings it shows (a field of `Reading`, or
    ENERGY_FIELD: the energy total as shown), so a reading that leaves that field as it was
    does not concern it (None: it shows something that every reading changes, such as when
    the node was last seen).
    Every other update (polls, commands, link changes) calls every listener. (A tuple: the
    flush looks scopes up at every push, and a tuple hashes in C.)
    """

    node_id: int | None = None
    readings: bool = True
    field: str | None = None


class DcMeshCoordinator(DataUpdateCoordinator[MeshData]):
    """Polls one mesh (one ALL:READ per interval) and takes every reading it hears."""

    config_entry: DcMeshConfigEntry

    def __init__(self, hass: HomeAssistant, entry: DcMeshConfigEntry) -> None:
        """Set up the coordinator (nothing is connected yet)."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=entry.title,
            update_interval=poll_interval(0),
        )
        self.mesh_id: str = entry.data[CONF_MESH_ID]
        self.stale_timeout = timedelta(
            seconds=entry.options.get(CONF_STALE_TIMEOUT, DEFAULT_STALE_TIMEOUT)
        )
        self.data = MeshData()
        self.connection = MeshConnection(
            hass,
            mesh_id=self.mesh_id,
            title=entry.title,
            entry_id=entry.entry_id,
            excluded=list(entry.options.get(CONF_EXCLUDED_ADDRESSES, [])),
            preferred=entry.data.get(CONF_ADDRESS),
            mesh_key=(
                bytes.fromhex(entry.data[CONF_MESH_KEY])
                if CONF_MESH_KEY in entry.data
                else None
            ),
            on_connected=self._link_up,
            on_lost=self._link_down,
            on_key_rejected=lambda: entry.async_start_reauth(hass),
        )
        # Registered by async_setup_entry before the platforms (node devices point to it).
        self.hub_device_id = ""
        # Polls, user commands and balancer rounds take turns: a command and its
        # confirmation are never split by a poll.
        self.command_lock = asyncio.Lock()
        self._discovery_poll = True
        self._read_failures = 0
        self._forget_callbacks: list[Callable[[int], None]] = []
        self._energy_restored: set[int] = set()
        self._push_unsub: CALLBACK_TYPE | None = None
        self._link_unsub: Callable[[], None] | None = None
        self._infos_at: datetime | None = None
        self._info_asked: set[int] = set()  # nodes asked for a lost INFO on this link
        self._polling = False
        # A poll that connects reads the new link itself (no extra refresh).
        self._connecting_in_poll = False
        # Since the last push flush: the nodes whose data changed; of them, those that
        # changed in more than their readings (INFO, availability, a node's first reading);
        # and the fields in which a node's readings changed.
        self._pushed: set[int] = set()
        self._pushed_beyond_readings: set[int] = set()
        self._pushed_fields: dict[int, set[str]] = {}
        # The available measuring nodes: a push flush waits for a reading of each of them.
        self._round_size = 0
        self._flush_job = HassJob(self._flush_push)
        # The listeners by their scope, and the scopes by node id (None: the mesh), for
        # push flushes.
        self._scoped_listeners: dict[ListenerScope, dict[int, CALLBACK_TYPE]] = {}
        self._scopes_of: dict[int | None, set[ListenerScope]] = {}
        self._listener_ids = 0
        self._unavailable_logged: set[int] = set()
        self.balancer = PowerBalancer(
            budget_mw=DEFAULT_BUDGET_W * 1000,
            headroom_mw=BALANCER_HEADROOM_MW,
            max_step=BALANCER_MAX_STEP,
            cooldown=BALANCER_COOLDOWN,
        )
        self.balancer_control = BalancerController(self)
        self.publisher: MqttPublisher | None = None
        self.updater = MeshUpdater(hass, self)

    def attach_publisher(self, publisher: MqttPublisher) -> None:
        """Publish every reading, and what changed in the mesh, to MQTT."""
        self.publisher = publisher
        self.config_entry.async_on_unload(
            self.async_add_listener(lambda: publisher.publish_mesh(self.data))
        )
        publisher.publish_mesh(self.data)

    @property
    def hub_identifier(self) -> tuple[str, str]:
        """Device registry identifier of the mesh's hub device."""
        return (DOMAIN, self.mesh_id)

    def node_identifier(self, node_id: int) -> tuple[str, str]:
        """Device registry identifier of a mesh node (never its BLE address)."""
        return (DOMAIN, f"{self.mesh_id}_{node_id}")

    @property
    def link(self) -> DcMeshLink | None:
        """The mesh's link, None while failing over."""
        return self.connection.link

    # ------------------------------------------------------------------ link events
    @callback
    def _link_up(self, link: DcMeshLink) -> None:
        if self._link_unsub is not None:
            self._link_unsub()
        self._link_unsub = link.register_callback(self._handle_event)
        self._discovery_poll = True
        self._read_failures = 0
        self._infos_at = dt_util.utcnow() if link.mode is ProtocolMode.V1 else None
        self._info_asked = set()
        data = self.data
        data.connected = True
        data.gateway_address = link.address
        data.gateway_node_id = link.gateway_node_id
        data.mode = link.mode
        data.failover_count = self.connection.failover_count
        for info in link.infos.values():
            self._take_info(info)
        self._set_fallback(link.fallback)
        self._show_insecure(not link.authenticated)
        self._show_issue(
            legacy_issue_id(self.config_entry.entry_id),
            shown=link.mode is ProtocolMode.LEGACY,
            severity=ir.IssueSeverity.WARNING,
            translation_key="legacy_firmware",
            learn_more_url="https://github.com/dc-mesh/dc_mesh/blob/main/firmware/README.md",
        )
        if not self._connecting_in_poll:
            # A failover round found this link: poll it at once (not at the next
            # interval, and not debounced behind the poll that failed with the old one).
            self.hass.async_create_task(self.async_refresh(), eager_start=False)

    @callback
    def _link_down(self, _link: DcMeshLink) -> None:
        if self._link_unsub is not None:
            self._link_unsub()
            self._link_unsub = None
        data = self.data
        data.connected = False
        data.gateway_address = None
        data.gateway_node_id = None
        self._update_availability()
        self.async_update_listeners()

    @callback
    def _handle_event(self, event: Event) -> None:
        """Take every event of the link: readings of polls, MONITOR and other clients."""
        if isinstance(event, Reading):
            self._ingest(event)
        elif isinstance(event, NodeInfo):
            self._take_info(event)
            self._pushed_beyond_readings.add(event.node_id)
        elif isinstance(event, StatusLine) and event.text == MESH_READY_VENDOR:
            if self.data.fallback:
                self._set_fallback(False)
                self.hass.async_create_task(self.async_refresh(), eager_start=False)
            return
        else:
            return
        self._pushed.add(event.node_id)  # a Reading or a NodeInfo
        if self._polling:
            return
        if len(self._pushed) >= self._round_size and not self.command_lock.locked():
            # every node of the round answered (and no command holds the mesh): show it now
            if self._push_unsub is not None:
                self._push_unsub()
            self._flush_push()
        elif self._push_unsub is None:
            self._push_unsub = async_call_later(
                self.hass, PUSH_COALESCE_SECONDS, self._flush_job
            )

    @callback
    def async_add_listener(
        self, update_callback: CALLBACK_TYPE, context: Any = None
    ) -> Callable[[], None]:
        """Listen for data updates; a ListenerScope as context spares it pushes of others."""
        remove = super().async_add_listener(update_callback, context)
        self._listener_ids += 1
        listener_id = self._listener_ids
        scope = context if isinstance(context, ListenerScope) else ListenerScope()
        listeners = self._scoped_listeners.setdefault(scope, {})
        listeners[listener_id] = update_callback
        self._scopes_of.setdefault(scope.node_id, set()).add(scope)

        @callback
        def remove_listener() -> None:
            listeners.pop(listener_id, None)
            remove()

        return remove_listener

    @callback
    def async_update_listeners(self) -> None:
        """Tell every listener (a poll, a command, a link change): pushed data included."""
        if self._push_unsub is not None:
            self._push_unsub()
            self._push_unsub = None
        self._take_pushed()
        super().async_update_listeners()

    def _take_pushed(self) -> tuple[set[int], set[int], dict[int, set[str]]]:
        """What pushes gathered since the last update (see `__init__`); gather afresh."""
        taken = (self._pushed, self._pushed_beyond_readings, self._pushed_fields)
        self._pushed, self._pushed_beyond_readings, self._pushed_fields = (
            set(),
            set(),
            {},
        )
        return taken

    @callback
    def _flush_push(self, _now: datetime | None = None) -> None:
        """Publish pushed data: to the listeners of the mesh and of the nodes that sent some.

        Work proportional to what changed: the listeners of the other nodes' entities, of
        entities that show no reading when readings are all that came, and of entities that
        show a field of the readings that stayed as it was, are not called at all.
        """
        self._push_unsub = None
        self._update_availability()
        changed, beyond, fields = self._take_pushed()
        scoped = self._scoped_listeners
        scopes = [ListenerScope()]
        if beyond:
            scopes.append(ListenerScope(readings=False))
        for node_id in changed:
            if node_id in beyond:  # everything the node's entities show
                scopes.extend(self._scopes_of.get(node_id, ()))
                continue
            scopes.append(ListenerScope(node_id))
            scopes.extend(
                ListenerScope(node_id, True, field) for field in fields.get(node_id, ())
            )
        listeners = [
            update_callback
            for scope in scopes
            if (in_scope := scoped.get(scope))
            for update_callback in in_scope.values()
        ]
        for update_callback in listeners:
            try:
                update_callback()
            except Exception:
                LOGGER.exception(
                    "Unexpected error updating listener %s for %s",
                    id(update_callback),
                    self.name,
                )

    def _show_insecure(self, insecure: bool) -> None:
        """Warn, as a repair issue, while the gateway takes commands without a session."""
        self._show_issue(
            insecure_issue_id(self.config_entry.entry_id),
            shown=insecure,
            severity=ir.IssueSeverity.WARNING,
            translation_key="insecure_mesh",
            learn_more_url="https://github.com/dc-mesh/dc_mesh#security",
        )

    def _show_issue(
        self,
        issue_id: str,
        *,
        shown: bool,
        severity: ir.IssueSeverity,
        translation_key: str,
        learn_more_url: str | None = None,
    ) -> None:
        """Create or delete one of the mesh's repair issues (its text names the mesh)."""
        if not shown:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=severity,
            translation_key=translation_key,
            translation_placeholders={"mesh": self.config_entry.title},
            learn_more_url=learn_more_url,
        )

    def _set_fallback(self, fallback: bool) -> None:
        """Enter or leave fallback mode: stop sending anything, show the repair issue."""
        if fallback == self.data.fallback:
            return
        self.data.fallback = fallback
        if fallback:
            LOGGER.warning(
                "%s is in fallback mode (vendor models unbound): any command would switch "
                "loads on, so nothing is sent until the nodes report MESH_READY:VENDOR",
                self.config_entry.title,
            )
        else:
            LOGGER.info("%s left fallback mode", self.config_entry.title)
        self._show_issue(
            fallback_issue_id(self.config_entry.entry_id),
            shown=fallback,
            severity=ir.IssueSeverity.ERROR,
            translation_key="mesh_fallback",
        )

    # ------------------------------------------------------------------ node data
    def _node(self, node_id: int) -> NodeData:
        node = self.data.nodes.get(node_id)
        if node is None:
            node = self.data.nodes[node_id] = NodeData(
                node_id, address=self.connection.node_addresses.get(node_id)
            )
        return node

    def _take_info(self, info: NodeInfo) -> None:
        """Store a node's INFO (v1) and keep its device's versions current."""
        node = self._node(info.node_id)
        node.info = info
        now = dt_util.utcnow()
        if not node.is_sensor:  # a relay answers INFO and nothing else
            node.last_seen = now
        booted = now - timedelta(seconds=info.uptime)
        # UP has whole seconds and arrives after a mesh hop: only a real jump is a boot
        if node.booted_at is None or abs(booted - node.booted_at) > BOOT_JITTER:
            if node.booted_at is not None and booted > node.booted_at:
                LOGGER.info(
                    "Node %s of %s restarted (up for %s s)",
                    node.node_id,
                    self.config_entry.title,
                    info.uptime,
                )
                self._fire_restarted(node, info.uptime)
            node.booted_at = booted
        self._update_device(node)

    @callback
    def node_updated(self, info: NodeInfo) -> None:
        """A node's INFO after its firmware update (read over a link of its own)."""
        self._take_info(info)
        self.async_update_listeners()

    def _fire_restarted(self, node: NodeData, uptime: int) -> None:
        """A node restarted: an event the logbook shows on the node's device."""
        device = dr.async_get(self.hass).async_get_device_by_identifier(
            self.node_identifier(node.node_id), self.config_entry.entry_id
        )
        if device is None:
            return
        self.hass.bus.async_fire(
            EVENT_NODE_RESTARTED,
            {
                "device_id": device.id,
                "name": device.name_by_user or device.name or str(node.node_id),
                "uptime": uptime,
            },
        )

    def _update_device(self, node: NodeData) -> None:
        registry = dr.async_get(self.hass)
        device = registry.async_get_device_by_identifier(
            self.node_identifier(node.node_id), self.config_entry.entry_id
        )
        if device is None:
            return
        info = node.info
        changes: dict[str, object] = {}
        if info is not None and (
            device.sw_version != info.firmware or device.hw_version != info.hardware
        ):
            changes |= {"sw_version": info.firmware, "hw_version": info.hardware}
        if node.address is not None and not any(
            kind == dr.CONNECTION_BLUETOOTH for kind, _ in device.connections
        ):
            changes["merge_connections"] = {(dr.CONNECTION_BLUETOOTH, node.address)}
        if changes:
            registry.async_update_device(device.id, **changes)  # type: ignore[arg-type]

    def _ingest(self, reading: Reading) -> None:
        node = self._node(reading.node_id)
        now = dt_util.utcnow()
        previous = node.reading
        fields: set[str] | None = None
        if previous is None:  # a measuring node from now on: all its entities are told
            self._pushed_beyond_readings.add(node.node_id)
        else:
            fields = self._pushed_fields.get(node.node_id)
            if fields is None:
                fields = self._pushed_fields[node.node_id] = set()
            # (the fields one by one: this runs at every reading of every node)
            if previous.duty != reading.duty:
                fields.add("duty")
            if previous.voltage != reading.voltage:
                fields.add("voltage")
            if previous.current_ma != reading.current_ma:
                fields.add("current_ma")
            if previous.power_mw != reading.power_mw:
                fields.add("power_mw")
        energy = node.energy_kwh
        if energy is None:
            total = 0.0
        else:
            total = energy
            if previous is not None and node.last_seen is not None:
                elapsed = now - node.last_seen
                if elapsed <= self.stale_timeout:  # never integrate across a gap
                    total += (
                        (previous.power_mw + reading.power_mw)
                        / 2
                        * elapsed.total_seconds()
                        / MWS_PER_KWH
                    )
        node.energy_kwh = total
        if fields is not None and (
            energy is None
            or round(total, ENERGY_DECIMALS) != round(energy, ENERGY_DECIMALS)
        ):
            fields.add(ENERGY_FIELD)
        node.reading = reading
        node.last_seen = now
        if self.publisher is not None:
            self.publisher.publish_reading(node)

    def _update_signal(self) -> None:
        """Each node's signal as HA last heard it (at polls: not on the push path)."""
        for node in self.data.nodes.values():
            if node.address is not None and (
                heard := bluetooth.async_last_service_info(
                    self.hass, node.address, connectable=False
                )
            ):
                node.rssi = heard.rssi

    def _update_availability(self) -> None:
        now = dt_util.utcnow()
        available_sensors = 0
        for node in self.data.nodes.values():
            sensor = node.is_sensor
            timeout = self.stale_timeout if sensor else RELAY_STALE_AFTER
            fresh = (
                self.data.connected
                and node.last_seen is not None
                and now - node.last_seen <= timeout
            )
            available_sensors += fresh and sensor
            if fresh == node.available:
                continue
            node.available = fresh
            self._pushed.add(node.node_id)
            self._pushed_beyond_readings.add(node.node_id)
            if not fresh and node.last_seen is not None and self.data.connected:
                LOGGER.info(
                    "Node %s of %s has not answered for %s: unavailable",
                    node.node_id,
                    self.config_entry.title,
                    timeout,
                )
                self._unavailable_logged.add(node.node_id)
            elif fresh and node.node_id in self._unavailable_logged:
                self._unavailable_logged.discard(node.node_id)
                LOGGER.info(
                    "Node %s of %s is back", node.node_id, self.config_entry.title
                )
        self._round_size = available_sensors

    # ------------------------------------------------------------------ polling
    async def _async_update_data(self) -> MeshData:
        """Poll the mesh with one ALL:READ (connecting first when needed)."""
        link = self.link
        if link is None or not link.is_connected:
            if self.connection.failing_over:
                self._update_availability()
                return self.data  # the failover owns the reconnection
            self._connecting_in_poll = True
            try:
                link = await self.connection.async_connect()
            except UpdateFailed:
                self._update_availability()
                raise
            finally:
                self._connecting_in_poll = False
        async with self.command_lock:
            if self.data.fallback:
                await self._async_check_fallback(link)
            else:
                await self._async_poll(link)
        self._update_signal()
        self._update_availability()
        self.update_interval = poll_interval(len(self.sensor_node_ids()))
        return self.data

    async def _async_check_fallback(self, link: DcMeshLink) -> None:
        """In fallback nothing is polled: only ask (harmlessly) whether it is over."""
        try:
            self._set_fallback(await link.probe_fallback())
        except DcMeshError as err:
            LOGGER.debug("Fallback probe of %s failed: %s", self.mesh_id, err)

    async def _async_poll(self, link: DcMeshLink) -> None:
        # The first poll on a new link gathers until the mesh goes quiet (it finds the
        # nodes); later polls stop as soon as every known node answered, and ask the
        # available nodes that missed the group read directly.
        expected = set() if self._discovery_poll else self.sensor_node_ids()
        self._polling = True
        try:
            readings = await link.read_all(expected=expected)
            for node_id in sorted(expected - readings.keys()):
                node = self.data.nodes.get(node_id)
                if node is not None and node.available:
                    try:
                        await link.read(node_id)
                    except LinkError:
                        raise
                    except DcMeshError as err:
                        LOGGER.debug("Node %s missed the poll: %s", node_id, err)
            await self._async_refresh_infos(link)
        except FallbackModeError:
            self._set_fallback(True)
            return
        except DcMeshError as err:
            if isinstance(err, LinkError) and self.link is not link:
                return  # lost mid-poll: the failover takes over
            self._read_failures += 1
            if self._read_failures >= MAX_READ_FAILURES:
                # The BLE link is up but the node does not reach its mesh: use another.
                LOGGER.info(
                    "%s does not answer through %s; failing over",
                    self.config_entry.title,
                    link.address,
                )
                self.connection.drop(link)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="read_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        finally:
            self._polling = False
        self._discovery_poll = False
        self._read_failures = 0
        self.data.gateway_node_id = link.gateway_node_id

    async def _async_refresh_infos(self, link: DcMeshLink) -> None:
        """v1: ask every node for its INFO again now and then (relays only answer this).

        A node whose INFO line was lost (a group reply that collided) is asked directly,
        once per link: its firmware, role and update receiver would stay unknown until
        the next round otherwise.
        """
        if self._infos_at is None:
            return
        for node_id in sorted(self.sensor_node_ids() - self._info_asked):
            if self.data.nodes[node_id].info is None:
                self._info_asked.add(node_id)
                try:
                    await link.info(node_id)
                except LinkError:
                    raise
                except DcMeshError as err:
                    LOGGER.debug("Node %s did not answer INFO: %s", node_id, err)
        if dt_util.utcnow() - self._infos_at < INFO_INTERVAL:
            return
        self._infos_at = dt_util.utcnow()
        await link.read_infos()

    # ------------------------------------------------------------------ nodes
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
        if self.publisher is not None:
            self.publisher.clear_node(node_id)
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

    async def async_shutdown(self) -> None:
        """Stop polling and failing over; close the link."""
        await super().async_shutdown()
        if self._push_unsub is not None:
            self._push_unsub()
            self._push_unsub = None
        if self._link_unsub is not None:
            self._link_unsub()
            self._link_unsub = None
        await self.connection.async_close()

    # ------------------------------------------------------------------ commands
    def require_link(self) -> DcMeshLink:
        """The link for a command; a translated error when there is none or in fallback."""
        link = self.link
        if link is None or not link.is_connected:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="not_connected",
                translation_placeholders={"mesh": self.config_entry.title},
            )
        if self.data.fallback:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="mesh_fallback",
                translation_placeholders={"mesh": self.config_entry.title},
            )
        return link

    @asynccontextmanager
    async def _command(self, target: str) -> AsyncIterator[DcMeshLink]:
        """Hold the mesh for a command: no poll in between; translated errors; then publish.

        A fallback acknowledgement seen meanwhile puts the mesh into fallback mode.
        """
        async with self.command_lock:
            link = self.require_link()
            try:
                with translate_errors(self.config_entry.title, target):
                    yield link
            finally:
                if link.fallback:
                    self._set_fallback(True)
                self._update_availability()
                self.async_update_listeners()

    @staticmethod
    def _check_duty(duty: int) -> None:
        if not 0 <= duty <= 100:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_duty",
                translation_placeholders={"duty": str(duty)},
            )

    async def async_set_duty(
        self, node_id: int, duty: int, *, user: bool = True
    ) -> None:
        """Set one node's duty and confirm it with the node's own fresh reading.

        A user's duty is the balancer's limit for the node before anything is sent, so a
        balancer round cannot undo it.
        """
        self._check_duty(duty)
        if user:
            self.balancer.set_user_duty(node_id, duty)
        async with self._command(str(node_id)) as link:
            reading = await link.set_duty_confirmed(node_id, duty)
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

    async def async_set_mesh_duty(self, duty: int) -> list[int]:
        """Set every measuring node's duty; return the node ids that confirmed it.

        One group command first. Group messages are not acknowledged in a mesh, so every
        node is read back, and the ones that missed it get a unicast DUTY. Raises, after
        trying them all, when a node did not confirm, naming it.
        """
        self._check_duty(duty)
        nodes = self.sensor_node_ids()
        for node_id in nodes:
            self.balancer.set_user_duty(node_id, duty)
        async with self._command("ALL") as link:
            await link.set_duty("ALL", duty)
            readings = await link.read_all(expected=nodes)
            confirmed = {n for n, r in readings.items() if r.duty == duty} & nodes
            for node_id in sorted(nodes - confirmed):
                try:
                    reading = await link.set_duty_confirmed(node_id, duty)
                except LinkError, FallbackModeError:
                    raise
                except DcMeshError as err:
                    LOGGER.debug("Node %s did not take duty %s: %s", node_id, duty, err)
                    continue
                if reading.duty == duty:
                    confirmed.add(node_id)
        if missing := nodes - confirmed:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="mesh_duty_not_confirmed",
                translation_placeholders={
                    "mesh": self.config_entry.title,
                    "duty": str(duty),
                    "nodes": ", ".join(str(n) for n in sorted(missing)),
                },
            )
        return sorted(confirmed)

    async def async_ramp(self, node_id: int) -> None:
        """Run the node's RAMP sequence."""
        async with self._command(str(node_id)) as link:
            await link.ramp(node_id)
