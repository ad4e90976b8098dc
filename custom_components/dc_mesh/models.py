"""What the integration knows about a mesh and its nodes (shared by all entities of an entry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .dcmesh import NodeInfo, NodeRole, ProtocolMode, Reading


@dataclass(slots=True)
class NodeData:
    """Everything known about one mesh node."""

    node_id: int
    reading: Reading | None = None
    info: NodeInfo | None = None
    # When the node's latest reading (or, for a relay, INFO) arrived: HA's clock.
    last_seen: datetime | None = None
    energy_kwh: float | None = None
    available: bool = False
    # The node's own Bluetooth address, once its advertisement or the link told it.
    address: str | None = None
    # v1 health, from INFO and the node's advertisements: when it last booted, its signal.
    booted_at: datetime | None = None
    rssi: int | None = None

    @property
    def is_sensor(self) -> bool:
        """Whether the node measures a load (universal node), as far as we know."""
        return self.reading is not None or (
            self.info is not None and self.info.role is NodeRole.UNIVERSAL
        )


@dataclass(slots=True)
class MeshData:
    """The state of one mesh."""

    nodes: dict[int, NodeData] = field(default_factory=dict)
    connected: bool = False
    gateway_address: str | None = None
    gateway_node_id: int | None = None
    mode: ProtocolMode | None = None
    failover_count: int = 0
    # v0.7 only: the mesh's vendor models are unbound, so every command would be turned into
    # "load on" by the nodes. Nothing is sent until MESH_READY:VENDOR arrives.
    fallback: bool = False

    @property
    def total_power_mw(self) -> float:
        """Sum of the latest power of the nodes that are available."""
        return sum(
            node.reading.power_mw
            for node in self.nodes.values()
            if node.available and node.reading is not None
        )
