"""Config flow: discovery, user pick, errors with retry, aborts, options, reconfigure."""

from __future__ import annotations

from unittest.mock import patch

from homeassistant.config_entries import SOURCE_BLUETOOTH, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh.const import (
    CONF_ADDRESS,
    CONF_EXCLUDED_ADDRESSES,
    CONF_MESH_ID,
    CONF_POLL_INTERVAL,
    CONF_STALE_TIMEOUT,
    DOMAIN,
)
from simulator.mesh import Mesh, Profile

from .conftest import mesh_key


async def _discovery_flows(hass: HomeAssistant) -> list:
    await hass.async_block_till_done(wait_background_tasks=True)
    return hass.config_entries.flow.async_progress_by_handler(DOMAIN)


@pytest.mark.parametrize("profile", [Profile.V1, Profile.V07])
async def test_bluetooth_discovery_creates_one_entry_per_mesh(
    hass: HomeAssistant, mesh: Mesh, profile: Profile
) -> None:
    flows = await _discovery_flows(hass)
    # Four advertising nodes, one mesh: one discovery flow.
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == SOURCE_BLUETOOTH
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    key = mesh_key(mesh)
    assert result["result"].unique_id == key
    assert result["data"][CONF_MESH_ID] == key
    assert result["data"][CONF_ADDRESS] in {mesh.node(n).mac for n in range(4)}
    await hass.async_block_till_done()
    # Further nodes of the configured mesh start no new flow.
    assert await _discovery_flows(hass) == []


async def test_discovery_cannot_connect_then_retry(
    hass: HomeAssistant, mesh: Mesh
) -> None:
    flows = await _discovery_flows(hass)
    address = flows[0]["context"].get("unique_id")
    assert address == mesh_key(mesh)
    for node_id in range(4):
        mesh.refuse_connections(node_id, count=-1)
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    for node_id in range(4):
        mesh.refuse_connections(node_id, count=0)
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_flow_lists_unconfigured_nodes(
    hass: HomeAssistant, mesh: Mesh
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    address = mesh.node(2).mac
    with patch(
        "custom_components.dc_mesh.config_flow._async_probe",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_ADDRESS: address}
        )
    assert result["errors"] == {"base": "unknown"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: address}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == mesh_key(mesh)
    assert result["data"] == {CONF_MESH_ID: mesh_key(mesh), CONF_ADDRESS: address}


async def test_user_flow_no_unconfigured_nodes(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_devices_found"


async def test_user_flow_nothing_discovered(
    hass: HomeAssistant, enable_bluetooth: None
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_devices_found"


async def test_discovery_of_configured_mesh_aborts(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    for flow in await _discovery_flows(hass):
        hass.config_entries.flow.async_abort(flow["flow_id"])
    config_entry.add_to_hass(hass)
    from homeassistant.components.bluetooth import async_last_service_info

    info = async_last_service_info(hass, mesh.node(1).mac, connectable=True)
    assert info is not None
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_BLUETOOTH}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize("profile", [Profile.V07])
async def test_options_flow_legacy_exclusions(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    neighbour = mesh.node(3).mac
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_POLL_INTERVAL: 5,
            CONF_STALE_TIMEOUT: 30,
            CONF_EXCLUDED_ADDRESSES: [neighbour],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    coordinator = loaded_entry.runtime_data
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 5
    assert neighbour not in {info.address for info in coordinator.candidates()}


async def test_reconfigure_preferred_node(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    address = mesh.node(3).mac
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: address}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded_entry.data[CONF_ADDRESS] == address
    # After the reload, the mesh is reached through the preferred node.
    assert loaded_entry.runtime_data.data.gateway_address == address
