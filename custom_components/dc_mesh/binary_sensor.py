"""Binary sensor: is the mesh reachable (a GATT link is up)."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DcMeshConfigEntry
from .entity import DcMeshHubEntity

PARALLEL_UPDATES = 0

CONNECTIVITY = BinarySensorEntityDescription(
    key="connectivity",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensor of the mesh."""
    async_add_entities([DcMeshConnectivity(entry.runtime_data, CONNECTIVITY.key)])


class DcMeshConnectivity(DcMeshHubEntity, BinarySensorEntity):
    """On while the integration holds a GATT link into the mesh."""

    entity_description = CONNECTIVITY
    _shows_readings = False

    @property
    def available(self) -> bool:
        """Always available: being disconnected is its state, not an error."""
        return True

    @property
    def is_on(self) -> bool:
        """Whether the link is up."""
        return self.coordinator.data.connected
