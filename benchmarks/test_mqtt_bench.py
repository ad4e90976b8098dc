"""MQTT publishing through Home Assistant's MQTT client to a real mosquitto.

Sustained: readings handed to the publisher as fast as the event loop takes them, each one
published at QoS 1 and confirmed by the broker; readings per second and the event loop's CPU
per reading (process CPU time while the loop works, divided by readings). Flush: 10,000
readings queued while the broker is down, then the broker comes back: time until all of them
reached a real subscriber, in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
import time
from unittest.mock import patch

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from benchmarks.report import BenchResults
from benchmarks.test_failover_bench import _until
from custom_components.dc_mesh.dcmesh import Reading
from custom_components.dc_mesh.models import NodeData
from custom_components.dc_mesh.publisher import MqttPublisher
from tests.broker import Broker, Subscriber

pytestmark = pytest.mark.usefixtures("socket_enabled")

SUSTAINED = 5_000
BACKLOG = 10_000
NODES = 10


@pytest.fixture
async def broker(hass: HomeAssistant, tmp_path: Path) -> AsyncIterator[Broker]:
    broker = Broker(tmp_path)
    broker.start()
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN, data={"broker": "127.0.0.1", "port": broker.port}
    )
    entry.add_to_hass(hass)
    birth = Subscriber(broker.port, "homeassistant/status")
    with patch("homeassistant.config.async_hass_config_yaml", return_value={}):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await _until(lambda: b"online" in birth.take("homeassistant/status"))
        birth.close()
        yield broker
        await hass.config_entries.async_unload(entry.entry_id)
    broker.stop()


def _publisher(hass: HomeAssistant) -> MqttPublisher:
    async def nothing(*_args: int) -> None:
        return None

    return MqttPublisher(
        hass,
        entry_id="bench",
        mesh_id="1a2b3c4d",
        base_topic="bench",
        retain=False,
        node_device=lambda _node: None,
        set_duty=nothing,
        set_mesh_duty=nothing,
    )


def _nodes() -> list[NodeData]:
    return [
        NodeData(
            n,
            reading=Reading(n, 50, 12.0, 250.0, 3000.0),
            last_seen=datetime.now(UTC),
            energy_kwh=0.1,
        )
        for n in range(NODES)
    ]


async def test_mqtt_publishing(
    hass: HomeAssistant, broker: Broker, bench: BenchResults
) -> None:
    subscriber = Subscriber(broker.port, "bench/#")
    publisher = _publisher(hass)
    await publisher.async_start()
    nodes = _nodes()
    try:
        # Sustained: one reading per node in turn, the outbox drained as it goes.
        cpu, wall = time.process_time(), time.monotonic()
        for i in range(SUSTAINED):
            publisher.publish_reading(nodes[i % NODES])
        await _until(lambda: len(subscriber.take("/state")) >= SUSTAINED, 120)
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        bench.add(
            "MQTT publishing through HA's MQTT client to mosquitto (QoS 1, confirmed)",
            {
                "case": f"sustained, {SUSTAINED} readings",
                "readings/s": f"{SUSTAINED / wall:.0f}",
                "CPU per reading": f"{cpu / SUSTAINED * 1e6:.0f} us",
                "note": "CPU: the whole test process (HA, paho, subscriber)",
            },
        )
        # Flush after an outage of BACKLOG readings.
        broker.stop()
        await _until(lambda: not mqtt.is_connected(hass), 30)
        for i in range(BACKLOG):
            publisher.publish_reading(nodes[i % NODES])
        assert len(publisher.outbox) == BACKLOG
        before = len(subscriber.take("/state"))
        wall = time.monotonic()
        broker.start()
        await _until(lambda: len(subscriber.take("/state")) >= before + BACKLOG, 300)
        wall = time.monotonic() - wall
        bench.add(
            "MQTT publishing through HA's MQTT client to mosquitto (QoS 1, confirmed)",
            {
                "case": f"flush after an outage, {BACKLOG} readings",
                "readings/s": f"{BACKLOG / wall:.0f}",
                "CPU per reading": "-",
                "note": f"{wall:.1f} s from the broker's start (reconnect included)",
            },
        )
    finally:
        await publisher.async_stop()
        subscriber.close()
