"""Device triggers: a node's power crossing a value or going offline; failovers of a mesh.

They are built on the node's and the mesh's own entities, as Home Assistant's sensor triggers
are: the power triggers are numeric state triggers on the node's Power sensor (compared in W,
whatever unit the sensor is shown in), "went offline" is a state trigger on it. On the mesh's
hub device, "failover happened" fires when the failover count goes up and "gateway changed"
when the gateway node differs from the one before; both look past the moments a sensor is
unavailable while the mesh fails over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import json
from typing import Any

from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.device_automation.exceptions import (
    InvalidDeviceAutomationConfig,
)
from homeassistant.components.homeassistant.triggers import (
    numeric_state as numeric_state_trigger,
    state as state_trigger,
)
from homeassistant.const import (
    CONF_ABOVE,
    CONF_BELOW,
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_ENTITY_ID,
    CONF_FOR,
    CONF_PLATFORM,
    CONF_TYPE,
    CONF_VALUE_TEMPLATE,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    UnitOfPower,
)
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HassJob,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
    selector,
)
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType
from homeassistant.util.unit_conversion import PowerConverter
import probatio as vol

from .const import DOMAIN

# Node devices.
TRIGGER_POWER_ABOVE = "power_above"
TRIGGER_POWER_BELOW = "power_below"
TRIGGER_WENT_OFFLINE = "went_offline"
# The mesh's hub device.
TRIGGER_FAILOVER = "failover"
TRIGGER_GATEWAY_CHANGED = "gateway_changed"

# Keys of the entities the triggers and conditions watch (unique id = device identifier _ key).
KEY_POWER = "power"
KEY_FIRMWARE = "firmware"
KEY_FAILOVER_COUNT = "failover_count"
KEY_GATEWAY_NODE = "gateway_node"

# A node's power in W, whatever unit its sensor is shown in; a state that is not a number
# (unavailable) renders as "unknown", which never matches (and logs nothing).
_WATTS_PER_UNIT = {
    str(unit): PowerConverter.convert(1, unit, UnitOfPower.WATT)
    for unit in PowerConverter.VALID_UNITS
}
POWER_IN_WATTS = (
    "{% set factor = "
    + json.dumps(_WATTS_PER_UNIT, sort_keys=True)
    + ".get(state.attributes.unit_of_measurement) %}"
    "{{ state.state | float * factor"
    " if factor is not none and is_number(state.state) else 'unknown' }}"
)

WATTS = vol.Coerce(float)
_FOR = {vol.Optional(CONF_FOR): cv.positive_time_period_dict}

TRIGGER_SCHEMA = vol.Any(
    DEVICE_TRIGGER_BASE_SCHEMA.extend(
        {vol.Required(CONF_TYPE): TRIGGER_POWER_ABOVE, vol.Required(CONF_ABOVE): WATTS}
        | _FOR
    ),
    DEVICE_TRIGGER_BASE_SCHEMA.extend(
        {vol.Required(CONF_TYPE): TRIGGER_POWER_BELOW, vol.Required(CONF_BELOW): WATTS}
        | _FOR
    ),
    DEVICE_TRIGGER_BASE_SCHEMA.extend(
        {vol.Required(CONF_TYPE): TRIGGER_WENT_OFFLINE} | _FOR
    ),
    DEVICE_TRIGGER_BASE_SCHEMA.extend(
        {vol.Required(CONF_TYPE): vol.In([TRIGGER_FAILOVER, TRIGGER_GATEWAY_CHANGED])}
    ),
)

# The entity each trigger watches; "went offline" takes the firmware sensor of a relay.
TRIGGER_ENTITIES: dict[str, tuple[str, ...]] = {
    TRIGGER_POWER_ABOVE: (KEY_POWER,),
    TRIGGER_POWER_BELOW: (KEY_POWER,),
    TRIGGER_WENT_OFFLINE: (KEY_POWER, KEY_FIRMWARE),
    TRIGGER_FAILOVER: (KEY_FAILOVER_COUNT,),
    TRIGGER_GATEWAY_CHANGED: (KEY_GATEWAY_NODE,),
}


@callback
def async_device_entities(hass: HomeAssistant, device_id: str) -> dict[str, str]:
    """The integration's entities of a device: entity id by key.

    A key is what follows the device's own identifier in the entity's unique id
    ("power" of a node, "failover_count" of a mesh).
    """
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return {}
    prefixes = [f"{value}_" for domain, value in device.identifiers if domain == DOMAIN]
    entities: dict[str, str] = {}
    for entry in er.async_entries_for_device(er.async_get(hass), device_id):
        if entry.platform != DOMAIN:
            continue
        for prefix in prefixes:
            if entry.unique_id.startswith(prefix):
                entities[entry.unique_id.removeprefix(prefix)] = entry.entity_id
    return entities


@callback
def async_watched_entity(
    hass: HomeAssistant, device_id: str, keys: tuple[str, ...]
) -> str:
    """The entity of the device that a trigger or condition watches (the first key found)."""
    entities = async_device_entities(hass, device_id)
    for key in keys:
        if key in entities:
            return entities[key]
    raise InvalidDeviceAutomationConfig(
        translation_domain=DOMAIN,
        translation_key="device_lacks_entity",
        translation_placeholders={"device_id": device_id, "entity": " or ".join(keys)},
    )


def async_offered(
    hass: HomeAssistant,
    device_id: str,
    table: Mapping[str, tuple[str, ...]],
    base: dict[str, str],
) -> list[dict[str, str]]:
    """The automation types of `table` whose entities the device has, each on `base`."""
    entities = async_device_entities(hass, device_id)
    return [
        base | {CONF_TYPE: kind}
        for kind, keys in table.items()
        if any(key in entities for key in keys)
    ]


async def async_validate_trigger_config(
    hass: HomeAssistant, config: ConfigType
) -> ConfigType:
    """Validate the trigger and check that the device has what it watches."""
    config = TRIGGER_SCHEMA(config)
    async_watched_entity(
        hass, config[CONF_DEVICE_ID], TRIGGER_ENTITIES[config[CONF_TYPE]]
    )
    return config


async def async_get_triggers(
    hass: HomeAssistant, device_id: str
) -> list[dict[str, str]]:
    """The triggers of a node device or of a mesh's hub device."""
    return async_offered(
        hass,
        device_id,
        TRIGGER_ENTITIES,
        {CONF_PLATFORM: "device", CONF_DEVICE_ID: device_id, CONF_DOMAIN: DOMAIN},
    )


