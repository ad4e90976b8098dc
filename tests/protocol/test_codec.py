"""The codec on its own: framing, parsing, encoding, with properties checked by Hypothesis."""

from __future__ import annotations

import contextlib
import re
import struct

from hypothesis import given, strategies as st
import pytest

from custom_components.dc_mesh.dcmesh import (
    MAX_COMMAND_LEN,
    MAX_MESSAGE_LEN,
    MAX_REPLY_NODE_ID,
    NOTIFY_CHUNK_SIZE,
    Ack,
    CommandError,
    ErrorReply,
    MeshTimeout,
    NodeError,
    NodeInfo,
    NodeRole,
    OnOff,
    OtaMessage,
    ProtocolError,
    Reading,
    Reassembler,
    Sent,
    StatusLine,
    address_from_node_id,
    chunk_message,
    encode_command,
    group_reply_delay,
    max_target,
    node_id_from_address,
    parse_message,
    parse_service_data,
    reply_node_id_from_address,
)

READING = b"NODE1:DATA:D:50%,V:12.003V,I:250.00mA,P:3000.8mW"
INFO = b"NODE0:INFO:FW:1.0.0,HW:ESP32-C6,ROLE:U,CAP:0003,UP:3600,HEAP:142000,MESH:1a2b3c4d,GW:1"

# How a message may start (the reassembler resynchronises on these): written out again
# here, so that the tests do not borrow the implementation's pattern.
KEYWORD = re.compile(
    rb"NODE[0-9]|NODE_READY|SENT:|ERROR:|ERR:|TIMEOUT:|MESH_READY|GATEWAY_"
)
BODY = NOTIFY_CHUNK_SIZE - 1


def framable(message: bytes) -> bool:
    """No chunk after the first starts with a keyword (true of every firmware message)."""
    return not any(
        KEYWORD.match(message, offset) for offset in range(BODY, len(message), BODY)
    )


messages = st.binary(min_size=1, max_size=MAX_MESSAGE_LEN).filter(
    lambda message: not message.startswith(b"+") and framable(message)
)


def reassemble(reassembler: Reassembler, chunks: list[bytes]) -> list[bytes]:
    return [m for chunk in chunks if (m := reassembler.feed(chunk)) is not None]


def _f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def v07_reading(node: int, duty: int, raw_v: int, raw_i: int) -> str:
    """A reading exactly as v0.7 prints it: float32 (command.c:15-21, sensor.c:139,166)."""
    volts = _f32(_f32(raw_v * 1.25) / 1000.0)
    milliamps = abs(_f32(raw_i * 1.25))
    milliwatts = abs(_f32(volts * milliamps))
    return "NODE%d:DATA:D:%d%%,V:%.3fV,I:%.2fmA,P:%.1fmW" % (  # noqa: UP031
        node,
        duty,
        volts,
        milliamps,
        milliwatts,
    )


def v1_reading(node: int, duty: int, millivolts: int, centi_ma: int) -> str:
    """A reading as v1 prints it: fixed point, P = |V x I| rounded half up."""
    deci_mw = (abs(millivolts * centi_ma) + 5000) // 10000
    sign = "-" if centi_ma < 0 else ""
    return (
        f"NODE{node}:DATA:D:{duty}%,V:{millivolts // 1000}.{millivolts % 1000:03d}V,"
        f"I:{sign}{abs(centi_ma) // 100}.{abs(centi_ma) % 100:02d}mA,"
        f"P:{deci_mw // 10}.{deci_mw % 10}mW"
    )


