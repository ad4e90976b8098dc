"""Readings to MQTT through HA's MQTT integration and a REAL broker (Debian's mosquitto).

A real subscriber (paho, in its own thread) checks what arrives; the broker is stopped and
started again to check that nothing is lost while it is down, also over an HA restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import json
from pathlib import Path
import time
from unittest.mock import patch

from freezegun import configure as configure_freezegun
from freezegun.api import TickingDateTimeFactory
from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh import async_remove_config_entry_device
from custom_components.dc_mesh.const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_PUBLISH,
    CONF_MQTT_RETAIN,
    DEFAULT_STALE_TIMEOUT,
)
from simulator.mesh import Mesh
from tests.broker import Broker, Subscriber

from . import advance, wait_for
from .conftest import mesh_unique_id

pytestmark = pytest.mark.usefixtures("socket_enabled")

# The MQTT client (paho) keeps its keep-alive on the real clock when a test moves HA's.
configure_freezegun(extend_ignore_list=["paho"])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant, broker: Broker
) -> AsyncIterator[MockConfigEntry]:
    """HA's own MQTT integration, connected to the real broker (no YAML configuration)."""
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN, data={"broker": "127.0.0.1", "port": broker.port}
    )
    entry.add_to_hass(hass)
    birth = Subscriber(broker.port, "homeassistant/status")
    with patch("homeassistant.config.async_hass_config_yaml", return_value={}):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        # connected, subscribed, and its birth message out (no publish task pending)
        await wait_for(lambda: b"online" in birth.take("homeassistant/status"))
        birth.close()
        yield entry
        await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
