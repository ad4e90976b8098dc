"""DcMeshLink against the simulated mesh (plain bleak, through bleak-retry-connector).

Every test runs for a v0.7 mesh and a v1 mesh of three universal nodes and one relay,
connected to node 0. The simulator models the firmware on its own; nothing of the
link is mocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import dataclasses
from typing import Any

from bleak.backends.device import BLEDevice
import bleak_retry_connector
import pytest

from custom_components.dc_mesh.dcmesh import (
    CharacteristicMissingError,
    CommandError,
    DcMeshLink,
    ErrorReply,
    Event,
    FallbackModeError,
    LinkError,
    MeshSendError,
    MeshTimeout,
    MeshTimeoutError,
    NotConnectedError,
    NotReadyError,
    ProtocolMode,
    Reading,
    ResponseTimeoutError,
    Sent,
    StatusLine,
)
from simulator import wire
from simulator.bleak_backend import SimBleakBackend, SimBleakClient, discover
from simulator.mesh import ChunkFaults, Latencies, Mesh, Profile, build_mesh

# Generous against the simulator's millisecond latencies, far below a test timeout.
TIMEOUTS: dict[str, Any] = {
    "connect_timeout": 5.0,
    "reply_timeout": 1.0,
    "quiet_period": 0.05,
    "info_timeout": 0.5,
    "max_attempts": 2,
}
UNIVERSAL = {0, 1, 2}
RELAY = 3


@pytest.fixture(autouse=True)
def simulated_bleak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let bleak-retry-connector build clients that connect through the simulator."""
    monkeypatch.setattr(
        bleak_retry_connector, "BleakClientWithServiceCache", SimBleakClient
    )


@pytest.fixture(params=[Profile.V07, Profile.V1], ids=["v0.7", "v1"])
def profile(request: pytest.FixtureRequest) -> Profile:
    return Profile(request.param)


@pytest.fixture
def latencies() -> Latencies:
    return Latencies.fast()


@pytest.fixture
async def mesh(profile: Profile, latencies: Latencies) -> AsyncIterator[Mesh]:
    mesh = build_mesh(len(UNIVERSAL), 1, profile=profile, latencies=latencies, seed=7)
    yield mesh
    mesh.shutdown()


def device_of(mesh: Mesh, node_id: int) -> BLEDevice:
    mac = mesh.node(node_id).mac
    return next(device for device, _ in discover(mesh) if device.address == mac)


@pytest.fixture
async def link(mesh: Mesh) -> AsyncIterator[DcMeshLink]:
    link = DcMeshLink(
        device_of(mesh, 0), mesh_key=mesh.mesh_key, name="node 0", **TIMEOUTS
    )
    await link.connect()
    # connect() returns on the gateway's own INFO line; let the other nodes' lines
    # arrive before a test starts counting events.
    await wait_for(
        lambda: (
            link.mode is ProtocolMode.LEGACY or set(link.infos) == {*UNIVERSAL, RELAY}
        )
    )
    yield link
    await link.disconnect()


def record(link: DcMeshLink) -> list[Event]:
    events: list[Event] = []
    link.register_callback(events.append)
    return events


