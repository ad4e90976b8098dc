"""DC Mesh simulator for `scripts/develop`: a simulated mesh behind a virtual proxy.

Configuration (all optional)::

    dc_mesh_sim:
      profile: v1        # or v0.7
      nodes: 5           # universal nodes
      relays: 1          # relay-only nodes after them
      seed: 0

Actions: `dc_mesh_sim.power_cycle` (node_id, off_seconds), `dc_mesh_sim.power_off` and
`dc_mesh_sim.power_on` (node_id).
"""

from __future__ import annotations

import logging
from pathlib import Path
import sys
from typing import Any

from homeassistant.components import persistent_notification
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.typing import ConfigType
from homeassistant.util.hass_dict import HassKey
import probatio as vol

try:
    import simulator  # noqa: F401
except ImportError:  # linked into a config dir: the repository root holds the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from custom_components.dc_mesh.dcmesh import format_key
from simulator.ha import async_register_mesh
from simulator.mesh import Latencies, Mesh, Profile, build_mesh

DOMAIN = "dc_mesh_sim"
_LOGGER = logging.getLogger(__name__)
DATA_MESH: HassKey[Mesh] = HassKey(DOMAIN)

SIM_SCHEMA = vol.Schema(
    {
        vol.Optional("profile", default=Profile.V1.value): vol.In(
            [profile.value for profile in Profile]
        ),
        vol.Optional("nodes", default=5): vol.All(int, vol.Range(min=1, max=100)),
        vol.Optional("relays", default=1): vol.All(int, vol.Range(min=0, max=99)),
        vol.Optional("seed", default=0): int,
    }
)
CONFIG_SCHEMA = vol.Schema({DOMAIN: vol.Any(None, SIM_SCHEMA)}, extra=vol.ALLOW_EXTRA)
NODE_SCHEMA = vol.Schema(
    {vol.Required("node_id"): vol.All(vol.Coerce(int), vol.Range(0, 99))}
)
CYCLE_SCHEMA = NODE_SCHEMA.extend(
    {
        vol.Optional("off_seconds", default=10.0): vol.All(
            vol.Coerce(float), vol.Range(0, 3600)
        )
    }
)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Build the mesh, register it as a proxy and register the fault actions."""
    conf: dict[str, Any] = SIM_SCHEMA(config.get(DOMAIN) or {})
    if conf["nodes"] + conf["relays"] > 100:
        # node ids 0..99 (protocol section 10; v0.7 commands reach 0..9 only)
        raise vol.Invalid("a DC-Monitor mesh holds at most 100 nodes")
    mesh = build_mesh(
        conf["nodes"],
        conf["relays"],
        profile=Profile(conf["profile"]),
        latencies=Latencies.realistic(),
        seed=conf["seed"],
    )
    hass.data[DATA_MESH] = mesh
    unregister = async_register_mesh(hass, mesh)
    if mesh.profile is Profile.V1:
        # What the real provisioner prints on its console (and as a QR code).
        key = format_key(mesh.mesh_key)
        _LOGGER.warning("Simulated mesh %08x: mesh key %s", mesh.mesh_id, key)
        persistent_notification.async_create(
            hass,
            f"The simulated mesh's provisioner printed its mesh key:\n\n`{key}`\n\n"
            "Enter it when you add the DC Mesh integration.",
            title="DC Mesh simulator",
            notification_id=f"{DOMAIN}_mesh_key",
        )

    @callback
    def stop(_event: Event) -> None:
        unregister()

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, stop)

    def node_id(call: ServiceCall) -> int:
        node: int = call.data["node_id"]
        if node >= len(mesh.nodes):
            raise ServiceValidationError(f"the simulated mesh has no node {node}")
        return node

    @callback
    def power_cycle(call: ServiceCall) -> None:
        mesh.power_cycle(node_id(call), call.data["off_seconds"])

    @callback
    def power_off(call: ServiceCall) -> None:
        mesh.power_off(node_id(call))

    @callback
    def power_on(call: ServiceCall) -> None:
        mesh.power_on(node_id(call))

    hass.services.async_register(DOMAIN, "power_cycle", power_cycle, CYCLE_SCHEMA)
    hass.services.async_register(DOMAIN, "power_off", power_off, NODE_SCHEMA)
    hass.services.async_register(DOMAIN, "power_on", power_on, NODE_SCHEMA)
    return True
