"""Snapshots of every entity platform, the devices and the diagnostics of a simulated mesh.

Regenerate with `scripts/run python -m pytest tests/components/dc_mesh/test_snapshots.py
--snapshot-update` and review the diff of snapshots/test_snapshots.ambr.

The simulated mesh is deterministic for its seed except for timing, so the measurement noise
is switched off and the values that depend on when readings arrived (last seen, energy) are
set to fixed ones before the states are taken (boot time and signal too).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from unittest.mock import PropertyMock, patch

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from simulator.mesh import Mesh

LAST_SEEN = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ENERGY_KWH = 0.0123  # shown as 12.3 Wh
BOOTED_AT = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
RSSI = -61


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's serializer, files in snapshots/ (as HA core's conftest does)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Register every entity enabled, disabled-by-default ones too (HA core's fixture)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
def platform() -> Platform:
    """The one platform a test sets up (tests parametrize it)."""
    return Platform.SENSOR


@pytest.fixture
def only_platform(platform: Platform) -> Iterator[None]:
    """Set up, and later unload, only that platform (requested before `loaded_entry`)."""
    with patch("custom_components.dc_mesh.PLATFORMS", [platform]):
        yield


@pytest.fixture
def quiet_mesh(mesh: Mesh) -> Mesh:
    """The simulated mesh without measurement noise (readings do not depend on timing).

    Its loads run at 0, 25, 50 and 75 % so that the readings differ.
    """
    for node in mesh.nodes:
        if node.load is not None:
            node.load.voltage_noise = 0.0
            node.load.current_noise = 0.0
            node.duty = 25 * node.node_id
    return mesh


def _fix_timing(entry: MockConfigEntry) -> None:
    """Give the values that depend on when readings arrived fixed ones, and write states."""
    coordinator = entry.runtime_data
    for node in coordinator.data.nodes.values():
        if node.last_seen is not None:
            node.last_seen = LAST_SEEN
        if node.energy_kwh is not None:
            node.energy_kwh = ENERGY_KWH
        if node.booted_at is not None:
            node.booted_at = BOOTED_AT
        if node.rssi is not None:
            node.rssi = RSSI  # the simulated radio adds noise
    coordinator.async_update_listeners()


@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.BUTTON,
        Platform.NUMBER,
        Platform.SELECT,
        Platform.SENSOR,
        Platform.SWITCH,
        Platform.UPDATE,
    ],
)
# Fixtures in usefixtures are set up before the arguments: the patches precede `loaded_entry`.
@pytest.mark.usefixtures(
    "entity_registry_enabled_by_default", "only_platform", "quiet_mesh"
)
async def test_entities(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    _fix_timing(loaded_entry)
    await snapshot_platform(hass, entity_registry, snapshot, loaded_entry.entry_id)


@pytest.mark.usefixtures("quiet_mesh")
async def test_devices(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The hub and a device per node, named after their mesh."""
    devices = dr.async_entries_for_config_entry(device_registry, loaded_entry.entry_id)
    assert sorted(devices, key=lambda device: sorted(device.identifiers)) == snapshot


@pytest.mark.usefixtures("quiet_mesh")
async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    _fix_timing(loaded_entry)
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, loaded_entry
    )
    # A node's uptime counts seconds of the test run.
    assert diagnostics == snapshot(exclude=props("uptime"))
