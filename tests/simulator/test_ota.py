"""The simulated v1 node's firmware update receiver against firmware/vectors/ota.tsv, and
the simulator's update model: link capacity, reboot into the new image, rollback, faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import dataclasses
import hashlib
from pathlib import Path

import pytest

from simulator import ota
from simulator.mesh import AttError, GattSession, Latencies, Mesh, build_mesh

from .client import Collector

VECTORS = Path(__file__).resolve().parents[2] / "firmware" / "vectors" / "ota.tsv"
# No reboot inside a scripted case: the vectors script the state machine alone.
REPLAY = dataclasses.replace(Latencies.fast(), ota_reboot=600.0)


def sections() -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    current = ""
    for line in VECTORS.read_text("utf-8").splitlines():
        if line.startswith("#@"):
            current = line[2:].strip()
            found[current] = []
        elif line and not line.startswith("#"):
            found[current].append(line.split("\t"))
    return found


SECTIONS = sections()
IMAGES = {
    name: ota.vector_image(int(size), int(a), int(b))
    for name, size, a, b, _ in SECTIONS["image"]
}
CASES = [name for name in SECTIONS if name not in {"image", "chunk", "needs_session"}]


@pytest.mark.parametrize("row", SECTIONS["image"], ids=lambda row: row[0])
def test_vector_images(row: list[str]) -> None:
    assert hashlib.sha256(IMAGES[row[0]]).hexdigest() == row[4]


@pytest.mark.parametrize("row", SECTIONS["needs_session"], ids=lambda row: row[0])
def test_needs_session(row: list[str]) -> None:
    assert ota.needs_session(row[0].encode()) is (row[1] == "yes")


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    mesh = build_mesh(1, 0, latencies=REPLAY, seed=3, sessions=False, ota=True)
    node = mesh.node(0)
    node.max_connections = 3
    node.att_mtu = 247  # the vectors send 240-byte chunks
    node.flash.finish_override = ota.Finish.OK
    yield mesh
    mesh.shutdown()


async def settle(mesh: Mesh, sessions: list[GattSession]) -> None:
    """Until every buffered write arrived and the node's app task and notifications are idle."""
    quiet = 0
    loop = asyncio.get_running_loop()
    while quiet < 3:
        await asyncio.sleep(0.002)
        now = loop.time()
        busy = mesh.node(0)._ota_busy or any(
            s._queue or any(t >= now for t in s._tx_pending) for s in sessions
        )
        quiet = 0 if busy else quiet + 1


def chunk(arg: str) -> bytes:
    if arg.startswith("hex:"):
        return bytes.fromhex(arg[4:])
    name, offset, length, *header = arg.split(":")
    start = int(offset)
    data = IMAGES[name][start : start + int(length)]
    return int(header[0] if header else offset).to_bytes(4, "little") + data


@pytest.mark.parametrize("case", CASES)
async def test_scripted_case(mesh: Mesh, case: str) -> None:
    node = mesh.node(0)
    assert node.mac is not None
    assert node.ota is not None
    rows = SECTIONS[case]
    assert rows[0][1] == "node"
    role, hardware, slot = rows[0][2].split(":")
    assert (role, hardware, int(slot)) == ("U", node.hardware, ota.SLOT_SIZE)
    clients: dict[str, Collector] = {}
    for conn, op, arg, reply in rows[1:]:
        if conn not in clients:
            clients[conn] = Collector(await mesh.connect(node.mac))
            await settle(mesh, [c.session for c in clients.values()])
            clients[conn].messages.clear()
        client = clients[conn]
        start = len(client.messages)
        if op == "cmd":
            await client.session.write(arg.encode())
        elif op == "data":
            await client.session.write_data(chunk(arg), response=False)
        elif op == "send":
            name, first, last, size = arg.split(":")
            image = IMAGES[name]
            for at in range(int(first), int(last), int(size)):
                end = min(int(last), at + int(size))
                write = at.to_bytes(4, "little") + image[at:end]
                await client.session.write_data(write, response=False)
        elif op == "close":
            client.session.disconnect()
        elif op == "finish":
            node.flash.finish_override = ota.Finish(arg)
        elif op == "flash":
            if arg == "empty":
                assert node.flash.written == 0
            else:
                assert node.flash.holds(IMAGES[arg]), f"{case}: slot is not {arg}"
            assert node.flash.rewrites == 0
        await settle(mesh, [c.session for c in clients.values()])
        expected = [] if reply == "-" else reply.split(" ")
        got = [m.decode() for m in client.messages[start:]]
        assert got == expected, f"{case}: {conn} {op} {arg}"


