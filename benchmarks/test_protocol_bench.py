"""ALL:READ round trip of a 10-node mesh (realistic latencies) and the parser's throughput."""

from __future__ import annotations

import statistics
import time

import bleak_retry_connector
import pytest

from benchmarks.report import BenchResults
from custom_components.dc_mesh.dcmesh import (
    DcMeshLink,
    Reassembler,
    chunk_message,
    parse_message,
)
from simulator.bleak_backend import SimBleakClient, discover
from simulator.mesh import Latencies, Profile, build_mesh

MESSAGES = [
    b"NODE1:DATA:D:50%,V:12.003V,I:250.00mA,P:3000.8mW",
    b"NODE9:DATA:D:100%,V:24.125v,I:1999.99ma,P:48249.8mw",
    b"SENT:READ",
    b"TIMEOUT:0x000e",
    b"ERROR:UNKNOWN_CMD:INFO",
    b"NODE0:INFO:FW:1.0.0,HW:ESP32-C6,ROLE:U,CAP:0003,UP:3600,HEAP:142000,MESH:1a2b3c4d,GW:1",
]


@pytest.mark.parametrize("profile", [Profile.V1, Profile.V07])
async def test_all_read_round_trip_10_nodes(
    monkeypatch: pytest.MonkeyPatch, profile: Profile, bench: BenchResults
) -> None:
    monkeypatch.setattr(
        bleak_retry_connector, "BleakClientWithServiceCache", SimBleakClient
    )
    latencies = Latencies.realistic()
    mesh = build_mesh(10, 0, profile=profile, latencies=latencies, seed=3)
    # A realistic site: rooms in a row, each node hears its neighbours up to two
    # rooms away, so the far end is 5 hops from the gateway (node 0).
    mesh.set_links([(n, m) for n in range(10) for m in (n + 1, n + 2) if m < 10])
    device, _ = discover(mesh)[0]
    # v1 nodes take commands in an authenticated session only (v0.7 nodes ignore the key).
    link = DcMeshLink(
        device, mesh_key=mesh.mesh_key, quiet_period=0.6, reply_timeout=8.0
    )
    everyone = set(range(10))
    rounds: list[float] = []
    answered: list[int] = []
    try:
        started = time.perf_counter()
        await link.connect()
        connect_s = time.perf_counter() - started
        for _ in range(5):
            started = time.perf_counter()
            readings = await link.read_all(expected=everyone)
            rounds.append(time.perf_counter() - started)
            answered.append(len(readings))
    finally:
        await link.disconnect()
        mesh.shutdown()
    hop_mean = sum(latencies.mesh_hop) / 2
    median = statistics.median(rounds)
    bench.add(
        "ALL:READ round trip: 10 nodes, up to 5 hops from the gateway (5 rounds)",
        {
            "profile": str(profile),
            "connect": f"{connect_s:.2f} s",
            "median": f"{median:.2f} s",
            "min-max": f"{min(rounds):.2f}-{max(rounds):.2f} s",
            "answered": ",".join(map(str, answered)),
            "x mean hop": f"{median / hop_mean:.1f}",
            "/ Pi 3 s poll": f"{median / 3.0:.2f}",
        },
        note=f"connect includes negotiation (v1: and the session handshake); mean mesh hop {hop_mean * 1000:.0f} ms; "
        "the v0.7 Pi gateway polled every 3 s",
    )


def test_parser_throughput(bench: BenchResults) -> None:
    chunks = [chunk_message(message) for message in MESSAGES]
    count = 20_000
    reassembler = Reassembler()
    started = time.perf_counter()
    for i in range(count):
        for chunk in chunks[i % len(chunks)]:
            message = reassembler.feed(chunk)
        assert message is not None
        parse_message(message)
    elapsed = time.perf_counter() - started
    baseline_started = time.perf_counter()
    for i in range(count):
        b"".join(chunks[i % len(chunks)]).decode().split(":")
    baseline = time.perf_counter() - baseline_started
    rate = count / elapsed
    # A 10-node mesh polled every second makes ~10 messages/s (20 notifications).
    bench.add(
        f"Reassemble + parse ({count:,} messages)",
        {
            "messages/s": f"{rate:,.0f}",
            "per message": f"{elapsed / count * 1e6:.1f} us",
            "vs join+decode+split": f"{elapsed / baseline:.1f}x",
            "10-node mesh at 1 Hz": f"{rate / 10:,.0f}x its load",
        },
    )
