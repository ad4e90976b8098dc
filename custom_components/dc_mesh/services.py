"""Actions of the integration that act on a whole mesh."""

from __future__ import annotations

from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, service
from homeassistant.util.json import JsonValueType
import probatio as vol

from .const import DOMAIN
from .coordinator import DcMeshConfigEntry

SERVICE_SET_MESH_DUTY = "set_mesh_duty"
SERVICE_UPDATE_MESH_FIRMWARE = "update_mesh_firmware"
SERVICE_CANCEL_FIRMWARE_UPDATE = "cancel_firmware_update"
ATTR_DUTY = "duty"
ATTR_VERSION = "version"

SET_MESH_DUTY_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_DUTY): vol.All(vol.Coerce(int), vol.Range(min=0, max=100)),
    }
)

UPDATE_MESH_FIRMWARE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_VERSION): vol.Match(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$"),
    }
)
CANCEL_FIRMWARE_UPDATE_SCHEMA = vol.Schema(
    {vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
)


def _entry(call: ServiceCall) -> DcMeshConfigEntry:
    entry: DcMeshConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data[ATTR_CONFIG_ENTRY_ID]
    )
    return entry


async def _async_set_mesh_duty(call: ServiceCall) -> ServiceResponse:
    confirmed: list[JsonValueType] = list(
        await _entry(call).runtime_data.async_set_mesh_duty(call.data[ATTR_DUTY])
    )
    return {"confirmed_nodes": confirmed}


async def _async_update_mesh_firmware(call: ServiceCall) -> ServiceResponse:
    """Start a progressive rollout; it runs on (progress on the update entities)."""
    updater = _entry(call).runtime_data.updater
    await updater.catalog.async_refresh()
    phases = updater.async_start_rollout(call.data.get(ATTR_VERSION))
    return {"phases": [list[JsonValueType](phase) for phase in phases]}


async def _async_cancel_firmware_update(call: ServiceCall) -> None:
    entry = _entry(call)
    if not entry.runtime_data.updater.async_cancel_rollout():
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_rollout",
            translation_placeholders={"mesh": entry.title},
        )


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, for all meshes)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_MESH_DUTY,
        _async_set_mesh_duty,
        schema=SET_MESH_DUTY_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_UPDATE_MESH_FIRMWARE,
        _async_update_mesh_firmware,
        schema=UPDATE_MESH_FIRMWARE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CANCEL_FIRMWARE_UPDATE,
        _async_cancel_firmware_update,
        schema=CANCEL_FIRMWARE_UPDATE_SCHEMA,
    )