async def wait_for(condition: Callable[[], bool], within: float = 2.0) -> None:
    step = 0.005
    for _ in range(int(within / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not reached within {within} s")


# Connecting and negotiating


async def test_connect_negotiates_the_protocol(mesh: Mesh, profile: Profile) -> None:
    link = DcMeshLink(device_of(mesh, 1), mesh_key=mesh.mesh_key, **TIMEOUTS)
    events = record(link)
    assert not link.is_connected
    await link.connect()
    assert link.is_connected
    assert link.address == mesh.node(1).mac
    assert link.stats.connects == 1
    assert StatusLine("GATEWAY_CONNECTED") in events
    if profile is Profile.V1:
        assert link.mode is ProtocolMode.V1
        # connect() returns on the gateway's own line; the others follow.
        assert link.gateway_node_id == 1
        await wait_for(lambda: set(link.infos) == {*UNIVERSAL, RELAY})
        assert link.infos[1].firmware == "1.0.0"
        assert link.infos[1].mesh_id == mesh.mesh_id
        assert not link.infos[0].gateway
    else:
        assert link.mode is ProtocolMode.LEGACY
        assert link.infos == {}
        assert link.gateway_node_id is None
        # The connected node answers ALL:READ itself before forwarding it: that is how
        # a v0.7 gateway is recognised.
        await link.read_all()
        assert link.gateway_node_id == 1
    await link.connect()  # already connected: nothing happens
    assert link.stats.connects == 1
    await link.disconnect()
    assert not link.is_connected


async def test_connect_to_an_unbound_node(mesh: Mesh, profile: Profile) -> None:
    # v1 answers ALL:INFO with ERROR:NOT_READY, v0.7 with ERROR:UNKNOWN_CMD:INFO.
    mesh.set_bound(0, False)
    link = DcMeshLink(device_of(mesh, 0), mesh_key=mesh.mesh_key, **TIMEOUTS)
    await link.connect()
    assert link.mode is (
        ProtocolMode.V1 if profile is Profile.V1 else ProtocolMode.LEGACY
    )
    assert link.infos == {}
    if profile is Profile.V1:
        with pytest.raises(NotReadyError):
            await link.read_all()
    else:  # found by the harmless MONITOR probe: nothing is read (READ would be ON)
        assert link.fallback
        assert all(mesh.node(n).duty == 0 for n in UNIVERSAL)
    await link.disconnect()


async def test_connect_fails_when_info_gets_no_answer(mesh: Mesh) -> None:
    mesh.set_chunk_faults(0, ChunkFaults(drop=1.0))
    link = DcMeshLink(
        device_of(mesh, 0), mesh_key=mesh.mesh_key, **{**TIMEOUTS, "info_timeout": 0.1}
    )
    with pytest.raises(ResponseTimeoutError):
        await link.connect()
    assert not link.is_connected
    assert mesh.node(0).sessions == []


async def test_operations_need_a_connection(mesh: Mesh) -> None:
    link = DcMeshLink(device_of(mesh, 0), mesh_key=mesh.mesh_key, **TIMEOUTS)
    with pytest.raises(NotConnectedError):
        await link.read(0)
    with pytest.raises(NotConnectedError):
        await link.read_all()
    await link.disconnect()  # idempotent, also before any connection


async def test_connection_refused_is_a_link_error(mesh: Mesh) -> None:
    mesh.refuse_connections(0)
    link = DcMeshLink(
        device_of(mesh, 0), mesh_key=mesh.mesh_key, **{**TIMEOUTS, "max_attempts": 1}
    )
    with pytest.raises(LinkError):
        await link.connect()
    assert not link.is_connected


async def test_loss_while_connecting_fails_connect_without_callback(
    mesh: Mesh,
) -> None:
    link = DcMeshLink(device_of(mesh, 0), mesh_key=mesh.mesh_key, **TIMEOUTS)
    lost: list[None] = []
    link.register_disconnect_callback(lambda: lost.append(None))

    def drop_on_subscribe(event: Event) -> None:
        if event == StatusLine("GATEWAY_CONNECTED"):
            mesh.drop_link(0)

    link.register_callback(drop_on_subscribe)
    with pytest.raises(LinkError):
        await link.connect()
    await asyncio.sleep(0.05)
    assert lost == []
    assert not link.is_connected
    assert link.stats.link_losses == 1


# Reading


async def test_read_all(link: DcMeshLink, mesh: Mesh) -> None:
    readings = await link.read_all(expected=UNIVERSAL)
    assert set(readings) == UNIVERSAL
    for node_id, reading in readings.items():
        assert reading.node_id == node_id
        assert reading.duty == mesh.node(node_id).duty
        assert reading.voltage > 0


async def test_read_all_without_expected_ends_after_the_quiet_period(
    link: DcMeshLink,
) -> None:
    assert set(await link.read_all()) == UNIVERSAL


async def test_read_all_stops_once_the_expected_nodes_answered(
    link: DcMeshLink,
) -> None:
    # The connected node answers first (locally), the others only after a mesh hop.
    assert set(await link.read_all(expected={0})) == {0}


async def test_read_all_with_a_dead_node_returns_the_others(
    link: DcMeshLink, mesh: Mesh
) -> None:
    mesh.power_off(2)
    assert set(await link.read_all(expected=UNIVERSAL)) == {0, 1}


def push_before_the_poll(mesh: Mesh, chunks: list[bytes]) -> list[bytes]:
    """The gateway notifies `chunks` just before it handles our next ALL:READ.

    As when a node's STATUS (a MONITOR's, another client's) reaches the gateway while our
    write is on its way: the chunks come after the write, before the read's own answers.
    Returns the list of writes seen.
    """
    gateway = mesh.node(0)
    original = gateway.handle_write
    seen: list[bytes] = []

    async def handle_write(raw: bytes, session: Any = None) -> None:
        seen.append(raw)
        if raw.endswith(b"ALL:READ") and len(seen) == 1:
            for session_ in gateway.sessions:
                session_.push(list(chunks))
        await original(raw, session)

    gateway.handle_write = handle_write  # type: ignore[method-assign]
    return seen


async def test_a_pushed_reading_does_not_answer_the_poll(
    link: DcMeshLink, mesh: Mesh
) -> None:
    """Node 2 misses the group read; its reading pushed meanwhile refreshes, not answers."""
    await link.read_all(expected=UNIVERSAL)  # (v0.7: the gateway's id, from its answer)
    events = record(link)
    mesh.miss_group_messages(2)
    pushed = f"NODE2:DATA:{mesh.node(2).reading()}".encode()
    push_before_the_poll(mesh, [pushed])
    answers = await link.read_all(expected=UNIVERSAL)
    assert set(answers) == {0, 1}  # node 2 did not answer the read
    assert link.gateway_node_id == 0  # nor was it taken for the connected node
    pushed_events = [e for e in events if isinstance(e, Reading) and e.node_id == 2]
    assert len(pushed_events) == 1  # but the pushed reading reached the callbacks


async def test_a_reading_begun_before_the_poll_does_not_answer_it(
    link: DcMeshLink, mesh: Mesh
) -> None:
    """A message whose first chunk came before the write is no answer to it."""
    await link.read_all(expected=UNIVERSAL)
    mesh.miss_group_messages(2)
    chunks = wire.chunk(f"NODE2:DATA:{mesh.node(2).reading()}".encode())
    mesh.node(0).sessions[0].push(chunks[:1])
    await asyncio.sleep(0.01)  # the first chunk arrives before the poll is written
    push_before_the_poll(mesh, chunks[1:])
    assert set(await link.read_all(expected=UNIVERSAL)) == {0, 1}


async def test_the_gateway_after_sent_and_second_readings_are_pushes(
    link: DcMeshLink, mesh: Mesh
) -> None:
    """One answer per node: the first after SENT; the gateway's own comes before SENT."""
    await link.read_all(expected=UNIVERSAL)
    gateway = mesh.node(0)
    original = gateway.on_status

    def on_status(source: int, text: str) -> None:
        original(source, text)
        if source == mesh.node(1).address:  # then a reading of the gateway, pushed
            gateway.forward(gateway.address, "D:77%,V:1.000V,I:1.00mA,P:1.0mW")
            gateway.forward(source, "D:66%,V:1.000V,I:1.00mA,P:1.0mW")

    gateway.on_status = on_status  # type: ignore[method-assign]
    answers = await link.read_all(expected=UNIVERSAL)
    assert set(answers) == UNIVERSAL
    assert answers[0].duty != 77
    assert answers[1].duty != 66


async def test_read_one_node(link: DcMeshLink, mesh: Mesh) -> None:
    for node_id in (0, 1):  # handled locally, then over the mesh
        reading = await link.read(node_id)
        assert reading.node_id == node_id
        assert reading.duty == mesh.node(node_id).duty


async def test_read_dead_node_is_a_mesh_timeout(link: DcMeshLink, mesh: Mesh) -> None:
    mesh.power_off(2)
    with pytest.raises(MeshTimeoutError) as info:
        await link.read(2)
    assert info.value.node_id == 2
    with pytest.raises(MeshTimeoutError) as info:
        await link.read(9)  # no such node in the mesh
    assert info.value.node_id == 9
    assert (await link.read(1)).node_id == 1


# The firmware's own mesh timeout (TIMEOUT:0x...) far away.
SLOW_MESH_TIMEOUT = dataclasses.replace(Latencies.fast(), client_timeout=30.0)


@pytest.mark.parametrize("latencies", [SLOW_MESH_TIMEOUT])
async def test_read_without_answer_hits_our_deadline(mesh: Mesh) -> None:
    link = DcMeshLink(
        device_of(mesh, 0),
        mesh_key=mesh.mesh_key,
        **{**TIMEOUTS, "reply_timeout": 0.05},
    )
    await link.connect()
    mesh.set_unreachable(1)
    with pytest.raises(ResponseTimeoutError):
        await link.read(1)
    await link.disconnect()


async def test_concurrent_commands_are_serialised(link: DcMeshLink) -> None:
    first, second, everything = await asyncio.gather(
        link.read(1), link.read(2), link.read_all(expected=UNIVERSAL)
    )
    assert (first.node_id, second.node_id, set(everything)) == (1, 2, UNIVERSAL)


async def test_mesh_send_failure(link: DcMeshLink, mesh: Mesh) -> None:
    mesh.fail_next_send(0, "MESH_SEND_FAIL")
    with pytest.raises(MeshSendError):
        await link.read(1)
    mesh.fail_next_send(0, "MESH_TIMEOUT")
    with pytest.raises(MeshTimeoutError):
        await link.read(2)


# Commands


async def test_set_duty(link: DcMeshLink, mesh: Mesh) -> None:
    events = record(link)
    await link.set_duty(1, 40)  # over the mesh: acknowledged by SENT:DUTY
    await wait_for(lambda: any(isinstance(e, Reading) and e.duty == 40 for e in events))
    assert mesh.node(1).duty == 40
    await link.set_duty(0, 25)  # locally: answered by the node's own reading
    assert mesh.node(0).duty == 25
    assert (await link.set_duty_confirmed(2, 60)).duty == 60
    await link.set_duty("ALL", 10)
    await wait_for(lambda: all(mesh.node(n).duty == 10 for n in UNIVERSAL))
    assert (await link.read(2)).duty == 10


async def test_duty_confirmed_by_its_own_answer(link: DcMeshLink, mesh: Mesh) -> None:
    """The node's reading that answers the DUTY confirms it: no READ goes on the radio."""
    mesh.radio_log.clear()
    reading = await link.set_duty_confirmed(2, 55)
    assert (reading.node_id, reading.duty) == (2, 55)
    assert [payload.lower() for _s, _d, payload in mesh.radio_log] == ["duty:55"]


async def test_duty_answer_lost_then_read(link: DcMeshLink, mesh: Mesh) -> None:
    """SENT and the node's answer are lost on the way back: a READ confirms instead."""
    mesh.inject_chunk_fault(mesh.by_mac(link.address).node_id, "drop", count=2)
    mesh.radio_log.clear()
    reading = await link.set_duty_confirmed(2, 65)
    assert (reading.node_id, reading.duty) == (2, 65)
    assert [payload.lower() for _s, _d, payload in mesh.radio_log] == [
        "duty:65",
        "read",
    ]


async def test_set_duty_of_a_dead_node_returns_on_sent(
    link: DcMeshLink, mesh: Mesh
) -> None:
    # Fire and forget: SENT is enough; the timeout that follows is only an event.
    events = record(link)
    mesh.power_off(2)
    await link.set_duty(2, 40)
    await wait_for(
        lambda: any(isinstance(e, MeshTimeout | ErrorReply) for e in events), 15
    )


async def test_invalid_duty_is_refused_before_writing(link: DcMeshLink) -> None:
    events = record(link)
    for duty in (-1, 101):
        with pytest.raises(CommandError):
            await link.set_duty(1, duty)
    # beyond the ids the gateway takes: 9 (v0.7), 99 (v1, CAP_LARGE_MESH)
    assert link.max_target == (99 if link.mode is ProtocolMode.V1 else 9)
    with pytest.raises(CommandError):
        await link.set_duty(link.max_target + 1, 50)
    await asyncio.sleep(0.05)
    assert events == []


async def test_ramp_and_stop(link: DcMeshLink, mesh: Mesh) -> None:
    await link.set_duty(1, 80)
    await link.stop(1)
    await wait_for(lambda: mesh.node(1).duty == 0)
    await link.ramp(0)  # the connected node itself: answered by its reading


async def test_unbound_node(link: DcMeshLink, mesh: Mesh, profile: Profile) -> None:
    mesh.set_bound(0, False)
    if profile is Profile.V07:
        # v0.7 falls back to generic OnOff: whatever was asked, it is a failure.
        with pytest.raises(FallbackModeError):
            await link.set_duty(1, 0)
        assert link.fallback
        assert await link.probe_fallback()
        mesh.set_bound(0, True)
        assert not await link.probe_fallback()
    else:
        with pytest.raises(NotReadyError):
            await link.read(1)
        with pytest.raises(NotReadyError):
            await link.ramp(1)


async def test_info(link: DcMeshLink, profile: Profile) -> None:
    if profile is Profile.V07:
        with pytest.raises(CommandError):
            await link.info(1)
        return
    info = await link.info(2)
    assert info.node_id == 2
    assert not info.gateway
    assert link.infos[2] == info


# Events


async def test_unsolicited_events_reach_callbacks(link: DcMeshLink, mesh: Mesh) -> None:
    events = record(link)
    other: list[Event] = []
    unregister = link.register_callback(other.append)
    unregister()
    # MONITOR started from elsewhere: readings flow in without our asking.
    await mesh.node(0).handle_write(b"1:MONITOR")
    await wait_for(lambda: sum(isinstance(e, Reading) for e in events) >= 2)
    assert Sent("MONITOR", fallback=False) in events
    assert {e.node_id for e in events if isinstance(e, Reading)} == {1}
    assert other == []
    # A command of ours ends the monitor and is answered as usual.
    assert (await link.read(2)).node_id == 2


async def test_a_failing_callback_does_not_break_the_link(link: DcMeshLink) -> None:
    def broken(_event: Event) -> None:
        raise RuntimeError("boom")

    link.register_callback(broken)
    assert (await link.read(1)).node_id == 1


# Link loss, reconnection, disconnection


@pytest.mark.parametrize("latencies", [SLOW_MESH_TIMEOUT])
async def test_link_drop_fails_pending_request_at_once(mesh: Mesh) -> None:
    link = DcMeshLink(
        device_of(mesh, 0),
        mesh_key=mesh.mesh_key,
        **{**TIMEOUTS, "reply_timeout": 30.0},
    )
    await link.connect()
    lost: list[None] = []
    link.register_disconnect_callback(lambda: lost.append(None))
    events = record(link)
    mesh.set_unreachable(2)
    pending = asyncio.create_task(link.read(2))
    await wait_for(lambda: Sent("READ", fallback=False) in events)
    mesh.drop_link(0)
    # The firmware's mesh timeout and ours are 30 s away: only the loss can end it.
    with pytest.raises(LinkError):
        await asyncio.wait_for(pending, 5.0)
    assert lost == [None]
    assert not link.is_connected
    assert link.stats.link_losses == 1
    with pytest.raises(NotConnectedError):
        await link.read(0)
    await asyncio.sleep(0.05)
    assert lost == [None]  # once per loss


async def test_power_loss_is_noticed(link: DcMeshLink, mesh: Mesh) -> None:
    lost: list[None] = []
    link.register_disconnect_callback(lambda: lost.append(None))
    mesh.power_off(0)
    await wait_for(lambda: bool(lost))
    assert not link.is_connected


async def test_reconnect_after_loss(link: DcMeshLink, mesh: Mesh) -> None:
    lost: list[None] = []
    link.register_disconnect_callback(lambda: lost.append(None))
    # A message cut short by the loss must not leak into the next connection.
    seen = link.stats.notifications
    mesh.node(0).sessions[0].push([b"+NODE1:DATA:D:50%,V"])
    await wait_for(lambda: link.stats.notifications > seen)
    mesh.drop_link(0)
    await wait_for(lambda: bool(lost))
    await link.connect()
    assert link.is_connected
    assert link.stats.connects == 2
    assert set(await link.read_all(expected=UNIVERSAL)) == UNIVERSAL
    assert link.stats.malformed == 0
    assert lost == [None]


async def test_clean_disconnect(link: DcMeshLink, mesh: Mesh) -> None:
    lost: list[None] = []
    link.register_disconnect_callback(lambda: lost.append(None))
    await link.disconnect()
    await link.disconnect()
    await asyncio.sleep(0.05)
    assert lost == []
    assert not link.is_connected
    assert mesh.node(0).sessions == []
    with pytest.raises(NotConnectedError):
        await link.set_duty(1, 20)


@pytest.mark.parametrize("latencies", [SLOW_MESH_TIMEOUT])
async def test_disconnect_fails_a_pending_request(mesh: Mesh) -> None:
    link = DcMeshLink(
        device_of(mesh, 0),
        mesh_key=mesh.mesh_key,
        **{**TIMEOUTS, "reply_timeout": 30.0},
    )
    await link.connect()
    mesh.set_unreachable(1)
    pending = asyncio.create_task(link.read(1))
    await asyncio.sleep(0.05)
    await link.disconnect()
    with pytest.raises(NotConnectedError):
        await asyncio.wait_for(pending, 5.0)


# GATT cache and chunk faults


async def test_missing_characteristics_clear_the_cache_once(mesh: Mesh) -> None:
    mesh.set_stale_gatt_cache(0)
    link = DcMeshLink(device_of(mesh, 0), mesh_key=mesh.mesh_key, **TIMEOUTS)
    await link.connect()
    assert link.stats.cache_clears == 1
    assert (await link.read(1)).node_id == 1
    await link.disconnect()


async def test_characteristics_still_missing_after_clearing(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def clear_nothing(_backend: SimBleakBackend) -> bool:
        return True

    monkeypatch.setattr(SimBleakBackend, "clear_cache", clear_nothing)
    mesh.set_stale_gatt_cache(0)
    link = DcMeshLink(device_of(mesh, 0), mesh_key=mesh.mesh_key, **TIMEOUTS)
    with pytest.raises(CharacteristicMissingError):
        await link.connect()
    assert link.stats.cache_clears == 1
    assert mesh.node(0).sessions == []


@pytest.mark.parametrize("fault", ["drop", "duplicate", "corrupt"])
async def test_chunk_faults_are_counted_and_survived(
    link: DcMeshLink, mesh: Mesh, fault: Any
) -> None:
    before = link.stats.malformed
    # The first chunk of a three-chunk reading is dropped, duplicated or corrupted.
    mesh.inject_chunk_fault(0, fault)
    mesh.node(0).notify("NODE1:DATA:D:50%,V:12.003V,I:250.00mA,P:3000.8mW")
    await wait_for(lambda: link.stats.malformed > before)
    assert (await link.read(0)).node_id == 0
    assert (await link.read(1)).node_id == 1


async def test_random_chunk_faults_never_escape(mesh: Mesh) -> None:
    link = DcMeshLink(
        device_of(mesh, 0), mesh_key=mesh.mesh_key, **{**TIMEOUTS, "reply_timeout": 0.3}
    )
    await link.connect()
    mesh.set_chunk_faults(0, ChunkFaults(drop=0.15, duplicate=0.15, corrupt=0.15))
    for _ in range(8):
        # Losing every reading of a round is the only failure faults may cause.
        with contextlib.suppress(ResponseTimeoutError):
            await link.read_all(expected=UNIVERSAL)
    assert link.stats.malformed > 0
    mesh.set_chunk_faults(0, ChunkFaults())
    await asyncio.sleep(0.1)  # let the faulty replies drain
    assert set(await link.read_all(expected=UNIVERSAL)) == UNIVERSAL
    await link.disconnect()
