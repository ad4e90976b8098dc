"""Face (a): plain bleak and bleak-retry-connector against the simulated mesh."""

from __future__ import annotations

import asyncio

from bleak import BleakClient
from bleak.exc import BleakError, BleakGATTProtocolError
import bleak_retry_connector
import pytest

from simulator import wire
from simulator.bleak_backend import SimBleakBackend, SimBleakClient, discover


class Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = b""

    def __call__(self, _char: object, data: bytearray) -> None:
        if data.startswith(b"+"):
            self._partial += data[1:]
        else:
            self.lines.append((self._partial + data).decode())
            self._partial = b""


def test_discover_lists_universal_nodes_with_service_data(make_mesh) -> None:
    mesh = make_mesh(3, 1)
    found = discover(mesh)
    assert [device.address for device, _ in found] == [
        mesh.node(n).mac for n in range(3)
    ]
    device, advertisement = found[1]
    assert advertisement.local_name == "DC-Monitor" == device.name
    assert advertisement.service_uuids == [wire.SERVICE_UUID]
    assert advertisement.service_data[wire.SERVICE_UUID] == bytes.fromhex(
        "011a2b3c4d010002"
    )
    assert -95 < advertisement.rssi < -45
    mesh.power_off(1)
    assert len(discover(mesh)) == 2


async def test_bleak_client_read_write_notify(make_mesh) -> None:
    mesh = make_mesh()
    device, _ = discover(mesh)[0]
    messages = Messages()
    async with BleakClient(device, backend=SimBleakBackend) as client:
        assert client.is_connected
        assert client.mtu_size == 23
        assert await client.read_gatt_char(wire.DATA_CHAR_UUID) == b"NODE_READY"
        await client.start_notify(wire.DATA_CHAR_UUID, messages)
        await client.write_gatt_char(wire.COMMAND_CHAR_UUID, b"ALL:INFO", response=True)
        await asyncio.sleep(0.05)
        assert messages.lines[0] == "GATEWAY_CONNECTED"
        assert messages.lines[1].startswith("NODE0:INFO:")
        assert messages.lines[1].endswith("GW:1")
        assert messages.lines[2] == "SENT:INFO"
        assert len(messages.lines) == 6  # nodes 1, 2 and the relay answer too
        with pytest.raises(BleakGATTProtocolError):
            await client.write_gatt_char(
                wire.COMMAND_CHAR_UUID, b"0:" + b"R" * 63, True
            )
    assert not client.is_connected


async def test_link_drop_calls_back_and_reconnect_works(make_mesh) -> None:
    mesh = make_mesh()
    device, _ = discover(mesh)[0]
    dropped = asyncio.Event()
    client = BleakClient(device, lambda _c: dropped.set(), backend=SimBleakBackend)
    await client.connect()
    mesh.power_cycle(0, off_seconds=0.01)
    await asyncio.wait_for(dropped.wait(), 1)
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.write_gatt_char(wire.COMMAND_CHAR_UUID, b"0:READ", response=True)
    await asyncio.sleep(0.05)
    [device] = [d for d, _ in discover(mesh) if d.address == device.address]
    await client.connect()
    assert client.is_connected
    await client.disconnect()


async def test_establish_connection_retries_refusals(make_mesh, monkeypatch) -> None:
    monkeypatch.setattr(
        bleak_retry_connector, "BleakClientWithServiceCache", SimBleakClient
    )
    monkeypatch.setattr(bleak_retry_connector, "calculate_backoff_time", lambda _e: 0.0)
    mesh = make_mesh()
    device, _ = discover(mesh)[0]
    mesh.refuse_connections(0, count=1)
    client = await bleak_retry_connector.establish_connection(
        bleak_retry_connector.BleakClientWithServiceCache, device, "sim", max_attempts=3
    )
    assert client.is_connected
    await client.disconnect()


async def test_stale_service_cache_until_cleared(make_mesh) -> None:
    mesh = make_mesh()
    device, _ = discover(mesh)[0]
    mesh.set_stale_gatt_cache(0)
    client = SimBleakClient(device)
    await client.connect()
    assert client.services.get_characteristic(wire.COMMAND_CHAR_UUID) is None
    assert await client.clear_cache()
    await client.disconnect()
    await client.connect()
    assert client.services.get_characteristic(wire.COMMAND_CHAR_UUID) is not None
    await client.disconnect()


async def test_connect_to_a_powered_off_node_times_out(make_mesh) -> None:
    mesh = make_mesh()
    device, _ = discover(mesh)[0]
    mesh.power_off(0)
    with pytest.raises(TimeoutError):
        await BleakClient(device, backend=SimBleakBackend).connect()
