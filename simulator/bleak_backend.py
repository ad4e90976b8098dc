"""Face (a): the mesh as a bleak backend, for plain bleak code outside Home Assistant.

`discover(mesh)` returns `(BLEDevice, AdvertisementData)` pairs for the advertising
universal nodes; their `BLEDevice.details` carries the mesh, so `SimBleakBackend`
needs no other binding::

    device, adv = discover(mesh)[0]
    async with BleakClient(device, backend=SimBleakBackend) as client: ...

`SimBleakClient` is a `bleak_retry_connector.BleakClientWithServiceCache` that always
uses this backend: patch it over `bleak_retry_connector.BleakClientWithServiceCache`
to drive code that calls `establish_connection`. In Home Assistant the connector
builds the backend with `bound_backend(mesh)`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, override

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
import bleak_retry_connector

from . import wire
from .mesh import (
    AttError,
    ConnectRefusedError,
    ConnectTimeoutError,
    GattSession,
    LinkLostError,
    Mesh,
)
from .ota import OTA_CHAR_UUID

if TYPE_CHECKING:
    from bleak.args import SizedBuffer

CCCD_UUID = "00002902-0000-1000-8000-00805f9b34fb"
DETAILS_KEY = "dc_mesh_sim"
MTU = 23  # the mesh proxy path limits the ATT MTU


def discover(mesh: Mesh) -> list[tuple[BLEDevice, AdvertisementData]]:
    """Return what a scan would find now: every advertising universal node."""
    found = []
    for advert in mesh.advertisements():
        device = BLEDevice(advert.mac, advert.local_name, {DETAILS_KEY: mesh})
        data = AdvertisementData(
            local_name=advert.local_name,
            manufacturer_data={},
            service_data=advert.service_data,
            service_uuids=advert.service_uuids,
            tx_power=None,
            rssi=advert.rssi,
            platform_data=(),
        )
        found.append((device, data))
    return found


def build_services(*, stale: bool, ota: bool = False) -> BleakGATTServiceCollection:
    """Build the GATT table of a universal node (without 0xDC02/0xDC03 when stale).

    `ota`: the node has the firmware update data characteristic 0xDC04.
    """
    services = BleakGATTServiceCollection()
    service = BleakGATTService(None, 10, wire.SERVICE_UUID)
    services.add_service(service)
    if stale:
        return services
    data = BleakGATTCharacteristic(
        None, 12, wire.DATA_CHAR_UUID, ["read", "notify"], lambda: MTU - 3, service
    )
    services.add_characteristic(data)
    services.add_descriptor(BleakGATTDescriptor(None, 13, CCCD_UUID, data))
    command = BleakGATTCharacteristic(
        None, 15, wire.COMMAND_CHAR_UUID, ["write"], lambda: MTU - 3, service
    )
    services.add_characteristic(command)
    if ota:
        data_in = BleakGATTCharacteristic(
            None,
            17,
            OTA_CHAR_UUID,
            ["write-without-response", "write"],
            lambda: MTU - 3,
            service,
        )
        services.add_characteristic(data_in)
    return services


class SimBleakBackend(BaseBleakClient):
    """A bleak backend whose peripheral is a simulated universal node.

    The mesh comes from the `mesh` keyword or from the BLEDevice that `discover`
    built. Link errors surface as bleak's: `TimeoutError` for a connect nobody
    answers, `BleakError` otherwise, `BleakGATTProtocolError` for an ATT error.
    As real backends do, the disconnected callback fires for every disconnect,
    solicited or not.
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        mesh: Mesh | None = None,
        **kwargs: Any,
    ) -> None:
        """Bind to a mesh; the other keywords are bleak's."""
        super().__init__(address_or_ble_device, **kwargs)
        if mesh is None:
            if not isinstance(address_or_ble_device, BLEDevice) or not isinstance(
                address_or_ble_device.details, dict
            ):
                raise BleakError("the simulator needs a BLEDevice from discover()")
            mesh = address_or_ble_device.details[DETAILS_KEY]
        assert mesh is not None
        self._mesh = mesh
        self._session: GattSession | None = None

    @property
    @override
    def name(self) -> str:
        return wire.LOCAL_NAME

    @property
    @override
    def mtu_size(self) -> int:
        return self._session.mtu if self._session is not None else MTU

    @property
    @override
    def is_connected(self) -> bool:
        return self._session is not None and self._session.connected

    @override
    async def connect(self, pair: bool, **kwargs: Any) -> None:
        limit = float(kwargs.get("timeout", self._timeout))
        try:
            session = await self._mesh.connect(self.address, limit)
        except ConnectTimeoutError as err:
            raise TimeoutError(str(err)) from err
        except (ConnectRefusedError, KeyError) as err:
            raise BleakError(f"{self.address}: failed to connect: {err}") from err
        session.on_lost = self._on_lost
        self._session = session
        self.services = build_services(
            stale=session.node.faults.stale_cache, ota=session.node.ota is not None
        )

    @override
    async def disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None and session.connected:
            session.disconnect()
            self._fire_disconnected()

    @override
    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("DC-Monitor nodes do not pair")

    @override
    async def unpair(self) -> None:
        raise NotImplementedError("DC-Monitor nodes do not pair")

    async def clear_cache(self) -> bool:
        """Forget the cached GATT table, as BlueZ or a proxy would."""
        self._mesh.by_mac(self.address).faults.stale_cache = False
        return True

    @override
    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        session = self._require(characteristic.uuid, wire.DATA_CHAR_UUID)
        return bytearray(session.read())

    @override
    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        session = self._require(descriptor.characteristic_uuid, wire.DATA_CHAR_UUID)
        return bytearray(int(session.subscribed).to_bytes(2, "little"))

    @override
    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        if characteristic.uuid == OTA_CHAR_UUID:
            session = self._require(characteristic.uuid, OTA_CHAR_UUID)
            try:
                await session.write_data(bytes(data), response=response)
            except AttError as err:
                raise BleakGATTProtocolError(err.code) from err
            except LinkLostError as err:
                raise BleakError(f"{self.address}: {err}") from err
            return
        session = self._require(characteristic.uuid, wire.COMMAND_CHAR_UUID)
        try:
            await session.write(bytes(data))
        except AttError as err:
            raise BleakGATTProtocolError(err.code) from err
        except LinkLostError as err:
            raise BleakError(f"{self.address}: {err}") from err

    @override
    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        raise BleakError("use start_notify / stop_notify for the CCCD")

    @override
    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        session = self._require(characteristic.uuid, wire.DATA_CHAR_UUID)

        def deliver(chunk: bytes) -> None:
            callback(bytearray(chunk))

        session.subscribe(deliver)

    @override
    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        session = self._require(characteristic.uuid, wire.DATA_CHAR_UUID)
        session.unsubscribe()

    def _require(self, uuid: str, wanted: str) -> GattSession:
        session = self._session
        if session is None or not session.connected:
            raise BleakError(f"{self.address}: not connected")
        if uuid != wanted:
            raise BleakError(f"{uuid}: operation not permitted")
        return session

    def _on_lost(self) -> None:
        self._session = None
        self._fire_disconnected()

    def _fire_disconnected(self) -> None:
        if self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback)


def bound_backend(mesh: Mesh) -> type[SimBleakBackend]:
    """Return a `SimBleakBackend` class bound to one mesh (for HaBluetoothConnector)."""

    class MeshBackend(SimBleakBackend):
        def __init__(
            self, address_or_ble_device: BLEDevice | str, **kwargs: Any
        ) -> None:
            super().__init__(address_or_ble_device, mesh=mesh, **kwargs)

    return MeshBackend


class SimBleakClient(bleak_retry_connector.BleakClientWithServiceCache):
    """A `BleakClientWithServiceCache` that always connects through the simulator."""

    def __init__(
        self, address_or_ble_device: BLEDevice | str, *args: Any, **kwargs: Any
    ) -> None:
        """Build the client with `SimBleakBackend`."""
        kwargs["backend"] = SimBleakBackend
        super().__init__(address_or_ble_device, *args, **kwargs)

    @override
    async def clear_cache(self) -> bool:
        backend = self._backend
        assert isinstance(backend, SimBleakBackend)
        return await backend.clear_cache()
