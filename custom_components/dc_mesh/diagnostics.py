"""Diagnostics download: the entry, the link and every node's state."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_ADDRESS
from homeassistant.core import HomeAssistant

from .const import CONF_EXCLUDED_ADDRESSES, CONF_FIRMWARE_URL, CONF_MESH_KEY
from .coordinator import DcMeshConfigEntry

TO_REDACT = {
    CONF_ADDRESS,
    CONF_EXCLUDED_ADDRESSES,
    CONF_MESH_KEY,
    "gateway_address",
    "address",
    CONF_FIRMWARE_URL,  # may carry a token
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DcMeshConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a mesh."""
    coordinator = entry.runtime_data
    data = coordinator.data
    link = coordinator.link
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
        },
        "mesh": async_redact_data(
            {
                "connected": data.connected,
                "gateway_address": data.gateway_address,
                "gateway_node_id": data.gateway_node_id,
                "mode": data.mode.value if data.mode else None,
                "failover_count": data.failover_count,
                "fallback": data.fallback,
                "authenticated": link.authenticated if link is not None else None,
                "candidates": len(coordinator.connection.candidates()),
                "link_stats": asdict(link.stats) if link is not None else None,
            },
            TO_REDACT,
        ),
        "balancer": {
            "enabled": coordinator.balancer.enabled,
            "budget_mw": coordinator.balancer.budget_mw,
            "priority_node": coordinator.balancer.priority_node,
            "ceilings": dict(coordinator.balancer.ceilings),
        },
        "firmware": {
            "catalog_url": coordinator.updater.catalog.url is not None,
            "releases": [
                f"{release.version} {release.role.value} {release.hardware}"
                for release in coordinator.updater.catalog.releases
            ],
            "in_progress": {
                str(node_id): asdict(progress)
                for node_id, progress in coordinator.updater.progress.items()
            },
            "failures": {
                str(node_id): failure
                for node_id, failure in coordinator.updater.failures.items()
            },
        },
        "nodes": {
            str(node_id): {
                "available": node.available,
                "last_seen": node.last_seen.isoformat() if node.last_seen else None,
                "reading": asdict(node.reading) if node.reading else None,
                "info": asdict(node.info) if node.info else None,
                "energy_kwh": node.energy_kwh,
            }
            for node_id, node in sorted(data.nodes.items())
        },
    }
