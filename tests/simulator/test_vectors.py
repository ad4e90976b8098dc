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
    Latencies.fast(),
    mesh_hop=(30.0, 30.0),
    client_timeout=60.0,
    monitor_interval=60.0,
    onoff_timeout=60.0,
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


READING = r"D:{duty}%,V:\d+\.\d{{3}}V,I:{sign}\d+\.\d{{2}}mA,P:\d+\.\dmW"


def duty_after(payload: str, before: int) -> int:
    """The duty a node has after handling a payload (v0.7 clamps, v1 takes 0..100)."""
    if payload in ("r", "s"):
        return 0  # a ramp answers at its first step (v1) or after it (v0.7): 0 %
    if payload.startswith("duty:"):
        return max(0, min(100, int(payload[5:])))
    return before


def local_reply(payload: str, node: int, *, v07: bool = False) -> re.Pattern[str]:
    """What a payload handled on the node itself notifies (duty 0 before)."""
    if payload == "info":
        return re.compile(
            rf"NODE{node}:INFO:FW:1\.0\.0,HW:ESP32-C6,ROLE:U,CAP:0013,UP:\d+,HEAP:\d+,MESH:1a2b3c4d,GW:1"
        )
    reading = READING.format(duty=duty_after(payload, 0), sign="" if v07 else "-?")
    return re.compile(rf"NODE{node}:DATA:{reading}")


COMMANDS = rows("commands.tsv")


@pytest.mark.parametrize(
    ("self_id", "command", "outcome"),
    [(row[0], row[1] if len(row) > 2 else "", row[-1]) for row in COMMANDS],
    ids=[f"{row[0]}|{row[1] if len(row) > 2 else ''}" for row in COMMANDS],
)
async def test_command_vector(self_id: str, command: str, outcome: str) -> None:
    mesh = Mesh(latencies=QUIET, profile=Profile.V1, sessions=False)
    for _ in range(max(wire.V07_MAX_NODES, 0 if self_id == "-" else int(self_id) + 1)):
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


@pytest.mark.parametrize(("message", "chunks"), [row[:2] for row in rows("chunks.tsv")])
async def test_chunk_vector(message: str, chunks: str) -> None:
    expected = [bytes.fromhex(group) for group in chunks.split(" ")]
    assert wire.chunk(unescape(message)) == expected
    mesh = Mesh(latencies=Latencies.fast(), sessions=False)
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
    mesh = Mesh(
        latencies=Latencies.fast(), sessions=False, mesh_id=int(values["mesh_id"], 16)
    )
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


COMMANDS_V07 = rows("commands_v07.tsv")


@pytest.mark.parametrize(
    ("state", "command", "outcome"),
    [tuple(row[:3]) for row in COMMANDS_V07],
    ids=[f"{row[0]}|{row[1]}"[:60] for row in COMMANDS_V07],
)
async def test_v07_command_vector(state: str, command: str, outcome: str) -> None:
    settings = dict(item.split("=") for item in state.split(" "))
    mesh = Mesh(latencies=QUIET, profile=Profile.V07, sessions=False)
    for _ in range(wire.V07_MAX_NODES):
        mesh.add_node()
    node = mesh.node(int(settings["self"]))
    assert node.mac is not None
    try:
        client = Collector(await mesh.connect(node.mac))
        # a monitor runs before each command (started while bound), to see it stop
        await client.send(f"{OTHER_MONITOR}:MONITOR", settle=0.005)
        assert node.monitor == OTHER_MONITOR
        node.bound = settings["bound"] == "1"
        node.known_nodes = [
            int(address, 16)
            for address in settings.get("known", "").split(",")
            if address
        ]
        client.messages.clear()
        mesh.radio_log.clear()

        expected_lines: list[re.Pattern[str]] = []
        expected_radio: list[tuple[int, int, str]] = []
        expected_monitor: int | None = OTHER_MONITOR
        for action in outcome.split(";"):
            kind, _, rest = action.partition(":")
            text = unescape(rest).decode("latin-1")
            if kind == "local":
                expected_lines.append(local_reply(text, node.node_id, v07=True))
            elif kind == "reply":
                expected_lines.append(re.compile(re.escape(text)))
            elif kind == "mesh":
                destination, _, payload = text.partition(":")
                expected_radio.append((node.address, int(destination, 16), payload))
            elif kind == "onoff":
                destination, _, state_text = text.partition(":")
                expected_radio.append(
                    (node.address, int(destination, 16), f"onoff:{state_text}")
                )
            else:
                assert kind == "monitor"
                expected_monitor = None if text == "off" else int(text, 16) - 5

        await client.session.write(unescape(command))  # never refused by v0.7
        await asyncio.sleep(0.01)

        lines = [message.decode("latin-1") for message in client.messages]
        assert len(lines) == len(expected_lines), lines
        for line, pattern in zip(lines, expected_lines, strict=True):
            assert pattern.fullmatch(line), (line, pattern.pattern)
        assert list(mesh.radio_log) == expected_radio
        assert node.monitor == expected_monitor
    finally:
        mesh.shutdown()


