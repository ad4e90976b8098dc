"""Device actions of a node that drives a load: set its duty, run its ramp test, stop it.

They go through the mesh's coordinator like the Duty cycle slider and the ramp button do, so
a duty is confirmed by the node's own reading and failures are the same translated errors.
"Stop" sets duty 0 %, confirmed: it ends a running ramp test, and the power balancer (which
never raises a node above the duty its user set) keeps the load off.
"""

from __future__ import annotations

from homeassistant.components.device_automation.exceptions import (
    InvalidDeviceAutomationConfig,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_DEVICE_ID, CONF_DOMAIN, CONF_TYPE, PERCENTAGE
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    selector,
)
from homeassistant.helpers.typing import ConfigType, TemplateVarsType
import probatio as vol

from .const import DOMAIN
from .coordinator import DcMeshConfigEntry, DcMeshCoordinator
from .device_trigger import async_device_entities

ACTION_SET_DUTY = "set_duty"
ACTION_RAMP = "ramp"
ACTION_STOP = "stop"
ATTR_DUTY = "duty"
# Only nodes with a load have a duty (relays do not).
KEY_DUTY = "duty_setting"

ACTION_SCHEMA = vol.Any(
    cv.DEVICE_ACTION_BASE_SCHEMA.extend(
        {
            vol.Required(CONF_TYPE): ACTION_SET_DUTY,
            vol.Required(ATTR_DUTY): vol.All(
                vol.Coerce(int), vol.Range(min=0, max=100)
            ),
        }
    ),
    cv.DEVICE_ACTION_BASE_SCHEMA.extend(
        {vol.Required(CONF_TYPE): vol.In([ACTION_RAMP, ACTION_STOP])}
    ),
)


async def async_validate_action_config(
    hass: HomeAssistant, config: ConfigType
) -> ConfigType:
    """Validate the action and check that the device is a node with a load."""
    config = ACTION_SCHEMA(config)
    if KEY_DUTY not in async_device_entities(hass, config[CONF_DEVICE_ID]):
        raise InvalidDeviceAutomationConfig(
            translation_domain=DOMAIN,
            translation_key="not_a_load",
            translation_placeholders={"device_id": config[CONF_DEVICE_ID]},
        )
    return config


async def async_get_actions(
    hass: HomeAssistant, device_id: str
) -> list[dict[str, str]]:
    """The actions of a node with a load."""
    if KEY_DUTY not in async_device_entities(hass, device_id):
        return []
    return [
        {CONF_DEVICE_ID: device_id, CONF_DOMAIN: DOMAIN, CONF_TYPE: action_type}
        for action_type in (ACTION_SET_DUTY, ACTION_RAMP, ACTION_STOP)
    ]


async def async_get_action_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """The duty of "set duty": a 0-100 % slider."""
    if config[CONF_TYPE] != ACTION_SET_DUTY:
        return {}
    duty = selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=0,
            max=100,
            step=1,
            unit_of_measurement=PERCENTAGE,
            mode=selector.NumberSelectorMode.SLIDER,
        )
    )
    return {"extra_fields": vol.Schema({vol.Required(ATTR_DUTY): duty})}


async def async_call_action_from_config(
    hass: HomeAssistant,
    config: ConfigType,
    variables: TemplateVarsType,
    context: Context | None,
) -> None:
    """Run the action on the node, through its mesh's coordinator."""
    coordinator, node_id = _node(hass, config[CONF_DEVICE_ID])
    if config[CONF_TYPE] == ACTION_SET_DUTY:
        await coordinator.async_set_duty(node_id, config[ATTR_DUTY])
    elif config[CONF_TYPE] == ACTION_RAMP:
        await coordinator.async_ramp(node_id)
    else:
        await coordinator.async_set_duty(node_id, 0)


def _node(hass: HomeAssistant, device_id: str) -> tuple[DcMeshCoordinator, int]:
    """The coordinator of the node's mesh and the node's id; an error when not loaded."""
    device = dr.async_get(hass).async_get(device_id)
    if device is not None:
        for entry_id in device.config_entries:
            entry: DcMeshConfigEntry | None = hass.config_entries.async_get_entry(
                entry_id
            )
            if (
                entry is None
                or entry.domain != DOMAIN
                or entry.state is not ConfigEntryState.LOADED
            ):
                continue
            coordinator = entry.runtime_data
            prefix = f"{coordinator.mesh_id}_"
            for domain, value in device.identifiers:
                node = value.removeprefix(prefix)
                if domain == DOMAIN and value.startswith(prefix) and node.isdigit():
                    return coordinator, int(node)
    name = device.name_by_user or device.name if device is not None else None
    raise HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="node_not_loaded",
        translation_placeholders={"device": name or device_id},
    )
