"""Switch: the mesh's power budget balancer."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DcMeshConfigEntry
from .entity import DcMeshHubEntity

PARALLEL_UPDATES = 1

BALANCING = SwitchEntityDescription(
    key="balancing",
    translation_key="balancing",
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the balancing switch."""
    async_add_entities([DcMeshBalancingSwitch(entry.runtime_data, BALANCING.key)])


class DcMeshBalancingSwitch(DcMeshHubEntity, SwitchEntity):
    """On: duties are nudged so the mesh stays within its power budget."""

    entity_description = BALANCING

    @property
    def is_on(self) -> bool:
        """Whether balancing is on."""
        return self.coordinator.balancer.enabled

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Start balancing: the current duties become each node's ceiling."""
        await self.coordinator.async_set_balancing(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop balancing and restore the user's duties."""
        await self.coordinator.async_set_balancing(False)
