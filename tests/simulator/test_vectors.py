"""The simulator's v1 node against the shared vectors in firmware/vectors/."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
import re

import pytest

from simulator import wire
from simulator.mesh import AttError, Latencies, Mesh, Profile

from .client import Collector

VECTORS = Path(__file__).resolve().parents[2] / "firmware" / "vectors"
ESCAPE = re.compile(rb"\\(x[0-9a-f]{2}|\\)")
# Remote nodes must stay silent while a command's own actions are observed.
QUIET = dataclasses.replace(
    Latencies.fast(), mesh_hop=(30.0, 30.0), client_timeout=60.0, monitor_interval=60.0
)
OTHER_MONITOR = 5  # a monitor running before each command, to see it stop


def unescape(text: str) -> bytes:
    return ESCAPE.sub(
        lambda m: b"\\" if m.group(1) == b"\\" else bytes([int(m.group(1)[1:], 16)]),
        text.encode(),
    )


def rows(name: str, section: str | None = None) -> list[list[str]]:
    found, current = [], ""
    for line in (VECTORS / name).read_text("utf-8").splitlines():
        if line.startswith("#@"):
            current = line[2:].strip()
        elif line and not line.startswith("#") and section in (None, current):
            found.append(line.split("\t"))
    return found


def local_reply(payload: str, node: int) -> re.Pattern[str]:
    """What a payload handled on the node itself notifies."""
    if payload == "read":
        return re.compile(
            rf"NODE{node}:DATA:D:\d+%,V:\d+\.\d{{3}}V,I:-?\d+\.\d{{2}}mA,P:\d+\.\dmW"
        )
    if payload == "info":
        return re.compile(
            rf"NODE{node}:INFO:FW:1\.0\.0,HW:ESP32-C6,ROLE:U,CAP:0003,UP:\d+,HEAP:\d+,MESH:1a2b3c4d,GW:1"
        )
    text = {"r": f"NODE{node}:ONOFF:1", "s": f"NODE{node}:ONOFF:0"}.get(payload)
    return re.compile(
        re.escape(text or f"NODE{node}:ACK:{payload.removeprefix('duty:')}")
    )


COMMANDS = rows("commands.tsv")


@pytest.mark.parametrize(
    ("self_id", "command", "outcome"),
    [(row[0], row[1] if len(row) > 2 else "", row[-1]) for row in COMMANDS],
    ids=[f"{row[0]}|{row[1] if len(row) > 2 else ''}" for row in COMMANDS],
)
async def test_command_vector(self_id: str, command: str, outcome: str) -> None:
    mesh = Mesh(latencies=QUIET, profile=Profile.V1)
    for _ in range(wire.MAX_NODES):
        mesh.add_node()
    node = mesh.node(0 if self_id == "-" else int(self_id))
    assert node.mac is not None
    try:
        client = Collector(await mesh.connect(node.mac))
        await client.send(f"{OTHER_MONITOR}:MONITOR", settle=0.005)
        node.bound = self_id != "-"
        client.messages.clear()
        mesh.radio_log.clear()

        expected_lines: list[re.Pattern[str]] = []
        expected_radio: list[tuple[int, int, str]] = []
        expected_monitor: int | str | None = OTHER_MONITOR
        for action in outcome.split(";"):
            kind, _, rest = action.partition(":")
            text = unescape(rest).decode("latin-1")
            if kind == "local":
                expected_lines.append(local_reply(text, node.node_id))
            elif kind == "reply":
                expected_lines.append(re.compile(re.escape(text)))
            elif kind == "mesh":
                destination, _, payload = text.partition(":")
                expected_radio.append((node.address, int(destination, 16), payload))
            elif kind == "monitor":
                expected_monitor = (
                    None if text == "off" else text if text == "all" else int(text)
                )
            else:
                assert action == "att_error:0x0d"

        raw = unescape(command)
        if outcome == "att_error:0x0d":
            with pytest.raises(AttError) as err:
                await client.session.write(raw)
            assert err.value.code == 0x0D
        else:
            await client.session.write(raw)
        await asyncio.sleep(0.005)

        lines = [message.decode("latin-1") for message in client.messages]
        assert len(lines) == len(expected_lines), lines
        for line, pattern in zip(lines, expected_lines, strict=True):
            assert pattern.fullmatch(line), (line, pattern.pattern)
        assert list(mesh.radio_log) == expected_radio
        assert node.monitor == expected_monitor
    finally:
        mesh.shutdown()


@pytest.mark.parametrize(("message", "chunks"), rows("chunks.tsv"))
async def test_chunk_vector(message: str, chunks: str) -> None:
    expected = [bytes.fromhex(group) for group in chunks.split(" ")]
    assert wire.chunk(unescape(message)) == expected
    mesh = Mesh(latencies=Latencies.fast())
    node = mesh.add_node()
    assert node.mac is not None
    try:
        client = Collector(await mesh.connect(node.mac))
        await asyncio.sleep(0.005)
        client.chunks.clear()
        node.notify(unescape(message).decode("latin-1"))
        await asyncio.sleep(0.005)
        assert client.chunks == expected
    finally:
        mesh.shutdown()


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        (row[0], row[2])
        for row in rows("replies.tsv", "firmware")
        if row[1] == "reading"
    ],
)
def test_reading_format_vector(message: str, fields: str) -> None:
    values = dict(item.split("=") for item in fields.split(" "))
    line = wire.format_data(
        int(values["node"]),
        int(values["duty"]),
        round(float(values["voltage"]) * 1000),
        round(float(values["current_ma"]) * 100),
    )
    assert line == message


ADVERTS = [
    row
    for row in rows("advertisement.tsv")
    if row[1] == "ok"
    and len(row[0]) == 16
    and " node=" in f" {row[2]}"
    and "role=U" in row[2]
    and int(row[0][14:], 16) <= 3
]


@pytest.mark.parametrize(("data", "result", "fields"), ADVERTS)
async def test_advertisement_vector(data: str, result: str, fields: str) -> None:
    values = dict(item.split("=") for item in fields.split(" "))
    flags = int(values["flags"], 16)
    mesh = Mesh(latencies=Latencies.fast(), mesh_id=int(values["mesh_id"], 16))
    for _ in range(int(values["node"]) + 1):
        mesh.add_node()
    node = mesh.node(int(values["node"]))
    assert node.mac is not None
    try:
        node.mesh_ready = bool(flags & 2)
        if flags & 1:
            await mesh.connect(node.mac)
        [advert] = [
            advert for advert in mesh.advertisements() if advert.mac == node.mac
        ]
        assert advert.service_data == {wire.SERVICE_UUID: bytes.fromhex(data)}
    finally:
        mesh.shutdown()
