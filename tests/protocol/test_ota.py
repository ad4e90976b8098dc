"""Firmware updates (protocol section 9) through the library against the simulated mesh:
an authenticated DcMeshLink over the simulated bleak backend, nothing of the link mocked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import dataclasses

import bleak_retry_connector
from hypothesis import given, strategies as st
import pytest

from custom_components.dc_mesh.dcmesh import (
    AuthRefusedError,
    DcMeshError,
    DcMeshLink,
    FirmwareImage,
    ImageError,
    ImageTooBigError,
    LinkError,
    OtaNotSupportedError,
    RolledBackError,
    WrongHardwareError,
    WrongRoleError,
    confirm_installed,
    decode_chunk,
    encode_chunk,
    parse_reply,
)
from custom_components.dc_mesh.dcmesh.auth import needs_session
from custom_components.dc_mesh.dcmesh.ota import (
    OtaTransfer,
    Pacer,
    Pacing,
    ReplyKind,
    _Sender,
)
from simulator import ota as sim_ota
from simulator.bleak_backend import SimBleakClient
from simulator.mesh import Latencies, Mesh, build_mesh

from .test_link import TIMEOUTS, device_of
from .vectors import load

VECTORS = load("ota.tsv")
LATENCIES = dataclasses.replace(
    Latencies.fast(), ota_selftest_timeout=0.2, supervision_timeout=0.02
)
SIZE = 24_000


@pytest.fixture(autouse=True)
def simulated_bleak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        bleak_retry_connector, "BleakClientWithServiceCache", SimBleakClient
    )


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    mesh = build_mesh(2, 0, latencies=LATENCIES, seed=5, ota=True)
    yield mesh
    mesh.shutdown()


async def linked(mesh: Mesh, node: int = 0) -> DcMeshLink:
    link = DcMeshLink(device_of(mesh, node), mesh_key=mesh.mesh_key, **TIMEOUTS)
    await link.connect()
    return link


def image(version: str = "1.1.0", size: int = SIZE, **kwargs: object) -> FirmwareImage:
    data = sim_ota.build_image(version, size, **kwargs)  # type: ignore[arg-type]
    return FirmwareImage.from_bytes(
        data, version=version, role="U", hardware="ESP32-C6"
    )


def transfer(
    link: DcMeshLink, firmware: FirmwareImage, **kwargs: object
) -> OtaTransfer:
    options: dict[str, object] = {
        "reply_timeout": 0.5,
        "begin_timeout": 1.0,
        "status_after": 0.1,
        **kwargs,
    }
    return OtaTransfer(link, firmware, **options)  # type: ignore[arg-type]


async def reconnect_info(mesh: Mesh, version_wait: float = 0.4) -> str:
    await asyncio.sleep(version_wait)  # reboot, self-test (or its timeout and rollback)
    link = await linked(mesh)
    info = link.gateway_info
    assert info is not None
    await link.disconnect()
    return info.firmware


# Encoding


@pytest.mark.parametrize(
    "row", [c for s, c in VECTORS if s == "chunk"], ids=lambda r: r[0]
)
def test_chunk_vectors(row: list[str]) -> None:
    offset, data, written = row
    assert encode_chunk(int(offset), bytes.fromhex(data)).hex() == written
    assert decode_chunk(bytes.fromhex(written)) == (int(offset), bytes.fromhex(data))


@given(st.integers(0, 0xFFFFFFFF), st.binary(min_size=1, max_size=240))
def test_any_chunk_round_trips(offset: int, data: bytes) -> None:
    written = encode_chunk(offset, data)
    assert len(written) == 4 + len(data)
    assert decode_chunk(written) == (offset, data)


def test_bad_chunks() -> None:
    for offset, data in ((-1, b"x"), (1 << 32, b"x"), (0, b""), (0, bytes(241))):
        with pytest.raises(ValueError, match=r"offset|chunk carries"):
            encode_chunk(offset, data)


@pytest.mark.parametrize(
    "row", [c for s, c in VECTORS if s == "needs_session"], ids=lambda r: r[0]
)
def test_session_classification(row: list[str]) -> None:
    assert needs_session(row[0].encode()) is (row[1] == "yes")


def test_replies_and_declaration() -> None:
    assert parse_reply(b"OTA:ACK:4096").offset == 4096  # type: ignore[union-attr]
    rx = parse_reply(b"OTA:RX:5000:10000")
    assert rx is not None
    assert (rx.kind, rx.offset, rx.size) == (
        ReplyKind.RX,
        5000,
        10000,
    )
    assert parse_reply(b"ERROR:OTA:BAD_HASH").error == "BAD_HASH"  # type: ignore[union-attr]
    assert parse_reply(b"NODE0:DATA:x") is None
    sha = "cc66b6c35e81dff25614e94163e124a469ff11ee29a7892248ab62a288aaf187"
    firmware = FirmwareImage(
        sim_ota.vector_image(10000, 7, 1),
        "1.2.3",
        "U",
        "ESP32-C6",
        10000,
        bytes.fromhex(sha),  # type: ignore[arg-type]
    )
    firmware.check()
    assert firmware.declaration() == [
        b"OTA:SHA:0:cc66b6c35e81dff25614e941",
        b"OTA:SHA:1:63e124a469ff11ee29a78922",
        b"OTA:SHA:2:48ab62a288aaf187",
        b"OTA:VER:1.2.3",
    ]
    assert firmware.begin() == b"OTA:BEGIN:10000:U:ESP32-C6"


# Updates


async def test_full_update_to_a_new_version(mesh: Mesh) -> None:
    link = await linked(mesh)
    progress: list[tuple[int, int]] = []
    firmware = image()
    job = transfer(
        link, firmware, progress=lambda done, total: progress.append((done, total))
    )
    stats = await job.run()
    assert stats.started_at == 0
    assert stats.resent == 0
    assert progress[-1] == (SIZE, SIZE)
    assert [p for p, _ in progress] == sorted(p for p, _ in progress)
    assert mesh.node(0).flash.holds(firmware.data)
    await link.disconnect()
    assert await reconnect_info(mesh) == "1.1.0"
    info = (await linked(mesh)).gateway_info
    assert info is not None
    confirm_installed(info, firmware)


async def test_resume_after_a_disconnect_at_40_percent(mesh: Mesh) -> None:
    mesh.disconnect_ota_at(0, 0.4)
    link = await linked(mesh)
    firmware = image()
    job = transfer(link, firmware)
    with pytest.raises(LinkError):
        await job.run()
    await asyncio.sleep(0.05)
    await link.connect()
    stats = await job.run()
    assert job.stats.starts[0] == 0
    assert job.stats.starts[1] >= 0.4 * SIZE  # resumed, not restarted
    assert stats.started_at > 0
    flash = mesh.node(0).flash
    assert flash.erases == 1
    assert flash.rewrites == 0
    assert flash.holds(firmware.data)
    await link.disconnect()
    assert await reconnect_info(mesh) == "1.1.0"


async def test_dropped_frames_still_complete(mesh: Mesh) -> None:
    mesh.set_ota_drops(0, 0.05)
    link = await linked(mesh)
    session = mesh.node(0).sessions[0]
    firmware = image()
    stats = await transfer(link, firmware, pacing=None).run()
    assert session.data_dropped > 0
    assert stats.gaps > 0
    assert stats.resent > 0
    assert mesh.node(0).flash.holds(firmware.data)
    await link.disconnect()


async def test_a_bad_image_rolls_back(mesh: Mesh) -> None:
    link = await linked(mesh)
    firmware = image("1.3.0", selftest_ok=False)
    await transfer(link, firmware).run()  # the node takes it: the trouble shows at boot
    await link.disconnect()
    assert await reconnect_info(mesh, 0.8) == "1.0.0"
    info = (await linked(mesh)).gateway_info
    assert info is not None
    with pytest.raises(RolledBackError, match=r"1\.0\.0"):
        confirm_installed(info, firmware)
    assert mesh.node(0).ota_log[-1] == "rolled back to 1.0.0"


async def test_refused_before_any_data(mesh: Mesh) -> None:
    link = await linked(mesh)
    session = mesh.node(0).sessions[0]
    for wrong, error in (
        (dataclasses.replace(image(), role="R"), WrongRoleError),  # type: ignore[arg-type]
        (dataclasses.replace(image(), hardware="ESP32-S3"), WrongHardwareError),
    ):
        with pytest.raises(error):
            await transfer(link, wrong).run()  # refused locally, from INFO
        with pytest.raises(error):
            await transfer(link, wrong, precheck=False).run()  # refused by the node
    mesh.node(0).flash.slot_size = mesh.node(0).ota.slot_size = SIZE - 1  # type: ignore[union-attr]
    with pytest.raises(ImageTooBigError):
        await transfer(link, image()).run()
    broken = dataclasses.replace(image(), data=image().data[:-1] + b"\0")
    with pytest.raises(ImageError, match="SHA-256"):
        await transfer(link, broken).run()
    with pytest.raises(ImageError, match="bytes"):
        await transfer(link, dataclasses.replace(image(), size=SIZE + 1)).run()
    await asyncio.sleep(0.01)
    assert session.data_writes == 0
    assert mesh.node(0).flash.erases == 0
    await link.disconnect()


async def test_an_unauthenticated_client_cannot_begin(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def skip(_link: DcMeshLink) -> None:
        return None

    monkeypatch.setattr(DcMeshLink, "_authenticate", skip)
    link = await linked(mesh)
    assert not link.authenticated
    with pytest.raises(AuthRefusedError, match="REQUIRED"):
        await transfer(link, image()).run()
    assert mesh.node(0).flash.erases == 0
    await link.disconnect()


async def test_a_node_without_the_receiver() -> None:
    mesh = build_mesh(1, 0, latencies=LATENCIES, seed=5, ota=False)
    link = await linked(mesh)
    with pytest.raises(OtaNotSupportedError):
        await transfer(link, image()).run()
    await link.disconnect()
    mesh.shutdown()


async def test_abort_keeps_the_running_firmware(mesh: Mesh) -> None:
    link = await linked(mesh)
    job = transfer(link, image())
    task = asyncio.create_task(job.run())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert mesh.node(0).ota.state is sim_ota.State.RECEIVING  # type: ignore[union-attr]
    await job.abort()
    assert mesh.node(0).ota.state is sim_ota.State.IDLE  # type: ignore[union-attr]
    await link.disconnect()
    assert await reconnect_info(mesh, 0.05) == "1.0.0"


# Pacing: a proxy forwards writes without flow control and drops what overruns its buffer.


async def test_paced_through_a_proxy_few_drops_no_byte_twice(mesh: Mesh) -> None:
    # 1600 chunks a second: the start (2 chunks per round trip) soon overshoots it
    mesh.latencies = dataclasses.replace(
        LATENCIES, conn_interval=0.005, ota_reboot=0.05
    )
    mesh.set_ota_proxy(0)
    link = await linked(mesh)
    session = mesh.node(0).sessions[0]
    firmware = image()
    stats = await transfer(link, firmware).run()
    assert not stats.flow_controlled
    assert stats.slowdowns >= 1  # the pace reacted to the proxy's drops
    assert 0 < stats.rate < 2 * 1600 * 16
    assert 0 < stats.rtt < 0.01
    flash = mesh.node(0).flash
    assert flash.holds(firmware.data)
    assert flash.rewrites == 0
    writes = session.data_writes + session.data_dropped
    assert session.proxy_overflows < 0.05 * writes
    await link.disconnect()


async def test_unpaced_through_a_proxy_overruns_it(mesh: Mesh) -> None:
    """The same proxy, the sender without pacing: many of its writes are dropped."""
    mesh.latencies = dataclasses.replace(LATENCIES, conn_interval=0.01, ota_reboot=0.05)
    mesh.set_ota_proxy(0)
    link = await linked(mesh)
    session = mesh.node(0).sessions[0]
    firmware = image(size=4096)
    stats = await transfer(link, firmware, pacing=None, status_after=0.01).run()
    assert stats.rate == 0
    assert session.proxy_overflows > 0.25 * (session.data_writes + session.data_dropped)
    assert mesh.node(0).flash.holds(firmware.data)
    assert mesh.node(0).flash.rewrites == 0
    await link.disconnect()


async def test_flow_control_is_left_to_the_transport(mesh: Mesh) -> None:
    """A local adapter holds the first burst back: no pacing, the controller paces."""
    realistic = Latencies.realistic()  # 8 PDUs held back at 4 per 30 ms
    mesh.latencies = dataclasses.replace(
        LATENCIES,
        tx_buffer=realistic.tx_buffer,
        conn_interval=realistic.conn_interval,
        packets_per_event=realistic.packets_per_event,
        ota_reboot=0.1,
    )
    link = await linked(mesh)
    firmware = image(size=2048)
    stats = await transfer(link, firmware).run()
    assert stats.flow_controlled
    assert stats.rate == 0
    assert stats.resent == 0
    assert mesh.node(0).flash.holds(firmware.data)
    await link.disconnect()


async def test_resume_through_a_proxy(mesh: Mesh) -> None:
    mesh.set_ota_proxy(0)
    mesh.disconnect_ota_at(0, 0.4)
    link = await linked(mesh)
    firmware = image()
    job = transfer(link, firmware)
    with pytest.raises(LinkError):
        await job.run()
    await asyncio.sleep(0.05)
    await link.connect()
    await job.run()
    assert job.stats.starts[1] >= 0.4 * SIZE
    flash = mesh.node(0).flash
    assert flash.erases == 1
    assert flash.rewrites == 0
    assert flash.holds(firmware.data)
    await link.disconnect()


async def test_a_refused_status_probe_is_written_again(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A congested proxy refuses a command (the link stays up): not the end of it."""
    mesh.set_ota_drops(0, 0.05)
    link = await linked(mesh)
    send_raw = link.send_raw
    refused = 0

    async def congested(payload: bytes) -> None:
        nonlocal refused
        if payload == b"OTA:STATUS" and refused < 3:
            refused += 1
            raise LinkError("ATT error 0x8F")
        await send_raw(payload)

    monkeypatch.setattr(link, "send_raw", congested)
    firmware = image()
    stats = await transfer(link, firmware, pacing=None).run()
    assert stats.failed_probes == 3
    assert stats.status_probes > 3
    assert mesh.node(0).flash.holds(firmware.data)
    await link.disconnect()


