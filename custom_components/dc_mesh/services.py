"""Actions of the integration that act on a whole mesh."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
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


def _loaded_entry(hass: HomeAssistant, entry_id: str) -> DcMeshConfigEntry:
    entry: DcMeshConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_config_entry",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"mesh": entry.title},
        )
    return entry


async def _async_set_mesh_duty(call: ServiceCall) -> None:
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    await entry.runtime_data.async_set_mesh_duty(call.data[ATTR_DUTY])


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, for all meshes)."""
    hass.services.async_register(
        DOMAIN, SERVICE_SET_MESH_DUTY, _async_set_mesh_duty, schema=SET_MESH_DUTY_SCHEMA
    )