node_ids = st.integers(0, MAX_REPLY_NODE_ID)
tokens = st.from_regex(r"[A-Za-z]{1,29}", fullmatch=True)  # as strtok leaves them
firmware_messages = st.one_of(
    st.builds(
        v07_reading,
        node_ids,
        st.integers(0, 100),
        st.integers(0, 0xFFFF),
        st.integers(-0x8000, 0x7FFF),
    ),
    st.builds(
        v1_reading,
        st.integers(0, 9),
        st.integers(0, 100),
        st.integers(0, 81919),
        st.integers(-4_096_000, 4_095_875),
    ),
    st.builds(
        "NODE{}:DATA:ERR:UNKNOWN:{}".format,
        node_ids,
        st.from_regex(r"[a-z0-9:]{0,30}", fullmatch=True),
    ),
    st.builds("NODE{}:ACK:{}".format, node_ids, st.integers(0, 1)),
    st.builds("SENT:{}".format, tokens),
    st.builds("ERROR:UNKNOWN_CMD:{}".format, tokens),
    st.builds("TIMEOUT:0x{:04x}".format, st.integers(0, 0xFFFF)),
    st.builds(
        "NODE{}:INFO:FW:1.0.0,HW:{},ROLE:U,CAP:0003,UP:{},HEAP:{},MESH:{:08x},GW:{}".format,
        st.integers(0, 9),
        st.from_regex(r"[a-z0-9-]{1,16}", fullmatch=True),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 1),
    ),
    st.sampled_from(
        [
            "SENT:ON(fallback)",
            "SENT:OFF(fallback)",
            "SENT:MONITOR",
            "ERROR:NO_NODE_I",
            "ERROR:INVALID_NODE",
            "ERROR:NO_COMMAND",
            "ERROR:NOT_READY",
            "ERROR:MESH_SEND_FAIL",
            "ERROR:MESH_TIMEOUT",
            "MESH_READY:VENDOR",
            "MESH_READY",
            "GATEWAY_CONNECTED",
            "NODE_READY",
            "GATEWAY_READY",
        ]
    ),
).map(lambda text: text.encode("ascii"))


# Framing


@given(messages)
def test_chunked_message_reassembles_identically(message: bytes) -> None:
    chunks = chunk_message(message)
    assert all(len(chunk) <= NOTIFY_CHUNK_SIZE for chunk in chunks)
    assert all(chunk.startswith(b"+") for chunk in chunks[:-1])
    assert not chunks[-1].startswith(b"+")
    reassembler = Reassembler()
    assert reassemble(reassembler, chunks) == [message]
    assert reassembler.discarded == 0


@given(st.lists(messages, min_size=1, max_size=5))
def test_consecutive_messages_stay_apart(batch: list[bytes]) -> None:
    reassembler = Reassembler()
    chunks = [chunk for message in batch for chunk in chunk_message(message)]
    assert reassemble(reassembler, chunks) == batch
    assert not reassembler.pending


@given(st.lists(firmware_messages, min_size=1, max_size=8))
def test_firmware_messages_frame_and_parse(batch: list[bytes]) -> None:
    assert all(framable(message) for message in batch)
    chunks = [chunk for message in batch for chunk in chunk_message(message)]
    assert reassemble(Reassembler(), chunks) == batch
    for message in batch:
        parse_message(message)


@given(st.lists(firmware_messages, min_size=1, max_size=6), st.data())
def test_a_lost_chunk_costs_only_its_own_message(
    batch: list[bytes], data: st.DataObject
) -> None:
    """Any one chunk lost: every other message arrives intact and in order."""
    tagged = [
        (n, chunk)
        for n, message in enumerate(batch)
        for chunk in chunk_message(message)
    ]
    lost = data.draw(st.integers(0, len(tagged) - 1), label="lost chunk")
    owner = tagged[lost][0]
    reassembler = Reassembler()
    delivered = reassemble(
        reassembler, [chunk for k, (_, chunk) in enumerate(tagged) if k != lost]
    )
    before, after = batch[:owner], batch[owner + 1 :]
    assert delivered[: len(before)] == before
    assert delivered[len(delivered) - len(after) :] == after
    rest = delivered[len(before) : len(delivered) - len(after)]
    # The broken message is delivered broken (the parser refuses it), given up, or
    # still pending at the end of the stream: one of the three, once at most.
    assert batch[owner] not in rest
    assert len(rest) + reassembler.discarded + reassembler.pending <= 1
    for broken in rest:
        with pytest.raises(ProtocolError):
            parse_message(broken)


