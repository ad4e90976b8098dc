"""Dangerous states of a real mesh: v0.7 fallback mode, lost group messages."""

from __future__ import annotations

from freezegun.api import TickingDateTimeFactory
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh.const import DOMAIN
from simulator import wire
from simulator.mesh import Mesh, Profile

from . import advance, wait_for
from .conftest import SENSOR_NODES, mesh_unique_id


def _onoff_sets(mesh: Mesh) -> list[tuple[int, int, str]]:
    """Generic OnOff SETs on the radio (what fallback turns commands into)."""
    return [entry for entry in mesh.radio_log if entry[2].startswith("onoff:")]


def _fallback_issue(
    hass: HomeAssistant, entry: MockConfigEntry
) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"mesh_fallback_{entry.entry_id}")


@pytest.mark.parametrize("profile", [Profile.V07])
async def test_mesh_in_fallback_is_never_polled_or_commanded(
    hass: HomeAssistant,
    mesh: Mesh,
    config_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    """Unbound v0.7 nodes: nothing is sent that they would turn into "load on"."""
    for node_id in range(SENSOR_NODES + 1):
        mesh.set_bound(node_id, False)
    duties = {n: mesh.node(n).duty for n in range(SENSOR_NODES)}
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    issue = _fallback_issue(hass, config_entry)
    assert issue is not None
    assert issue.translation_key == "mesh_fallback"
    assert issue.severity is ir.IssueSeverity.ERROR
    # Time passes, polls come due: each only probes, harmlessly.
    for _ in range(3):
        await advance(hass, freezer, 30)
    assert not _onoff_sets(mesh)
    assert {n: mesh.node(n).duty for n in range(SENSOR_NODES)} == duties
    assert not config_entry.runtime_data.sensor_node_ids()  # nothing was read
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "set_mesh_duty",
            {"config_entry_id": config_entry.entry_id, "duty": 0},
            blocking=True,
        )
    assert err.value.translation_key == "mesh_fallback"
    assert not _onoff_sets(mesh)

    # The provisioner binds the models: MESH_READY:VENDOR, polling resumes, issue gone.
    for node_id in range(SENSOR_NODES + 1):
        mesh.set_bound(node_id, True)
    coordinator = config_entry.runtime_data
    await wait_for(lambda: not coordinator.data.fallback)
    assert _fallback_issue(hass, config_entry) is None
    registry = er.async_get(hass)
    key = mesh_unique_id(mesh)

    def powers_shown() -> bool:
        ids = [
            registry.async_get_entity_id("sensor", DOMAIN, f"{key}_{n}_power")
            for n in range(SENSOR_NODES)
        ]
        return all(
            i is not None and hass.states.get(i).state not in ("unknown", "unavailable")
            for i in ids
        )

    await wait_for(powers_shown)
    assert not _onoff_sets(mesh)


@pytest.mark.parametrize("profile", [Profile.V07])
async def test_duty_answered_by_fallback_is_a_failure(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """The gateway's models lose their key: a DUTY is refused, then nothing more is sent."""
    coordinator = loaded_entry.runtime_data
    gateway = mesh.by_mac(coordinator.data.gateway_address)
    mesh.set_bound(gateway.node_id, False)
    entity_id = er.async_get(hass).async_get_entity_id(
        "number", DOMAIN, f"{mesh_unique_id(mesh)}_2_duty_setting"
    )
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            "number",
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: entity_id, ATTR_VALUE: 0},
            blocking=True,
        )
    assert coordinator.data.fallback
    assert _fallback_issue(hass, loaded_entry) is not None
    sent = len(_onoff_sets(mesh))
    await coordinator.async_refresh()
    await coordinator.async_refresh()
    assert len(_onoff_sets(mesh)) == sent  # polls only probe now


@pytest.mark.parametrize("profile", [Profile.V1, Profile.V07])
async def test_mesh_duty_reaches_nodes_that_missed_the_group_message(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """Group sends are unacknowledged: the nodes that missed one get a unicast."""
    gateway = mesh.by_mac(loaded_entry.runtime_data.data.gateway_address).node_id
    missing = [n for n in range(SENSOR_NODES) if n != gateway][:2]
    for node_id in missing:
        mesh.miss_group_messages(node_id)
    mesh.radio_log.clear()
    response = await hass.services.async_call(
        DOMAIN,
        "set_mesh_duty",
        {"config_entry_id": loaded_entry.entry_id, "duty": 35},
        blocking=True,
        return_response=True,
    )
    # Confirmed when the action returns, not at the next poll.
    assert response == {"confirmed_nodes": list(range(SENSOR_NODES))}
    assert [mesh.node(n).duty for n in range(SENSOR_NODES)] == [35] * SENSOR_NODES
    unicast_targets = {
        destination
        for _source, destination, _payload in mesh.radio_log
        if destination != wire.GROUP_ADDR
    }
    assert {mesh.node(n).address for n in missing} <= unicast_targets


async def test_node_that_missed_the_group_read_is_asked_directly(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    coordinator = loaded_entry.runtime_data
    before = coordinator.data.nodes[2].last_seen
    mesh.miss_group_messages(2)
    mesh.radio_log.clear()
    await coordinator.async_refresh()
    assert coordinator.data.nodes[2].last_seen != before
    assert any(
        destination == mesh.node(2).address for _s, destination, _p in mesh.radio_log
    )
