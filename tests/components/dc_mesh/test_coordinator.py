"""The coordinator's behaviour on the simulated mesh: push data, new and stale nodes, energy,
availability logging, repairs, bad notifications and translated errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import TickingDateTimeFactory
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    mock_restore_cache_with_extra_data,
)

from custom_components.dc_mesh import async_remove_config_entry_device
from custom_components.dc_mesh.const import (
    DEFAULT_STALE_TIMEOUT,
    DOMAIN,
    EVENT_NODE_RESTARTED,
)
from custom_components.dc_mesh.coordinator import (
    PUSH_COALESCE_SECONDS,
    DcMeshCoordinator,
)
from custom_components.dc_mesh.dcmesh import COMMAND_CHAR_UUID, FailoverTiming, Reading
from custom_components.dc_mesh.entity import DcMeshEntity
from simulator.mesh import ChunkFaults, Mesh

from . import advance, wait_for
from .conftest import mesh_unique_id


@contextmanager
def _state_writes(
    hass: HomeAssistant, entry: MockConfigEntry
) -> Iterator[dict[str, list[str]]]:
    """The entity ids of the entry's state writes meanwhile, by kind (changed, reported)."""
    ours = {
        registry_entry.entity_id
        for registry_entry in er.async_entries_for_config_entry(
            er.async_get(hass), entry.entry_id
        )
    }
    events: dict[str, list[str]] = {EVENT_STATE_CHANGED: [], EVENT_STATE_REPORTED: []}

    @callback
    def is_ours(data: Mapping[str, Any]) -> bool:
        return data["entity_id"] in ours

    @callback
    def record(event: Event) -> None:
        events[event.event_type].append(event.data["entity_id"])

    unsubs = [
        hass.bus.async_listen(kind, record, event_filter=is_ours) for kind in events
    ]
    try:
        yield events
    finally:
        for unsub in unsubs:
            unsub()


async def test_unsolicited_readings_update_entities(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """Readings nobody polled for (MONITOR started by another client) reach the entities."""
    coordinator = loaded_entry.runtime_data
    link = coordinator.link
    assert link is not None
    before = coordinator.data.nodes[2].last_seen
    mesh.node(2).load.supply_voltage = 13.5
    # Another client's command, written straight to the characteristic.
    await link._client.write_gatt_char(COMMAND_CHAR_UUID, b"2:MONITOR", response=True)
    power_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{mesh_unique_id(mesh)}_2_voltage"
    )
    await wait_for(lambda: float(hass.states.get(power_id).state) > 13.0)
    assert coordinator.data.nodes[2].last_seen != before


async def _monitor_node_2(coordinator: DcMeshCoordinator) -> list[Reading]:
    """Start node 2's MONITOR through the link; its last reading and 5 it pushes then."""
    link = coordinator.link
    assert link is not None
    seen = [coordinator.data.nodes[2].reading]

    def pushed() -> bool:
        if (reading := coordinator.data.nodes[2].reading) is not seen[-1]:
            seen.append(reading)
        return len(seen) > 5

    await link._client.write_gatt_char(COMMAND_CHAR_UUID, b"2:MONITOR", response=True)
    await wait_for(pushed)
    return [reading for reading in seen if reading is not None]


