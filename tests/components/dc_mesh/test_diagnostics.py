"""Diagnostics download."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from simulator.mesh import Mesh


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, loaded_entry
    )
    assert diagnostics["entry"]["data"]["address"] == "**REDACTED**"
    assert diagnostics["mesh"]["connected"] is True
    assert diagnostics["mesh"]["gateway_address"] == "**REDACTED**"
    assert diagnostics["mesh"]["mode"] == "v1"
    assert diagnostics["mesh"]["link_stats"]["connects"] == 1
    assert set(diagnostics["nodes"]) == {"0", "1", "2", "3", "4"}
    assert diagnostics["nodes"]["1"]["reading"]["voltage"] > 11
    assert diagnostics["nodes"]["4"]["info"]["role"] == "R"
    assert diagnostics["balancer"]["enabled"] is False
