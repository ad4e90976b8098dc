"""Switch: the mesh's power budget balancer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import STATE_ON, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity

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


@dataclass(frozen=True, slots=True)
class BalancingExtraData(ExtraStoredData):
    """What balancing needs to resume after a restart: the user's own duties."""

    ceilings: dict[int, int]

    def as_dict(self) -> dict[str, Any]:
        """Serialise for the restore cache."""
        return {"ceilings": {str(node): duty for node, duty in self.ceilings.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BalancingExtraData:
        """Read back from the restore cache."""
        return cls({int(node): int(duty) for node, duty in data["ceilings"].items()})


class DcMeshBalancingSwitch(DcMeshHubEntity, SwitchEntity, RestoreEntity):
    """On: duties are nudged so the mesh stays within its power budget.

    After a restart balancing resumes with the user's duties it had frozen, so turning
    it off later still restores them.
    """

    entity_description = BALANCING
    _shows_readings = False

    async def async_added_to_hass(self) -> None:
        """Resume balancing if it was on before the restart."""
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        extra = await self.async_get_last_extra_data()
        if last is not None and last.state == STATE_ON and extra is not None:
            self.coordinator.balancer.enable(
                BalancingExtraData.from_dict(extra.as_dict()).ceilings
            )

    @property
    def extra_restore_state_data(self) -> BalancingExtraData:
        """The frozen user duties."""
        return BalancingExtraData(dict(self.coordinator.balancer.ceilings))

    @property
    def is_on(self) -> bool:
        """Whether balancing is on."""
        return self.coordinator.balancer.enabled

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Start balancing: the current duties become each node's ceiling."""
        await self.coordinator.balancer_control.async_set_enabled(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop balancing and restore the user's duties."""
        await self.coordinator.balancer_control.async_set_enabled(False)
