"""The integration's codec against the shared vectors in firmware/vectors/."""

from __future__ import annotations

import re

import pytest

from custom_components.dc_mesh.dcmesh import (
    Ack,
    CommandError,
    ErrorReply,
    Event,
    MeshTimeout,
    NodeError,
    NodeInfo,
    NodeRole,
    OnOff,
    ProtocolError,
    Reading,
    Reassembler,
    Sent,
    StatusLine,
    UnknownPayload,
    chunk_message,
    encode_command,
    group_reply_delay,
    parse_message,
    parse_service_data,
)

from .vectors import fields, load, unescape

CHUNKS = [cols for _, cols in load("chunks.tsv")]
REPLIES = [(section, cols) for section, cols in load("replies.tsv")]
HOSTILE = [cols for _, cols in load("hostile_messages.tsv")]
COMMANDS = [cols for _, cols in load("commands.tsv")]
ADVERTISEMENTS = [cols for _, cols in load("advertisement.tsv")]
STREAMS = [cols for _, cols in load("streams.tsv")]
STATUS = [cols for _, cols in load("status.tsv")]
COMMANDS_V07 = [cols for _, cols in load("commands_v07.tsv")]
STAGGER = [cols for _, cols in load("stagger.tsv")]


def _ids(rows: list[list[str]]) -> list[str]:
    return [row[0][:48] or "<empty>" for row in rows]


def test_every_vector_file_has_vectors() -> None:
    for rows in (
        CHUNKS,
        REPLIES,
        HOSTILE,
        COMMANDS,
        ADVERTISEMENTS,
        STREAMS,
        STATUS,
        COMMANDS_V07,
        STAGGER,
    ):
        assert len(rows) >= 10
    assert {section for section, _ in REPLIES} == {"firmware", "v0.7", "parser-only"}
    # Every exact v0.7 message says where the firmware sends it.
    assert all(
        len(row) == 4 and row[3] for section, row in REPLIES if section == "v0.7"
    )


@pytest.mark.parametrize("row", CHUNKS, ids=_ids(CHUNKS))
def test_chunking(row: list[str]) -> None:
    assert len(row) in {2, 3}
    message = unescape(row[0])
    chunks = [bytes.fromhex(group) for group in row[1].split(" ")]
    assert chunk_message(message) == chunks
    reassembler = Reassembler()
    assert [reassembler.feed(chunk) for chunk in chunks[:-1]] == [None] * (
        len(chunks) - 1
    )
    assert reassembler.feed(chunks[-1]) == message


def _expected_event(kind: str, values: dict[str, str]) -> Event:
    def integer(key: str) -> int:
        return int(values[key], 0)

    match kind:
        case "reading":
            return Reading(
                node_id=integer("node"),
                duty=integer("duty"),
                voltage=float(values["voltage"]),
                current_ma=float(values["current_ma"]),
                power_mw=float(values["power_mw"]),
            )
        case "info":
            return NodeInfo(
                node_id=integer("node"),
                firmware=values["firmware"],
                hardware=values["hardware"],
                role=NodeRole(values["role"]),
                capabilities=integer("capabilities"),
                uptime=integer("uptime"),
                free_heap=integer("free_heap"),
                mesh_id=integer("mesh_id"),
                gateway=values["gateway"] == "1",
            )
        case "sent":
            return Sent(values["command"], values["fallback"] == "1")
        case "ack":
            return Ack(integer("node"), values["on"] == "1")
        case "onoff":
            return OnOff(integer("node"), values["on"] == "1")
        case "error":
            return ErrorReply(values["kind"], values.get("detail"))
        case "mesh_timeout":
            node = integer("node") if "node" in values else None
            return MeshTimeout(integer("address"), node)
        case "status":
            return StatusLine(values["text"])
        case "node_error":
            return NodeError(integer("node"), values["detail"])
        case "unknown_payload":
            return UnknownPayload(values["detail"])
    raise AssertionError(f"unknown kind {kind!r} in replies.tsv")


