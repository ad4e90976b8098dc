"""Device conditions of a node: its power above or below a value (W), and whether it is available.

Like Home Assistant's sensor conditions, they test the node's Power sensor: a numeric state
condition (in W, whatever unit the sensor is shown in), and its state not being unavailable.
"""

from __future__ import annotations

from homeassistant.const import (
    CONF_ABOVE,
    CONF_BELOW,
    CONF_CONDITION,
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_ENTITY_ID,
    CONF_TYPE,
    CONF_VALUE_TEMPLATE,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import condition, config_validation as cv
from homeassistant.helpers.typing import ConfigType, TemplateVarsType
import probatio as vol

from .const import DOMAIN
from .device_trigger import (
    KEY_FIRMWARE,
    KEY_POWER,
    POWER_IN_WATTS,
    WATTS,
    async_offered,
    async_watched_entity,
    watts_selector,
)

CONDITION_POWER_ABOVE = "is_power_above"
CONDITION_POWER_BELOW = "is_power_below"
CONDITION_AVAILABLE = "is_available"

CONDITION_SCHEMA = vol.Any(
    cv.DEVICE_CONDITION_BASE_SCHEMA.extend(
        {
            vol.Required(CONF_TYPE): CONDITION_POWER_ABOVE,
            vol.Required(CONF_ABOVE): WATTS,
        }
    ),
    cv.DEVICE_CONDITION_BASE_SCHEMA.extend(
        {
            vol.Required(CONF_TYPE): CONDITION_POWER_BELOW,
            vol.Required(CONF_BELOW): WATTS,
        }
    ),
    cv.DEVICE_CONDITION_BASE_SCHEMA.extend(
        {vol.Required(CONF_TYPE): CONDITION_AVAILABLE}
    ),
)

# The entity each condition tests; a relay's availability is its firmware sensor's.
CONDITION_ENTITIES: dict[str, tuple[str, ...]] = {
    CONDITION_POWER_ABOVE: (KEY_POWER,),
    CONDITION_POWER_BELOW: (KEY_POWER,),
    CONDITION_AVAILABLE: (KEY_POWER, KEY_FIRMWARE),
}


async def async_validate_condition_config(
    hass: HomeAssistant, config: ConfigType
) -> ConfigType:
    """Validate the condition and check that the device has what it tests."""
    config = CONDITION_SCHEMA(config)
    async_watched_entity(
        hass, config[CONF_DEVICE_ID], CONDITION_ENTITIES[config[CONF_TYPE]]
    )
    return config


async def async_get_conditions(
    hass: HomeAssistant, device_id: str
) -> list[dict[str, str]]:
    """The conditions of a node device."""
    return async_offered(
        hass,
        device_id,
        CONDITION_ENTITIES,
        {CONF_CONDITION: "device", CONF_DEVICE_ID: device_id, CONF_DOMAIN: DOMAIN},
    )


async def async_get_condition_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """The value in W of the power conditions."""
    if config[CONF_TYPE] == CONDITION_POWER_ABOVE:
        return {
            "extra_fields": vol.Schema({vol.Required(CONF_ABOVE): watts_selector()})
        }
    if config[CONF_TYPE] == CONDITION_POWER_BELOW:
        return {
            "extra_fields": vol.Schema({vol.Required(CONF_BELOW): watts_selector()})
        }
    return {}


def async_condition_from_config(
    hass: HomeAssistant, config: ConfigType
) -> condition.ConditionCheckerType:
    """The checker of a condition."""
    entity_id = async_watched_entity(
        hass, config[CONF_DEVICE_ID], CONDITION_ENTITIES[config[CONF_TYPE]]
    )
    if config[CONF_TYPE] == CONDITION_AVAILABLE:

        @condition.trace_condition_function
        def available(hass: HomeAssistant, variables: TemplateVarsType = None) -> bool:
            state = hass.states.get(entity_id)
            return state is not None and state.state != STATE_UNAVAILABLE

        return available

    numeric_config: ConfigType = {
        CONF_CONDITION: "numeric_state",
        CONF_ENTITY_ID: entity_id,
        CONF_VALUE_TEMPLATE: POWER_IN_WATTS,
    }
    for key in (CONF_ABOVE, CONF_BELOW):
        if key in config:
            numeric_config[key] = config[key]
    numeric_config = cv.NUMERIC_STATE_CONDITION_SCHEMA(numeric_config)
    numeric_config = condition.numeric_state_validate_config(hass, numeric_config)
    return condition.async_numeric_state_from_config(numeric_config)
