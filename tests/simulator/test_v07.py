"""The simulator's v0.7 profile: the field firmware over time.

commands_v07.tsv pins the immediate actions of every command; these tests cover what
happens over time: fallback acknowledgements and timeouts, the MONITOR probe, blocking
writes, ids above 9 and mixed meshes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest

from simulator import wire
from simulator.mesh import Latencies, Mesh, Profile

from .client import Collector, connect

V07_DATA = re.compile(
    r"NODE(\d+):DATA:D:(\d+)%,V:(\d+\.\d{3})V,I:(\d+\.\d{2})mA,P:(\d+\.\d)mW"
)


async def test_fallback_set_is_acknowledged_or_times_out(make_mesh) -> None:
    mesh = make_mesh(3, 0, profile=Profile.V07)
    client = await connect(mesh)
    mesh.set_bound(0, False)
    assert await client.send("1:DUTY:30") == ["SENT:ON(fallback)", "NODE1:ACK:1"]
    assert mesh.node(1).duty == 100  # not 30: OnOff only knows on and off
    mesh.power_off(2)
    assert await client.send("2:STOP", settle=0.1) == [
        "SENT:OFF(fallback)",
        "TIMEOUT:0x0007",
    ]


async def test_fallback_all_goes_to_node_1_when_no_node_is_known(make_mesh) -> None:
    mesh = make_mesh(4, 0, profile=Profile.V07)
    client = await connect(mesh)
    mesh.set_bound(0, False)
    assert await client.send("ALL:READ") == ["SENT:ON(fallback)", "NODE1:ACK:1"]
    assert [node.duty for node in mesh.nodes] == [0, 100, 0, 0]  # not even itself


async def test_fallback_all_goes_to_the_nodes_that_answered_before(make_mesh) -> None:
    mesh = make_mesh(4, 0, profile=Profile.V07)
    client = await connect(mesh)
    await client.send("ALL:READ")
    assert sorted(mesh.node(0).known_nodes) == [0x0006, 0x0007, 0x0008]
    mesh.set_bound(0, False)
    lines = await client.send("ALL:STOP", settle=0.06)
    assert sorted(lines) == [
        "NODE1:ACK:0",
        "NODE2:ACK:0",
        "NODE3:ACK:0",
        "SENT:OFF(fallback)",
    ]


async def test_monitor_is_the_harmless_fallback_probe(make_mesh) -> None:
    mesh = make_mesh(3, 0, profile=Profile.V07)
    client = await connect(mesh)
    mesh.set_bound(0, False)
    mesh.radio_log.clear()
    assert await client.send("ALL:MONITOR", settle=0.1) == ["ERROR:NOT_READY"]
    assert mesh.node(0).monitor is None
    assert not mesh.radio_log
    assert [node.duty for node in mesh.nodes] == [0, 0, 0]

    mesh.set_bound(0, True)  # the provisioner binds the vendor client
    await asyncio.sleep(0.01)
    assert client.lines[-1] == "MESH_READY:VENDOR"
    lines = await client.send("ALL:MONITOR", settle=0.15)
    assert lines[0] == "SENT:MONITOR"
    assert mesh.node(0).monitor == 1  # no node known yet: node 1
    assert sum(line.startswith("NODE1:DATA:") for line in lines) >= 2
    assert {payload for _, _, payload in mesh.radio_log} == {"read"}

    # an unknown command stops the monitor and does nothing else
    lines = await client.send("0:NOP", settle=0.1)
    assert lines[-1] == "ERROR:UNKNOWN_CMD:NOP"
    assert mesh.node(0).monitor is None
    count = len(client.lines)
    await asyncio.sleep(0.1)
    assert len(client.lines) == count
    assert [node.duty for node in mesh.nodes] == [0, 0, 0]


async def test_a_monitor_swallows_timeouts(make_mesh) -> None:
    mesh = make_mesh(3, 0, profile=Profile.V07)
    client = await connect(mesh)
    mesh.power_off(2)
    assert await client.send("2:MONITOR", settle=0.3) == ["SENT:MONITOR"]


async def test_a_lost_unicast_is_a_mesh_timeout(make_mesh) -> None:
    mesh = make_mesh(3, 0, profile=Profile.V07)
    client = await connect(mesh)
    mesh.power_off(2)
    assert await client.send("2:READ", settle=0.15) == [
        "SENT:READ",
        "ERROR:MESH_TIMEOUT",
    ]


async def test_send_failures_come_after_sent(make_mesh) -> None:
    mesh = make_mesh(3, 0, profile=Profile.V07)
    client = await connect(mesh)
    mesh.fail_next_send(0, "MESH_SEND_FAIL")
    assert await client.send("1:READ") == ["SENT:READ", "ERROR:MESH_SEND_FAIL"]
    mesh.fail_next_send(0, "MESH_TIMEOUT")
    assert await client.send("2:DUTY:30", settle=0.15) == [
        "SENT:DUTY",
        "ERROR:MESH_TIMEOUT",
    ]
    assert mesh.node(2).duty == 0
    assert (await client.send("1:READ"))[0] == "SENT:READ"  # the next one goes out


async def test_a_unicast_in_flight_holds_the_next_write(make_mesh) -> None:
    latencies = dataclasses.replace(Latencies.fast(), client_timeout=0.2)
    mesh = make_mesh(3, 0, profile=Profile.V07, latencies=latencies)
    client = await connect(mesh)
    mesh.set_unreachable(2)
    loop = asyncio.get_running_loop()
    await client.session.write(b"2:READ")
    start = loop.time()
    await client.session.write(b"1:READ")  # send_vendor_command busy-waits
    assert loop.time() - start >= 0.15
    await asyncio.sleep(0.03)
    assert client.lines[:3] == ["SENT:READ", "ERROR:MESH_TIMEOUT", "SENT:READ"]
    assert client.lines[3].startswith("NODE1:DATA:")


async def test_its_own_ramp_holds_the_write(make_mesh) -> None:
    mesh = make_mesh(2, 0, profile=Profile.V07)
    client = await connect(mesh)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await client.session.write(b"0:RAMP")
    assert loop.time() - start >= 5 * mesh.latencies.ramp_step
    await asyncio.sleep(0.005)
    [line] = client.lines
    assert V07_DATA.fullmatch(line).groups()[:2] == ("0", "0")  # the reading after it


async def test_remote_ramp_answers_after_the_ramp(make_mesh) -> None:
    mesh = make_mesh(2, 0, profile=Profile.V07)
    client = await connect(mesh)
    assert await client.send("1:RAMP", settle=0.03) == ["SENT:RAMP"]
    assert mesh.node(1).duty > 0
    await client.wait_for(lambda line: line.startswith("NODE1:DATA:"))
    assert client.lines[-1].startswith("NODE1:DATA:D:0%,")


async def test_ids_above_9_appear_in_replies() -> None:
    mesh = Mesh(latencies=Latencies.fast(), profile=Profile.V07)
    try:
        for _ in range(12):
            mesh.add_node()
        client = await connect(mesh)
        lines = await client.send("ALL:READ", settle=0.05)
        ids = sorted(int(V07_DATA.fullmatch(line).group(1)) for line in lines[2:])
        assert ids == list(range(1, 12))
        assert await client.send("10:READ") == ["ERROR:INVALID_NODE"]
        # a v1 node takes id 12 (large-mesh capability); a v1 build without it cannot
        assert mesh.add_node(profile=Profile.V1).node_id == 12
        older = Mesh(latencies=Latencies.fast(), profile=Profile.V07, large_mesh=False)
        for _ in range(10):
            older.add_node()
        older.add_node()  # v0.7: any id
        with pytest.raises(ValueError, match=r"v1 firmware needs a node id 0\.\.9"):
            older.add_node(profile=Profile.V1)
    finally:
        mesh.shutdown()


async def test_v07_readings_never_show_a_negative_current(make_mesh) -> None:
    mesh = make_mesh(2, 0, profile=Profile.V07)
    client = await connect(mesh)
    for _ in range(20):  # at duty 0 the sensor noise goes both ways
        await client.session.write(b"ALL:READ")
    await asyncio.sleep(0.03)
    readings = [line for line in client.lines if ":DATA:" in line]
    assert len(readings) >= 30
    assert all(V07_DATA.fullmatch(line) for line in readings)


@pytest.mark.parametrize(
    ("gateway", "other"), [(Profile.V1, Profile.V07), (Profile.V07, Profile.V1)]
)
async def test_mixed_meshes_name_every_reading(
    make_mesh, gateway: Profile, other: Profile
) -> None:
    mesh = make_mesh(2, 0, profile=gateway)
    mesh.add_node(profile=other)
    client = await connect(mesh)
    lines = await client.send("ALL:READ", settle=0.05)
    assert lines[1] == "SENT:READ"
    assert sorted(
        line[: line.index(":D:")] for line in lines if line != "SENT:READ"
    ) == [
        "NODE0:DATA",
        "NODE1:DATA",
        "NODE2:DATA",
    ]


async def test_a_failed_notify_mutes_the_client_until_it_writes(make_mesh) -> None:
    mesh = make_mesh(2, 0, profile=Profile.V07)
    client = await connect(mesh)
    mesh.inject_chunk_fault(0, "fail")
    assert await client.send("0:READ") == []  # the whole reading is lost
    mesh.set_bound(0, False)
    mesh.set_bound(0, True)
    await asyncio.sleep(0.01)
    assert client.lines == []  # MESH_READY:VENDOR went nowhere
    assert await client.send("10:READ") == ["ERROR:INVALID_NODE"]


async def test_reading_0xdc02_gives_the_last_message(make_mesh) -> None:
    mesh = make_mesh(2, 0, profile=Profile.V07)
    client = await connect(mesh)
    [line] = await client.send("0:READ")
    assert client.session.read() == line.encode()


def test_v07_reading_format() -> None:
    # report section 2: raw V 9603, raw I -801
    assert wire.format_reading_v07(75, 9603, -801) == (
        "D:75%,V:12.004V,I:1001.25mA,P:12018.8mW"
    )
    assert wire.format_reading_v07(100, 0xFFFF, -0x8000) == (
        "D:100%,V:81.919V,I:40960.00mA,P:3355392.0mW"
    )


async def test_advertised_mesh_id_can_differ_from_the_real_one(make_mesh) -> None:
    mesh = make_mesh(2, 0)
    mesh.advertised_mesh_id = 0xDEADBEEF
    data = [advert.service_data[wire.SERVICE_UUID] for advert in mesh.advertisements()]
    assert {payload[1:5] for payload in data} == {bytes.fromhex("deadbeef")}
    client = await connect(mesh)
    [line, *_] = await client.send("0:INFO")
    assert ",MESH:1a2b3c4d," in line  # what the node says when asked


async def test_a_rogue_mesh_copying_another_mesh_id() -> None:
    real = Mesh(latencies=Latencies.fast(), mesh_id=0x1A2B3C4D)
    rogue = Mesh(latencies=Latencies.fast(), mesh_id=0x0BADF00D)
    rogue.advertised_mesh_id = real.mesh_id
    try:
        real.add_node()
        node = rogue.add_node()
        assert node.mac is not None
        [advert] = rogue.advertisements()
        assert advert.service_data[wire.SERVICE_UUID][1:5] == bytes.fromhex("1a2b3c4d")
        client = Collector(await rogue.connect(node.mac))
        await client.send("ALL:INFO")
        assert ",MESH:0badf00d,GW:1" in client.lines[-2]
    finally:
        real.shutdown()
        rogue.shutdown()
