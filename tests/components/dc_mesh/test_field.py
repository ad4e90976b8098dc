"""Field faults: rogue advertisers, user duty vs balancer, unload while connecting, relays."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from unittest.mock import patch

from freezegun.api import TickingDateTimeFactory
from homeassistant.components import bluetooth
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh import async_remove_config_entry_device
from custom_components.dc_mesh.connection import _Race
from custom_components.dc_mesh.const import DOMAIN, FAILOVER_TIMING
from custom_components.dc_mesh.coordinator import DcMeshCoordinator
from simulator.ha import async_register_mesh
from simulator.mesh import Latencies, Mesh, Profile, build_mesh

from . import advance, wait_for
from .conftest import mesh_unique_id


@pytest.mark.parametrize("copies_everything", [False, True])
async def test_rogue_copying_the_mesh_id_never_becomes_gateway(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    copies_everything: bool,
) -> None:
    """A louder device advertising our mesh id is refused, also when its INFO says it too.

    Without a key its INFO gives it away (another mesh); a copy of everything public still
    cannot prove the mesh key.
    """
    coordinator = loaded_entry.runtime_data
    rogue = build_mesh(1, 0, latencies=Latencies.fast(), seed=99)  # other keys
    if copies_everything:
        rogue.mesh_id = mesh.mesh_id
    else:
        rogue.mesh_id = 0x0BADBAD0
        rogue.advertised_mesh_id = mesh.mesh_id
    rogue.node(0).rssi = -20  # louder than every real node
    unregister = async_register_mesh(hass, rogue, source="rogue_proxy")
    try:
        await hass.async_block_till_done()
        assert rogue.node(0).mac in {
            info.address for info in coordinator.connection.candidates()
        }
        for _ in range(3):  # the gateway dies again and again
            link = coordinator.link
            assert link is not None
            mesh.drop_link(mesh.by_mac(link.address).node_id)
            await wait_for(
                lambda link=link: (
                    coordinator.link is not None and coordinator.link is not link
                ),
                timeout=15,
            )
            assert coordinator.link.address != rogue.node(0).mac
        assert "refused" in caplog.text
        warnings = [
            r
            for r in caplog.records
            if r.levelno == logging.WARNING and rogue.node(0).mac in r.getMessage()
        ]
        assert len(warnings) == 1  # one warning, not one per try
        if copies_everything:
            assert "does not prove the mesh key" in warnings[0].getMessage()
            assert not list(loaded_entry.async_get_active_flows(hass, {"reauth"}))
        assert rogue.node(0).duty == 0  # nothing was ever sent to drive its load
    finally:
        unregister()


@pytest.mark.parametrize("profile", [Profile.V07, Profile.V1])
async def test_mesh_open_to_anyone_raises_a_repair(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry, profile: Profile
) -> None:
    """v0.7 nodes take commands from anyone in range: say so; a v1 mesh with a session is fine."""
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"insecure_mesh_{loaded_entry.entry_id}"
    )
    if profile is Profile.V07:
        assert issue is not None
        assert issue.translation_key == "insecure_mesh"
        assert issue.severity is ir.IssueSeverity.WARNING
    else:
        assert issue is None
        assert loaded_entry.runtime_data.link.authenticated


async def test_user_duty_is_the_balancers_limit_before_it_is_sent(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """Polls racing a user's duty neither revert it nor fake a failed confirmation."""
    coordinator = loaded_entry.runtime_data
    registry = er.async_get(hass)
    key = mesh_unique_id(mesh)
    budget = registry.async_get_entity_id("number", DOMAIN, f"{key}_power_budget")
    balancing = registry.async_get_entity_id("switch", DOMAIN, f"{key}_balancing")
    await hass.services.async_call(  # the balancer only holds nodes at their limit
        "number", "set_value", {"entity_id": budget, "value": 1000}, blocking=True
    )
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": balancing}, blocking=True
    )
    for duty in (40, 10, 70, 25):
        results = await asyncio.gather(
            coordinator.async_refresh(),
            coordinator.async_set_duty(1, duty),
            coordinator.async_refresh(),
            return_exceptions=True,
        )
        assert not [r for r in results if isinstance(r, Exception)]
        assert coordinator.balancer.ceilings[1] == duty
        # the balancer may nudge it down, never above the user's duty
        assert mesh.node(1).duty <= duty
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": balancing}, blocking=True
    )
    for duty in (40, 10):
        results = await asyncio.gather(
            coordinator.async_refresh(),
            coordinator.async_set_duty(1, duty),
            coordinator.async_refresh(),
            return_exceptions=True,
        )
        assert not [r for r in results if isinstance(r, Exception)]
        assert mesh.node(1).duty == duty
        assert coordinator.data.nodes[1].reading.duty == duty


