"""Face (b): the simulated mesh behind Home Assistant's real Bluetooth manager."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import bleak_retry_connector
from homeassistant.components import bluetooth
import pytest

from simulator import wire


@pytest.fixture
async def sim_mesh(hass, enable_bluetooth, make_mesh):
    from simulator.ha import async_register_mesh

    mesh = make_mesh(3, 1)
    unregister = async_register_mesh(hass, mesh, interval=timedelta(milliseconds=50))
    yield mesh
    unregister()


def reassemble(lines: list[str]):
    partial = bytearray()

    def on_chunk(_char: object, data: bytearray) -> None:
        nonlocal partial
        if data.startswith(b"+"):
            partial += data[1:]
        else:
            lines.append((partial + data).decode())
            partial = bytearray()

    return on_chunk


async def test_nodes_are_discovered_connectable_with_service_data(
    hass, sim_mesh
) -> None:
    infos = {
        info.address: info
        for info in bluetooth.async_discovered_service_info(hass, connectable=True)
    }
    assert set(infos) == {sim_mesh.node(n).mac for n in range(3)}
    info = infos[sim_mesh.node(2).mac]
    assert info.name == "DC-Monitor"
    assert info.connectable
    assert info.service_uuids == [wire.SERVICE_UUID]
    assert info.service_data[wire.SERVICE_UUID] == bytes.fromhex("011a2b3c4d020002")
    assert info.source == "dc_mesh_sim"


async def test_connect_write_notify_drop_reconnect(hass, sim_mesh) -> None:
    mac = sim_mesh.node(1).mac
    device = bluetooth.async_ble_device_from_address(hass, mac, connectable=True)
    assert device is not None
    dropped = asyncio.Event()
    client = await bleak_retry_connector.establish_connection(
        bleak_retry_connector.BleakClientWithServiceCache,
        device,
        "sim",
        disconnected_callback=lambda _client: dropped.set(),
        use_services_cache=True,
    )
    assert type(client).__name__ == "HaBleakClientWithServiceCache"
    lines: list[str] = []
    await client.start_notify(wire.DATA_CHAR_UUID, reassemble(lines))
    await client.write_gatt_char(wire.COMMAND_CHAR_UUID, b"2:DUTY:30", response=True)
    await asyncio.sleep(0.05)
    assert lines[:2] == ["GATEWAY_CONNECTED", "SENT:DUTY:30"]
    assert len(lines) == 3
    assert lines[2].startswith("NODE2:DATA:D:30%,V:")  # DUTY is answered with a reading
    assert sim_mesh.node(2).duty == 30

    sim_mesh.power_cycle(1, off_seconds=0.01)
    await asyncio.wait_for(dropped.wait(), 1)
    assert not client.is_connected
    await asyncio.sleep(0.1)  # boots and is advertised again

    device = bluetooth.async_ble_device_from_address(hass, mac, connectable=True)
    assert device is not None
    client = await bleak_retry_connector.establish_connection(
        bleak_retry_connector.BleakClientWithServiceCache, device, "sim"
    )
    assert await client.read_gatt_char(wire.DATA_CHAR_UUID) == b"NODE_READY"
    await client.disconnect()
    assert not client.is_connected


async def test_unregister_removes_the_scanner(
    hass, enable_bluetooth, make_mesh
) -> None:
    from simulator.ha import async_register_mesh

    mesh = make_mesh(1, 0)
    unregister = async_register_mesh(hass, mesh, source="other_source")
    assert bluetooth.async_scanner_by_source(hass, "other_source") is not None
    unregister()
    assert bluetooth.async_scanner_by_source(hass, "other_source") is None


async def test_each_mesh_is_a_proxy_with_its_own_adapter_and_slots(
    hass, enable_bluetooth, make_mesh
) -> None:
    """Two meshes: two sources, two adapters, two slot pools; both unregister cleanly."""
    from habluetooth import get_manager

    from simulator.ha import async_register_mesh

    meshes = [make_mesh(2, 0, seed=1), make_mesh(2, 0, seed=2)]
    undo = [async_register_mesh(hass, mesh, connection_slots=1) for mesh in meshes]
    manager = get_manager()
    scanners = {scanner.source: scanner for scanner in manager.async_current_scanners()}
    assert scanners["dc_mesh_sim"].adapter == "dc_mesh_sim"
    assert scanners["dc_mesh_sim_2"].adapter == "dc_mesh_sim_2"
    slots = manager.slot_manager.diagnostics()["adapter_slots"]
    assert slots["dc_mesh_sim"] == slots["dc_mesh_sim_2"] == 1
    # one slot each: a link in each mesh at the same time (a shared pool of 1 would refuse)
    clients = []
    for mesh in meshes:
        device = bluetooth.async_ble_device_from_address(
            hass, mesh.node(0).mac, connectable=True
        )
        clients.append(
            await bleak_retry_connector.establish_connection(
                bleak_retry_connector.BleakClientWithServiceCache, device, "sim"
            )
        )
    assert all(client.is_connected for client in clients)
    assert [bool(mesh.node(0).sessions) for mesh in meshes] == [True, True]
    with pytest.raises(ValueError, match="dc_mesh_sim_2"):
        async_register_mesh(hass, make_mesh(1, 0, seed=3), source="dc_mesh_sim_2")
    for client in clients:
        await client.disconnect()
    for unregister in undo:
        unregister()  # the second one raised while both shared one adapter
    assert bluetooth.async_scanner_by_source(hass, "dc_mesh_sim") is None
    assert bluetooth.async_scanner_by_source(hass, "dc_mesh_sim_2") is None
