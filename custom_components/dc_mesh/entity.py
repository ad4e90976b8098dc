"""Base entities: a hub device per mesh, and a device per mesh node (via the hub)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import CONNECTION_BLUETOOTH, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import MANUFACTURER
from .coordinator import DcMeshConfigEntry, DcMeshCoordinator
from .dcmesh import NodeRole
from .models import NodeData


def async_add_node_entities(
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    nodes: Callable[[], Iterable[int]],
    create: Callable[[int], Iterable[Entity]],
) -> None:
    """Add a node's entities once the node appears (dynamic devices).

    `nodes` says which nodes qualify now; `create` builds one node's entities. A node the
    user removed is forgotten, so it is added again if it ever comes back.
    """
    coordinator = entry.runtime_data
    known: set[int] = set()

    @callback
    def _add_new_nodes() -> None:
        new = set(nodes()) - known
        known.update(new)
        if new:
            async_add_entities(
                entity for node_id in sorted(new) for entity in create(node_id)
            )

    _add_new_nodes()
    entry.async_on_unload(coordinator.async_add_listener(_add_new_nodes))
    entry.async_on_unload(coordinator.async_on_forget(known.discard))


class DcMeshEntity(CoordinatorEntity[DcMeshCoordinator]):
    """Common base: an entity writes its state only when what it shows changed.

    A mesh update touches one node or a few; rewriting every entity of the mesh at each
    one (~9 per node) would cost Home Assistant work (state machine, recorder, open
    dashboards) proportional to the mesh, not to what changed.
    """

    _attr_has_entity_name = True
    _shown: tuple[object, ...] | None = None

    @callback
    def _handle_coordinator_update(self) -> None:
        shown = (
            self.available,
            self.state,
            self.capability_attributes,
            self.state_attributes,
            self.extra_state_attributes,
        )
        if shown == self._shown:
            return
        self._shown = shown
        super()._handle_coordinator_update()


class DcMeshHubEntity(DcMeshEntity):
    """An entity of the mesh as a whole."""

    def __init__(self, coordinator: DcMeshCoordinator, key: str) -> None:
        """Attach the entity to the mesh's hub device."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.mesh_id}_{key}"
        # The coordinator registered the hub device before the platforms.
        self._attr_device_info = DeviceInfo(identifiers={coordinator.hub_identifier})


class DcMeshNodeEntity(DcMeshEntity):
    """An entity of one mesh node; unavailable once the node is stale."""

    def __init__(self, coordinator: DcMeshCoordinator, node_id: int, key: str) -> None:
        """Attach the entity to the node's device."""
        super().__init__(coordinator)
        self.node_id = node_id
        self._attr_unique_id = f"{coordinator.mesh_id}_{node_id}_{key}"
        node = self.node
        info = node.info
        self._attr_device_info = DeviceInfo(
            identifiers={coordinator.node_identifier(node_id)},
            manufacturer=MANUFACTURER,
            model="DC-Monitor relay node"
            if info is not None and info.role is NodeRole.RELAY
            else "DC-Monitor universal node",
            hw_version=info.hardware if info is not None else None,
            sw_version=info.firmware if info is not None else None,
            # "<mesh> node <id>": entity ids and names stay apart between meshes.
            translation_key="node",
            translation_placeholders={
                "mesh": coordinator.config_entry.title,
                "node_id": str(node_id),
            },
            via_device_id=coordinator.hub_device_id,
        )
        if node.address is not None:
            # An address learned later is added to the device by the coordinator.
            self._attr_device_info["connections"] = {
                (CONNECTION_BLUETOOTH, node.address)
            }

    @callback
    def _handle_coordinator_update(self) -> None:
        changed = self.coordinator.changed_nodes
        if changed is not None and self.node_id not in changed:
            return  # pushed readings of other nodes
        super()._handle_coordinator_update()

    @property
    def node(self) -> NodeData:
        """This entity's node (an empty, unavailable one once the user removed it)."""
        return self.coordinator.data.nodes.get(self.node_id) or NodeData(self.node_id)

    @property
    def available(self) -> bool:
        """Available while the node answered within the staleness timeout."""
        return self.node.available
