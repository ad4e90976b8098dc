"""ALL:READ of 10- and 30-node v1 meshes with staggered answers (protocol section 10).

Realistic latencies (a mesh hop 50-300 ms). Nodes stand in a grid (or, for 10, rooms in a
row) and hear their neighbours, so the far corner is 5 hops from the gateway (node 0). With
capability 0010 node k answers a group read k x 100 ms after it got it, so the answers reach
the gateway one after the other (the firmware's reason: the gateway reassembles at most
CONFIG_BLE_MESH_RX_SEG_MSG_COUNT segmented messages at once, and each answer is 4-5
segments of ~90 ms of air each). The "unstaggered" column is the same mesh with a slot of 0:
what the simulator would show if the radio had room for every answer at once, which the real
mesh has not (it models hops, not collisions); it bounds what staggering costs.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import bleak_retry_connector
import pytest

from benchmarks.report import BenchResults
from custom_components.dc_mesh.dcmesh import DcMeshLink
from simulator.bleak_backend import SimBleakClient, discover
from simulator.mesh import Latencies, Mesh, build_mesh

ROUNDS = 5


def _links(count: int) -> list[tuple[int, int]]:
    if count <= 10:  # rooms in a row, each hears two rooms either way
        return [(n, m) for n in range(count) for m in (n + 1, n + 2) if m < count]
    columns = 6  # a 6 x 5 grid: each hears its 8 neighbours
    cells = {n: (n % columns, n // columns) for n in range(count)}
    return [
        (a, b)
        for a in range(count)
        for b in range(a + 1, count)
        if max(abs(cells[a][0] - cells[b][0]), abs(cells[a][1] - cells[b][1])) == 1
    ]


async def _round_trips(
    mesh: Mesh, count: int, slot: float, quiet: float, reply_timeout: float
) -> tuple[list[float], list[int]]:
    device, _ = discover(mesh)[0]
    link = DcMeshLink(
        device,
        mesh_key=mesh.mesh_key,
        quiet_period=quiet,
        reply_timeout=reply_timeout,
        group_reply_slot=slot,
    )
    await link.connect()
    everyone = set(range(count))
    rounds: list[float] = []
    answered: list[int] = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        readings = await link.read_all(expected=everyone)
        rounds.append(time.perf_counter() - started)
        answered.append(len(readings))
    await link.disconnect()
    return rounds, answered


@pytest.mark.parametrize("count", [10, 30])
async def test_all_read_round_trip_large_mesh(
    monkeypatch: pytest.MonkeyPatch, count: int, bench: BenchResults
) -> None:
    monkeypatch.setattr(
        bleak_retry_connector, "BleakClientWithServiceCache", SimBleakClient
    )
    results: dict[str, str] = {"nodes": str(count)}
    # "staggered"/"unstaggered": a quiet period long enough that every answer of 5 hops out
    # and back (up to 3 s) is waited for: the round trip is until the last node answered.
    # "as polled": the integration's own timing (quiet 0.6 s, reply 6 s); nodes that answer
    # after it ended are read on their own by the coordinator.
    runs = (
        ("staggered", 0.1, 3.0, 12.0),
        ("unstaggered", 0.0, 3.0, 12.0),
        ("as polled", 0.1, 0.6, 6.0),
    )
    for label, slot, quiet, timeout in runs:
        latencies = dataclasses.replace(Latencies.realistic(), stagger_slot=slot)
        mesh = build_mesh(count, 0, latencies=latencies, seed=3)
        mesh.set_links(_links(count))
        hops = max(mesh.hops(mesh.node(0), node) or 0 for node in mesh.nodes)
        try:
            rounds, answered = await _round_trips(mesh, count, slot, quiet, timeout)
        finally:
            mesh.shutdown()
        results[f"{label} median"] = f"{statistics.median(rounds):.2f} s"
        if label != "as polled":
            results[f"{label} min-max"] = f"{min(rounds):.2f}-{max(rounds):.2f} s"
        results[f"{label} answered"] = ",".join(map(str, answered))
        results["max hops"] = str(hops)
    bench.add(
        "ALL:READ round trip of a v1 mesh, answers staggered by node id (5 rounds)",
        results,
        note="slot 100 ms; mean mesh hop 175 ms; staggered/unstaggered wait for every "
        "answer (the last one ends the round); unstaggered = the simulator without "
        "collisions, a lower bound the real radio does not reach with 30 answers at once; "
        "as polled = the integration's quiet period (0.6 s): late nodes are read on their own",
    )
