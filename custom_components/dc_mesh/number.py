"""Numbers: each node's duty cycle, and the mesh's power budget."""

from __future__ import annotations

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
    RestoreNumber,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DcMeshConfigEntry, DcMeshCoordinator
from .entity import DcMeshHubEntity, DcMeshNodeEntity, async_add_node_entities

PARALLEL_UPDATES = 1

DUTY = NumberEntityDescription(
    key="duty_setting",
    translation_key="duty_setting",
    native_min_value=0,
    native_max_value=100,
    native_step=1,
    native_unit_of_measurement=PERCENTAGE,
    mode=NumberMode.SLIDER,
)

BUDGET = NumberEntityDescription(
    key="power_budget",
    translation_key="power_budget",
    device_class=NumberDeviceClass.POWER,
    entity_category=EntityCategory.CONFIG,
    native_min_value=0,
    native_max_value=1000,
    native_step=0.1,
    native_unit_of_measurement=UnitOfPower.WATT,
    mode=NumberMode.BOX,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the budget now and a duty number whenever a node appears."""
    coordinator = entry.runtime_data
    async_add_entities([DcMeshBudgetNumber(coordinator, BUDGET.key)])
    async_add_node_entities(
        entry,
        async_add_entities,
        coordinator.sensor_node_ids,
        lambda node_id: [DcMeshDutyNumber(coordinator, node_id)],
    )


class DcMeshDutyNumber(DcMeshNodeEntity, NumberEntity):
    """The node's PWM duty; setting it is confirmed by a fresh reading."""

    entity_description = DUTY
    _reading_field = "duty"
    _state_follows_inputs = True  # whole percents

    def __init__(self, coordinator: DcMeshCoordinator, node_id: int) -> None:
        """Attach to the node."""
        super().__init__(coordinator, node_id, DUTY.key)

    @property
    def native_value(self) -> float | None:
        """The duty the node reported last."""
        reading = self.node.reading
        return reading.duty if reading is not None else None

    def _shown_inputs(self) -> tuple[object, ...]:
        node = self.node
        return (node.available, node.reading.duty if node.reading else None)

    async def async_set_native_value(self, value: float) -> None:
        """Send the duty to the node and confirm it."""
        await self.coordinator.async_set_duty(self.node_id, round(value))


class DcMeshBudgetNumber(DcMeshHubEntity, RestoreNumber):
    """The power budget of the mesh: the balancer keeps the total 500 mW below it.

    Restored after a restart.
    """

    entity_description = BUDGET
    _shows_readings = False

    async def async_added_to_hass(self) -> None:
        """Take the budget the user set before the restart."""
        await super().async_added_to_hass()
        last = await self.async_get_last_number_data()
        if last is not None and last.native_value is not None:
            self.coordinator.balancer.budget_mw = last.native_value * 1000

    @property
    def native_value(self) -> float:
        """The budget in W, as the user set it."""
        return self.coordinator.balancer.budget_mw / 1000

    async def async_set_native_value(self, value: float) -> None:
        """Set the budget."""
        self.coordinator.balancer.budget_mw = value * 1000
        self.async_write_ha_state()
