"""Face (b): the simulated mesh as a connectable Bluetooth proxy in Home Assistant.

`async_register_mesh(hass, mesh)` registers a remote scanner (like an ESPHome proxy)
with Home Assistant's Bluetooth manager. It advertises every advertising universal
node (local name `DC-Monitor`, service UUID 0xDC01, the node's RSSI with noise, v1
service data), again every `interval` (1 s) and whenever the mesh's advertising state
changes. Each registered mesh is a proxy of its own: its own source, adapter name and
connection slots. Connections go through `HaBluetoothConnector` to `SimBleakBackend`, so code
that uses `bluetooth.async_ble_device_from_address(..., connectable=True)` and
`bleak_retry_connector.establish_connection` reaches the mesh unchanged.

The bluetooth integration must be set up first (a component that calls this declares
`"dependencies": ["bluetooth"]`; tests request `enable_bluetooth`).
"""

from __future__ import annotations

from datetime import timedelta
import itertools
from typing import TYPE_CHECKING

from habluetooth import BaseHaRemoteScanner, HaBluetoothConnector
from homeassistant.components.bluetooth import (
    MONOTONIC_TIME,
    async_register_scanner,
    async_scanner_by_source,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval

from .bleak_backend import bound_backend

if TYPE_CHECKING:
    from datetime import datetime

    from .mesh import Mesh

# Real nodes advertise every 30-60 ms (v0.7: NimBLE's default fast interval) or 100 ms (v1), and
# Home Assistant refreshes a device's advertisement time at each one. Once a second keeps that
# property (a node's "last advertisement" is never more than a second old while it is alive)
# at a cost the tests can afford.
DEFAULT_INTERVAL = timedelta(seconds=1)
DEFAULT_SOURCE = "dc_mesh_sim"


class SimMeshScanner(BaseHaRemoteScanner):
    """A remote scanner that hears every advertising universal node of one mesh."""

    def advertise(self, mesh: Mesh) -> None:
        """Feed the current advertisement of every advertising node to the manager."""
        now = MONOTONIC_TIME()
        for advert in mesh.advertisements():
            self._async_on_advertisement(
                advert.mac,
                advert.rssi,
                advert.local_name,
                list(advert.service_uuids),
                dict(advert.service_data),
                {},
                None,
                {},
                now,
            )


def _free_source(hass: HomeAssistant) -> str:
    """The first of dc_mesh_sim, dc_mesh_sim_2, ... that no registered scanner uses."""
    for number in itertools.count(1):
        source = DEFAULT_SOURCE if number == 1 else f"{DEFAULT_SOURCE}_{number}"
        if async_scanner_by_source(hass, source) is None:
            return source
    raise AssertionError("unreachable")  # pragma: no cover


@callback
def async_register_mesh(
    hass: HomeAssistant,
    mesh: Mesh,
    *,
    source: str | None = None,
    interval: timedelta = DEFAULT_INTERVAL,
    connection_slots: int = 3,
) -> CALLBACK_TYPE:
    """Register the mesh as a connectable proxy; return the undo callable.

    The undo callable stops re-advertising, unregisters the scanner and cancels every
    timer of the mesh. Each proxy is a scanner and an adapter of its own, named
    `source` (default: `dc_mesh_sim`, then `dc_mesh_sim_2`, ... for further meshes),
    with its own `connection_slots`. A `source` already registered raises ValueError:
    two meshes would share one adapter and one slot pool, whose second unregistration
    fails (bleak-retry-connector's slot manager holds one entry per adapter).
    """
    if source is None:
        source = _free_source(hass)
    elif async_scanner_by_source(hass, source) is not None:
        raise ValueError(f"a scanner with source {source!r} is registered already")
    connector = HaBluetoothConnector(
        client=bound_backend(mesh), source=source, can_connect=lambda: True
    )
    # Each mesh is its own adapter (named as its source), with its own connection slots.
    scanner = SimMeshScanner(source, source, connector, True)
    unregister_scanner = async_register_scanner(
        hass, scanner, connection_slots=connection_slots
    )
    unsetup_scanner = scanner.async_setup()

    @callback
    def readvertise(_now: datetime | None = None) -> None:
        scanner.advertise(mesh)

    readvertise()
    cancel_interval = async_track_time_interval(
        hass, readvertise, interval, name="dc_mesh_sim advertising"
    )
    remove_listener = mesh.add_listener(readvertise)

    @callback
    def unregister() -> None:
        cancel_interval()
        remove_listener()
        unsetup_scanner()
        unregister_scanner()
        mesh.shutdown()

    return unregister
