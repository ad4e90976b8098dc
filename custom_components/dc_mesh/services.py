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
from homeassistant.helpers import config_validation as cv, service
from homeassistant.util.json import JsonValueType
import probatio as vol

from .const import DOMAIN
from .coordinator import DcMeshConfigEntry

SERVICE_SET_MESH_DUTY = "set_mesh_duty"
ATTR_DUTY = "duty"

SET_MESH_DUTY_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_DUTY): vol.All(vol.Coerce(int), vol.Range(min=0, max=100)),
    }
)


async def _async_set_mesh_duty(call: ServiceCall) -> ServiceResponse:
    entry: DcMeshConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data[ATTR_CONFIG_ENTRY_ID]
    )
    confirmed: list[JsonValueType] = list(
        await entry.runtime_data.async_set_mesh_duty(call.data[ATTR_DUTY])
    )
    return {"confirmed_nodes": confirmed}


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