async def test_pushed_readings_write_only_the_entities_of_the_node_that_sent_them(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    """A MONITOR of one node: its reading entities (and the mesh's total) are written, no
    other node's, no static entity, nothing rewritten with what it already shows."""
    coordinator = loaded_entry.runtime_data
    key = mesh_unique_id(mesh)
    registry = er.async_get(hass)
    # (the first update after set-up passes every entity once: what they show was written
    # when they were added, not by an update)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    with _state_writes(hass, loaded_entry) as events:
        await _monitor_node_2(coordinator)
        # one node of four pushes: its readings are shown when the coalescing window ends
        await advance(hass, freezer, PUSH_COALESCE_SECONDS)
    assert events[EVENT_STATE_REPORTED] == []
    written = {
        registry.async_get(entity_id).unique_id
        for entity_id in events[EVENT_STATE_CHANGED]
    }
    assert f"{key}_2_voltage" in written  # the readings moved (sensor noise)
    node_2 = {f"{key}_2_{field}" for field in ("voltage", "current", "power", "energy")}
    assert written <= node_2 | {f"{key}_total_power"}


async def test_pushed_readings_call_only_the_entities_of_fields_that_changed(
    hass: HomeAssistant,
    mesh: Mesh,
    config_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    """A node whose readings repeat themselves (a steady load, no sensor noise): its
    voltage, current, power and duty entities are not even called, nor its energy while the
    total as shown (0.1 Wh) stays; the mesh's entities are. The energy entity is called
    when its shown total moves."""
    called: list[str | None] = []
    original = DcMeshEntity._handle_coordinator_update

    def spy(entity: DcMeshEntity) -> None:
        called.append(entity.unique_id)
        original(entity)

    with patch.object(DcMeshEntity, "_handle_coordinator_update", spy):
        config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    coordinator = config_entry.runtime_data
    load = mesh.node(2).load
    assert load is not None
    load.voltage_noise = load.current_noise = 0.0
    await coordinator.async_set_duty(2, 50)  # a load: its energy grows
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    called.clear()
    seen = await _monitor_node_2(coordinator)
    await advance(hass, freezer, PUSH_COALESCE_SECONDS)
    assert len({(r.duty, r.voltage, r.current_ma) for r in seen}) == 1
    key = mesh_unique_id(mesh)
    assert f"{key}_total_power" in called
    for field in ("voltage", "current", "power", "duty_setting", "energy"):
        assert f"{key}_2_{field}" not in called
    # Just below a step of what the energy entity shows (0.45 Wh shows as 0.4 Wh, then 0.5)
    assert seen[-1].power_mw > 0
    coordinator.data.nodes[2].energy_kwh = 0.00045 - 1e-12
    energy_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{key}_2_energy"
    )
    assert energy_id is not None
    called.clear()
    await _monitor_node_2(coordinator)
    await advance(hass, freezer, PUSH_COALESCE_SECONDS)
    assert called.count(f"{key}_2_energy") == 1
    assert (state := hass.states.get(energy_id)) is not None
    assert float(state.state) == pytest.approx(0.5)


async def test_new_node_appears_without_reload(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    coordinator = loaded_entry.runtime_data
    # Node ids 0-3 are universal, 4 is the relay; a newly provisioned node gets 5.
    new = mesh.add_node()
    await coordinator.async_refresh()
    identifier = (DOMAIN, f"{mesh_unique_id(mesh)}_{new.node_id}")
    devices = dr.async_get(hass)
    await wait_for(
        lambda: (
            devices.async_get_device_by_identifier(identifier, loaded_entry.entry_id)
            is not None
        )
    )
    assert er.async_get(hass).async_get_entity_id(
        "number", DOMAIN, f"{mesh_unique_id(mesh)}_{new.node_id}_duty_setting"
    )


async def test_gone_node_can_be_removed_live_node_cannot(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    coordinator = loaded_entry.runtime_data
    devices = dr.async_get(hass)
    key = mesh_unique_id(mesh)
    gone = devices.async_get_device_by_identifier(
        (DOMAIN, f"{key}_3"), loaded_entry.entry_id
    )
    live = devices.async_get_device_by_identifier(
        (DOMAIN, f"{key}_1"), loaded_entry.entry_id
    )
    assert gone is not None
    assert live is not None
    mesh.power_off(3)  # gone for good
    await advance(hass, freezer, DEFAULT_STALE_TIMEOUT + 1)
    assert not coordinator.data.nodes[3].available
    assert not await async_remove_config_entry_device(hass, loaded_entry, live)
    assert await async_remove_config_entry_device(hass, loaded_entry, gone)
    assert 3 not in coordinator.data.nodes


async def test_unavailable_and_back_logged_once(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    freezer: TickingDateTimeFactory,
) -> None:
    coordinator = loaded_entry.runtime_data
    caplog.set_level(logging.INFO, logger="custom_components.dc_mesh")
    mesh.set_unreachable(1, True)
    for _ in range(8):  # polls every 10 s: stale after 45 s, then still gone
        await advance(hass, freezer, 10)
    assert not coordinator.data.nodes[1].available
    mesh.set_unreachable(1, False)
    for _ in range(3):
        await advance(hass, freezer, 10)
    assert coordinator.data.nodes[1].available
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Node 1 of " in m and "unavailable" in m for m in messages) == 1
    assert sum("Node 1 of " in m and "is back" in m for m in messages) == 1


async def test_energy_accumulates_and_survives_restart(
    hass: HomeAssistant,
    freezer: TickingDateTimeFactory,
    mesh: Mesh,
    config_entry: MockConfigEntry,
) -> None:
    key = mesh_unique_id(mesh)
    entity_id = "sensor.node_0_energy"
    er.async_get(hass).async_get_or_create(
        "sensor", DOMAIN, f"{key}_0_energy", suggested_object_id="node_0_energy"
    )
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(entity_id, "1.5"),
                {"native_value": 1.5, "native_unit_of_measurement": "kWh"},
            )
        ],
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = config_entry.runtime_data
    await coordinator.async_set_duty(0, 100)
    for _ in range(5):
        await advance(hass, freezer, 30)
        await coordinator.async_refresh()
    energy = float(hass.states.get(entity_id).state)
    assert energy > 1.5  # continued from the restored total
    assert energy < 1.6
    assert hass.states.get(entity_id).attributes["state_class"] == "total_increasing"
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_energy_is_shown_in_the_steps_of_its_display(
    hass: HomeAssistant,
    freezer: TickingDateTimeFactory,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
) -> None:
    """The total counts every reading; its state moves in 0.1 Wh steps (as it is shown).

    A reading adds a fraction of a mWh: writing each step would be a state (and a recorder
    row) per node and second that nobody can see.
    """
    coordinator = loaded_entry.runtime_data
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{mesh_unique_id(mesh)}_1_energy"
    )
    assert entity_id is not None
    await coordinator.async_set_duty(1, 100)
    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    for _ in range(12):  # a 6 W load: 0.05 Wh every 30 s
        await advance(hass, freezer, 30)  # polled on the way
        await coordinator.async_refresh()
    total_wh = coordinator.data.nodes[1].energy_kwh * 1000
    shown = hass.states.get(entity_id).state
    assert float(shown) == round(total_wh, 1)
    assert len(shown.partition(".")[2]) <= 1
    writes = [
        e.data["new_state"].state for e in changes if e.data["entity_id"] == entity_id
    ]
    # one write per 0.1 Wh step, none in between (at least 24 readings came)
    steps = round(total_wh * 10)
    assert steps >= 3
    assert writes == [f"{step / 10:.1f}" for step in range(1, steps + 1)]


