"""The power budget balancer: pure unit and property tests, then convergence on the simulated mesh."""

from __future__ import annotations

import itertools

from freezegun.api import TickingDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from hypothesis import given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh.const import DOMAIN
from custom_components.dc_mesh.power import NodeLoad, PowerBalancer
from simulator.mesh import Mesh
from simulator.physics import Load

from . import advance
from .conftest import mesh_unique_id


def _physical(slopes: dict[int, float], duties: dict[int, int]) -> list[NodeLoad]:
    return [NodeLoad(n, duties[n], slopes[n] * duties[n]) for n in slopes]


def test_target_is_budget_minus_headroom() -> None:
    balancer = PowerBalancer(budget_mw=5000)
    assert balancer.target_mw == 4500


def test_disabled_plans_nothing_and_disable_restores() -> None:
    balancer = PowerBalancer(budget_mw=1000)
    loads = _physical({0: 100.0}, {0: 80})
    assert balancer.plan(loads, 0.0) == {}
    balancer.enable({0: 80})
    assert balancer.plan(loads, 0.0) == {0: 70}  # bounded step of 10
    assert balancer.disable() == {0: 80}
    assert not balancer.enabled


def test_cooldown_between_rounds() -> None:
    balancer = PowerBalancer(budget_mw=1000, cooldown=5.0)
    balancer.enable({0: 100})
    assert balancer.plan(_physical({0: 100.0}, {0: 100}), 0.0)
    assert balancer.plan(_physical({0: 100.0}, {0: 90}), 1.0) == {}
    assert balancer.plan(_physical({0: 100.0}, {0: 90}), 5.0)


def test_priority_node_gets_twice_the_share_and_surplus_goes_to_others() -> None:
    balancer = PowerBalancer(budget_mw=3500, max_step=100, cooldown=0)
    balancer.enable({0: 100, 1: 100, 2: 100})
    balancer.priority_node = 0
    slopes = {0: 100.0, 1: 100.0, 2: 100.0}
    plan = balancer.plan(_physical(slopes, {0: 100, 1: 100, 2: 100}), 0.0)
    assert plan == {0: 15, 1: 8, 2: 8}  # shares 1500/750/750 mW
    # A priority node that cannot use its share leaves it to the others.
    balancer = PowerBalancer(budget_mw=3500, max_step=100, cooldown=0)
    balancer.enable({0: 5, 1: 100, 2: 100})
    balancer.priority_node = 0
    plan = balancer.plan(_physical(slopes, {0: 5, 1: 100, 2: 100}), 0.0)
    assert 0 not in plan  # already at its ceiling
    assert plan == {1: 12, 2: 12}  # 2500 mW left for two nodes: 12.5 % each


@settings(max_examples=200, deadline=None)
@given(
    slopes=st.dictionaries(
        st.integers(0, 9), st.floats(1.0, 500.0), min_size=1, max_size=10
    ),
    duties=st.lists(st.integers(0, 100), min_size=10, max_size=10),
    ceilings=st.lists(st.integers(0, 100), min_size=10, max_size=10),
    threshold=st.floats(0.0, 60_000.0),
    priority=st.one_of(st.none(), st.integers(0, 9)),
)
def test_plans_stay_within_ceiling_and_step(
    slopes: dict[int, float],
    duties: list[int],
    ceilings: list[int],
    threshold: float,
    priority: int | None,
) -> None:
    balancer = PowerBalancer(budget_mw=threshold, max_step=10, cooldown=0)
    balancer.enable({n: ceilings[n] for n in slopes})
    balancer.priority_node = priority
    current = {n: duties[n] for n in slopes}
    for round_ in range(3):
        plan = balancer.plan(_physical(slopes, current), float(round_))
        for node, duty in plan.items():
            assert 0 <= duty <= ceilings[node]
            assert abs(duty - current[node]) <= 10 or current[node] > ceilings[node]
        current.update(plan)


@settings(max_examples=100, deadline=None)
@given(
    slopes=st.lists(st.floats(20.0, 200.0), min_size=2, max_size=6),
    fraction=st.floats(0.2, 0.8),
)
def test_converges_without_oscillation(slopes: list[float], fraction: float) -> None:
    """Demand above budget: within +-5 % of the budget, and never overshooting back and forth."""
    loads = dict(enumerate(slopes))
    full = sum(slope * 100 for slope in slopes)
    balancer = PowerBalancer(budget_mw=full * fraction + 500, cooldown=0)
    duties = dict.fromkeys(loads, 100)
    balancer.enable(duties)
    errors = []
    for round_ in range(30):
        duties.update(balancer.plan(_physical(loads, duties), float(round_)))
        errors.append(sum(loads[n] * duties[n] for n in loads) - balancer.target_mw)
    assert abs(errors[-1]) <= 0.05 * balancer.target_mw
    crossings = sum(
        1
        for a, b in itertools.pairwise(errors)
        if abs(a) > 0.05 * balancer.target_mw
        and abs(b) > 0.05 * balancer.target_mw
        and (a > 0) != (b > 0)
    )
    assert crossings <= 1


def _total_w(hass: HomeAssistant, key: str) -> float:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{key}_total_power"
    )
    assert entity_id is not None
    return float(hass.states.get(entity_id).state)


