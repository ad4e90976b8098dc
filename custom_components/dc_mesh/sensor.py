"""Sensors: per-node readings and energy, per-mesh totals and link state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
import re

from homeassistant.components.sensor import (
    DOMAIN as SENSOR_DOMAIN,
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfInformation,
    UnitOfPower,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import (
    ENERGY_DECIMALS,
    ENERGY_FIELD,
    DcMeshConfigEntry,
    DcMeshCoordinator,
)
from .entity import DcMeshHubEntity, DcMeshNodeEntity, async_add_node_entities
from .models import MeshData, NodeData

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class DcMeshNodeSensorEntityDescription(SensorEntityDescription):
    """A sensor of a mesh node."""

    value_fn: Callable[[NodeData], float | str | datetime | None]
    # False: the value does not come from the node's readings (pushed ones leave it alone).
    shows_readings: bool = True
    # The field of the node's readings it shows (see ListenerScope.field), if just one.
    reading_field: str | None = None


@dataclass(frozen=True, kw_only=True)
class DcMeshHubSensorEntityDescription(SensorEntityDescription):
    """A sensor of the mesh as a whole."""

    value_fn: Callable[[MeshData], float | int | str | None]
    needs_link: bool = True
    shows_readings: bool = True


NODE_SENSORS: tuple[DcMeshNodeSensorEntityDescription, ...] = (
    # DC readings: translation keys give them DC icons (the device class icons are AC's).
    DcMeshNodeSensorEntityDescription(
        key="voltage",
        translation_key="voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=2,
        value_fn=lambda node: node.reading.voltage if node.reading else None,
        reading_field="voltage",
    ),
    DcMeshNodeSensorEntityDescription(
        key="current",
        translation_key="current",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.MILLIAMPERE,
        suggested_display_precision=0,
        value_fn=lambda node: node.reading.current_ma if node.reading else None,
        reading_field="current_ma",
    ),
    DcMeshNodeSensorEntityDescription(
        key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.MILLIWATT,
        suggested_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=2,
        value_fn=lambda node: node.reading.power_mw if node.reading else None,
        reading_field="power_mw",
    ),
    DcMeshNodeSensorEntityDescription(
        key="last_seen",
        translation_key="last_seen",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda node: node.last_seen,
    ),
)

# Health of a v1 node (it answers INFO): firmware, when it last booted (a timestamp, so
# reboots show in its history), free heap and the signal of its advertisements (both noisy:
# off by default).
INFO_SENSORS: tuple[DcMeshNodeSensorEntityDescription, ...] = (
    DcMeshNodeSensorEntityDescription(
        key="firmware",
        translation_key="firmware",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node: node.info.firmware if node.info else None,
        shows_readings=False,
    ),
    DcMeshNodeSensorEntityDescription(
        key="last_boot",
        translation_key="last_boot",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node: node.booted_at,
        shows_readings=False,
    ),
    DcMeshNodeSensorEntityDescription(
        key="free_heap",
        translation_key="free_heap",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.KILOBYTES,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda node: node.info.free_heap if node.info else None,
        shows_readings=False,
    ),
    DcMeshNodeSensorEntityDescription(
        key="signal",
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda node: node.rssi,  # taken at polls
        shows_readings=False,
    ),
)

# Stored in kWh (restored totals stay comparable), shown in Wh: a few-watt load visibly counts.
# The total is integrated at full precision and shown to 0.1 Wh (the display precision, see
# ENERGY_DECIMALS).
ENERGY_SENSOR = SensorEntityDescription(
    key="energy",
    device_class=SensorDeviceClass.ENERGY,
    state_class=SensorStateClass.TOTAL_INCREASING,
    native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
    suggested_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
    suggested_display_precision=1,
)

HUB_SENSORS: tuple[DcMeshHubSensorEntityDescription, ...] = (
    DcMeshHubSensorEntityDescription(
        key="total_power",
        translation_key="total_power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.MILLIWATT,
        suggested_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=2,
        value_fn=lambda data: data.total_power_mw,
    ),
    DcMeshHubSensorEntityDescription(
        key="gateway_node",
        translation_key="gateway_node",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.gateway_node_id,
        shows_readings=False,
    ),
    # Counts from 0 at every start of Home Assistant: not a statistic (no state class).
    DcMeshHubSensorEntityDescription(
        key="failover_count",
        translation_key="failover_count",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.failover_count,
        needs_link=False,
        shows_readings=False,
    ),
)


# While MQTT publishing is on: what waits for the broker, and what the bound made it drop.
MQTT_SENSORS: tuple[DcMeshHubSensorEntityDescription, ...] = (
    DcMeshHubSensorEntityDescription(
        key="mqtt_outbox",
        translation_key="mqtt_outbox",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: None,
        needs_link=False,
    ),
    DcMeshHubSensorEntityDescription(
        key="mqtt_dropped",
        translation_key="mqtt_dropped",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda data: None,
        needs_link=False,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add hub sensors now and node sensors whenever a node appears."""
    coordinator = entry.runtime_data
    _async_remove_duty_sensors(hass, entry)
    async_add_entities(
        DcMeshHubSensor(coordinator, description) for description in HUB_SENSORS
    )
    if coordinator.publisher is not None:
        async_add_entities(
            DcMeshMqttSensor(coordinator, description) for description in MQTT_SENSORS
        )
    async_add_node_entities(
        entry,
        async_add_entities,
        coordinator.sensor_node_ids,
        lambda node_id: [
            *(
                DcMeshNodeSensor(coordinator, node_id, description)
                for description in NODE_SENSORS
            ),
            DcMeshEnergySensor(coordinator, node_id),
        ],
    )
    async_add_node_entities(
        entry,
        async_add_entities,
        lambda: (n.node_id for n in coordinator.data.nodes.values() if n.info),
        lambda node_id: [
            DcMeshNodeSensor(coordinator, node_id, description)
            for description in INFO_SENSORS
        ],
    )


