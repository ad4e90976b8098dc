"""The DC Mesh integration: DC-Monitor BLE mesh power monitors in Home Assistant."""

from __future__ import annotations

from homeassistant.components import bluetooth, mqtt
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_ADDRESS, EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.helpers.typing import ConfigType

from .connection import unreachable_issue_id
from .const import (
    CONF_MESH_ID,
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_PUBLISH,
    CONF_MQTT_RETAIN,
    DEFAULT_MQTT_BASE_TOPIC,
    DOMAIN,
    HUB_MODEL,
    LOGGER,
    MANUFACTURER,
)
from .coordinator import (
    DcMeshConfigEntry,
    DcMeshCoordinator,
    fallback_issue_id,
    insecure_issue_id,
    legacy_issue_id,
)
from .publisher import MqttPublisher, async_clear_entry
from .services import async_setup_services
from .updater import rollout_issue_id

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
    Platform.UPDATE,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: DcMeshConfigEntry) -> bool:
    """Connect to the mesh through any of its advertising nodes."""
    coordinator = DcMeshCoordinator(hass, entry)
    if not coordinator.connection.candidates():
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="no_nodes_advertising",
            translation_placeholders={
                "mesh": entry.title,
                "reason": bluetooth.async_address_reachability_diagnostics(
                    hass,
                    entry.data[CONF_ADDRESS],
                    bluetooth.BluetoothReachabilityIntent.CONNECTION,
                ),
            },
        )
    # The hub device first: node devices point to it (via_device_id).
    coordinator.hub_device_id = (
        dr.async_get(hass)
        .async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={coordinator.hub_identifier},
            manufacturer=MANUFACTURER,
            model=HUB_MODEL,
            name=entry.title,
        )
        .id
    )
    # On a failed setup or an unload HA shuts the coordinator down (it closes the link).
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    entry.async_on_unload(coordinator.connection.async_start())
    entry.async_on_unload(coordinator.balancer_control.async_start())
    entry.async_on_unload(await coordinator.updater.async_start())
    entry.async_on_unload(coordinator.updater.async_stop)
    if entry.options.get(CONF_MQTT_PUBLISH):
        await _async_start_publisher(hass, entry, coordinator)

    async def _async_stop(_: Event) -> None:
        # HA does not unload entries when it stops: close the GATT link ourselves.
        await coordinator.async_shutdown()

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_stop)
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_start_publisher(
    hass: HomeAssistant, entry: DcMeshConfigEntry, coordinator: DcMeshCoordinator
) -> None:
    """Publish readings to MQTT (the option), once HA's MQTT integration is up."""
    if not await mqtt.async_wait_for_mqtt_client(hass):
        LOGGER.warning(
            "%s: MQTT publishing is on, but Home Assistant's MQTT integration is not "
            "set up; nothing is published",
            entry.title,
        )
        return
    publisher = MqttPublisher(
        hass,
        entry_id=entry.entry_id,
        mesh_id=entry.data[CONF_MESH_ID],
        base_topic=_base_topic(entry),
        retain=entry.options.get(CONF_MQTT_RETAIN, True),
        node_device=lambda node_id: dr.async_get(hass).async_get_device_by_identifier(
            coordinator.node_identifier(node_id), entry.entry_id
        ),
        set_duty=coordinator.async_set_duty,
        set_mesh_duty=coordinator.async_set_mesh_duty,
    )
    await publisher.async_start()
    entry.async_on_unload(publisher.async_stop)
    coordinator.attach_publisher(publisher)


def _base_topic(entry: DcMeshConfigEntry) -> str:
    return str(entry.options.get(CONF_MQTT_BASE_TOPIC, DEFAULT_MQTT_BASE_TOPIC))


async def async_unload_entry(hass: HomeAssistant, entry: DcMeshConfigEntry) -> bool:
    """Unload the platforms (the coordinator's shutdown then closes the link)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: DcMeshConfigEntry) -> None:
    """Remove the mesh's repair issues with it."""
    for issue_id in (
        unreachable_issue_id(entry.entry_id),
        fallback_issue_id(entry.entry_id),
        insecure_issue_id(entry.entry_id),
        legacy_issue_id(entry.entry_id),
        rollout_issue_id(entry.entry_id),
    ):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
    if entry.options.get(CONF_MQTT_PUBLISH) and "mqtt" in hass.config.components:
        await async_clear_entry(
            hass,
            entry.entry_id,
            f"{_base_topic(entry).strip('/')}/{entry.data[CONF_MESH_ID]}",
        )


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: DcMeshConfigEntry, device: DeviceEntry
) -> bool:
    """Let the user remove a node that is gone (not while it still answers)."""
    if entry.state is not ConfigEntryState.LOADED:
        # Nothing answers while the mesh is not loaded: any node may go, not the hub.
        return (DOMAIN, entry.data[CONF_MESH_ID]) not in device.identifiers
    coordinator = entry.runtime_data
    for node_id, node in coordinator.data.nodes.items():
        if coordinator.node_identifier(node_id) in device.identifiers:
            if node.available:
                return False
            coordinator.forget_node(node_id)
            return True
    return coordinator.hub_identifier not in device.identifiers