# The node as the integration meets it: INFO capability, sessions, reboot, rollback.


async def connect(mesh: Mesh, node_id: int = 0) -> Collector:
    node = mesh.node(node_id)
    assert node.mac is not None
    client = Collector(await mesh.connect(node.mac))
    await client.wait_for(lambda line: line == "GATEWAY_CONNECTED")
    client.messages.clear()
    return client


async def install(mesh: Mesh, client: Collector, image: bytes, version: str) -> None:
    sha = hashlib.sha256(image).hexdigest()
    for command in (
        f"OTA:SHA:0:{sha[:24]}",
        f"OTA:SHA:1:{sha[24:48]}",
        f"OTA:SHA:2:{sha[48:]}",
        f"OTA:VER:{version}",
        f"OTA:BEGIN:{len(image)}:U:ESP32-C6",
    ):
        await client.session.write(command.encode())
    for at in range(0, len(image), 16):
        write = at.to_bytes(4, "little") + image[at : at + 16]
        await client.session.write_data(write, response=False)
    await client.wait_for(lambda line: line == "OTA:DONE")


async def test_info_names_the_capability() -> None:
    mesh = build_mesh(1, 1, sessions=False, ota=True)
    client = await connect(mesh)
    lines = await client.send("ALL:INFO")
    assert ",CAP:001B," in lines[0]  # 0010: the large-mesh capability (section 10)
    assert any(",ROLE:R,CAP:0011," in line for line in await client.send("1:INFO"))
    mesh.shutdown()
    assert not build_mesh(1, 0).ota


async def test_reboot_into_the_new_image_and_rollback() -> None:
    latencies = dataclasses.replace(Latencies.fast(), ota_selftest_timeout=0.3)
    mesh = build_mesh(1, 0, sessions=False, ota=True, latencies=latencies)
    node = mesh.node(0)
    client = await connect(mesh)
    await install(mesh, client, ota.build_image("1.1.0", 4096), "1.1.0")
    assert node.flash.rewrites == 0
    await asyncio.sleep(0.2)  # reboot, self-test passed
    assert node.firmware == "1.1.0"
    assert not node.pending_verify
    client = await connect(mesh)
    assert ":FW:1.1.0," in (await client.send("0:INFO"))[0]
    # a bad image installs, boots, fails its self-test and rolls back
    bad = ota.build_image("1.2.0", 4096, selftest_ok=False)
    await install(mesh, client, bad, "1.2.0")
    await asyncio.sleep(0.03)
    assert node.firmware == "1.2.0"
    assert node.pending_verify
    client = await connect(mesh)
    await client.send("OTA:SHA:0:" + "0" * 24)
    # while on trial the node takes no other update
    for command in ("OTA:SHA:1:" + "0" * 24, "OTA:SHA:2:" + "0" * 16, "OTA:VER:1.0.0"):
        await client.send(command)
    assert await client.send("OTA:BEGIN:4096:U:ESP32-C6") == ["ERROR:OTA:FLASH"]
    await asyncio.sleep(0.5)
    assert node.firmware == "1.1.0"
    assert not node.pending_verify
    assert node.ota_log == [
        "installed 1.1.0",
        "self-test passed on 1.1.0",
        "installed 1.2.0",
        "rolled back to 1.1.0",
    ]
    mesh.shutdown()


async def test_final_checks_of_a_simulated_image() -> None:
    mesh = build_mesh(1, 0, sessions=False, ota=True)
    client = await connect(mesh)
    image = ota.build_image("2.0.0", 1024)
    sha = hashlib.sha256(image).hexdigest()
    for version, answer in (("2.0.1", "ERROR:OTA:VERSION"), ("2.0.0", "OTA:DONE")):
        for command in (
            f"OTA:SHA:0:{sha[:24]}",
            f"OTA:SHA:1:{sha[24:48]}",
            f"OTA:SHA:2:{sha[48:]}",
            f"OTA:VER:{version}",
            "OTA:BEGIN:1024:U:ESP32-C6",
        ):
            await client.session.write(command.encode())
        for at in range(0, len(image), 16):
            data = at.to_bytes(4, "little") + image[at : at + 16]
            await client.session.write_data(data, response=False)
        assert await client.wait_for(lambda line: line.startswith(("ERROR", "OTA:D")))
        assert client.lines[-1] == answer
        client.messages.clear()
    relay_image = ota.build_image("2.0.0", 1024, role="R")
    assert ota.read_descriptor(relay_image) == ota.Descriptor(
        "2.0.0", "dc_relay_node", True
    )
    mesh.shutdown()


