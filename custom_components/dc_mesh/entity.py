"""Base entities: a hub device per mesh, and a device per mesh node (via the hub)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import CONNECTION_BLUETOOTH, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import MANUFACTURER
from .coordinator import DcMeshConfigEntry, DcMeshCoordinator, ListenerScope
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
    # A node is new with its first reading or INFO: pushed readings of known nodes are not.
    entry.async_on_unload(
        coordinator.async_add_listener(_add_new_nodes, ListenerScope(readings=False))
    )
    entry.async_on_unload(coordinator.async_on_forget(known.discard))


class DcMeshEntity(CoordinatorEntity[DcMeshCoordinator]):
    """Common base: an entity writes its state only when what it shows changed.

    A mesh update touches one node or a few; rewriting every entity of the mesh at each
    one (~9 per node) would cost Home Assistant work (state machine, recorder, open
    dashboards) proportional to the mesh, not to what changed. Pushed readings (one per
    node and second, the bulk of the updates) reach only the entities of the nodes that
    sent them and that show what changed in them (a field of the reading that stayed as
    it was calls nothing); of those, an entity whose inputs did not change does not even
    compute its state.
    """

    _attr_has_entity_name = True
    # False: nothing the entity shows comes from a node's readings (INFO, settings, the
    # link): pushed readings alone leave it as it is.
    _shows_readings = True
    # The one field of a node's readings the entity shows (see ListenerScope.field); None:
    # every reading may change what it shows.
    _reading_field: str | None = None
    # True: inputs (`_shown_inputs`) that differ always show differently (nothing rounds
    # them, as a timestamp's state does to whole seconds): a change is written at once,
    # without computing the state once more to compare it.
    _state_follows_inputs = False
    _shown: tuple[object, ...] | None = None
    _inputs: tuple[object, ...] | None = None

    def _shown_inputs(self) -> tuple[object, ...] | None:
        """The data the entity shows, cheaply, when nothing else decides its state.

        Equal to the last update's: the entity skips computing its state. None: it has no
        such summary and computes its state at every update.
        """
        return None

    @property
    def _scope(self) -> ListenerScope:
        """What the entity shows, for the coordinator's push flushes."""
        return ListenerScope(readings=self._shows_readings)

    async def async_added_to_hass(self) -> None:
        """Listen to the coordinator's updates of what the entity shows."""
        self.coordinator_context = self._scope
        await super().async_added_to_hass()

    @callback
    def _handle_coordinator_update(self) -> None:
        """Write the state if what the entity shows changed since the last write.

        Push flushes call only the entities they concern (see `_scope`).
        """
        inputs = self._shown_inputs()
        if inputs is not None:
            if inputs == self._inputs:
                return
            self._inputs = inputs
            if self._state_follows_inputs:
                super()._handle_coordinator_update()
                return
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

    @property
    def _scope(self) -> ListenerScope:
        return ListenerScope(self.node_id, self._shows_readings, self._reading_field)

    @property
    def node(self) -> NodeData:
        """This entity's node (an empty, unavailable one once the user removed it)."""
        return self.coordinator.data.nodes.get(self.node_id) or NodeData(self.node_id)

    @property
    def available(self) -> bool:
        """Available while the node answered within the staleness timeout."""
        return self.node.available
