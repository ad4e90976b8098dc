"""Select: which node the power budget balancer favours."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .coordinator import DcMeshConfigEntry
from .entity import DcMeshHubEntity

PARALLEL_UPDATES = 1

NO_PRIORITY = "none"

PRIORITY = SelectEntityDescription(
    key="priority_node",
    translation_key="priority_node",
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the priority select."""
    async_add_entities([DcMeshPrioritySelect(entry.runtime_data, PRIORITY.key)])


class DcMeshPrioritySelect(DcMeshHubEntity, SelectEntity, RestoreEntity):
    """The node that gets twice the share of the budget ("none": equal shares).

    Restored after a restart.
    """

    entity_description = PRIORITY
    _shows_readings = False  # its options change with a new node (not a reading)

    async def async_added_to_hass(self) -> None:
        """Take the priority node chosen before the restart."""
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        if last is not None and last.state.isdigit():
            self.coordinator.balancer.priority_node = int(last.state)

    @property
    def options(self) -> list[str]:
        """Offer no priority, or any node that measures a load."""
        return [
            NO_PRIORITY,
            *(str(n) for n in sorted(self.coordinator.sensor_node_ids())),
        ]

    @property
    def current_option(self) -> str:
        """The favoured node."""
        node = self.coordinator.balancer.priority_node
        return NO_PRIORITY if node is None else str(node)

    async def async_select_option(self, option: str) -> None:
        """Favour a node."""
        self.coordinator.balancer.priority_node = (
            None if option == NO_PRIORITY else int(option)
        )
        self.async_write_ha_state()