@given(st.lists(st.binary(max_size=40), max_size=60), messages)
def test_garbage_chunks_never_raise_and_spare_the_next_message(
    garbage: list[bytes], message: bytes
) -> None:
    reassembler = Reassembler()
    for chunk in garbage:
        if (complete := reassembler.feed(chunk)) is not None:
            with contextlib.suppress(ProtocolError):
                parse_message(complete)
    # A reconnect drops whatever partial message the garbage left behind.
    reassembler.reset()
    assert not reassembler.pending
    assert reassemble(reassembler, chunk_message(message)) == [message]


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=30), firmware_messages)
def test_after_garbage_the_next_firmware_message_arrives(
    garbage: list[bytes], message: bytes
) -> None:
    reassembler = Reassembler()
    reassemble(reassembler, garbage)
    assert reassemble(reassembler, chunk_message(message)) == [message]
    assert not reassembler.pending


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=30))
def test_an_unprefixed_chunk_always_ends_the_message(garbage: list[bytes]) -> None:
    reassembler = Reassembler()
    reassemble(reassembler, [*garbage, b"end"])
    assert not reassembler.pending


def test_lost_final_chunk_costs_only_that_message() -> None:
    reassembler = Reassembler()
    assert reassemble(reassembler, chunk_message(INFO)[:-1]) == []
    assert reassembler.pending
    assert reassemble(reassembler, chunk_message(b"SENT:READ")) == [b"SENT:READ"]
    assert reassembler.discarded == 1
    assert reassemble(reassembler, chunk_message(READING)) == [READING]
    assert reassembler.discarded == 1


def test_stray_chunk_after_reconnect_is_dropped_by_reset() -> None:
    reassembler = Reassembler()
    reassemble(reassembler, chunk_message(INFO)[:2])
    assert reassembler.pending
    reassembler.reset()
    assert not reassembler.pending
    assert reassembler.discarded == 1
    reassembler.reset()
    assert reassembler.discarded == 1  # nothing pending, nothing given up
    assert reassemble(reassembler, chunk_message(READING)) == [READING]


def test_overlong_message_is_given_up_once() -> None:
    reassembler = Reassembler()
    chunk = b"+" + b"a" * (NOTIFY_CHUNK_SIZE - 1)
    fitting = MAX_MESSAGE_LEN // (NOTIFY_CHUNK_SIZE - 1)
    assert reassemble(reassembler, [chunk] * fitting) == []
    assert reassembler.discarded == 0
    assert reassemble(reassembler, [chunk] * 100) == []
    assert reassembler.discarded == 1
    assert reassembler.pending  # skipping the rest of the flood
    assert reassemble(reassembler, [b"tail"]) == []  # the end of the flood
    assert not reassembler.pending
    assert reassemble(reassembler, chunk_message(READING)) == [READING]
    assert reassemble(reassembler, [chunk] * 100 + chunk_message(READING)) == [READING]
    assert reassembler.discarded == 2


def test_overlong_single_notification_is_given_up() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(b"a" * (MAX_MESSAGE_LEN + 1)) is None
    assert reassembler.discarded == 1
    assert not reassembler.pending


def test_message_of_exactly_the_limit_is_accepted() -> None:
    message = b"ERR:UNKNOWN:" + b"a" * (MAX_MESSAGE_LEN - 12)
    assert reassemble(Reassembler(), chunk_message(message)) == [message]
    with pytest.raises(ProtocolError, match="too_long"):
        chunk_message(message + b"a")


def test_empty_chunk_ends_the_message() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(b"+NODE_READ") is None
    assert reassembler.feed(b"") == b"NODE_READ"
    with pytest.raises(ProtocolError, match="unknown_message"):
        parse_message(reassembler.feed(b"") or b"")