@pytest.mark.parametrize(("section", "row"), REPLIES, ids=_ids([r for _, r in REPLIES]))
def test_reply(section: str, row: list[str]) -> None:
    assert section in {"firmware", "v0.7", "parser-only"}
    assert len(row) in {3, 4}
    message, kind, values = row[0], row[1], fields(row[2])
    event = parse_message(unescape(message))
    # Decimals are compared as numbers: float("12.003") equals our parse of "12.003V".
    assert event == _expected_event(kind, values)


def _split(column: str) -> list[bytes]:
    return [] if column == "-" else [unescape(part) for part in column.split("|")]


@pytest.mark.parametrize("row", STREAMS, ids=[row[3][:60] for row in STREAMS])
def test_stream(row: list[str]) -> None:
    assert len(row) == 4
    chunks, expected, discarded = _split(row[0]), _split(row[1]), int(row[2])
    assert all(len(chunk) <= 20 for chunk in chunks)
    reassembler = Reassembler()
    delivered = [m for chunk in chunks if (m := reassembler.feed(chunk)) is not None]
    assert delivered == expected
    assert reassembler.discarded == discarded
    assert not reassembler.pending


@pytest.mark.parametrize("row", STATUS, ids=[f"{r[0]}|{r[2][:30]}" for r in STATUS])
def test_forwarded_status_parses(row: list[str]) -> None:
    """What a gateway notifies for a vendor STATUS is an event of the sending node."""
    source, status, notification = int(row[1], 16), row[2], row[3]
    if notification == "-":
        return
    node = source - 5 if source >= 5 else 0
    message = unescape(notification)
    if status.startswith("D:"):
        event = parse_message(message)
        assert isinstance(event, Reading)
        assert event.node_id == node
    elif status.startswith("ERR:UNKNOWN:"):
        assert parse_message(message) == NodeError(
            node, unescape(notification).decode().split(":DATA:ERR:UNKNOWN:", 1)[1]
        )
    elif status.startswith("NODE") and row[0] == "v1":
        assert isinstance(parse_message(message), NodeInfo)
    else:  # nothing a node sends: the parser refuses it
        with pytest.raises(ProtocolError):
            parse_message(message)


def _replies(rows: list[list[str]], column: int) -> list[str]:
    return [
        action.removeprefix("reply:")
        for row in rows
        for action in row[column].split(";")
        if action.startswith("reply:")
    ]


@pytest.mark.parametrize(
    "message", sorted(set(_replies(COMMANDS, 2) + _replies(COMMANDS_V07, 2)))
)
def test_every_command_reply_parses(message: str) -> None:
    event = parse_message(unescape(message))
    assert isinstance(event, Sent | ErrorReply | Ack)


@pytest.mark.parametrize("row", HOSTILE, ids=_ids(HOSTILE))
def test_hostile_message(row: list[str]) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_message(unescape(row[0]))
    assert info.value.reason == row[1]


@pytest.mark.parametrize("row", ADVERTISEMENTS, ids=_ids(ADVERTISEMENTS))
def test_advertisement(row: list[str]) -> None:
    data, result = bytes.fromhex(row[0]), row[1]
    if result != "ok":
        with pytest.raises(ProtocolError) as info:
            parse_service_data(data)
        assert info.value.reason == result
        return
    values = fields(row[2])
    advertisement = parse_service_data(data)
    assert advertisement.version == int(values["version"], 0)
    assert advertisement.mesh_id == int(values["mesh_id"], 0)
    assert advertisement.node_id == (int(values["node"]) if "node" in values else None)
    assert advertisement.role is NodeRole(values["role"])
    assert advertisement.flags == int(values["flags"], 0)


def _intent(command: str) -> tuple[object, str, object]:
    """Map a vector's command text to encode_command's (target, command, value).

    The value only matters for DUTY (the node ignores it otherwise); a target or value
    that is not a plain number is passed through as text, for encode_command to refuse.
    """
    target_text, _, rest = command.partition(":")
    verb, has_value, value_text = rest.partition(":")
    target: object = target_text
    if re.fullmatch(r"-?[0-9]+", target_text) and str(int(target_text)) == target_text:
        target = int(target_text)
    value: object = None
    if verb.upper() == "DUTY" and has_value and value_text:
        value = int(value_text) if re.fullmatch(r"-?[0-9]+", value_text) else value_text
    return target, verb, value