async def test_a_probe_failing_otherwise_ends_the_transfer(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    mesh.set_ota_drops(0, 0.05)
    link = await linked(mesh)
    send_raw = link.send_raw

    async def broken(payload: bytes) -> None:
        if payload == b"OTA:STATUS":
            raise DcMeshError("the probe broke")
        await send_raw(payload)

    monkeypatch.setattr(link, "send_raw", broken)
    with pytest.raises(DcMeshError, match="probe broke"):
        await transfer(link, image(), pacing=None).run()
    await link.disconnect()


CHUNK = 16
PACING = Pacing()


def paced(now: float = 0.0) -> Pacer:
    return Pacer(CHUNK, now, PACING)


def test_pacer_starts_doubling_then_follows_the_link() -> None:
    pacer = paced()
    assert pacer.rate == PACING.start_rate * CHUNK  # 1024 B/s
    pacer.acknowledged(4096, 1.0)  # the first acknowledgement only starts a sample
    pacer.acknowledged(6144, 1.5)  # too short a sample: nothing yet
    assert pacer.rate == 1024
    pacer.acknowledged(8192, 3.0)  # 2048 B/s delivered: the link keeps up
    assert pacer.rate == 2048
    assert pacer.starting
    pacer.acknowledged(10240, 5.0)  # 1024 B/s delivered of 2048: a queue grows
    assert not pacer.starting
    assert pacer.rate == 2048  # the best recent delivery rate
    assert pacer.delivery == 2048


def test_pacer_slows_down_once_per_loss() -> None:
    pacer = paced()
    pacer.acknowledged(0, 0.0)
    pacer.acknowledged(4096, 2.0)  # 2048 B/s at a pace of 1024: doubled
    assert pacer.rate == 2048
    assert pacer.lost(5000, 6000, 2.0)  # a gap: down to backoff x the delivery rate
    assert pacer.rate == pytest.approx(0.95 * 2048)
    slowed = pacer.rate
    assert not pacer.lost(5200, 6000, 2.1)  # the same loss event (what was out then)
    assert pacer.rate == slowed
    assert pacer.lost(5200, 6100, 2.2)  # no progress since: the resend was lost too
    assert pacer.rate < slowed
    assert pacer.lost(6100, 6500, 2.3)  # beyond what was out: a new loss event
    for when in range(3, 300):
        pacer.lost(6100, 6500, when)  # the resend lost, again and again
    assert pacer.rate == PACING.min_rate * CHUNK  # never below the floor


def test_pacer_grows_back_fast_then_slowly() -> None:
    pacer = paced()
    pacer.acknowledged(0, 0.0)
    pacer.acknowledged(4096, 2.0)  # 2048 B/s delivered: doubled to 2048
    pacer.acknowledged(12288, 4.0)  # 4096 B/s: doubled to 4096
    pacer.acknowledged(20480, 6.0)  # 4096 B/s: doubled to 8192, past the link's rate
    assert pacer.rate == 8192
    assert pacer.lost(21000, 22000, 6.0)  # lost at 8192: down to 0.95 x 4096
    assert pacer.ceiling == 8192
    low = pacer.rate
    assert low == pytest.approx(0.95 * 4096)
    pacer.acknowledged(30000, 7.0)  # far below the pace that lost: +10 % a second
    assert pacer.rate == pytest.approx(low * 1.1)
    pacer.acknowledged(170000, 27.0)  # (7000 B/s delivered) capped at `far` of it
    assert pacer.rate == pytest.approx(PACING.far * 8192)
    near = pacer.rate
    pacer.acknowledged(178000, 28.0)  # then +1 % a second
    assert pacer.rate == pytest.approx(near * 1.01)


def test_a_probe_that_looked_held_back_still_ends_paced() -> None:
    """A pause of this process made the first writes look held back; the gap tells."""
    sender = _Sender(PACING, CHUNK, 0, 0.0)
    assert not sender.paced  # the probe goes back to back
    for i in range(PACING.probe_chunks):
        sender.wrote(CHUNK, i * 0.01, i * 0.01 + 0.005)  # 5 ms each
    assert sender.flow_controlled
    assert not sender.paced
    assert sender.rate == 0
    for _ in range(PACING.probe_chunks):
        sender.wrote(CHUNK, 1.0, 1.0)  # then every write returns at once
    assert not sender.went_back(160, 800, 800, 1.0)  # a proxy overflowed: pace now
    assert sender.paced
    assert not sender.flow_controlled
    assert sender.next_at > 1.0  # after what may still wait in the proxy


def test_losses_behind_flow_control_leave_the_pace_to_it() -> None:
    sender = _Sender(PACING, CHUNK, 0, 0.0)
    for i in range(PACING.probe_chunks):
        sender.wrote(CHUNK, i * 0.01, i * 0.01 + 0.0075)  # a PDU time each
    assert sender.flow_controlled
    assert not sender.went_back(160, 800, 800, 1.0)
    assert sender.flow_controlled
    assert not sender.paced
    unpaced = _Sender(None, CHUNK, 0, 0.0)
    unpaced.wrote(CHUNK, 0.0, 0.0)
    assert not unpaced.went_back(0, 16, 16, 0.0)
    assert not unpaced.paced
    assert not unpaced.flow_controlled
