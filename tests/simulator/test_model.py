"""The mesh model: physics, firmware behaviour, timing, multi-hop and faults."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re

from hypothesis import given, strategies as st
import pytest

from simulator import wire
from simulator.mesh import (
    AttError,
    ChunkFaults,
    ConnectRefusedError,
    ConnectTimeoutError,
    Latencies,
    LinkLostError,
    Profile,
    Role,
)
from simulator.physics import Load

from .client import connect

DATA = re.compile(
    r"NODE(\d):DATA:D:(\d+)%,V:(\d+\.\d{3})V,I:(-?\d+\.\d{2})mA,P:(\d+\.\d)mW"
)


def test_load_physics_follows_ohm_and_ina260_resolution() -> None:
    load = Load(supply_voltage=12.0, load_resistance=24.0, source_resistance=0.1)
    rng = random.Random(3)
    samples = [load.measure(50, rng) for _ in range(400)]
    for millivolts, centi_ma in samples:
        assert centi_ma % 125 == 0  # 1.25 mA steps
        assert 11_900 < millivolts < 12_000
    mean_ma = sum(centi for _, centi in samples) / len(samples) / 100
    assert mean_ma == pytest.approx(0.5 * 12.0 / 24.1 * 1000, abs=1.0)
    assert abs(sum(load.measure(0, rng)[1] for _ in range(400))) / 400 < 200


async def test_reading_line_has_consistent_power(make_mesh) -> None:
    mesh = make_mesh()
    client = await connect(mesh)
    await client.send("0:DUTY:80")
    [line] = await client.send("0:READ")
    node, duty, volts, milliamps, milliwatts = DATA.fullmatch(line).groups()
    assert (node, duty) == ("0", "80")
    assert float(milliwatts) == pytest.approx(
        abs(float(volts) * float(milliamps)), abs=0.06
    )
    assert float(milliamps) == pytest.approx(0.8 * 12.0 / 24.1 * 1000, abs=6)


async def test_local_all_and_unicast_replies(make_mesh) -> None:
    mesh = make_mesh(3, 1)
    client = await connect(mesh)
    # DUTY, RAMP and STOP are answered with a reading (the duty after), as v0.7 does
    [line] = await client.send("0:DUTY:40")
    assert DATA.fullmatch(line).groups()[:2] == ("0", "40")
    assert mesh.node(0).duty == 40
    lines = await client.send("ALL:READ")
    assert lines[0].startswith("NODE0:DATA:D:40%")
    assert lines[1] == "SENT:READ"
    assert sorted(line[:5] for line in lines[2:]) == ["NODE1", "NODE2"]  # relay silent
    lines = await client.send("2:DUTY:7")
    assert lines[0] == "SENT:DUTY:7"
    assert DATA.fullmatch(lines[1]).groups()[:2] == ("2", "7")
    lines = await client.send("1:RAMP")
    assert lines[0] == "SENT:RAMP"
    assert DATA.fullmatch(lines[1]).groups()[:2] == ("1", "0")  # the first step
    lines = await client.send("1:OFF")
    assert lines[0] == "SENT:OFF"
    assert DATA.fullmatch(lines[1]).groups()[:2] == ("1", "0")
    assert mesh.node(2).duty == 7
    assert not any(":ACK:" in line or ":ONOFF:" in line for line in client.lines)


async def test_info_v1_and_negotiation_with_a_v07_node(make_mesh) -> None:
    mesh = make_mesh(2, 1)
    mesh.add_node(profile=Profile.V07)
    client = await connect(mesh)
    lines = await client.send("ALL:INFO")
    assert lines[0] == (
        f"NODE0:INFO:FW:1.0.0,HW:ESP32-C6,ROLE:U,CAP:0013,UP:0,"
        f"HEAP:{mesh.node(0).heap},MESH:1a2b3c4d,GW:1"
    )
    assert lines[1] == "SENT:INFO"
    others = sorted(lines[2:])
    assert [line[:10] for line in others] == ["NODE1:INFO", "NODE2:INFO", "NODE3:DATA"]
    assert "ROLE:R,CAP:0011" in others[1]
    assert others[1].endswith("GW:0")
    # a v0.7 node does not know `info` and says so (command.c:62)
    assert others[2] == "NODE3:DATA:ERR:UNKNOWN:info"
    assert await client.send("3:INFO") == ["SENT:INFO", "NODE3:DATA:ERR:UNKNOWN:info"]
    mesh.power_off(3)
    assert await client.send("3:INFO", settle=0.15) == ["SENT:INFO", "TIMEOUT:0x0008"]


async def test_v07_gateway_rejects_info(make_mesh) -> None:
    mesh = make_mesh(2, 0, profile=Profile.V07)
    client = await connect(mesh)
    assert await client.send("ALL:INFO") == ["ERROR:UNKNOWN_CMD:INFO"]
    assert await client.send("1:READ") == ["SENT:READ", client.lines[-1]]
    assert client.lines[-1].startswith("NODE1:DATA:")


async def test_unicast_timeout_is_a_parameter(make_mesh) -> None:
    latencies = dataclasses.replace(Latencies.fast(), client_timeout=0.3)
    mesh = make_mesh(latencies=latencies)
    client = await connect(mesh)
    mesh.power_off(2)
    assert await client.send("2:READ", settle=0.2) == ["SENT:READ"]
    await asyncio.sleep(0.15)
    assert client.lines[-1] == "TIMEOUT:0x0007"
    assert await client.send("9:READ", settle=0.4) == ["SENT:READ", "TIMEOUT:0x000e"]


async def test_unicasts_are_serialised_and_bounded(make_mesh) -> None:
    mesh = make_mesh(3, 0)
    client = await connect(mesh)
    mesh.set_unreachable(1)
    mesh.set_unreachable(2)
    for _ in range(5):
        await client.session.write(b"1:READ")
    await client.session.write(b"2:READ")
    await asyncio.sleep(0.01)
    assert client.lines == ["SENT:READ", "ERROR:MESH_BUSY"]
    await client.wait_for(lambda line: line == "TIMEOUT:0x0006")
    await asyncio.sleep(0.01)
    assert client.lines[2:] == ["TIMEOUT:0x0006", "SENT:READ"]  # the next one goes out


async def test_multi_hop_routing_and_cut_links(make_mesh) -> None:
    latencies = dataclasses.replace(Latencies.fast(), mesh_hop=(0.01, 0.01))
    mesh = make_mesh(4, 0, latencies=latencies)
    mesh.set_links([(0, 1), (1, 2), (2, 3)])
    client = await connect(mesh)
    lines = await client.send("ALL:READ", settle=0.12)
    assert [line[:5] for line in lines[2:]] == [
        "NODE1",
        "NODE2",
        "NODE3",
    ]  # by distance
    mesh.set_link(1, 2, up=False)
    lines = await client.send("3:READ", settle=0.15)
    assert lines == ["SENT:READ", "TIMEOUT:0x0008"]
    mesh.set_link(0, 3, up=True)
    lines = await client.send("3:READ")
    assert lines[0] == "SENT:READ"
    assert lines[1].startswith("NODE3:DATA")


async def test_relay_forwards_but_answers_only_info(make_mesh) -> None:
    mesh = make_mesh(2, 1)
    mesh.set_links([(0, 2), (2, 1)])  # node 2 is the relay between 0 and 1
    assert mesh.node(2).role is Role.RELAY
    assert mesh.node(2).mac is None
    client = await connect(mesh)
    lines = await client.send("1:READ")
    assert lines[0] == "SENT:READ"
    assert lines[1].startswith("NODE1:DATA")
    assert await client.send("2:READ", settle=0.15) == ["SENT:READ", "TIMEOUT:0x0007"]


async def test_ramp_steps_in_order(make_mesh) -> None:
    mesh = make_mesh()
    client = await connect(mesh)
    await client.send("0:RAMP", settle=0)
    seen = [mesh.node(0).duty]
    async with asyncio.timeout(1):
        while len(seen) < 6:
            await asyncio.sleep(0.002)
            if mesh.node(0).duty != seen[-1]:
                seen.append(mesh.node(0).duty)
    assert seen == [0, 25, 50, 75, 100, 0]
    await client.send("0:RAMP", settle=0.03)
    await client.send("0:DUTY:10", settle=0.1)
    assert mesh.node(0).duty == 10  # DUTY stopped the ramp


async def test_monitor_polls_until_another_command(make_mesh) -> None:
    mesh = make_mesh()
    client = await connect(mesh)
    assert await client.send("1:MONITOR", settle=0.15) != []
    lines = client.lines
    assert lines[0] == "SENT:MONITOR"
    assert sum(line.startswith("NODE1:DATA") for line in lines) >= 2
    assert not any(line.startswith("SENT:READ") for line in lines)
    assert mesh.node(0).monitor == 1
    await client.send("0:READ", settle=0.1)
    assert mesh.node(0).monitor is None
    count = len(client.lines)
    await asyncio.sleep(0.1)
    assert len(client.lines) == count


async def test_write_too_long_is_an_att_error(make_mesh) -> None:
    client = await connect(make_mesh())
    with pytest.raises(AttError) as err:
        await client.session.write(b"0:READ:" + b"X" * 58)
    assert err.value.code == 0x0D
    assert client.lines == []


async def test_power_cycle_drops_link_after_supervision_and_readvertises(
    make_mesh,
) -> None:
    latencies = dataclasses.replace(
        Latencies.fast(), supervision_timeout=0.1, boot=0.05
    )
    mesh = make_mesh(latencies=latencies)
    client = await connect(mesh, 1)
    lost = asyncio.Event()
    client.session.on_lost = lost.set
    mac = mesh.node(1).mac
    mesh.power_cycle(1, off_seconds=0.02)
    assert mac not in [advert.mac for advert in mesh.advertisements()]
    await asyncio.sleep(0.05)
    assert client.session.connected
    assert not lost.is_set()
    await asyncio.wait_for(lost.wait(), 1)
    assert not client.session.connected
    assert mac in [advert.mac for advert in mesh.advertisements()]
    with pytest.raises(LinkLostError):
        await client.session.write(b"0:READ")
    again = await connect(mesh, 1)
    assert mesh.node(1).uptime == 0
    assert mesh.node(1).duty == 0
    assert (await again.send("1:READ"))[0].startswith("NODE1:DATA:D:0%")


async def test_write_to_a_dead_node_fails_when_the_link_drops(make_mesh) -> None:
    mesh = make_mesh()
    client = await connect(mesh)
    mesh.power_off(0)
    with pytest.raises(LinkLostError):
        await client.session.write(b"1:READ")
    assert client.lines == []


async def test_connection_faults(make_mesh) -> None:
    mesh = make_mesh()
    mac = mesh.node(0).mac
    mesh.refuse_connections(0, count=1)
    with pytest.raises(ConnectRefusedError):
        await mesh.connect(mac)
    session = await mesh.connect(mac)
    with pytest.raises(ConnectRefusedError):  # one connection per node
        await mesh.connect(mac)
    session.disconnect()
    mesh.slow_connections(0, 5.0)
    with pytest.raises(ConnectTimeoutError):
        await mesh.connect(mac, 0.05)
    mesh.slow_connections(0, 0.0)
    mesh.power_off(0)
    with pytest.raises(ConnectTimeoutError):
        await mesh.connect(mac)


INVALID = b"ERROR:INVALID_NODE"  # one chunk, no side effect


async def test_one_shot_chunk_faults(make_mesh) -> None:
    mesh = make_mesh()
    client = await connect(mesh)
    mesh.inject_chunk_fault(0, "duplicate")
    await client.send("X:READ")
    assert client.chunks == [INVALID, INVALID]
    mesh.inject_chunk_fault(0, "drop")
    await client.send("X:READ")
    assert client.chunks[2:] == []
    mesh.inject_chunk_fault(0, "corrupt")
    await client.send("X:READ")
    assert len(client.chunks[2]) == len(INVALID)
    assert b"\xff" in client.chunks[2]
    await client.send("X:READ")
    assert client.chunks[3] == INVALID


async def test_chunk_fault_probabilities(make_mesh) -> None:
    mesh = make_mesh()
    client = await connect(mesh)
    mesh.set_chunk_faults(0, ChunkFaults(drop=0.5))
    for _ in range(40):
        await client.session.write(b"X:READ")
    await asyncio.sleep(0.02)
    assert 5 < len(client.chunks) < 35


async def test_send_errors_and_not_ready(make_mesh) -> None:
    mesh = make_mesh()
    client = await connect(mesh)
    mesh.fail_next_send(0, "MESH_SEND_FAIL")
    assert await client.send("1:READ") == ["ERROR:MESH_SEND_FAIL"]
    mesh.set_bound(0, False)
    assert await client.send("0:READ") == ["ERROR:NOT_READY"]
    assert await client.send("1:ON") == ["ERROR:NOT_READY"]


async def test_v07_unbound_falls_back_to_onoff(make_mesh) -> None:
    mesh = make_mesh(3, 0, profile=Profile.V07)
    client = await connect(mesh)
    mesh.set_bound(0, False)
    assert await client.send("1:ON") == ["SENT:ON(fallback)", "NODE1:ACK:1"]
    assert mesh.node(1).duty == 100
    assert await client.send("2:STOP") == ["SENT:OFF(fallback)", "NODE2:ACK:0"]
    # READ and DUTY:0 switch the load fully on too: the reason to probe with MONITOR
    assert await client.send("2:READ") == ["SENT:ON(fallback)", "NODE2:ACK:1"]
    assert mesh.node(2).duty == 100
    await client.send("2:STOP")
    assert await client.send("2:DUTY:0") == ["SENT:ON(fallback)", "NODE2:ACK:1"]
    assert mesh.node(2).duty == 100


async def _run_once(make_mesh, seed: int) -> list[str]:
    latencies = dataclasses.replace(Latencies.fast(), mesh_hop=(0.001, 0.02))
    mesh = make_mesh(4, 1, latencies=latencies, seed=seed)
    client = await connect(mesh)
    await client.send("ALL:READ", settle=0.15)
    return client.lines


async def test_same_seed_same_run(make_mesh) -> None:
    first = await _run_once(make_mesh, 7)
    assert first == await _run_once(make_mesh, 7)
    assert first != await _run_once(make_mesh, 8)


async def test_binding_the_models_announces_mesh_ready(make_mesh) -> None:
    mesh = make_mesh()
    client = await connect(mesh)
    mesh.set_bound(0, False)
    assert await client.send("1:READ") == ["ERROR:NOT_READY"]
    mesh.set_bound(0, True)
    await asyncio.sleep(0.01)
    assert client.lines[-1] == "MESH_READY:VENDOR"
    assert (await client.send("1:READ"))[0] == "SENT:READ"


LARGE_DATA = re.compile(r"NODE(\d+):DATA:D:(\d+)%,V:")


async def test_a_mesh_of_32_nodes_answers_every_two_digit_id(make_mesh) -> None:
    """Section 10: a 30-node v1 mesh (and 2 relays) takes node ids 10..31 in commands."""
    mesh = make_mesh(30, 2)
    assert [node.node_id for node in mesh.nodes] == list(range(32))
    assert mesh.node(31).role is Role.RELAY
    client = await connect(mesh, 17)
    lines = await client.send("ALL:READ", settle=0.3)
    ids = [int(match.group(1)) for line in lines if (match := LARGE_DATA.match(line))]
    assert ids[0] == 17  # the gateway answers itself first, then the group by id
    assert sorted(ids) == list(range(30))
    duty = await client.send("25:DUTY:40", settle=0.05)
    assert duty[0] == "SENT:DUTY:40"
    assert duty[1].startswith("NODE25:DATA:D:40%,")
    assert mesh.node(25).duty == 40
    info = await client.send("29:INFO", settle=0.05)
    assert info[0] == "SENT:INFO"
    assert ",ROLE:U,CAP:0013," in info[1]
    relay = await client.send("31:INFO", settle=0.05)
    assert relay[1].startswith("NODE31:INFO:")
    assert ",ROLE:R,CAP:0011," in relay[1]
    for refused in ("100:READ", "07:READ", "32 :READ"):
        assert await client.send(refused) == ["ERROR:INVALID_NODE"]
    assert await client.send("32:READ", settle=0.15) == ["SENT:READ", "TIMEOUT:0x0025"]


async def test_v1_without_the_large_mesh_capability_keeps_one_digit(make_mesh) -> None:
    mesh = make_mesh(9, 1, large_mesh=False)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        mesh.add_node()
    client = await connect(mesh)
    lines = await client.send("ALL:INFO", settle=0.05)
    assert ",CAP:0003," in lines[0]
    assert await client.send("10:READ") == ["ERROR:INVALID_NODE"]
    assert (await client.send("9:INFO", settle=0.05))[1].startswith("NODE9:INFO:")


async def test_a_large_mesh_gateway_reaches_a_v07_node_beyond_9(make_mesh) -> None:
    """The capability is the gateway's: a v0.7 node with id 12 gets `read` like any other."""
    mesh = make_mesh(12, 0)
    mesh.add_node(profile=Profile.V07)
    client = await connect(mesh)
    lines = await client.send("12:READ", settle=0.05)
    assert lines[0] == "SENT:READ"
    assert LARGE_DATA.match(lines[1]).group(1) == "12"  # type: ignore[union-attr]


