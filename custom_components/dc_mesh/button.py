"""Button: run a node's RAMP sequence (0, 25, 50, 75, 100 % then off)."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DcMeshConfigEntry, DcMeshCoordinator
from .entity import DcMeshNodeEntity

PARALLEL_UPDATES = 1

RAMP = ButtonEntityDescription(key="ramp", translation_key="ramp")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a RAMP button whenever a node appears."""
    coordinator = entry.runtime_data
    known: set[int] = set()

    @callback
    def _add_new_nodes() -> None:
        new = coordinator.sensor_node_ids() - known
        known.update(new)
        if new:
            async_add_entities(
                DcMeshRampButton(coordinator, node_id) for node_id in new
            )

    _add_new_nodes()
    entry.async_on_unload(coordinator.async_add_listener(_add_new_nodes))
    entry.async_on_unload(coordinator.async_on_forget(known.discard))


class DcMeshRampButton(DcMeshNodeEntity, ButtonEntity):
    """Starts the node's RAMP test sequence."""

    entity_description = RAMP

    def __init__(self, coordinator: DcMeshCoordinator, node_id: int) -> None:
        """Attach to the node."""
        super().__init__(coordinator, node_id, RAMP.key)

    async def async_press(self) -> None:
        """Send RAMP."""
        await self.coordinator.async_ramp(self.node_id)