@pytest.mark.parametrize("message", [b"", b"+NODE_READY"])
def test_unframeable_message_is_refused(message: bytes) -> None:
    with pytest.raises(ProtocolError, match="unknown_message"):
        chunk_message(message)


# Parsing


@given(st.binary(max_size=600))
def test_parse_raises_only_protocol_error(data: bytes) -> None:
    reasons = []
    try:
        parse_message(data)
    except ProtocolError as err:
        reasons.append(err.reason)
    assert set(reasons) <= {
        "too_long",
        "bad_utf8",
        "unknown_message",
        "bad_node_id",
        "bad_number",
        "out_of_range",
    }


def _cased(text: str, upper: bool) -> str:
    return text.upper() if upper else text.lower()


@given(
    node=node_ids,
    duty=st.integers(0, 100),
    millivolts=st.integers(0, 81919),
    centi_milliamps=st.integers(-4_096_000, 4_096_000),
    deci_milliwatts=st.integers(0, 33_554_022),
    cases=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_formatted_reading_round_trips(
    *,
    node: int,
    duty: int,
    millivolts: int,
    centi_milliamps: int,
    deci_milliwatts: int,
    cases: tuple[bool, bool, bool],
) -> None:
    volts = f"{millivolts / 1000:.3f}"
    milliamps = f"{centi_milliamps / 100:.2f}"
    milliwatts = f"{deci_milliwatts / 10:.1f}"
    text = (
        f"NODE{node}:DATA:D:{duty}%,V:{volts}{_cased('v', cases[0])},"
        f"I:{milliamps}{_cased('ma', cases[1])},P:{milliwatts}{_cased('mw', cases[2])}"
    )
    assert parse_message(text.encode()) == Reading(
        node, duty, float(volts), float(milliamps), float(milliwatts)
    )


@given(
    node=node_ids,
    duty=st.integers(0, 100),
    raw_v=st.integers(0, 0xFFFF),
    raw_i=st.integers(-0x8000, 0x7FFF),
)
def test_every_v07_reading_parses(node: int, duty: int, raw_v: int, raw_i: int) -> None:
    """Whatever the sensor registers hold, v0.7's float32 reading is accepted."""
    text = v07_reading(node, duty, raw_v, raw_i)
    fields = dict(part.split(":") for part in text.split(":DATA:")[1].split(","))
    assert parse_message(text.encode()) == Reading(
        node,
        duty,
        float(fields["V"][:-1]),
        float(fields["I"][:-2]),
        float(fields["P"][:-2]),
    )


@given(
    node=st.integers(0, 9),
    duty=st.integers(0, 100),
    millivolts=st.integers(0, 81919),
    centi_ma=st.integers(-4_096_000, 4_095_875),
)
def test_every_v1_reading_parses(
    node: int, duty: int, millivolts: int, centi_ma: int
) -> None:
    reading = parse_message(v1_reading(node, duty, millivolts, centi_ma).encode())
    assert isinstance(reading, Reading)
    assert reading.voltage == millivolts / 1000


def test_the_largest_readings_parse() -> None:
    assert v07_reading(1, 100, 0xFFFF, -0x8000) == (
        "NODE1:DATA:D:100%,V:81.919V,I:40960.00mA,P:3355392.0mW"
    )
    assert parse_message(v07_reading(1, 100, 0xFFFF, -0x8000).encode()) == Reading(
        1, 100, 81.919, 40960.0, 3355392.0
    )
    assert v1_reading(4, 100, 81919, -4_096_000) == (
        "NODE4:DATA:D:100%,V:81.919V,I:-40960.00mA,P:3355402.2mW"
    )
    assert parse_message(v1_reading(4, 100, 81919, -4_096_000).encode()) == Reading(
        4, 100, 81.919, -40960.0, 3355402.2
    )


@given(
    node=st.integers(0, 9),
    version=st.tuples(*[st.integers(0, 999)] * 3),
    hardware=st.from_regex(r"[A-Za-z0-9-]{1,16}", fullmatch=True),
    role=st.sampled_from(NodeRole),
    capabilities=st.integers(0, 0xFFFF),
    uptime=st.integers(0, 0xFFFFFFFF),
    free_heap=st.integers(0, 0xFFFFFFFF),
    mesh_id=st.integers(0, 0xFFFFFFFF),
    gateway=st.booleans(),
    extra=st.lists(
        st.from_regex(r"[A-Z]{1,5}:[a-z0-9_]{0,8}", fullmatch=True), max_size=3
    ),
)
def test_formatted_info_round_trips(
    *,
    node: int,
    version: tuple[int, int, int],
    hardware: str,
    role: NodeRole,
    capabilities: int,
    uptime: int,
    free_heap: int,
    mesh_id: int,
    gateway: bool,
    extra: list[str],
) -> None:
    firmware = ".".join(map(str, version))
    text = (
        f"NODE{node}:INFO:FW:{firmware},HW:{hardware},ROLE:{role},CAP:{capabilities:04x},"
        f"UP:{uptime},HEAP:{free_heap},MESH:{mesh_id:08x},GW:{int(gateway)}"
    )
    text = ",".join([text, *extra])
    assert parse_message(text.encode()) == NodeInfo(
        node,
        firmware,
        hardware,
        role,
        capabilities,
        uptime,
        free_heap,
        mesh_id,
        gateway,
    )


@pytest.mark.parametrize(
    "field",
    [
        "V:81.920V",
        "V:" + "9" * 400 + "V",
        "I:-40960.01mA",
        "I:50000.00mA",
        "P:3355402.3mW",
    ],
)
def test_absurd_magnitudes_are_out_of_range(field: str) -> None:
    key = field[0]
    parts = {"D": "50%", "V": "12.003V", "I": "250.00mA", "P": "3000.8mW"}
    parts[key] = field[2:]
    message = "NODE1:DATA:" + ",".join(f"{k}:{v}" for k, v in parts.items())
    with pytest.raises(ProtocolError) as info:
        parse_message(message.encode())
    assert info.value.reason == "out_of_range"
    assert "out_of_range" in str(info.value)


def test_addresses_and_node_ids() -> None:
    """The address plan: node ids 0..99 are unicast 0x0005..0x0068 (section 10)."""
    assert node_id_from_address(0x0005) == 0
    assert node_id_from_address(0x000E) == 9
    assert node_id_from_address(0x000F) == 10
    assert node_id_from_address(0x0068) == 99
    assert node_id_from_address(0x0004) is None
    assert node_id_from_address(0x0069) is None
    assert node_id_from_address(0xC000) is None
    assert [address_from_node_id(n) for n in (0, 9, 42, 99)] == [
        0x0005,
        0x000E,
        0x002F,
        0x0068,
    ]
    for bad in (-1, 100):
        with pytest.raises(ValueError, match="node id"):
            address_from_node_id(bad)
    assert max_target(large_mesh=False) == 9
    assert max_target(large_mesh=True) == 99
    assert group_reply_delay(0) == 0.0
    assert group_reply_delay(29) == pytest.approx(2.9)
    assert group_reply_delay(100) == 0.0
    assert reply_node_id_from_address(0x0005) == 0
    assert reply_node_id_from_address(0x000F) == 10
    assert reply_node_id_from_address(0x7FFF) == MAX_REPLY_NODE_ID
    for none in (0x0000, 0x0001, 0x0004, 0x8000, 0xC000, 0xFFFF):
        assert reply_node_id_from_address(none) is None


@pytest.mark.parametrize(
    ("message", "event"),
    [
        (b"NODE10:DATA:D:0%,V:0.000V,I:0.00mA,P:0.0mW", Reading(10, 0, 0.0, 0.0, 0.0)),
        (b"NODE10:ACK:1", Ack(10, on=True)),
        (b"NODE0:ACK:0", Ack(0, on=False)),
        (b"NODE3:ONOFF:1", OnOff(3, on=True)),
        (b"NODE5:DATA:ERR:UNKNOWN:foo", NodeError(5, "foo")),
        (b"NODE5:DATA:ERR:UNKNOWN:", NodeError(5, "")),
        (b"NODE5:DATA:ERR:UNKNOWN:a:b c", NodeError(5, "a:b c")),
        (b"TIMEOUT:0x000f", MeshTimeout(0x000F, 10)),
        (b"TIMEOUT:0x0001", MeshTimeout(0x0001, None)),
        (b"ERROR:NO_NODE_I", ErrorReply("NO_NODE_ID", None)),
        (b"ERROR:NO_NODE_ID", ErrorReply("NO_NODE_ID", None)),
        (b"SENT:read", Sent("read", fallback=False)),
        (b"SENT:OFF(fallback)", Sent("OFF", fallback=True)),
        (b"MESH_READY", StatusLine("MESH_READY")),
        (b"GATEWAY_READY", StatusLine("GATEWAY_READY")),
        (b"NODE_READY\r\n", StatusLine("NODE_READY")),
        (b" \tSENT:READ\n", Sent("READ", fallback=False)),
        (b"NODE1:ACK:1\x00", Ack(1, on=True)),
    ],
)
def test_v07_messages(message: bytes, event: object) -> None:
    assert parse_message(message) == event


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"NODE1:ACK:2", "out_of_range"),
        (b"NODE1:ACK:50", "out_of_range"),
        (b"NODE32763:ACK:1", "bad_node_id"),
        (b"NODE007:ACK:1", "bad_node_id"),
        (b"NODE1:DATA:ERR:UNKNOWN", "unknown_message"),
        (b"NODE_READY X", "unknown_message"),
        (b"\x00NODE_READY", "unknown_message"),
    ],
)
def test_v07_lookalikes_are_refused(message: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_message(message)
    assert info.value.reason == reason


def test_advertisement_flags() -> None:
    advertisement = parse_service_data(bytes.fromhex("011a2b3c4d000003"))
    assert advertisement.client_connected
    assert advertisement.mesh_ready
    advertisement = parse_service_data(bytes.fromhex("011a2b3c4dff00fc"))
    assert advertisement.node_id is None
    assert not advertisement.client_connected
    assert not advertisement.mesh_ready


@given(st.binary(max_size=20))
def test_service_data_raises_only_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_service_data(data)


@given(st.integers(0, 255))
def test_service_data_node_ids_follow_the_plan(node: int) -> None:
    data = bytes([1, 0x1A, 0x2B, 0x3C, 0x4D, node, 0, 3])
    if node < 100 or node == 0xFF:
        assert parse_service_data(data).node_id == (None if node == 0xFF else node)
        return
    with pytest.raises(ProtocolError) as info:
        parse_service_data(data)
    assert info.value.reason == "bad_node_id"


# Encoding


@pytest.mark.parametrize(
    ("target", "command", "value", "expected"),
    [
        ("ALL", "READ", None, b"ALL:READ"),
        ("all", "read", None, b"ALL:READ"),
        (0, "STATUS", None, b"0:STATUS"),
        (9, "duty", 0, b"9:DUTY:0"),
        (3, "DUTY", 100, b"3:DUTY:100"),
        ("ALL", "RAMP", None, b"ALL:RAMP"),
        (2, "OFF", None, b"2:OFF"),
        (4, "MONITOR", None, b"4:MONITOR"),
        ("ALL", "INFO", None, b"ALL:INFO"),
    ],
)
def test_encode_command(
    target: object, command: str, value: int | None, expected: bytes
) -> None:
    assert encode_command(target, command, value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "command", "value", "expected"),
    [
        (10, "READ", None, b"10:READ"),
        (42, "DUTY", 30, b"42:DUTY:30"),
        (99, "STOP", None, b"99:STOP"),
        (5, "READ", None, b"5:READ"),
        ("ALL", "DUTY", 7, b"ALL:DUTY:7"),
    ],
)
def test_encode_command_large_mesh(
    target: object, command: str, value: int | None, expected: bytes
) -> None:
    assert encode_command(target, command, value, large_mesh=True) == expected  # type: ignore[arg-type]
    if isinstance(target, int) and target >= 10:
        # a gateway without CAP_LARGE_MESH (v0.7, older v1) names 0..9 only
        with pytest.raises(CommandError, match=r"0\.\.9"):
            encode_command(target, command, value)  # type: ignore[arg-type]


