"""A user's day with a mesh: live values, duty from an automation, failovers, total loss."""

from __future__ import annotations

from freezegun.api import TickingDateTimeFactory
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.const import ATTR_ENTITY_ID, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh.const import DEFAULT_STALE_TIMEOUT, DOMAIN
from simulator.mesh import Mesh, Profile

from . import advance, wait_for
from .conftest import mesh_unique_id


def _entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    return entity_id


@pytest.mark.parametrize("profile", [Profile.V1, Profile.V07])
async def test_live_values_duty_and_failover(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry, profile: Profile
) -> None:
    coordinator = loaded_entry.runtime_data
    key = mesh_unique_id(mesh)

    # Devices: a hub and one device per sensing node, "<mesh> node N", via the hub.
    devices = dr.async_get(hass)
    hub = devices.async_get_device_by_identifier((DOMAIN, key), loaded_entry.entry_id)
    assert hub is not None
    for node_id in range(4):
        device = devices.async_get_device_by_identifier(
            (DOMAIN, f"{key}_{node_id}"), loaded_entry.entry_id
        )
        assert device is not None
        assert device.via_device_id == hub.id
        assert device.name == f"{loaded_entry.title} node {node_id}"
        if profile is Profile.V1:
            assert device.sw_version == "1.0.0"

    # The hub knows which node is the gateway (v1: INFO; v0.7: the node that answers first).
    gateway_node = hass.states.get(_entity_id(hass, "sensor", f"{key}_gateway_node"))
    assert gateway_node.state == str(
        mesh.by_mac(coordinator.data.gateway_address).node_id
    )

    # Live values that match the simulated physics.
    power = hass.states.get(_entity_id(hass, "sensor", f"{key}_1_power"))
    assert power is not None
    voltage = hass.states.get(_entity_id(hass, "sensor", f"{key}_1_voltage"))
    assert voltage is not None
    assert float(voltage.state) == pytest.approx(
        mesh.node(1).load.supply_voltage, rel=0.05
    )

    # An automation sets a duty: it is sent, confirmed by a reading and shown.
    duty_entity = _entity_id(hass, "number", f"{key}_2_duty_setting")
    await hass.services.async_call(
        "number",
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: duty_entity, ATTR_VALUE: 40},
        blocking=True,
    )
    assert mesh.node(2).duty == 40
    assert hass.states.get(duty_entity).state == "40"

    # The mesh-wide action.
    await hass.services.async_call(
        DOMAIN,
        "set_mesh_duty",
        {"config_entry_id": loaded_entry.entry_id, "duty": 60},
        blocking=True,
    )
    await wait_for(lambda: all(mesh.node(n).duty == 60 for n in range(4)))
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            "set_mesh_duty",
            {"config_entry_id": "not-an-entry", "duty": 60},
            blocking=True,
        )

    # The connected node loses power, twice in a row: two failovers, no manual step.
    for expected_failovers in (1, 2):
        gateway = mesh.by_mac(coordinator.data.gateway_address)
        mesh.power_off(gateway.node_id)
        await wait_for(
            lambda gw=gateway: (
                coordinator.data.connected
                and coordinator.data.gateway_address != gw.mac
            )
        )
        assert coordinator.data.failover_count == expected_failovers
    # Entities of live nodes never went away.
    for node_id in range(4):
        assert er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{key}_{node_id}_power"
        )
    for node_id in range(4):
        mesh.power_on(node_id)


async def test_all_nodes_lost_and_recovered(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    coordinator = loaded_entry.runtime_data
    key = mesh_unique_id(mesh)
    for node_id in range(5):
        mesh.power_off(node_id)
    await wait_for(lambda: not coordinator.data.connected)
    connectivity = _entity_id(hass, "binary_sensor", f"{key}_connectivity")
    await wait_for(lambda: hass.states.get(connectivity).state == "off")
    power = _entity_id(hass, "sensor", f"{key}_0_power")
    # The regular polls (time passing, nothing else) mark the silent nodes unavailable.
    await advance(hass, freezer, DEFAULT_STALE_TIMEOUT + 1)
    assert hass.states.get(power).state == STATE_UNAVAILABLE
    with pytest.raises(HomeAssistantError):
        await coordinator.async_set_duty(0, 10)
    for node_id in range(5):
        mesh.power_on(node_id)
    # They boot and advertise: the advertisements end the back-off wait.
    await wait_for(lambda: coordinator.data.connected, timeout=30)
    await wait_for(lambda: hass.states.get(power).state != STATE_UNAVAILABLE)
    assert hass.states.get(connectivity).state == "on"
