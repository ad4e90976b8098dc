"""Readings to MQTT through Home Assistant's MQTT integration: stable topics, an outbox, commands.

Topics (`<base>` is an option, `dc_mesh` by default; ids, never names)::

    <base>/<mesh id>/<node id>/state         JSON of every reading (retained if set)
    <base>/<mesh id>/<node id>/availability  online / offline (retained)
    <base>/<mesh id>/status                  JSON: gateway node, connected, failovers (retained)
    <base>/<mesh id>/<node id>/duty/set      command: 0..100 -> that node's duty
    <base>/<mesh id>/all/duty/set            command: 0..100 -> every node's duty

Every message goes through one ordered outbox. While HA's MQTT client is connected, the outbox
is handed to the client in batches at QoS 1, oldest first; while it is not, messages wait there
(at most `OUTBOX_LIMIT`; beyond it the oldest readings are dropped and counted), and the outbox
is kept in HA's storage so a restart loses nothing. A message leaves the outbox when it is
handed to the client, never before: a publish that raises after that may have been queued by
the client and is a possible duplicate (consumers drop duplicates by `seq`), never a loss.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
import json
import logging
from typing import Any, Final, TypedDict

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .models import MeshData, NodeData

_LOGGER = logging.getLogger(__name__)

OUTBOX_LIMIT: Final = 20_000
BATCH: Final = 100
SAVE_DELAY: Final = 10.0  # s: the outbox is written to storage at most this often
STORAGE_VERSION: Final = 1
ONLINE: Final = "online"
OFFLINE: Final = "offline"


class _Stored(TypedDict):
    messages: list[tuple[str, str, bool]]
    seq: dict[str, int]
    nodes: list[int]
    dropped: int


@dataclass(slots=True)
class Message:
    """One message waiting to be handed to the MQTT client."""

    topic: str
    payload: str
    retain: bool
    reading: bool  # a reading (may be dropped when the outbox is full)


def _store(hass: HomeAssistant, entry_id: str) -> Store[_Stored]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.mqtt_outbox.{entry_id}")


class MqttPublisher:
    """Publishes one mesh to MQTT and takes duty commands from it."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        entry_id: str,
        mesh_id: str,
        base_topic: str,
        retain: bool,
        node_device: Callable[[int], dr.DeviceEntry | None],
        set_duty: Callable[[int, int], Any],
        set_mesh_duty: Callable[[int], Any],
    ) -> None:
        """Nothing is published until `async_start`."""
        self.hass = hass
        self._prefix = f"{base_topic.strip('/')}/{mesh_id}"
        self._retain = retain
        self._node_device = node_device
        self._set_duty = set_duty
        self._set_mesh_duty = set_mesh_duty
        self._store = _store(hass, entry_id)
        self.outbox: deque[Message] = deque()
        self.dropped = 0
        self._seq: dict[int, int] = {}
        self._nodes: set[int] = set()
        self._availability: dict[int, bool] = {}
        self._status: str | None = None
        self._draining: asyncio.Task[None] | None = None
        self._unsubs: list[CALLBACK_TYPE] = []
        self._bad_commands: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ lifecycle
    async def async_start(self) -> None:
        """Load the outbox kept over a restart; listen to the client and to commands."""
        if (stored := await self._store.async_load()) is not None:
            self.outbox.extend(
                Message(topic, payload, retain, reading=topic.endswith("/state"))
                for topic, payload, retain in stored["messages"]
            )
            self._seq = {int(node): seq for node, seq in stored["seq"].items()}
            self._nodes = set(stored["nodes"])
            self.dropped = stored["dropped"]
        self._unsubs.append(
            mqtt.async_subscribe_connection_status(self.hass, self._on_connection)
        )
        try:
            self._unsubs.append(
                await mqtt.async_subscribe(
                    self.hass, f"{self._prefix}/+/duty/set", self._on_command, 1
                )
            )
        except HomeAssistantError as err:
            _LOGGER.warning("Cannot take MQTT commands for %s: %s", self._prefix, err)
        self._drain_soon()

    async def async_stop(self) -> None:
        """Stop; whatever is still in the outbox is kept for the next start."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        if self._draining is not None:
            self._draining.cancel()
            self._draining = None
        await self._store.async_save(self._data())

    # ------------------------------------------------------------------ what to publish
    @callback
    def publish_reading(self, node: NodeData) -> None:
        """Queue a node's new reading (state topic)."""
        reading = node.reading
        if reading is None or node.last_seen is None:
            return
        seq = self._seq[node.node_id] = self._seq.get(node.node_id, 0) + 1
        device = self._node_device(node.node_id)
        payload = {
            "duty": reading.duty,
            "voltage": reading.voltage,
            "current": reading.current_ma / 1000,
            "power": reading.power_mw / 1000,
            "energy": node.energy_kwh,
            "time": node.last_seen.isoformat(),
            "seq": seq,
            "firmware": node.info.firmware if node.info is not None else None,
            "name": (device.name_by_user or device.name) if device else None,
        }
        self._nodes.add(node.node_id)
        self._queue(
            f"{self._prefix}/{node.node_id}/state",
            json.dumps(payload, separators=(",", ":")),
            retain=self._retain,
            reading=True,
        )

    @callback
    def publish_mesh(self, data: MeshData) -> None:
        """Queue what changed in availability and mesh status since the last call."""
        for node in data.nodes.values():
            if not node.is_sensor:
                continue
            if self._availability.get(node.node_id) != node.available:
                self._availability[node.node_id] = node.available
                self._nodes.add(node.node_id)
                self._queue(
                    f"{self._prefix}/{node.node_id}/availability",
                    ONLINE if node.available else OFFLINE,
                    retain=True,
                )
        status = json.dumps(
            {
                "gateway_node": data.gateway_node_id,
                "connected": data.connected,
                "failovers": data.failover_count,
            },
            separators=(",", ":"),
        )
        if status != self._status:
            self._status = status
            self._queue(f"{self._prefix}/status", status, retain=True)

    @callback
    def clear_node(self, node_id: int) -> None:
        """A node was removed: clear its retained topics (no ghost data)."""
        self._nodes.discard(node_id)
        self._availability.pop(node_id, None)
        self._seq.pop(node_id, None)
        for leaf in ("state", "availability"):
            self._queue(f"{self._prefix}/{node_id}/{leaf}", "", retain=True)

    # ------------------------------------------------------------------ the outbox
    def _queue(
        self, topic: str, payload: str, *, retain: bool, reading: bool = False
    ) -> None:
        self.outbox.append(Message(topic, payload, retain, reading))
        if len(self.outbox) > OUTBOX_LIMIT:
            self._drop_oldest_reading()
        self._store.async_delay_save(self._data, SAVE_DELAY)
        self._drain_soon()

    def _drop_oldest_reading(self) -> None:
        for index, message in enumerate(self.outbox):
            if message.reading:
                del self.outbox[index]
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    _LOGGER.warning(
                        "MQTT outbox of %s is full (%s messages): %s readings dropped",
                        self._prefix,
                        OUTBOX_LIMIT,
                        self.dropped,
                    )
                return

    def _data(self) -> _Stored:
        return {
            "messages": [(m.topic, m.payload, m.retain) for m in self.outbox],
            "seq": {str(node): seq for node, seq in self._seq.items()},
            "nodes": sorted(self._nodes),
            "dropped": self.dropped,
        }

    @callback
    def _on_connection(self, connected: bool) -> None:
        if connected:
            self._drain_soon()

    def _drain_soon(self) -> None:
        if self._draining is None or self._draining.done():
            self._draining = self.hass.async_create_background_task(
                self._drain(), f"{DOMAIN} MQTT outbox {self._prefix}"
            )

    async def _drain(self) -> None:
        """Hand the outbox to the client, in order, while it is connected."""
        while self.outbox and mqtt.is_connected(self.hass):
            batch = [self.outbox.popleft() for _ in range(min(BATCH, len(self.outbox)))]
            results = await asyncio.gather(
                *(
                    mqtt.async_publish(self.hass, m.topic, m.payload, 1, m.retain)
                    for m in batch
                ),
                return_exceptions=True,
            )
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                # handed to the client: it may send them after a reconnect (a possible
                # duplicate, which `seq` lets a consumer drop), so they are not queued again
                _LOGGER.debug(
                    "%s MQTT publishes of %s not confirmed: %s",
                    len(failed),
                    self._prefix,
                    failed[0],
                )
            self._store.async_delay_save(self._data, SAVE_DELAY)

    # ------------------------------------------------------------------ commands
    @callback
    def _on_command(self, message: mqtt.ReceiveMessage) -> None:
        """`<prefix>/<node id|all>/duty/set` with 0..100: set duty, confirmed."""
        target = message.topic.removeprefix(f"{self._prefix}/").split("/")[0]
        payload = message.payload
        text = payload.decode() if isinstance(payload, bytes) else str(payload)
        duty = _duty(text)
        node = None if target == "all" else _node_id(target)
        if duty is None or (node is None and target != "all"):
            if (message.topic, text) not in self._bad_commands:
                self._bad_commands.add((message.topic, text))
                _LOGGER.warning(
                    "Ignored MQTT command %r on %s: expected a duty 0..100 for a node "
                    "id or 'all'",
                    text[:40],
                    message.topic,
                )
            return
        job = self._set_mesh_duty(duty) if node is None else self._set_duty(node, duty)
        self.hass.async_create_task(self._run_command(job, message.topic))

    async def _run_command(self, job: Any, topic: str) -> None:
        try:
            await job
        except HomeAssistantError as err:
            _LOGGER.warning("MQTT command on %s failed: %s", topic, err)


def _duty(text: str) -> int | None:
    """A duty command's payload: a whole number 0..100, else None."""
    value = text.strip()
    return int(value) if value.isdigit() and int(value) <= 100 else None


def _node_id(text: str) -> int | None:
    return int(text) if text.isdigit() else None


async def async_clear_entry(hass: HomeAssistant, entry_id: str, prefix: str) -> None:
    """The entry is removed: clear every retained topic it published, drop its outbox."""
    store = _store(hass, entry_id)
    stored = await store.async_load()
    if stored is not None and mqtt.is_connected(hass):
        topics = [f"{prefix}/status"] + [
            f"{prefix}/{node}/{leaf}"
            for node in stored["nodes"]
            for leaf in ("state", "availability")
        ]
        for topic in topics:
            try:
                await mqtt.async_publish(hass, topic, "", 1, True)
            except HomeAssistantError as err:
                _LOGGER.warning("Could not clear %s: %s", topic, err)
    await store.async_remove()