async def test_unreachable_mesh_raises_and_clears_repair(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    coordinator = loaded_entry.runtime_data
    issues = ir.async_get(hass)
    issue_id = f"mesh_unreachable_{loaded_entry.entry_id}"
    with (
        patch(
            "custom_components.dc_mesh.connection.UNREACHABLE_ISSUE_AFTER",
            timedelta(0),
        ),
        patch.object(
            coordinator.connection.policy,
            "timing",
            FailoverTiming(backoff_initial=0.02, backoff_max=0.05),
        ),
    ):
        for node_id in range(5):
            mesh.power_off(node_id)
        await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
        issue = issues.async_get_issue(DOMAIN, issue_id)
        assert issue.translation_key == "mesh_unreachable"
        for node_id in range(5):
            mesh.power_on(node_id)
        await wait_for(lambda: coordinator.data.connected, timeout=20)
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_bad_notifications_are_survived(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    coordinator = loaded_entry.runtime_data
    link = coordinator.link
    assert link is not None
    gateway = mesh.by_mac(link.address)
    mesh.set_chunk_faults(
        gateway.node_id, ChunkFaults(drop=0.1, duplicate=0.1, corrupt=0.1)
    )
    for _ in range(10):
        await coordinator.async_refresh()
    mesh.set_chunk_faults(gateway.node_id, ChunkFaults())
    await coordinator.async_refresh()
    assert link.stats.malformed > 0
    assert coordinator.last_update_success
    assert all(coordinator.data.nodes[n].available for n in range(4))


async def test_commands_while_disconnected_raise_translated_error(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    coordinator = loaded_entry.runtime_data
    for node_id in range(5):
        mesh.power_off(node_id)
    await wait_for(lambda: not coordinator.data.connected)
    with pytest.raises(HomeAssistantError) as err:
        await coordinator.async_set_duty(1, 30)
    assert err.value.translation_key == "not_connected"
    with pytest.raises(HomeAssistantError) as err:
        await coordinator.async_set_duty(1, 300)
    assert err.value.translation_key == "invalid_duty"


async def test_an_update_writes_only_the_entities_that_changed(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """Home Assistant's work follows what changed, not the size of the mesh."""
    coordinator = loaded_entry.runtime_data
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    with _state_writes(hass, loaded_entry) as events:
        await coordinator.async_refresh()
        await hass.async_block_till_done()
    # no entity is rewritten with what it already shows (a state_reported event)
    assert events[EVENT_STATE_REPORTED] == []
    changed = events[EVENT_STATE_CHANGED]
    assert changed  # the readings moved (sensor noise, energy)
    static = ("button.", "select.", "number.", "switch.", "binary_sensor.")
    assert not [e for e in changed if e.startswith(static)]


async def test_node_health_shows_a_reboot(
    hass: HomeAssistant,
    freezer: TickingDateTimeFactory,  # before the mesh: its nodes boot on the moved clock
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """v1 nodes: last boot is a timestamp (reboots show in its history) and is logged."""
    caplog.set_level(logging.INFO, logger="custom_components.dc_mesh")
    key = mesh_unique_id(mesh)
    boot = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{key}_1_last_boot"
    )
    assert boot is not None
    before = hass.states.get(boot).state
    restarts = async_capture_events(hass, EVENT_NODE_RESTARTED)
    await advance(hass, freezer, 400)  # INFO is asked again every 5 minutes
    assert hass.states.get(boot).state == before  # same boot, uptime grew
    mesh.power_off(1)
    await advance(hass, freezer, 5)
    mesh.power_on(1)
    await advance(hass, freezer, 1)
    await advance(hass, freezer, 400)
    assert hass.states.get(boot).state > before
    assert f"Node 1 of {loaded_entry.title} restarted" in caplog.text
    assert [e.data["name"] for e in restarts] == [f"{loaded_entry.title} node 1"]


async def test_logbook_describes_a_restart(hass: HomeAssistant) -> None:
    from custom_components.dc_mesh.logbook import async_describe_events

    described: dict[str, Any] = {}
    async_describe_events(
        hass, lambda domain, event, describe: described.update({event: describe})
    )
    event = Event(
        EVENT_NODE_RESTARTED, {"device_id": "d", "name": "Pump", "uptime": 12}
    )
    assert described[EVENT_NODE_RESTARTED](event) == {
        "name": "Pump",
        "message": "restarted (up for 12 s when it reported)",
    }