async def async_get_trigger_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """The threshold in W of the power triggers, and how long a state must hold."""
    trigger_type = config[CONF_TYPE]
    if trigger_type not in (
        TRIGGER_POWER_ABOVE,
        TRIGGER_POWER_BELOW,
        TRIGGER_WENT_OFFLINE,
    ):
        return {}
    fields: dict[vol.Marker, Any] = {}
    if trigger_type == TRIGGER_POWER_ABOVE:
        fields[vol.Required(CONF_ABOVE)] = watts_selector()
    elif trigger_type == TRIGGER_POWER_BELOW:
        fields[vol.Required(CONF_BELOW)] = watts_selector()
    fields[vol.Optional(CONF_FOR)] = selector.DurationSelector()
    return {"extra_fields": vol.Schema(fields)}


def watts_selector() -> selector.NumberSelector:
    """A number field in W."""
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=0,
            step="any",
            unit_of_measurement=UnitOfPower.WATT,
            mode=selector.NumberSelectorMode.BOX,
        )
    )


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Attach a trigger."""
    trigger_type: str = config[CONF_TYPE]
    entity_id = async_watched_entity(
        hass, config[CONF_DEVICE_ID], TRIGGER_ENTITIES[trigger_type]
    )
    if trigger_type in (TRIGGER_POWER_ABOVE, TRIGGER_POWER_BELOW):
        numeric_config: ConfigType = {
            CONF_PLATFORM: "numeric_state",
            CONF_ENTITY_ID: [entity_id],
            CONF_VALUE_TEMPLATE: POWER_IN_WATTS,
        }
        for key in (CONF_ABOVE, CONF_BELOW, CONF_FOR):
            if key in config:
                numeric_config[key] = config[key]
        numeric_config = await numeric_state_trigger.async_validate_trigger_config(
            hass, numeric_config
        )
        return await numeric_state_trigger.async_attach_trigger(
            hass, numeric_config, action, trigger_info, platform_type="device"
        )
    if trigger_type == TRIGGER_WENT_OFFLINE:
        state_config: ConfigType = {
            CONF_PLATFORM: "state",
            CONF_ENTITY_ID: [entity_id],
            state_trigger.CONF_TO: STATE_UNAVAILABLE,
        }
        if CONF_FOR in config:
            state_config[CONF_FOR] = config[CONF_FOR]
        state_config = await state_trigger.async_validate_trigger_config(
            hass, state_config
        )
        return await state_trigger.async_attach_trigger(
            hass, state_config, action, trigger_info, platform_type="device"
        )
    if trigger_type == TRIGGER_FAILOVER:
        return _async_attach_change_trigger(
            hass,
            config,
            entity_id,
            action,
            trigger_info,
            changed=lambda old, new: float(new.state) > float(old.state),
        )
    return _async_attach_change_trigger(
        hass,
        config,
        entity_id,
        action,
        trigger_info,
        changed=lambda old, new: new.state != old.state,
    )


def _known(state: State | None) -> bool:
    return state is not None and state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)


@callback
def _async_attach_change_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    entity_id: str,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
    *,
    changed: Callable[[State, State], bool],
) -> CALLBACK_TYPE:
    """Fire when the entity's value changed from the last one it had (not unavailable).

    `from_state` is that last known state: a failover shows as "2" -> "3", not as the
    "unavailable" in between.
    """
    job = HassJob(action, f"dc_mesh {config[CONF_TYPE]} trigger {trigger_info}")
    trigger_data = trigger_info["trigger_data"]
    current = hass.states.get(entity_id)
    last_known = current if _known(current) else None

    @callback
    def _state_changed(event: Event[EventStateChangedData]) -> None:
        nonlocal last_known
        new_state = event.data["new_state"]
        if new_state is None or not _known(new_state):
            return
        old_state, last_known = last_known, new_state
        if old_state is None or not changed(old_state, new_state):
            return
        hass.async_run_hass_job(
            job,
            {
                "trigger": {
                    **trigger_data,
                    CONF_PLATFORM: "device",
                    CONF_DOMAIN: DOMAIN,
                    CONF_DEVICE_ID: config[CONF_DEVICE_ID],
                    CONF_TYPE: config[CONF_TYPE],
                    CONF_ENTITY_ID: entity_id,
                    "from_state": old_state,
                    "to_state": new_state,
                    "description": f"{config[CONF_TYPE]} of {entity_id}",
                }
            },
            event.context,
        )

    return async_track_state_change_event(hass, [entity_id], _state_changed)