async def publishing(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The mesh set up with MQTT publishing on (options as the options flow stores them)."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry,
        options={
            CONF_MQTT_PUBLISH: True,
            CONF_MQTT_BASE_TOPIC: "site",
            CONF_MQTT_RETAIN: True,
        },
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    yield config_entry
    if config_entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(config_entry.entry_id)


async def _poll(entry: MockConfigEntry) -> None:
    """One poll of the mesh (HA's own clock is left alone: the MQTT client reads it too)."""
    await entry.runtime_data.async_refresh()


def _states(subscriber: Subscriber, node: int) -> list[dict[str, object]]:
    return [json.loads(p) for p in subscriber.take(f"/{node}/state") if p]


async def test_readings_arrive_with_the_schema(
    hass: HomeAssistant,
    mesh: Mesh,
    broker: Broker,
    publishing: MockConfigEntry,
) -> None:
    prefix = f"site/{mesh_unique_id(mesh)}"
    subscriber = Subscriber(broker.port, f"{prefix}/#")
    try:
        await _poll(publishing)  # a poll
        await wait_for(lambda: len(_states(subscriber, 1)) >= 1)
        state = _states(subscriber, 1)[-1]
        assert set(state) == {
            "duty", "voltage", "current", "power", "energy", "time", "seq", "firmware", "name",
        }  # fmt: skip
        assert state["firmware"] == "1.0.0"
        assert state["name"] == f"{publishing.title} node 1"
        assert abs(float(state["voltage"]) - mesh.node(1).load.supply_voltage) < 0.5
        await wait_for(lambda: subscriber.take("/1/availability")[-1:] == [b"online"])
        status = json.loads(subscriber.take(f"{prefix}/status")[-1])
        assert status["connected"] is True
        # a retained state: a late subscriber gets the latest reading at once
        late = Subscriber(broker.port, f"{prefix}/1/state")
        await wait_for(lambda: bool(late.take("/1/state")))
        assert (
            json.loads(late.take("/1/state")[0])["seq"]
            == _states(subscriber, 1)[-1]["seq"]
        )
        late.close()
    finally:
        subscriber.close()


async def test_nothing_lost_while_the_broker_is_down_also_over_a_restart(
    hass: HomeAssistant,
    mesh: Mesh,
    broker: Broker,
    publishing: MockConfigEntry,
) -> None:
    """Broker down for N polls and an HA restart in between: all N arrive, in order."""
    subscriber = Subscriber(broker.port, f"site/{mesh_unique_id(mesh)}/+/state")
    try:
        await _poll(publishing)
        await wait_for(lambda: bool(_states(subscriber, 2)))
        before = _states(subscriber, 2)[-1]["seq"]
        broker.stop()
        await wait_for(lambda: not mqtt.is_connected(hass))
        for _ in range(3):
            await _poll(publishing)
        publisher = publishing.runtime_data.publisher
        assert publisher is not None
        assert len(publisher.outbox) >= 3 * 4
        # HA restarts while the broker is still down: the outbox goes to storage
        await hass.config_entries.async_unload(publishing.entry_id)
        assert await hass.config_entries.async_setup(publishing.entry_id)
        await hass.async_block_till_done()
        for _ in range(2):
            await _poll(publishing)
        broker.start()
        await wait_for(lambda: mqtt.is_connected(hass), timeout=30)
        # HA announces itself (birth message) once it has subscribed again
        birth = Subscriber(broker.port, "homeassistant/status")
        await wait_for(
            lambda: b"online" in birth.take("homeassistant/status"), timeout=10
        )
        birth.close()
        await wait_for(lambda: not publishing.runtime_data.publisher.outbox, timeout=20)
        await wait_for(lambda: len(_states(subscriber, 2)) >= 6)
        seqs = [s["seq"] for s in _states(subscriber, 2)]
        after = [s for s in seqs if s > before]
        # every reading taken while the broker was down (5 polls), none missing, in order
        assert sorted(set(after)) == list(range(before + 1, max(after) + 1))
        assert len(set(after)) >= 5
        assert after == sorted(after)
    finally:
        subscriber.close()


async def test_commands_set_duty_and_bad_ones_change_nothing(
    hass: HomeAssistant,
    mesh: Mesh,
    broker: Broker,
    publishing: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = f"site/{mesh_unique_id(mesh)}"
    sender = Subscriber(broker.port, f"{prefix}/none")
    try:
        # HA subscribes in batches: repeat the first command until it is heard
        for _ in range(50):
            sender.publish(f"{prefix}/2/duty/set", "35")
            await hass.async_block_till_done()
            if mesh.node(2).duty == 35:
                break
            await asyncio.sleep(0.1)
        assert mesh.node(2).duty == 35
        sender.publish(f"{prefix}/all/duty/set", "20")
        await wait_for(lambda: all(mesh.node(n).duty == 20 for n in range(4)))
        for topic, payload in (
            ("2/duty/set", "abc"),
            ("2/duty/set", "101"),
            ("x/duty/set", "10"),
            ("2/duty/set", "abc"),  # the same bad one again: logged once
        ):
            sender.publish(f"{prefix}/{topic}", payload)
        sender.publish(f"{prefix}/3/duty/set", "60")  # a good one after
        await wait_for(lambda: mesh.node(3).duty == 60)
        assert [mesh.node(n).duty for n in (0, 1, 2)] == [20, 20, 20]
        assert caplog.text.count("Ignored MQTT command 'abc'") == 1
    finally:
        sender.close()


async def test_removed_node_and_entry_leave_no_ghost_topics(
    hass: HomeAssistant,
    mesh: Mesh,
    broker: Broker,
    publishing: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    prefix = f"site/{mesh_unique_id(mesh)}"
    subscriber = Subscriber(broker.port, f"{prefix}/#")
    try:
        await _poll(publishing)
        await wait_for(lambda: bool(_states(subscriber, 3)))
        # a rename changes the name field only, never the topic
        devices = dr.async_get(hass)
        device = devices.async_get_device_by_identifier(
            publishing.runtime_data.node_identifier(3), publishing.entry_id
        )
        devices.async_update_device(device.id, name_by_user="Pump")
        await _poll(publishing)
        await wait_for(lambda: _states(subscriber, 3)[-1]["name"] == "Pump")
        mesh.power_off(3)
        await advance(hass, freezer, DEFAULT_STALE_TIMEOUT + 10)  # polls meanwhile
        assert await async_remove_config_entry_device(hass, publishing, device)
        await wait_for(lambda: subscriber.take("/3/state")[-1:] == [b""])
        await wait_for(lambda: subscriber.take("/3/availability")[-1:] == [b""])
        # removing the entry clears every retained topic it published
        await hass.config_entries.async_remove(publishing.entry_id)
        await hass.async_block_till_done()
        await wait_for(lambda: subscriber.take(f"{prefix}/status")[-1:] == [b""])
        late = Subscriber(broker.port, f"{prefix}/#")
        time.sleep(0.3)  # noqa: ASYNC251 (the retained messages would arrive at once)
        assert [m for m in late.messages if m[1]] == []
        late.close()
    finally:
        subscriber.close()


async def test_full_outbox_drops_the_oldest_readings_and_counts_them(
    hass: HomeAssistant,
    mesh: Mesh,
    broker: Broker,
    publishing: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker.stop()
    await wait_for(lambda: not mqtt.is_connected(hass))
    publisher = publishing.runtime_data.publisher
    with patch("custom_components.dc_mesh.publisher.OUTBOX_LIMIT", 6):
        for _ in range(3):
            await _poll(publishing)
    assert len(publisher.outbox) == 6
    assert publisher.dropped > 0
    # the readings kept are each node's newest (a status or availability message queued at
    # any time in between is kept too)
    kept: dict[str, list[int]] = {}
    for message in publisher.outbox:
        if message.reading:
            kept.setdefault(message.topic, []).append(
                json.loads(message.payload)["seq"]
            )
    assert kept
    for topic, seqs in kept.items():
        latest = publisher._seq[int(topic.split("/")[-2])]
        assert seqs == list(range(latest - len(seqs) + 1, latest + 1))
    assert caplog.text.count("MQTT outbox of") == 1  # logged once, then counted
