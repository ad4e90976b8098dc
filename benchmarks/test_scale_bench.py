"""Scale: Home Assistant's work per reading when meshes push readings (1 per node per second).

N meshes of 10 v1 nodes (node ids stop at 9 in v1 today), realistic latencies; on each mesh a
second client runs `ALL:MONITOR` on the gateway node, so every node's reading arrives once a
second through the integration's link (polling is switched off so it does not stop the
monitor). Measured over a window: integration CPU per reading (process CPU minus a baseline run
of the same simulator and monitor clients without Home Assistant entries), state writes per
reading (state_changed + state_reported events of our entities), and the event loop's lag
(p99 of how late a 50 ms timer fires).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import time
from typing import Any
from unittest.mock import patch

from homeassistant.const import CONF_ADDRESS, EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from benchmarks.report import BenchResults
from custom_components.dc_mesh.const import CONF_MESH_ID, CONF_MESH_KEY, DOMAIN
from custom_components.dc_mesh.coordinator import DcMeshCoordinator
from custom_components.dc_mesh.dcmesh import Reading
from simulator.mesh import GattSession, Latencies, Mesh, build_mesh

WINDOW = 20.0  # s
NODES = 10


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load dc_mesh from this repository."""


async def _monitor(mesh: Mesh, mac: str) -> GattSession:
    """Another client of the gateway node starts its MONITOR (every node, once a second)."""
    node = mesh.by_mac(mac)
    node.max_connections = 2
    session = await mesh.connect(mac)
    session.subscribe(lambda _chunk: None)
    await session.write(b"ALL:MONITOR")
    return session


async def _lag(stop: asyncio.Event, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + 0.05
        await asyncio.sleep(0.05)
        lags.append(loop.time() - expected)


async def _measure(
    hass: HomeAssistant, meshes: list[Mesh], with_entries: bool
) -> dict[str, float]:
    from simulator.ha import async_register_mesh

    unregister = [
        async_register_mesh(hass, mesh, source=f"sim_{i}")
        for i, mesh in enumerate(meshes)
    ]
    readings = 0
    writes = 0
    entries: list[MockConfigEntry] = []
    sessions: list[GattSession] = []
    original_ingest = DcMeshCoordinator._ingest

    def ingest(self: DcMeshCoordinator, reading: Reading) -> None:
        nonlocal readings
        readings += 1
        original_ingest(self, reading)

    @callback
    def count(_event: Event) -> None:
        nonlocal writes
        writes += 1

    registry = er.async_get(hass)

    @callback
    def ours(data: Any) -> bool:
        entry = registry.async_get(data["entity_id"])
        return entry is not None and entry.platform == DOMAIN

    with (
        patch.object(DcMeshCoordinator, "_ingest", ingest),
        patch(
            "custom_components.dc_mesh.coordinator.poll_interval",
            return_value=timedelta(hours=1),
        ),
    ):
        if with_entries:
            for mesh in meshes:
                key = f"{mesh.mesh_id:08x}"
                entry = MockConfigEntry(
                    domain=DOMAIN,
                    unique_id=key,
                    title=key,
                    data={
                        CONF_MESH_ID: key,
                        CONF_ADDRESS: mesh.node(0).mac,
                        CONF_MESH_KEY: mesh.mesh_key.hex(),
                    },
                )
                entry.add_to_hass(hass)
                assert await hass.config_entries.async_setup(entry.entry_id)
                entries.append(entry)
            await hass.async_block_till_done()
        sessions.extend([await _monitor(mesh, mesh.node(0).mac) for mesh in meshes])
        await asyncio.sleep(3.0)  # settle: entities created, monitors running
        unsubs: list[Callable[[], None]] = [
            hass.bus.async_listen(kind, count, event_filter=ours)
            for kind in (EVENT_STATE_CHANGED, EVENT_STATE_REPORTED)
        ]
        readings = writes = 0
        stop = asyncio.Event()
        lags: list[float] = []
        lag_task = asyncio.create_task(_lag(stop, lags))
        cpu = time.process_time()
        await asyncio.sleep(WINDOW)
        cpu = time.process_time() - cpu
        stop.set()
        await lag_task
        for unsub in unsubs:
            unsub()
        for session in sessions:
            session.disconnect()
        for entry in entries:
            await hass.config_entries.async_unload(entry.entry_id)
    for undo in unregister:
        undo()
    lags.sort()
    return {
        "cpu": cpu,
        "readings": readings,
        "writes": writes,
        "lag_p99": lags[int(len(lags) * 0.99) - 1] if lags else 0.0,
    }


@pytest.mark.parametrize("mesh_count", [1, 3, 10])
async def test_work_per_reading(
    hass: HomeAssistant,
    enable_bluetooth: None,
    mesh_count: int,
    bench: BenchResults,
) -> None:
    def meshes() -> list[Mesh]:
        built = []
        for i in range(mesh_count):
            mesh = build_mesh(NODES, 0, latencies=Latencies.realistic(), seed=i)
            mesh.mesh_id = 0x1A2B0000 + i
            built.append(mesh)
        return built

    baseline = await _measure(hass, meshes(), with_entries=False)
    measured = await _measure(hass, meshes(), with_entries=True)
    readings = max(measured["readings"], 1)
    per_reading = (measured["cpu"] - baseline["cpu"]) / readings
    bench.add(
        "Scale: meshes of 10 nodes pushing 1 reading per node per second "
        f"({WINDOW:.0f} s window, baseline without entries subtracted)",
        {
            "nodes": str(mesh_count * NODES),
            "readings/s": f"{readings / WINDOW:.0f}",
            "integration CPU per reading": f"{per_reading * 1e6:.0f} us",
            "state writes per reading": f"{measured['writes'] / readings:.2f}",
            "loop lag p99": f"{measured['lag_p99'] * 1000:.1f} ms "
            f"(baseline {baseline['lag_p99'] * 1000:.1f} ms)",
        },
        note="targets: <= 3 state writes per reading, <= 150 us of integration CPU per "
        "reading at 100 nodes, loop lag p99 < 5 ms",
    )