@callback
def _async_remove_duty_sensors(hass: HomeAssistant, entry: DcMeshConfigEntry) -> None:
    """Remove the "Duty" sensors of earlier versions (the "Duty cycle" number shows it)."""
    registry = er.async_get(hass)
    duty = re.compile(rf"{re.escape(entry.runtime_data.mesh_id)}_\d+_duty")
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if entity.domain == SENSOR_DOMAIN and duty.fullmatch(entity.unique_id):
            registry.async_remove(entity.entity_id)


class DcMeshNodeSensor(DcMeshNodeEntity, SensorEntity):
    """A reading of a mesh node."""

    entity_description: DcMeshNodeSensorEntityDescription

    def __init__(
        self,
        coordinator: DcMeshCoordinator,
        node_id: int,
        description: DcMeshNodeSensorEntityDescription,
    ) -> None:
        """Bind the description to the node."""
        super().__init__(coordinator, node_id, description.key)
        self.entity_description = description
        self._shows_readings = description.shows_readings
        self._reading_field = description.reading_field
        # a timestamp shows whole seconds: two values may look alike
        self._state_follows_inputs = (
            description.device_class is not SensorDeviceClass.TIMESTAMP
        )

    @property
    def native_value(self) -> float | str | datetime | None:
        """The node's current value."""
        return self.entity_description.value_fn(self.node)

    def _shown_inputs(self) -> tuple[object, ...]:
        node = self.node
        return (node.available, self.entity_description.value_fn(node))


class DcMeshEnergySensor(DcMeshNodeEntity, RestoreSensor):
    """Energy through a node's load, integrated from its power readings.

    The total survives restarts: the last state is restored and integration continues from it.
    """

    entity_description = ENERGY_SENSOR
    _state_follows_inputs = True
    _reading_field = ENERGY_FIELD  # told only when the total as shown changed

    def __init__(self, coordinator: DcMeshCoordinator, node_id: int) -> None:
        """Attach to the node."""
        super().__init__(coordinator, node_id, ENERGY_SENSOR.key)

    async def async_added_to_hass(self) -> None:
        """Continue from the restored total."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        if last is not None and isinstance(last.native_value, (int, float)):
            self.coordinator.restore_energy(self.node_id, float(last.native_value))

    @property
    def native_value(self) -> float | None:
        """Energy in kWh, to the 0.1 Wh it is shown with."""
        energy = self.node.energy_kwh
        return None if energy is None else round(energy, ENERGY_DECIMALS)

    def _shown_inputs(self) -> tuple[object, ...]:
        return (self.node.available, self.native_value)


class DcMeshHubSensor(DcMeshHubEntity, SensorEntity):
    """A sensor of the mesh as a whole."""

    entity_description: DcMeshHubSensorEntityDescription

    def __init__(
        self,
        coordinator: DcMeshCoordinator,
        description: DcMeshHubSensorEntityDescription,
    ) -> None:
        """Bind the description to the mesh."""
        super().__init__(coordinator, description.key)
        self.entity_description = description
        self._shows_readings = description.shows_readings
        self._state_follows_inputs = True  # numbers, an id: no timestamps

    @property
    def available(self) -> bool:
        """Mesh readings need the link: no false zeros while the mesh is unreachable."""
        return super().available and (
            self.coordinator.data.connected or not self.entity_description.needs_link
        )

    @property
    def native_value(self) -> float | int | str | None:
        """The mesh's current value."""
        return self.entity_description.value_fn(self.coordinator.data)

    def _shown_inputs(self) -> tuple[object, ...]:
        return (self.available, self.native_value)


class DcMeshMqttSensor(DcMeshHubSensor):
    """The MQTT outbox: messages waiting for the broker, readings dropped (bounded)."""

    @property
    def native_value(self) -> int | None:
        """Read at each coordinator update (not at every message)."""
        publisher = self.coordinator.publisher
        if publisher is None:
            return None
        if self.entity_description.key == "mqtt_outbox":
            return len(publisher.outbox)
        return publisher.dropped
