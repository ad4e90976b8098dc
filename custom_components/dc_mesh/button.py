"""Button: a node's duty ramp test (0, 25, 50, 75, 100 % at 500 ms a step, then off)."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DcMeshConfigEntry, DcMeshCoordinator
from .entity import DcMeshNodeEntity, async_add_node_entities

PARALLEL_UPDATES = 1

RAMP = ButtonEntityDescription(key="ramp", translation_key="ramp")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a ramp test button whenever a node that has a load appears."""
    coordinator = entry.runtime_data
    async_add_node_entities(
        entry,
        async_add_entities,
        coordinator.sensor_node_ids,
        lambda node_id: [DcMeshRampButton(coordinator, node_id)],
    )


class DcMeshRampButton(DcMeshNodeEntity, ButtonEntity):
    """Runs the node's duty ramp test: 0, 25, 50, 75, 100 % at 500 ms a step, then off."""

    entity_description = RAMP
    _shows_readings = False
    _state_follows_inputs = True

    def __init__(self, coordinator: DcMeshCoordinator, node_id: int) -> None:
        """Attach to the node."""
        super().__init__(coordinator, node_id, RAMP.key)

    def _shown_inputs(self) -> tuple[object, ...]:
        # A button's state is when it was last pressed: HA writes it at each press.
        return (self.node.available,)

    async def async_press(self) -> None:
        """Send RAMP."""
        await self.coordinator.async_ramp(self.node_id)
