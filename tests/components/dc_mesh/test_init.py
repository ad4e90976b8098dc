"""Set-up, unload, not-ready, and Home Assistant loading our action descriptions."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers.service import async_get_all_descriptions
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh.const import DOMAIN
from simulator.mesh import Mesh


async def test_setup_and_unload(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, mesh: Mesh
) -> None:
    assert loaded_entry.state is ConfigEntryState.LOADED
    coordinator = loaded_entry.runtime_data
    assert coordinator.data.connected
    assert coordinator.sensor_node_ids() == {0, 1, 2, 3}
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    assert coordinator.link is None


async def test_not_ready_without_advertising_nodes(
    hass: HomeAssistant, enable_bluetooth: None
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="legacy",
        title="DC Mesh",
        data={"mesh_id": "legacy", "address": "AA:BB:CC:DD:EE:FF"},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "no_nodes_advertising"


async def test_action_descriptions_load(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """A services.yaml that fails HA's schema would hang the frontend: check HA loads ours."""
    descriptions = await async_get_all_descriptions(hass)
    service = descriptions[DOMAIN]["set_mesh_duty"]
    assert set(service["fields"]) == {"config_entry_id", "duty"}


async def test_stale_gatt_cache_and_slow_connection_through_ha(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    """HA's Bluetooth stack path: a stale service cache is cleared, a slow node still joins."""
    mesh.set_stale_gatt_cache(0)
    mesh.slow_connections(0, 0.2)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = config_entry.runtime_data
    assert coordinator.link is not None
    assert coordinator.link.address == mesh.node(0).mac
    assert coordinator.link.stats.cache_clears == 1
    assert coordinator.sensor_node_ids() == {0, 1, 2, 3}
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_failed_first_poll_closes_the_link(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    """Connected, but the mesh gives no reading: retry later, without a dangling link."""
    for node_id in range(4):
        mesh.node(node_id).load = None  # sensors dead: no node answers READ
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert all(not mesh.node(node_id).sessions for node_id in range(4))
