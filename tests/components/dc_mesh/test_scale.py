"""Meshes beyond ten nodes (protocol section 10), and what answers a poll.

A 30-node v1 mesh through HA's real Bluetooth manager and the simulator: discovery and
setup, every node's values, duties of nodes 10..29 (two-digit ids), failover to a gateway
with a two-digit id. And a poll counts only the nodes' own answers: a reading another
client or a MONITOR pushes meanwhile refreshes the node but does not answer the poll.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from freezegun.api import TickingDateTimeFactory
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.config_entries import SOURCE_BLUETOOTH, ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh.const import CONF_MESH_KEY, DOMAIN
from custom_components.dc_mesh.coordinator import poll_interval
from custom_components.dc_mesh.dcmesh import format_key
from simulator import wire
from simulator.mesh import Latencies, Mesh, build_mesh

from . import advance, wait_for

SENSORS = 30
RELAYS = 2


@pytest.fixture
async def big_mesh(hass: HomeAssistant, enable_bluetooth: None) -> AsyncIterator[Mesh]:
    """30 universal nodes (ids 0..29) and 2 relays (30, 31), v1 firmware."""
    from simulator.ha import async_register_mesh

    sim = build_mesh(SENSORS, RELAYS, latencies=Latencies.fast(), seed=11)
    unregister = async_register_mesh(hass, sim)
    await hass.async_block_till_done()
    yield sim
    unregister()


def _entity(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    return entity_id


def _has_value(hass: HomeAssistant, entity_id: str) -> bool:
    state = hass.states.get(entity_id)
    return state is not None and state.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)


async def _set_up_through_discovery(hass: HomeAssistant, mesh: Mesh) -> MockConfigEntry:
    await hass.async_block_till_done(wait_background_tasks=True)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1  # 30 advertising nodes, one mesh, one flow
    assert flows[0]["context"]["source"] == SOURCE_BLUETOOTH
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    assert result["step_id"] == "mesh_key"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MESH_KEY: format_key(mesh.mesh_key)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry  # type: ignore[no-any-return]


async def test_a_30_node_mesh_end_to_end(
    hass: HomeAssistant, big_mesh: Mesh, freezer: TickingDateTimeFactory
) -> None:
    mesh = big_mesh
    entry = await _set_up_through_discovery(hass, mesh)
    coordinator = entry.runtime_data
    key = f"{mesh.mesh_id:08x}"
    assert coordinator.link.large_mesh  # CAP 0010: commands name ids 0..99
    assert coordinator.update_interval == poll_interval(SENSORS)

    # Every node is a device; every measuring node has values after the first poll(s).
    devices = dr.async_get(hass)
    for node_id in range(SENSORS + RELAYS):
        assert devices.async_get_device_by_identifier(
            (DOMAIN, f"{key}_{node_id}"), entry.entry_id
        ), node_id
    powers = {n: _entity(hass, "sensor", f"{key}_{n}_power") for n in range(SENSORS)}
    await wait_for(lambda: all(_has_value(hass, e) for e in powers.values()))

    # Later polls: every node answers its own poll (one ALL:READ, nothing read apart).
    mesh.radio_log.clear()
    await advance(hass, freezer, poll_interval(SENSORS).total_seconds())
    reads = [sent for sent in mesh.radio_log if sent[2] == "read"]
    gateway_address = mesh.by_mac(coordinator.data.gateway_address).address
    assert reads == [(gateway_address, wire.GROUP_ADDR, "read")]
    assert all(_has_value(hass, e) for e in powers.values())

    # Duty of a node with a two-digit id, through its number entity.
    duty = _entity(hass, "number", f"{key}_27_duty_setting")
    await hass.services.async_call(
        "number",
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: duty, ATTR_VALUE: 35},
        blocking=True,
    )
    assert mesh.node(27).duty == 35
    assert hass.states.get(duty).state == "35"
    # ... and of the whole mesh, every node confirmed by its own answer.
    response = await hass.services.async_call(
        DOMAIN,
        "set_mesh_duty",
        {"config_entry_id": entry.entry_id, "duty": 20},
        blocking=True,
        return_response=True,
    )
    assert response == {"confirmed_nodes": list(range(SENSORS))}
    assert all(mesh.node(n).duty == 20 for n in range(SENSORS))

    # Failover to a gateway with a two-digit id: the single-digit nodes refuse.
    old = mesh.by_mac(coordinator.data.gateway_address)
    for node_id in range(10):
        mesh.refuse_connections(node_id)
    mesh.power_off(old.node_id)
    await wait_for(
        lambda: (
            coordinator.data.connected and coordinator.data.gateway_address != old.mac
        )
    )
    gateway = mesh.by_mac(coordinator.data.gateway_address)
    assert gateway.node_id >= 10
    assert coordinator.data.failover_count == 1
    gateway_sensor = _entity(hass, "sensor", f"{key}_gateway_node")
    await wait_for(
        lambda: hass.states.get(gateway_sensor).state == str(gateway.node_id)
    )
    target = 29 if gateway.node_id != 29 else 28
    await hass.services.async_call(
        "number",
        SERVICE_SET_VALUE,
        {
            ATTR_ENTITY_ID: _entity(hass, "number", f"{key}_{target}_duty_setting"),
            ATTR_VALUE: 65,
        },
        blocking=True,
    )
    assert mesh.node(target).duty == 65
    await advance(hass, freezer, poll_interval(SENSORS).total_seconds())
    assert all(_has_value(hass, powers[n]) for n in range(SENSORS) if n != old.node_id)
    mesh.power_on(old.node_id)
    for node_id in range(10):
        mesh.refuse_connections(node_id, 0)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _push_node_reading_before_the_poll(
    mesh: Mesh, gateway_id: int, node_id: int
) -> None:
    """Just before the gateway takes the next ALL:READ, it forwards a reading of
    `node_id` that an earlier read (another client's, a MONITOR's) asked for."""
    gateway = mesh.node(gateway_id)
    original = gateway.handle_write
    done = False

    async def handle_write(raw: bytes, session: Any = None) -> None:
        nonlocal done
        if raw.endswith(b"ALL:READ") and not done:
            done = True
            gateway.forward(mesh.node(node_id).address, mesh.node(node_id).reading())
        await original(raw, session)

    gateway.handle_write = handle_write  # type: ignore[method-assign]


async def test_a_pushed_reading_refreshes_a_node_but_does_not_answer_the_poll(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    coordinator = loaded_entry.runtime_data
    gateway = mesh.by_mac(coordinator.data.gateway_address)
    quiet = next(n for n in range(4) if n != gateway.node_id)
    await advance(
        hass, freezer, poll_interval(4).total_seconds()
    )  # a normal poll first
    seen_before = coordinator.data.nodes[quiet].last_seen
    mesh.miss_group_messages(quiet)  # it never gets this poll's group read
    _push_node_reading_before_the_poll(mesh, gateway.node_id, quiet)
    mesh.radio_log.clear()
    await advance(hass, freezer, poll_interval(4).total_seconds())
    # the pushed reading refreshed the node ...
    assert coordinator.data.nodes[quiet].last_seen > seen_before
    # ... but it did not answer the poll: the node is read on its own
    assert (gateway.address, mesh.node(quiet).address, "read") in mesh.radio_log