@given(st.integers(-(10**6), 10**6), st.booleans())
def test_encode_target_is_one_spelling_of_the_plan(node: int, large_mesh: bool) -> None:
    """Every node id in range has exactly one spelling, without leading zeros; others raise."""
    highest = 99 if large_mesh else 9
    try:
        encoded = encode_command(node, "READ", large_mesh=large_mesh)
    except CommandError:
        assert not 0 <= node <= highest
        return
    assert 0 <= node <= highest
    head = encoded.split(b":")[0]
    assert head == str(node).encode()
    assert re.fullmatch(rb"[0-9]|[1-9][0-9]", head)


@pytest.mark.parametrize(
    ("target", "command", "value"),
    [
        (10, "READ", None),
        (-1, "READ", None),
        (True, "READ", None),
        ("3", "READ", None),
        ("ALLX", "READ", None),
        (None, "READ", None),
        (1, "FOO", None),
        (1, "READ:5", None),
        (1, "", None),
        (1, "DUTY", None),
        (1, "DUTY", 101),
        (1, "DUTY", -1),
        (1, "DUTY", True),
        (1, "DUTY", 50.0),
        (1, "DUTY", "50"),
        (1, "READ", 5),
        (1, None, None),
    ],
)
def test_encode_command_refuses(target: object, command: object, value: object) -> None:
    with pytest.raises(CommandError):
        encode_command(target, command, value)  # type: ignore[arg-type]


