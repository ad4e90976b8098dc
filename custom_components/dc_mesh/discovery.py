"""Which mesh an advertising DC-Monitor node belongs to."""

from __future__ import annotations

from homeassistant.components.bluetooth import BluetoothServiceInfoBleak

from .const import LEGACY_MESH_ID
from .dcmesh import (
    LOCAL_NAME,
    SERVICE_UUID,
    Advertisement,
    ProtocolError,
    parse_service_data,
)


def is_dc_monitor(service_info: BluetoothServiceInfoBleak) -> bool:
    """Whether an advertisement comes from a node serving the DC-Monitor GATT service."""
    return (
        service_info.name.startswith(LOCAL_NAME)
        or SERVICE_UUID in service_info.service_uuids
    )


def advertisement_of(service_info: BluetoothServiceInfoBleak) -> Advertisement | None:
    """The v1 service data of a node's advertisement, None if it has none we understand."""
    data = service_info.service_data.get(SERVICE_UUID)
    if data is None:
        return None
    try:
        return parse_service_data(data)
    except ProtocolError:
        return None


def mesh_id_of(service_info: BluetoothServiceInfoBleak) -> str | None:
    """The mesh a node belongs to: its v1 mesh id, or the site's legacy mesh.

    v1 nodes say it in their service data. A v0.7 node sends no service data, so all v0.7
    nodes of a site form one legacy mesh (the options flow lets the user leave out a node
    that belongs to a neighbour's mesh). An unprovisioned v1 node belongs to no mesh yet,
    and service data we cannot read (a later format version, garbage) is no v0.7 node:
    both give None.
    """
    if not is_dc_monitor(service_info):
        return None
    if SERVICE_UUID not in service_info.service_data:
        return LEGACY_MESH_ID
    advertisement = advertisement_of(service_info)
    if advertisement is None or advertisement.mesh_id == 0:
        return None
    return f"{advertisement.mesh_id:08x}"


def mesh_title(mesh_id: str) -> str:
    """The default name of a mesh (its hub device and config entry)."""
    if mesh_id == LEGACY_MESH_ID:
        return "DC Mesh"
    return f"DC Mesh {mesh_id}"