async def test_staggered_answers_keep_one_per_source(make_mesh) -> None:
    """A MONITOR faster than the stagger: node 20 answers each source with its latest reading."""
    latencies = dataclasses.replace(
        Latencies.fast(), stagger_slot=0.01, mesh_hop=(0.001, 0.001)
    )
    mesh = make_mesh(21, 0, latencies=latencies)
    client = await connect(mesh)
    for duty in (10, 20, 30):  # three group commands within node 20's 200 ms
        await client.session.write(f"ALL:DUTY:{duty}".encode())
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    from_20 = [line for line in client.lines if line.startswith("NODE20:")]
    # one answer for the three commands, with the latest duty, when the first was due
    assert len(from_20) == 1
    assert from_20[0].startswith("NODE20:DATA:D:30%,")
    assert mesh.node(20).duty == 30


@given(st.binary(max_size=4), st.booleans())
def test_command_targets_follow_the_address_plan(
    target: bytes, large_mesh: bool
) -> None:
    """A target is ALL, one digit, or (large mesh) two digits without a leading zero."""
    canonical = re.fullmatch(rb"[0-9]|[1-9][0-9]", target) is not None and (
        large_mesh or len(target) == 1
    )
    raw = target + b":READ"
    if not canonical and target.upper() != b"ALL":
        with pytest.raises(wire.CommandRejectedError) as rejected:
            wire.parse_command(raw, info_supported=True, large_mesh=large_mesh)
        assert rejected.value.line in {"ERROR:INVALID_NODE", "ERROR:NO_NODE_ID"}
        return
    command = wire.parse_command(raw, info_supported=True, large_mesh=large_mesh)
    if command.target is None:
        assert target.upper() == b"ALL"
    else:
        assert canonical
        assert command.target == int(target)
        assert 0 <= command.target <= (99 if large_mesh else 9)
