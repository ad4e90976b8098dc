"""The dc_mesh_sim dev component: YAML config, fault actions, services.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.components import bluetooth, persistent_notification
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.service import _SERVICES_SCHEMA
from homeassistant.util.yaml import load_yaml_dict
import pytest

from custom_components.dc_mesh.dcmesh import format_key
from simulator.mesh import Profile, Role

COMPONENT = (
    Path(__file__).resolve().parents[2] / "simulator" / "dev_component" / "dc_mesh_sim"
)


def test_manifest_and_services_yaml() -> None:
    manifest = json.loads((COMPONENT / "manifest.json").read_text())
    assert manifest["domain"] == "dc_mesh_sim"
    assert manifest["dependencies"] == ["bluetooth", "persistent_notification"]
    assert manifest["version"]
    services = _SERVICES_SCHEMA(load_yaml_dict(str(COMPONENT / "services.yaml")))
    assert set(services) == {"power_cycle", "power_off", "power_on"}
    assert set(services["power_cycle"]["fields"]) == {"node_id", "off_seconds"}


async def test_setup_builds_the_configured_mesh_and_actions(
    hass, enable_bluetooth
) -> None:
    from simulator.dev_component.dc_mesh_sim import DATA_MESH, DOMAIN, async_setup

    assert await async_setup(
        hass, {DOMAIN: {"profile": "v0.7", "nodes": 2, "relays": 1}}
    )
    mesh = hass.data[DATA_MESH]
    assert [node.role for node in mesh.nodes] == [
        Role.UNIVERSAL,
        Role.UNIVERSAL,
        Role.RELAY,
    ]
    assert {node.profile for node in mesh.nodes} == {Profile.V07}
    assert (
        bluetooth.async_ble_device_from_address(hass, mesh.node(1).mac, True)
        is not None
    )

    await hass.services.async_call(DOMAIN, "power_off", {"node_id": 1}, blocking=True)
    assert not mesh.node(1).powered
    await hass.services.async_call(DOMAIN, "power_on", {"node_id": 1}, blocking=True)
    assert mesh.node(1).powered
    await hass.services.async_call(
        DOMAIN, "power_cycle", {"node_id": 0, "off_seconds": 30}, blocking=True
    )
    assert not mesh.node(0).powered
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "power_off", {"node_id": 7}, blocking=True
        )


async def test_setup_defaults_to_five_v1_nodes_and_a_relay(
    hass, enable_bluetooth
) -> None:
    from simulator.dev_component.dc_mesh_sim import DATA_MESH, DOMAIN, async_setup

    assert await async_setup(hass, {DOMAIN: None})
    mesh = hass.data[DATA_MESH]
    assert [node.role.value for node in mesh.nodes] == ["U"] * 5 + ["R"]
    assert mesh.profile is Profile.V1
    # The key the user enters in the config flow, shown as the provisioner prints it.
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    assert format_key(mesh.mesh_key) in notifications[f"{DOMAIN}_mesh_key"]["message"]