async def _polls(
    hass: HomeAssistant, freezer: TickingDateTimeFactory, key: str, count: int
) -> list[float]:
    """Let `count` poll intervals pass; the total power shown after each."""
    totals = []
    for _ in range(count):
        await advance(hass, freezer, 10)
        totals.append(_total_w(hass, key))
    return totals


async def _balance(
    hass: HomeAssistant, mesh: Mesh, entry: MockConfigEntry, budget_w: float
) -> None:
    """As a user does: every load at 100 %, a power budget, balancing on."""
    key = mesh_unique_id(mesh)
    registry = er.async_get(hass)
    await hass.services.async_call(
        DOMAIN,
        "set_mesh_duty",
        {"config_entry_id": entry.entry_id, "duty": 100},
        blocking=True,
    )
    await hass.services.async_call(
        "number",
        "set_value",
        {
            "entity_id": registry.async_get_entity_id(
                "number", DOMAIN, f"{key}_power_budget"
            ),
            "value": budget_w,
        },
        blocking=True,
    )
    await hass.services.async_call(
        "switch",
        "turn_on",
        {
            "entity_id": registry.async_get_entity_id(
                "switch", DOMAIN, f"{key}_balancing"
            )
        },
        blocking=True,
    )


async def test_balances_the_simulated_mesh(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    """A user sets a budget and turns balancing on; the mesh settles, also when a node drops."""
    key = mesh_unique_id(mesh)
    registry = er.async_get(hass)

    def entity(platform: str, suffix: str) -> str:
        entity_id = registry.async_get_entity_id(platform, DOMAIN, f"{key}_{suffix}")
        assert entity_id is not None
        return entity_id

    # Different loads per node: 6 W, 4 W, 3 W, 2 W at full duty.
    for node_id, resistance in enumerate((24.0, 36.0, 48.0, 72.0)):
        mesh.node(node_id).load = Load(supply_voltage=12.0, load_resistance=resistance)
    await _balance(hass, mesh, loaded_entry, 8.5)
    target = 8.0  # 8.5 W budget of a 15 W demand, 0.5 W headroom

    totals = await _polls(hass, freezer, key, 15)
    assert abs(totals[-1] - target) <= 0.05 * target, totals
    assert all(abs(t - target) <= 0.05 * target for t in totals[-3:]), totals

    # A node drops out: once it is stale, the others take its share, within the budget.
    mesh.power_off(3)
    totals = await _polls(hass, freezer, key, 15)
    assert abs(totals[-1] - target) <= 0.05 * target, totals

    # It comes back (at its old duty): the mesh settles again.
    mesh.power_on(3)
    totals = await _polls(hass, freezer, key, 20)
    assert abs(totals[-1] - target) <= 0.05 * target, totals
    assert all(abs(t - target) <= 0.05 * target for t in totals[-3:]), totals

    # Balancing off restores the user's duties.
    await hass.services.async_call(
        "switch",
        "turn_off",
        {"entity_id": entity("switch", "balancing")},
        blocking=True,
    )
    assert all(mesh.node(n).duty == 100 for n in range(4))


async def test_balancer_settings_survive_restart(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    from homeassistant.core import State
    from pytest_homeassistant_custom_component.common import (
        mock_restore_cache_with_extra_data,
    )

    key = mesh_unique_id(mesh)
    registry = er.async_get(hass)
    ids = {}
    for platform, suffix in (
        ("number", "power_budget"),
        ("select", "priority_node"),
        ("switch", "balancing"),
    ):
        ids[platform] = registry.async_get_or_create(
            platform, DOMAIN, f"{key}_{suffix}", suggested_object_id=f"mesh_{suffix}"
        ).entity_id
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(ids["number"], "7.5"),
                {
                    "native_value": 7.5,
                    "native_min_value": 0,
                    "native_max_value": 1000,
                    "native_step": 0.1,
                    "native_unit_of_measurement": "W",
                },
            ),
            (State(ids["select"], "2"), {}),
            (State(ids["switch"], "on"), {"ceilings": {"0": 80, "1": 60}}),
        ],
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    balancer = config_entry.runtime_data.balancer
    assert balancer.budget_mw == 7500
    assert balancer.priority_node == 2
    assert balancer.enabled
    assert dict(balancer.ceilings) == {0: 80, 1: 60}
    assert hass.states.get(ids["switch"]).state == "on"
    # Turning it off restores the user's own duties from before the restart.
    await config_entry.runtime_data.balancer_control.async_set_enabled(False)
    assert mesh.node(0).duty == 80
    assert mesh.node(1).duty == 60
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_balancer_failures_are_logged_once(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A round the mesh refuses is a warning once; the next good round says so."""
    await _balance(hass, mesh, loaded_entry, 1.0)
    gateway = mesh.by_mac(loaded_entry.runtime_data.data.gateway_address).node_id
    for _ in range(2):
        # (a poll's own SENDs, and reads of nodes that missed it, pass)
        mesh.fail_next_send(gateway, "MESH_SEND_FAIL", command="DUTY")
        await advance(hass, freezer, 10)
    assert caplog.text.count("could not set") == 1
    for _ in range(3):
        await advance(hass, freezer, 10)
    assert "sets duties again" in caplog.text
