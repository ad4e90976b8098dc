"""Tests of the dc_mesh integration, driven through HA's Bluetooth manager and the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import time

from freezegun.api import TickingDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.dc_mesh.const import DOMAIN


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the event loop run until the predicate holds (fail after the timeout).

    For what the simulated radio takes (milliseconds of real time), never for HA's timers.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def advance(
    hass: HomeAssistant, freezer: TickingDateTimeFactory, seconds: float
) -> None:
    """Let `seconds` pass at once: HA's clocks jump, the timers due meanwhile run.

    (`freezer.tick` of a ticking clock would drop the time elapsed since its last jump.)
    """
    freezer.move_to(freezer() + timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def unload_entries(hass: HomeAssistant) -> None:
    """Unload the dc_mesh entries still loaded: before a simulated mesh goes away.

    As when Home Assistant stops with the mesh in range; otherwise they would spend the
    teardown failing over to nodes that vanished.
    """
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
