"""Logbook: a node that restarted shows on its device's activity."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_FIRMWARE_UPDATE, EVENT_NODE_RESTARTED


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the restart of a node, and the outcome of its firmware updates."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        return {
            LOGBOOK_ENTRY_NAME: event.data["name"],
            LOGBOOK_ENTRY_MESSAGE: (
                f"restarted (up for {event.data['uptime']} s when it reported)"
            ),
        }

    async_describe_event(DOMAIN, EVENT_NODE_RESTARTED, describe)

    @callback
    def describe_update(event: Event) -> dict[str, str]:
        data = event.data
        message = (
            f"firmware updated from {data['from_version']} to {data['version']}"
            if data["error"] is None
            else f"firmware update to {data['version']} failed: {data['error']}"
        )
        return {LOGBOOK_ENTRY_NAME: data["name"], LOGBOOK_ENTRY_MESSAGE: message}

    async_describe_event(DOMAIN, EVENT_FIRMWARE_UPDATE, describe_update)