async def test_a_key_holding_node_wants_sessions_for_ota() -> None:
    mesh = build_mesh(1, 0, ota=True)  # sessions and OTA
    client = await connect(mesh)
    assert await client.send("OTA:BEGIN:10:U:ESP32-C6") == ["ERROR:AUTH:REQUIRED"]
    assert await client.send("ota:abort") == ["ERROR:AUTH:REQUIRED"]
    assert await client.send("OTA:STATUS") == ["OTA:IDLE"]
    bogus = "S:00000001:0000000000000000:OTA:ABORT"
    assert await client.send(bogus) == ["ERROR:AUTH:NO_SESSION"]
    mesh.shutdown()


async def test_link_capacity_and_faults() -> None:
    latencies = dataclasses.replace(Latencies.fast(), conn_interval=0.004)
    mesh = build_mesh(1, 0, sessions=False, ota=True, latencies=latencies)
    node = mesh.node(0)
    client = await connect(mesh)
    image = ota.build_image("1.0.1", 8192)
    await client.send(f"OTA:SHA:0:{hashlib.sha256(image).hexdigest()[:24]}")
    loop = asyncio.get_running_loop()
    started = loop.time()
    chunks = 8192 // 16
    for at in range(0, 8192, 16):
        await client.session.write_data(
            at.to_bytes(4, "little") + b"x" * 16, response=False
        )
    await settle(mesh, [client.session])
    events = chunks / latencies.packets_per_event
    # the last PDU leaves in event ceil(events); the write returned when it was buffered
    assert loop.time() - started >= (events - latencies.tx_buffer / 8) * 0.004 * 0.9
    assert client.session.data_writes == chunks  # no transfer open: all ignored
    with pytest.raises(Exception, match="0x0D"):
        await client.session.write_data(bytes(21), response=False)  # MTU 23
    mesh.set_ota_drops(0, 0.5)
    for at in range(0, 1600, 16):
        await client.session.write_data(
            at.to_bytes(4, "little") + b"x" * 16, response=False
        )
    await settle(mesh, [client.session])
    assert 20 < client.session.data_dropped < 80
    assert node.ota is not None
    mesh.shutdown()


async def test_a_proxy_drops_what_overruns_its_buffer() -> None:
    """No flow control towards the client: writes return at once, the overflow is lost."""
    latencies = dataclasses.replace(Latencies.fast(), conn_interval=0.05)
    mesh = build_mesh(1, 0, sessions=False, ota=True, latencies=latencies)
    mesh.set_ota_proxy(0, buffer=6)
    client = await connect(mesh)
    session = client.session
    loop = asyncio.get_running_loop()
    started = loop.time()
    for at in range(0, 30 * 16, 16):  # back to back, as fast as the client can
        await session.write_data(at.to_bytes(4, "little") + b"x" * 16, response=False)
    assert loop.time() - started < latencies.conn_interval  # nothing held them back
    assert session.proxy_overflows == session.data_dropped == 24
    with pytest.raises(AttError, match="0x8F"):  # a command meets a congested proxy
        await session.write(b"OTA:STATUS")
    with pytest.raises(AttError, match="0x8F"):
        await session.write_data(bytes(8), response=True)
    await settle(mesh, [session])
    assert session.data_writes == 6
    # written at the link's pace, nothing overflows
    spacing = latencies.conn_interval / latencies.packets_per_event
    for at in range(0, 40 * 16, 16):
        await session.write_data(at.to_bytes(4, "little") + b"x" * 16, response=False)
        await asyncio.sleep(spacing * 1.5)
    await settle(mesh, [session])
    assert session.proxy_overflows == 24
    assert session.data_writes == 46
    assert await client.send("OTA:STATUS", 0.2) == ["OTA:IDLE"]  # a free proxy: taken
    # a reply crosses the proxy's Wi-Fi both ways, after the next connection event
    assert 2 * latencies.proxy_hop <= session.reply_delay()
    assert session.reply_delay() <= 2 * latencies.proxy_hop + latencies.conn_interval
    mesh.set_ota_proxy(0, None)  # a local adapter again: flow control, no drops
    for at in range(0, 30 * 16, 16):
        await session.write_data(at.to_bytes(4, "little") + b"x" * 16, response=False)
    await settle(mesh, [session])
    assert session.data_dropped == 24
    assert session.data_writes == 76
    assert session.reply_delay() <= latencies.conn_interval
    mesh.shutdown()
