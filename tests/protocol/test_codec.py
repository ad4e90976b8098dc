"""The codec on its own: framing, parsing, encoding, with properties checked by Hypothesis."""

from __future__ import annotations

import contextlib

from hypothesis import given, strategies as st
import pytest

from custom_components.dc_mesh.dcmesh import (
    MAX_COMMAND_LEN,
    MAX_MESSAGE_LEN,
    NOTIFY_CHUNK_SIZE,
    CommandError,
    NodeInfo,
    NodeRole,
    ProtocolError,
    Reading,
    Reassembler,
    address_from_node_id,
    chunk_message,
    encode_command,
    node_id_from_address,
    parse_message,
    parse_service_data,
)

READING = b"NODE1:DATA:D:50%,V:12.003V,I:250.00mA,P:3000.8mW"
INFO = b"NODE0:INFO:FW:1.0.0,HW:ESP32-C6,ROLE:U,CAP:0003,UP:3600,HEAP:142000,MESH:1a2b3c4d,GW:1"

messages = st.binary(min_size=1, max_size=MAX_MESSAGE_LEN).filter(
    lambda message: not message.startswith(b"+")
)


def reassemble(reassembler: Reassembler, chunks: list[bytes]) -> list[bytes]:
    return [m for chunk in chunks if (m := reassembler.feed(chunk)) is not None]


# Framing


@given(messages)
def test_chunked_message_reassembles_identically(message: bytes) -> None:
    chunks = chunk_message(message)
    assert all(len(chunk) <= NOTIFY_CHUNK_SIZE for chunk in chunks)
    assert all(chunk.startswith(b"+") for chunk in chunks[:-1])
    assert not chunks[-1].startswith(b"+")
    assert reassemble(Reassembler(), chunks) == [message]


@given(st.lists(messages, min_size=1, max_size=5))
def test_consecutive_messages_stay_apart(batch: list[bytes]) -> None:
    reassembler = Reassembler()
    chunks = [chunk for message in batch for chunk in chunk_message(message)]
    assert reassemble(reassembler, chunks) == batch
    assert not reassembler.pending


@given(st.lists(st.binary(max_size=40), max_size=60), messages)
def test_garbage_chunks_raise_only_protocol_error_and_spare_the_next_message(
    garbage: list[bytes], message: bytes
) -> None:
    reassembler = Reassembler()
    for chunk in garbage:
        try:
            if (complete := reassembler.feed(chunk)) is not None:
                parse_message(complete)
        except ProtocolError:
            pass
    # A reconnect drops whatever partial message the garbage left behind.
    reassembler.reset()
    assert reassemble(reassembler, chunk_message(message)) == [message]


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=30), messages)
def test_an_unprefixed_chunk_always_ends_the_message(
    garbage: list[bytes], message: bytes
) -> None:
    reassembler = Reassembler()
    reasons = []
    for chunk in [*garbage, b"end"]:
        try:
            reassembler.feed(chunk)
        except ProtocolError as err:
            reasons.append(err.reason)
    assert set(reasons) <= {"too_long"}
    assert not reassembler.pending
    assert reassemble(reassembler, chunk_message(message)) == [message]


def test_lost_final_chunk_costs_at_most_the_next_message() -> None:
    reassembler = Reassembler()
    first = chunk_message(INFO)
    assert reassemble(reassembler, first[:-1]) == []
    merged = reassemble(reassembler, chunk_message(b"SENT:READ"))
    assert len(merged) == 1
    with pytest.raises(ProtocolError):
        parse_message(merged[0])
    assert reassemble(reassembler, chunk_message(READING)) == [READING]


def test_stray_chunk_after_reconnect_is_dropped_by_reset() -> None:
    reassembler = Reassembler()
    reassemble(reassembler, chunk_message(INFO)[:2])
    assert reassembler.pending
    reassembler.reset()
    assert not reassembler.pending
    assert reassemble(reassembler, chunk_message(READING)) == [READING]


def test_overlong_message_is_refused_and_forgotten() -> None:
    reassembler = Reassembler()
    chunk = b"+" + b"a" * (NOTIFY_CHUNK_SIZE - 1)
    fitting = MAX_MESSAGE_LEN // (NOTIFY_CHUNK_SIZE - 1)
    assert reassemble(reassembler, [chunk] * fitting) == []
    with pytest.raises(ProtocolError) as info:
        reassembler.feed(chunk)
    assert info.value.reason == "too_long"
    assert not reassembler.pending
    assert reassemble(reassembler, chunk_message(READING)) == [READING]


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
    node=st.integers(0, 9),
    duty=st.integers(0, 100),
    millivolts=st.integers(0, 40960),
    centi_milliamps=st.integers(-4_096_000, 4_096_000),
    deci_milliwatts=st.integers(0, 6_553_500),
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
        "V:40.961V",
        "V:" + "9" * 400 + "V",
        "I:-40960.01mA",
        "I:50000.00mA",
        "P:655350.1mW",
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
    assert node_id_from_address(0x0005) == 0
    assert node_id_from_address(0x000E) == 9
    assert node_id_from_address(0x0004) is None
    assert node_id_from_address(0x000F) is None
    assert node_id_from_address(0xC000) is None
    assert [address_from_node_id(n) for n in (0, 9)] == [0x0005, 0x000E]
    for bad in (-1, 10):
        with pytest.raises(ValueError, match="node id"):
            address_from_node_id(bad)


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
