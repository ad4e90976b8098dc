"""Base entities: a hub device per mesh, and a device per mesh node (via the hub)."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN, HUB_MODEL, MANUFACTURER
from .coordinator import DcMeshCoordinator, NodeData
from .dcmesh import NodeRole


def hub_identifier(coordinator: DcMeshCoordinator) -> tuple[str, str]:
    """Device registry identifier of a mesh's hub device."""
    return (DOMAIN, coordinator.mesh_id)


def node_identifier(coordinator: DcMeshCoordinator, node_id: int) -> tuple[str, str]:
    """Device registry identifier of a mesh node (never its BLE address)."""
    return (DOMAIN, f"{coordinator.mesh_id}_{node_id}")


class DcMeshEntity(CoordinatorEntity[DcMeshCoordinator]):
    """Common base."""

    _attr_has_entity_name = True


class DcMeshHubEntity(DcMeshEntity):
    """An entity of the mesh as a whole."""

    def __init__(self, coordinator: DcMeshCoordinator, key: str) -> None:
        """Attach the entity to the mesh's hub device."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.mesh_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={hub_identifier(coordinator)},
            manufacturer=MANUFACTURER,
            model=HUB_MODEL,
            name=coordinator.config_entry.title,
        )


class DcMeshNodeEntity(DcMeshEntity):
    """An entity of one mesh node; unavailable once the node is stale."""

    def __init__(self, coordinator: DcMeshCoordinator, node_id: int, key: str) -> None:
        """Attach the entity to the node's device."""
        super().__init__(coordinator)
        self.node_id = node_id
        self._attr_unique_id = f"{coordinator.mesh_id}_{node_id}_{key}"
        info = self.node.info
        self._attr_device_info = DeviceInfo(
            identifiers={node_identifier(coordinator, node_id)},
            manufacturer=MANUFACTURER,
            model="DC-Monitor relay node"
            if info is not None and info.role is NodeRole.RELAY
            else "DC-Monitor universal node",
            hw_version=info.hardware if info is not None else None,
            sw_version=info.firmware if info is not None else None,
            translation_key="node",
            translation_placeholders={"node_id": str(node_id)},
            via_device_id=coordinator.hub_device_id,
        )

    @property
    def node(self) -> NodeData:
        """This entity's node (an empty, unavailable one once the user removed it)."""
        return self.coordinator.data.nodes.get(self.node_id) or NodeData(self.node_id)

    @property
    def available(self) -> bool:
        """Available while the node answered within the staleness timeout."""
        return self.node.available