def _is_canonical(command: str) -> bool:
    """Whether `command` is the one spelling of its intent (upper case, no ignored parts)."""
    target, verb, value = _intent(command)
    spelled = f"{target}:{verb}" if value is None else f"{target}:{verb}:{value}"
    return command == spelled.upper()


VALID_COMMANDS = [
    row
    for row in COMMANDS
    if not row[2].startswith(("reply:ERROR:", "att_error"))
    and not (row[1].upper().endswith(":DUTY") or row[1].upper().endswith(":DUTY:"))
]
REFUSED_COMMANDS = [
    row
    for row in COMMANDS
    if row[2].startswith("att_error")
    or (row[2].startswith("reply:ERROR:") and row[2] != "reply:ERROR:NOT_READY")
]


def test_vector_selection() -> None:
    assert sum(_is_canonical(row[1]) for row in VALID_COMMANDS) >= 20
    assert len(REFUSED_COMMANDS) >= 20


@pytest.mark.parametrize("row", VALID_COMMANDS, ids=[r[1] for r in VALID_COMMANDS])
def test_valid_command_is_what_we_encode(row: list[str]) -> None:
    command = unescape(row[1]).decode("ascii")
    target, verb, value = _intent(command)
    # commands.tsv is the firmware with CAP_LARGE_MESH (node ids 0..99)
    encoded = encode_command(target, verb, value, large_mesh=True)  # type: ignore[arg-type]
    if _is_canonical(command):
        assert encoded == command.encode("ascii")
    else:
        # Same intent, canonical spelling: upper case, the value only for DUTY.
        assert encoded.decode("ascii") == encoded.decode("ascii").upper()
        assert encoded.split(b":")[1] == verb.upper().encode("ascii")


@pytest.mark.parametrize(
    "row", REFUSED_COMMANDS, ids=[r[1][:40] for r in REFUSED_COMMANDS]
)
def test_refused_command_is_not_encodable(row: list[str]) -> None:
    command = unescape(row[1]).decode("utf-8", errors="replace")
    target, verb, value = _intent(command)
    for large_mesh in (False, True):
        with pytest.raises(CommandError):
            encode_command(target, verb, value, large_mesh=large_mesh)  # type: ignore[arg-type]


@pytest.mark.parametrize("row", STAGGER, ids=[row[3] for row in STAGGER])
def test_stagger_answers_come_within_the_window_the_link_waits(row: list[str]) -> None:
    """The link waits node id x GROUP_REPLY_SLOT after a group read: no answer comes later.

    Each answer leaves no later than the SEND it answers plus `group_reply_delay(node)`
    (the SEND whose text it carries: a later one from the same source reuses the due time
    of the first), and a unicast is answered at once.
    """
    node = int(row[0])
    made: dict[
        str, tuple[int, int]
    ] = {}  # answer text -> (time, destination of its SEND)
    ticks: list[int] = []
    for event in row[1].split(";"):
        kind, _, rest = event.partition(":")
        if kind == "send":
            ms, _src, dst, _kind, text = rest.split(":", 4)
            made[text] = (int(ms), int(dst, 16))
        else:
            ticks.append(int(rest))
    answers = [] if row[2] == "-" else row[2].split(";")
    assert answers or row[1].count("send") == 1
    delay = round(group_reply_delay(node) * 1000)
    for answer in answers:
        ms, _to, text = answer.split(":", 2)
        sent_ms, dst = made[text]
        waited = (int(ms) - sent_ms) % 2**32
        if dst != 0xC000:
            assert waited == 0
            continue
        # at the latest with the node's first tick (its clock) once the delay is over
        due = [rel for tick in ticks if (rel := (tick - sent_ms) % 2**32) >= delay]
        assert waited <= min(due, default=delay)
