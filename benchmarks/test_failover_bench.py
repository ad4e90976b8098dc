"""Failover: from the connected node's power loss to the next fresh reading through another node.

Home Assistant's real Bluetooth manager, the simulated mesh with realistic latencies (connect
0.3-1.5 s, mesh hop 50-300 ms, supervision timeout 4 s). The v0.7 Pi gateway took about 10 s
(2 s link checks, a 5 s scan, then a connect). Target: at most 1.5 s on top of the unavoidable
link-loss detection (the supervision timeout) plus one connection set-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
import statistics
import time

from homeassistant.const import CONF_ADDRESS
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from benchmarks.report import BenchResults
from custom_components.dc_mesh.const import CONF_MESH_ID, DOMAIN
from custom_components.dc_mesh.dcmesh import Event, Reading
from simulator.mesh import Latencies, Mesh, Profile, build_mesh

PI_GATEWAY_SECONDS = 10.0
OVERHEAD_TARGET = 1.5  # s, beyond link-loss detection + one connect
ROUNDS = 3


def _stamp(times: list[float]) -> None:
    times.append(time.monotonic())


def _stamp_reading(times: list[float], event: Event) -> None:
    if isinstance(event, Reading):
        times.append(time.monotonic())


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load dc_mesh from this repository."""


async def _until(predicate: Callable[[], bool], within: float = 30.0) -> float:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("not reached")
        await asyncio.sleep(0.005)
    return time.monotonic()


@pytest.mark.parametrize("profile", [Profile.V1, Profile.V07])
async def test_failover_time(
    hass: HomeAssistant,
    enable_bluetooth: None,
    monkeypatch: pytest.MonkeyPatch,
    profile: Profile,
    bench: BenchResults,
) -> None:
    from simulator.ha import async_register_mesh

    mesh = build_mesh(5, 0, profile=profile, latencies=Latencies.realistic(), seed=11)
    connects: list[float] = []
    original = Mesh.connect

    async def timed_connect(self: Mesh, mac: str, limit: float | None = None):
        started = time.monotonic()
        session = await original(self, mac, limit)
        connects.append(time.monotonic() - started)
        return session

    monkeypatch.setattr(Mesh, "connect", timed_connect)
    unregister = async_register_mesh(hass, mesh, source="dc_mesh_sim")
    key = "legacy" if profile is Profile.V07 else f"{mesh.mesh_id:08x}"
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=key,
        title=key,
        data={CONF_MESH_ID: key, CONF_ADDRESS: mesh.node(0).mac},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data

    totals, detections, reconnects, gatt, first_data = [], [], [], [], []
    for _ in range(ROUNDS):
        link = coordinator.link
        assert link is not None
        lost: list[float] = []
        link.register_disconnect_callback(partial(_stamp, lost))
        gateway = mesh.by_mac(link.address)
        connects.clear()
        t0 = time.monotonic()
        mesh.power_off(gateway.node_id)
        t_lost = await _until(partial(bool, lost))
        t_up = await _until(
            lambda: coordinator.link is not None and coordinator.link.is_connected
        )
        new_link = coordinator.link
        fresh: list[float] = []
        new_link.register_callback(partial(_stamp_reading, fresh))
        t_data = await _until(partial(bool, fresh))
        totals.append(t_data - t0)
        detections.append(t_lost - t0)
        reconnects.append(t_up - t_lost)
        gatt.append(connects[-1])
        first_data.append(t_data - t_up)
        mesh.power_on(gateway.node_id)
        await asyncio.sleep(3.0)  # it boots and advertises again: a candidate once more

    await hass.config_entries.async_unload(entry.entry_id)
    unregister()
    overhead = [t - d - g for t, d, g in zip(totals, detections, gatt, strict=True)]
    median = statistics.median
    bench.add(
        f"Failover: connected node loses power -> fresh reading through another node "
        f"(medians of {ROUNDS} rounds)",
        {
            "profile": str(profile),
            "total": f"{median(totals):.2f} s",
            "detection": f"{median(detections):.2f} s",
            "connect (GATT)": f"{median(reconnects):.2f} s ({median(gatt):.2f} s)",
            "1st reading": f"{median(first_data):.2f} s",
            "overhead (max)": f"{median(overhead):.2f} s ({max(overhead):.2f} s)",
            f"<= {OVERHEAD_TARGET} s": "ok"
            if max(overhead) <= OVERHEAD_TARGET
            else "MISSED",
            "vs Pi gateway": f"{PI_GATEWAY_SECONDS / median(totals):.1f}x faster",
        },
        note=f"total = link-loss detection + pick and connect + first reading; overhead = "
        f"total - detection - GATT connect (target <= {OVERHEAD_TARGET} s in every round); "
        f"v0.7 Pi gateway ~{PI_GATEWAY_SECONDS:.0f} s",
    )