@given(
    target=st.one_of(
        st.integers(-5, 15), st.text(max_size=70), st.none(), st.booleans()
    ),
    command=st.one_of(
        st.sampled_from(["READ", "duty", "Ramp", "INFO", "MONITOR", "off"]),
        st.text(max_size=80),
    ),
    value=st.one_of(st.none(), st.integers(-(10**30), 10**30), st.text(max_size=5)),
)
def test_encode_command_never_exceeds_the_limit(
    target: object, command: object, value: object
) -> None:
    try:
        encoded = encode_command(target, command, value)  # type: ignore[arg-type]
    except CommandError:
        return
    assert len(encoded) <= MAX_COMMAND_LEN
    text = encoded.decode("ascii")
    head, verb, *rest = text.split(":")
    assert head == "ALL" or head in "0123456789"
    assert verb in {
        "READ",
        "STATUS",
        "DUTY",
        "RAMP",
        "ON",
        "STOP",
        "OFF",
        "MONITOR",
        "INFO",
    }
    assert rest == ([str(value)] if verb == "DUTY" else [])
    assert rest == [] or 0 <= int(rest[0]) <= 100


@pytest.mark.parametrize(
    "text", ["OTA:OK", "OTA:DONE", "OTA:IDLE", "OTA:ACK:4096", "OTA:RX:12288:1228800"]
)
def test_firmware_update_messages(text: str) -> None:
    """Section 9: the update client reads them; they are not malformed for anyone else."""
    assert parse_message(text.encode()) == OtaMessage(text)


def test_ota_reply_starts_a_new_message_after_a_lost_chunk() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(b"+NODE1:DATA:D:50%,V:") is None  # its last chunk is lost
    assert reassembler.feed(b"OTA:ACK:4096") == b"OTA:ACK:4096"