@pytest.mark.parametrize(
    ("profile", "payload", "outcome"),
    [tuple(row[:3]) for row in rows("payloads.tsv")],
    ids=[f"{row[0]}|{row[1]}" for row in rows("payloads.tsv")],
)
async def test_payload_vector(profile: str, payload: str, outcome: str) -> None:
    mesh = Mesh(latencies=Latencies.fast(), sessions=False, profile=Profile(profile))
    node = mesh.add_node()
    try:
        node.duty = 40
        answers: list[str] = []
        node.serve(
            unescape(payload).decode("latin-1"), gateway=False, answer=answers.append
        )
        ramping = False
        duty = 40
        *effects, status = outcome.split(";")
        for effect in effects:
            if effect == "ramp":
                ramping = True
                duty = 0
            else:
                duty = int(effect.removeprefix("duty:"))
        if ramping and profile == "v0.7":  # blocks through the ramp, then answers
            assert answers == []
            await asyncio.sleep(6 * mesh.latencies.ramp_step)
        assert node.duty == duty
        [answer] = answers
        expected = unescape(status.removeprefix("status:")).decode("latin-1")
        if expected == "reading":
            sign = "" if profile == "v0.7" else "-?"
            assert re.fullmatch(READING.format(duty=duty, sign=sign), answer), answer
        elif expected == "info":
            assert answer.startswith(f"NODE{node.node_id}:INFO:FW:1.0.0,")
            assert answer.endswith(",GW:0")
        else:
            assert answer == expected
    finally:
        mesh.shutdown()


@pytest.mark.parametrize(
    ("profile", "source", "status", "notification"),
    [tuple(row[:4]) for row in rows("status.tsv")],
    ids=[f"{row[0]}|{row[1]}|{row[2][:20]}" for row in rows("status.tsv")],
)
async def test_status_vector(
    profile: str, source: str, status: str, notification: str
) -> None:
    mesh = Mesh(latencies=Latencies.fast(), sessions=False, profile=Profile(profile))
    node = mesh.add_node()
    assert node.mac is not None
    try:
        client = Collector(await mesh.connect(node.mac))
        await asyncio.sleep(0.005)
        client.messages.clear()
        node.on_status(int(source, 16), unescape(status).decode("latin-1"))
        await asyncio.sleep(0.005)
        expected = [] if notification == "-" else [unescape(notification)]
        assert client.messages == expected
    finally:
        mesh.shutdown()


V07_READINGS = [row for row in rows("replies.tsv", "v0.7") if row[1] == "reading"]


@pytest.mark.parametrize("row", V07_READINGS, ids=[row[0][:40] for row in V07_READINGS])
def test_v07_reading_format_vector(row: list[str]) -> None:
    """The simulator prints v0.7 readings byte for byte (float32) from register counts."""
    values = dict(item.split("=") for item in row[2].split(" "))
    volt_counts = round(float(values["voltage"]) * 800)
    amp_counts = round(float(values["current_ma"]) / 1.25)
    line = wire.forward_status(
        int(values["node"]) + wire.BASE_UNICAST,
        wire.format_reading_v07(int(values["duty"]), volt_counts, amp_counts),
        v07=True,
    )
    assert line == row[0]


STAGGER = rows("stagger.tsv")


@pytest.mark.parametrize("row", STAGGER, ids=[row[3] for row in STAGGER])
def test_stagger_vector(row: list[str]) -> None:
    """The simulator holds answers to group SENDs as the firmware core does (ms -> s)."""
    node = int(row[0])
    slot = wire.STAGGER_SLOT_MS / 1000
    stagger: wire.Stagger[None] = wire.Stagger()
    got: list[str] = []
    last = wrap = 0
    for event in row[1].split(";"):
        kind, _, rest = event.partition(":")
        ms_text, _, rest = rest.partition(":")
        if int(ms_text) < last:  # the firmware's u32 millisecond counter wrapped
            wrap += 2**32
        last = int(ms_text)
        now = (wrap + last) / 1000

        def emit(held: wire.Held[None], ms: str = ms_text) -> None:
            got.append(f"{ms}:{held.dst:04x}:{held.text}")

        if kind == "tick":
            while (held := stagger.take(now)) is not None:
                emit(held)
            continue
        src, dst, answer_kind, text = rest.split(":", 3)
        answer = unescape(text).decode("latin-1")
        if not answer.isalpha():  # (short test texts like "A" stand for any kind)
            assert answer_kind == wire.answer_kind(answer)
        delay = wire.Stagger.delay(node, int(dst, 16), slot)
        if delay == 0:
            got.append(f"{ms_text}:{src}:{answer}")
            continue
        evicted = stagger.put(
            now, delay, int(src, 16), kind=answer_kind, text=answer, context=None
        )
        if evicted is not None:
            emit(evicted)
    assert ";".join(got) == ("" if row[2] == "-" else unescape(row[2]).decode())


async def test_a_node_staggers_its_group_answers_as_the_vectors_say() -> None:
    """In the mesh: node k answers ALL:READ k slots after the group read, 29:READ at once."""
    slot = 0.01
    latencies = dataclasses.replace(
        Latencies.fast(), mesh_hop=(0.001, 0.001), stagger_slot=slot
    )
    mesh = Mesh(latencies=latencies, sessions=False)
    for _ in range(30):
        mesh.add_node()
    try:
        client = Collector(await mesh.connect(mesh.node(0).mac or ""))
        loop = asyncio.get_running_loop()
        start = loop.time()
        await client.session.write(b"ALL:READ")
        await client.wait_for(lambda line: line.startswith("NODE29:"))
        elapsed = loop.time() - start
        ids = [
            int(line[4 : line.index(":")]) for line in client.lines if ":DATA:" in line
        ]
        assert ids == list(range(30))  # in id order: each waited its slots
        assert 29 * slot <= elapsed < 29 * slot + 0.5
        client.messages.clear()
        start = loop.time()
        await client.session.write(b"29:READ")
        await client.wait_for(lambda line: line.startswith("NODE29:"))
        assert loop.time() - start < 10 * slot  # a unicast is answered at once
    finally:
        mesh.shutdown()
