"""Library errors to translated Home Assistant errors, for every user command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN
from .dcmesh import DcMeshError, FallbackModeError


@contextmanager
def translate_errors(mesh: str, target: str) -> Iterator[None]:
    """Raise what the library raises for `target` (a node id or ALL) as a translated error."""
    try:
        yield
    except FallbackModeError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="mesh_fallback",
            translation_placeholders={"mesh": mesh},
        ) from err
    except DcMeshError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="command_failed",
            translation_placeholders={"node": target, "error": str(err)},
        ) from err