async def test_no_link_is_adopted_after_unload(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    coordinator = loaded_entry.runtime_data
    link = coordinator.link
    assert link is not None
    for node_id in range(4):
        mesh.slow_connections(node_id, 0.3)
    mesh.drop_link(mesh.by_mac(link.address).node_id)
    await wait_for(lambda: coordinator.connection.failing_over)
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    await advance(hass, freezer, 2)  # longer than the slowed connection attempt
    assert coordinator.link is None
    assert not any(mesh.node(n).sessions for n in range(4))


async def test_silent_relay_goes_unavailable_and_can_be_removed(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    coordinator = loaded_entry.runtime_data
    relay_id = 4
    await coordinator.async_refresh()
    assert coordinator.data.nodes[relay_id].available
    devices = dr.async_get(hass)
    relay = devices.async_get_device_by_identifier(
        (DOMAIN, f"{mesh_unique_id(mesh)}_{relay_id}"), loaded_entry.entry_id
    )
    assert relay is not None
    assert not await async_remove_config_entry_device(hass, loaded_entry, relay)
    mesh.power_off(relay_id)
    # INFO is asked again every 5 minutes; 15 minutes without an answer: unavailable.
    for _ in range(16):
        await advance(hass, freezer, 60)
    assert not coordinator.data.nodes[relay_id].available
    assert all(coordinator.data.nodes[n].available for n in range(4))
    assert await async_remove_config_entry_device(hass, loaded_entry, relay)


async def test_repairs_go_with_their_entry(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    from homeassistant.helpers import issue_registry as ir

    loaded_entry = config_entry
    loaded_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await hass.async_block_till_done()
    issues = ir.async_get(hass)
    for kind in ("mesh_unreachable", "mesh_fallback"):
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"{kind}_{loaded_entry.entry_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=kind,
            translation_placeholders={"mesh": "m", "minutes": "10"},
        )
    await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert not [i for i in issues.issues.values() if i.domain == DOMAIN]


async def test_flapping_gateway_is_retried_ever_more_slowly(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With one node left that drops every link, reconnections back off; one log line."""
    caplog.set_level(logging.INFO, logger="custom_components.dc_mesh")
    coordinator = loaded_entry.runtime_data
    link = coordinator.link
    assert link is not None
    survivor = mesh.by_mac(link.address).node_id
    for node_id in range(4):
        if node_id != survivor:
            mesh.power_off(node_id)
    connects: list[float] = []
    loop = asyncio.get_running_loop()
    for _ in range(3):
        mesh.drop_link(survivor)
        await wait_for(lambda: coordinator.link is None)
        await wait_for(lambda: coordinator.link is not None, timeout=15)
        connects.append(loop.time())
    gaps = [b - a for a, b in itertools.pairwise(connects)]
    assert gaps[1] > gaps[0]  # 1 s, then 2 s ... (the back-off holds)
    assert caplog.text.count("Lost the link") == 1
    assert caplog.text.count("reachable again") == 1


async def test_dead_next_candidate_does_not_stall_the_failover(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """Gateway and the next best node share a power circuit: both die at once.

    HA still holds the second one's last advertisement, so it may be tried first; a
    connection to it only times out (8 s here). The next live node is tried alongside
    after `race_after`, and wins.
    """
    coordinator = loaded_entry.runtime_data
    mesh.latencies = dataclasses.replace(mesh.latencies, connect_failure=8.0)
    gateway = coordinator.link.address
    ranked = [
        info.address
        for info in coordinator.connection.candidates()
        if info.address != gateway
    ]
    for address in (gateway, ranked[0]):
        mesh.power_off(mesh.by_mac(address).node_id)
    await wait_for(
        lambda: (
            coordinator.link is not None
            and coordinator.link.address not in (gateway, ranked[0])
        ),
        timeout=4,  # the dead node's 8 s time-out is not waited for
    )
    # the attempt on the dead node was cancelled: no connection slot stays taken
    await hass.async_block_till_done()
    assert not mesh.by_mac(ranked[0]).sessions


async def _set_up_quick_return(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> DcMeshCoordinator:
    """Set the entry up with nodes counted as back after 0.3 s of silence (not 3 s)."""
    timing = dataclasses.replace(FAILOVER_TIMING, recent=0.3)
    with patch("custom_components.dc_mesh.connection.FAILOVER_TIMING", timing):
        config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    return config_entry.runtime_data


async def test_first_node_back_after_a_total_outage_is_tried_at_once(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    """Every node was gone and failed; the first advertisement of one ends the wait."""
    coordinator = await _set_up_quick_return(hass, config_entry)
    connection = coordinator.connection
    for node_id in range(4):
        mesh.power_off(node_id)
    addresses = [mesh.node(n).mac for n in range(4)]
    await wait_for(
        lambda: (
            coordinator.link is None
            and connection.failing_over
            and all(
                connection.policy.cooling_off(a, bluetooth.MONOTONIC_TIME())
                for a in addresses
            )
        ),
        timeout=10,
    )
    # Back-off: by now the next round is seconds away. Node 2 comes back.
    await wait_for(
        lambda: bluetooth.MONOTONIC_TIME() - connection._heard[addresses[2]] > 0.3
    )
    mesh.power_on(2)
    await wait_for(lambda: coordinator.link is not None, timeout=1.0)
    assert coordinator.link.address == addresses[2]
    await hass.config_entries.async_unload(config_entry.entry_id)


@pytest.mark.parametrize("being_tried", [True, False], ids=["tried", "queued"])
async def test_node_back_during_a_round_through_dead_nodes_goes_first(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry, being_tried: bool
) -> None:
    """Every node is off; a round works through their cached advertisements (each try
    only times out, 8 s here). The first node back is tried at once, not at its turn.

    `being_tried`: the node that comes back is one of the two attempts already running
    (begun while it was off: that attempt starts over) or still waits in the queue (the
    oldest attempt on a silent node gives up its slot).
    """
    coordinator = await _set_up_quick_return(hass, config_entry)
    connection = coordinator.connection
    mesh.latencies = dataclasses.replace(mesh.latencies, connect_failure=8.0)
    for node_id in range(4):
        mesh.power_off(node_id)
    await wait_for(
        lambda: connection._racing is not None and len(connection._racing.pending) == 2,
        timeout=4,
    )
    race = connection._racing
    tried = {address for address, _ in race.pending.values()}
    back = next(
        node
        for node in mesh.nodes[:4]
        if (node.mac in tried) is being_tried
        and (being_tried or node.mac in {i.address for i in race.queue})
    )
    await wait_for(
        lambda: bluetooth.MONOTONIC_TIME() - connection._heard[back.mac] > 0.3
    )
    mesh.power_on(back.node_id)
    await wait_for(lambda: coordinator.link is not None, timeout=3)  # not 8 s
    assert coordinator.link.address == back.mac
    await hass.async_block_till_done()
    for node in mesh.nodes[:4]:  # the cancelled attempts left no connection behind
        assert len(node.sessions) == (node is back)
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_round_restarts_only_attempts_on_a_node_that_was_off(
    hass: HomeAssistant, mesh: Mesh
) -> None:
    """Which running attempts a node heard mid-round replaces, and which it leaves alone.

    An attempt that began before the node's silence stays (a proxy may stop scanning while
    it connects); one that began during it was on a node that was off. With two attempts
    on nodes on air, a node heard is next in line: never a third attempt.
    """
    info = {i.address: i for i in bluetooth.async_discovered_service_info(hass)}
    a, b, c = (mesh.node(n).mac for n in range(3))
    loop = asyncio.get_running_loop()
    old, new, other = (loop.create_future() for _ in range(3))
    race = _Race([info[c]])
    race.pending = {old: (a, 10.0), new: (a, 12.5), other: (b, 12.6)}
    race.back(a, silent_since=11.0)
    assert race.stale == {new}
    race.hurry(info[a])  # an attempt on it runs, begun before its silence: left alone
    assert race.hurried == []
    del race.pending[old]
    race.hurry(info[a])
    assert race.hurried == [info[a]]
    assert race.make_room(a, lambda _: True) == [new]  # its own attempt starts over
    assert new.cancelled()
    race.pending = {old: (b, 13.0), other: (c, 13.1)}
    assert race.make_room(a, lambda address: address == c) == [other]
    race.pending = {old: (b, 13.0), other: (c, 13.1)}
    assert race.make_room(a, lambda _: False) == []  # both on air: it waits its turn
