"""Fixtures: Home Assistant with a simulated DC-Monitor mesh behind its real Bluetooth manager."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from unittest.mock import patch

import freezegun
from freezegun.api import TickingDateTimeFactory
from homeassistant.const import CONF_ADDRESS
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh.const import CONF_MESH_ID, CONF_MESH_KEY, DOMAIN
from simulator.mesh import Latencies, Mesh, Profile, build_mesh

from . import unload_entries

SENSOR_NODES = 4


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load dc_mesh from this repository."""


@pytest.fixture(autouse=True)
def fast_link_timing() -> Iterator[None]:
    """The simulated mesh answers in milliseconds: shorten the link's waits to match."""
    with (
        patch("custom_components.dc_mesh.connection.LINK_REPLY_TIMEOUT", 1.0),
        patch("custom_components.dc_mesh.connection.LINK_QUIET_PERIOD", 0.15),
        # the simulator's nodes stagger group answers by its (fast) slot, not 100 ms
        patch(
            "custom_components.dc_mesh.dcmesh.link.GROUP_REPLY_SLOT",
            Latencies.fast().stagger_slot,
        ),
    ):
        yield


@pytest.fixture
def freezer() -> Iterator[TickingDateTimeFactory]:
    """Home Assistant's clocks and the event loop's, as `freezer` moves them.

    Time runs (the simulated radio's latencies elapse in real time) and jumps forward
    with `advance()`: every clock jumps together, the loop's timers included.
    """
    with freezegun.freeze_time(tick=True) as factory:
        yield factory


@pytest.fixture
def profile() -> Profile:
    """Firmware of the simulated nodes (tests parametrize it)."""
    return Profile.V1


@pytest.fixture
async def mesh(
    hass: HomeAssistant, enable_bluetooth: None, profile: Profile
) -> AsyncIterator[Mesh]:
    """A mesh of four universal nodes and a relay, advertising through a virtual proxy."""
    from simulator.ha import async_register_mesh

    sim = build_mesh(
        SENSOR_NODES, 1, profile=profile, latencies=Latencies.fast(), seed=7
    )
    unregister = async_register_mesh(hass, sim, source="dc_mesh_sim")
    await hass.async_block_till_done()
    yield sim
    await unload_entries(hass)
    unregister()


def mesh_unique_id(mesh: Mesh) -> str:
    """The config entry unique id of a simulated mesh."""
    if mesh.profile is Profile.V07:
        return "legacy"
    return f"{mesh.mesh_id:08x}"


def entry_data(mesh: Mesh, address: str | None = None) -> dict[str, str]:
    """What the config flow stores for a simulated mesh (with its key, for v1)."""
    data = {
        CONF_MESH_ID: mesh_unique_id(mesh),
        CONF_ADDRESS: address or mesh.node(0).mac,
    }
    if mesh.profile is Profile.V1:
        data[CONF_MESH_KEY] = mesh.mesh_key.hex()
    return data


@pytest.fixture
def config_entry(mesh: Mesh) -> MockConfigEntry:
    """A config entry for the simulated mesh, set up through node 0."""
    key = mesh_unique_id(mesh)
    return MockConfigEntry(
        domain=DOMAIN,
        title="DC Mesh" if key == "legacy" else f"DC Mesh {key}",
        unique_id=key,
        data=entry_data(mesh),
    )


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The integration set up on the simulated mesh."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    yield config_entry
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
