"""Config flow: discovery, user pick, errors with retry, aborts, options, reconfigure."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import patch

from freezegun.api import TickingDateTimeFactory
from homeassistant.components.bluetooth import async_discovered_service_info
from homeassistant.config_entries import SOURCE_BLUETOOTH, SOURCE_USER
from homeassistant.const import CONF_ADDRESS
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.dc_mesh.const import (
    CONF_EXCLUDED_ADDRESSES,
    CONF_FIRMWARE_KEY,
    CONF_FIRMWARE_URL,
    CONF_MESH_ID,
    CONF_MESH_KEY,
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_PUBLISH,
    CONF_MQTT_RETAIN,
    CONF_STALE_TIMEOUT,
    DOMAIN,
)
from custom_components.dc_mesh.dcmesh import format_key
from simulator.auth import RateLimiter
from simulator.ha import async_register_mesh
from simulator.mesh import Latencies, Mesh, Profile, build_mesh

from . import advance, wait_for
from .conftest import mesh_unique_id


async def _discovery_flows(hass: HomeAssistant) -> list:
    await hass.async_block_till_done(wait_background_tasks=True)
    return hass.config_entries.flow.async_progress_by_handler(DOMAIN)


@pytest.mark.parametrize("profile", [Profile.V1, Profile.V07])
async def test_bluetooth_discovery_creates_one_entry_per_mesh(
    hass: HomeAssistant, mesh: Mesh, profile: Profile
) -> None:
    flows = await _discovery_flows(hass)
    # Four advertising nodes, one mesh: one discovery flow.
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == SOURCE_BLUETOOTH
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    if profile is Profile.V1:  # our firmware: the nodes take commands with the key only
        assert result["step_id"] == "mesh_key"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_MESH_KEY: format_key(mesh.mesh_key)}
        )
        assert result["data"][CONF_MESH_KEY] == mesh.mesh_key.hex()
    else:
        assert CONF_MESH_KEY not in result["data"]
    assert result["type"] is FlowResultType.CREATE_ENTRY
    key = mesh_unique_id(mesh)
    assert result["result"].unique_id == key
    assert result["data"][CONF_MESH_ID] == key
    assert result["data"][CONF_ADDRESS] in {mesh.node(n).mac for n in range(4)}
    await hass.async_block_till_done()
    # Further nodes of the configured mesh start no new flow.
    assert await _discovery_flows(hass) == []


async def test_discovery_cannot_connect_then_retry(
    hass: HomeAssistant, mesh: Mesh
) -> None:
    flows = await _discovery_flows(hass)
    address = flows[0]["context"].get("unique_id")
    assert address == mesh_unique_id(mesh)
    for node_id in range(4):
        mesh.refuse_connections(node_id, count=-1)
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    for node_id in range(4):
        mesh.refuse_connections(node_id, count=0)
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    assert result["step_id"] == "mesh_key"


async def test_user_flow_lists_unconfigured_nodes(
    hass: HomeAssistant, mesh: Mesh
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    address = mesh.node(2).mac
    with patch(
        "custom_components.dc_mesh.config_flow._async_probe",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_ADDRESS: address}
        )
    assert result["errors"] == {"base": "unknown"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: address}
    )
    assert result["step_id"] == "mesh_key"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MESH_KEY: mesh.mesh_key.hex().upper()}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == mesh_unique_id(mesh)
    assert result["data"] == {
        CONF_MESH_ID: mesh_unique_id(mesh),
        CONF_ADDRESS: address,
        CONF_MESH_KEY: mesh.mesh_key.hex(),
    }


async def test_mesh_key_errors(hass: HomeAssistant, mesh: Mesh) -> None:
    """Wrong form, wrong key, a node locked after failures; then the QR code's text."""
    flows = await _discovery_flows(hass)
    result = await hass.config_entries.flow.async_configure(flows[0]["flow_id"], {})
    assert result["step_id"] == "mesh_key"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MESH_KEY: "not a key"}
    )
    assert result["errors"] == {"base": "invalid_key_format"}
    wrong = bytes(16)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MESH_KEY: format_key(wrong)}
    )
    assert result["errors"] == {"base": "invalid_key"}
    for node_id in range(4):  # someone guessed keys on every node
        for _ in range(5):
            mesh.node(node_id).auth_limiter.fail()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MESH_KEY: format_key(mesh.mesh_key)}
    )
    assert result["errors"] == {"base": "too_many_attempts"}
    for node_id in range(4):
        mesh.node(node_id).auth_limiter = RateLimiter(mesh.now)
    qr_text = f"DCMESH1:{mesh.mesh_id:08x}:{mesh.mesh_key.hex()}"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MESH_KEY: qr_text}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MESH_KEY] == mesh.mesh_key.hex()


async def test_reauth_after_the_mesh_was_provisioned_again(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """New keys on every node: the link drops, no node accepts the key, reauth starts."""
    new_key = bytes(range(16, 32))
    for node in mesh.nodes:
        if node.mesh_key is not None:
            node.mesh_key = new_key
    mesh.drop_link(mesh.by_mac(loaded_entry.runtime_data.link.address).node_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await wait_for(
        lambda: bool(list(loaded_entry.async_get_active_flows(hass, {"reauth"})))
    )
    flow = next(iter(loaded_entry.async_get_active_flows(hass, {"reauth"})))
    assert flow["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"],
        {CONF_MESH_KEY: format_key(mesh.mesh_key)},  # the old key
    )
    assert result["errors"] == {"base": "invalid_key"}
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_MESH_KEY: format_key(new_key)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert loaded_entry.data[CONF_MESH_KEY] == new_key.hex()
    await hass.async_block_till_done()
    await wait_for(lambda: loaded_entry.runtime_data.data.connected)


async def test_reauth_without_reachable_nodes(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    result = await loaded_entry.start_reauth_flow(hass)
    for node_id in range(4):
        mesh.refuse_connections(node_id, count=-1)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_MESH_KEY: format_key(mesh.mesh_key)}
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_user_flow_no_unconfigured_nodes(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_devices_found"


async def test_user_flow_nothing_discovered(
    hass: HomeAssistant, enable_bluetooth: None
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_devices_found"


async def test_discovery_of_configured_mesh_aborts(
    hass: HomeAssistant, mesh: Mesh, config_entry: MockConfigEntry
) -> None:
    for flow in await _discovery_flows(hass):
        hass.config_entries.flow.async_abort(flow["flow_id"])
    config_entry.add_to_hass(hass)
    from homeassistant.components.bluetooth import async_last_service_info

    info = async_last_service_info(hass, mesh.node(1).mac, connectable=True)
    assert info is not None
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_BLUETOOTH}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize("profile", [Profile.V07])
async def test_options_flow_legacy_exclusions(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    neighbour = mesh.node(3).mac
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_STALE_TIMEOUT: 30,
            CONF_EXCLUDED_ADDRESSES: [neighbour],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    coordinator = loaded_entry.runtime_data
    assert coordinator.stale_timeout == timedelta(seconds=30)
    assert neighbour not in {
        info.address for info in coordinator.connection.candidates()
    }


async def test_reconfigure_preferred_node(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    address = mesh.node(3).mac
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: address}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded_entry.data[CONF_ADDRESS] == address
    # After the reload, the mesh is reached through the preferred node.
    assert loaded_entry.runtime_data.data.gateway_address == address


def _with_service_data(info, data: bytes | None):
    from homeassistant.components.bluetooth import BluetoothServiceInfoBleak

    from custom_components.dc_mesh.dcmesh import SERVICE_UUID

    return BluetoothServiceInfoBleak(
        name=info.name,
        address=info.address,
        rssi=info.rssi,
        manufacturer_data={},
        service_data={} if data is None else {SERVICE_UUID: data},
        service_uuids=info.service_uuids,
        source=info.source,
        device=info.device,
        advertisement=None,
        connectable=True,
        time=info.time,
        tx_power=None,
    )


async def test_unprovisioned_node_is_not_supported(
    hass: HomeAssistant, mesh: Mesh
) -> None:
    from homeassistant.components.bluetooth import async_last_service_info

    info = async_last_service_info(hass, mesh.node(0).mac, connectable=True)
    # v1 service data with mesh id 0 and node id 0xFF: not provisioned yet.
    unprovisioned = _with_service_data(info, bytes([1, 0, 0, 0, 0, 0xFF, 0, 0]))
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_BLUETOOTH}, data=unprovisioned
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_supported"


async def test_second_node_of_mesh_in_progress(hass: HomeAssistant, mesh: Mesh) -> None:
    from homeassistant.components.bluetooth import async_last_service_info

    assert len(await _discovery_flows(hass)) == 1
    info = async_last_service_info(hass, mesh.node(3).mac, connectable=True)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_BLUETOOTH}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_in_progress"


async def test_foreign_advertisement_is_not_offered(
    hass: HomeAssistant, mesh: Mesh
) -> None:
    """A node whose service data is garbage counts as legacy; a foreign mesh is separate."""
    from homeassistant.components.bluetooth import async_last_service_info

    info = async_last_service_info(hass, mesh.node(0).mac, connectable=True)
    other_mesh = _with_service_data(info, bytes([1, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 2]))
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_BLUETOOTH}, data=other_mesh
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "bluetooth_confirm"
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["unique_id"] == "deadbeef"


async def test_reconfigure_errors(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    mesh.refuse_connections(2, count=-1)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: mesh.node(2).mac}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    mesh.refuse_connections(2, count=0)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: mesh.node(2).mac}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()


async def test_reconfigure_to_a_node_that_went_away(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    """The node picked in the form stopped being seen before the user submitted it."""
    other = build_mesh(1, 0, latencies=Latencies.fast(), seed=42)
    other.advertised_mesh_id = mesh.mesh_id
    unregister = async_register_mesh(hass, other, source="far_proxy")
    await hass.async_block_till_done()
    result = await loaded_entry.start_reconfigure_flow(hass)
    unregister()  # its proxy went offline: after a while HA forgets the node
    for _ in range(4):
        await advance(hass, freezer, 300)
    assert other.node(0).mac not in {
        info.address for info in async_discovered_service_info(hass)
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: other.node(0).mac}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_reconfigure_without_nodes(
    hass: HomeAssistant, enable_bluetooth: None
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="legacy",
        data={CONF_MESH_ID: "legacy", CONF_ADDRESS: "AA:BB:CC:DD:EE:FF"},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_devices_found"


async def test_options_flow_v1_mesh(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """Any mesh can leave out nodes; v1 nodes are listed by their node id."""
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    schema = result["data_schema"].schema
    assert {str(key) for key in schema} == {
        CONF_STALE_TIMEOUT,
        CONF_EXCLUDED_ADDRESSES,
        CONF_FIRMWARE_URL,
        CONF_FIRMWARE_KEY,
    }
    selector = next(v for k, v in schema.items() if str(k) == CONF_EXCLUDED_ADDRESSES)
    labels = {option["label"] for option in selector.config["options"]}
    assert f"Node 2 ({mesh.node(2).mac})" in labels
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_STALE_TIMEOUT: 120, CONF_EXCLUDED_ADDRESSES: [mesh.node(3).mac]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    coordinator = loaded_entry.runtime_data
    assert coordinator.stale_timeout == timedelta(seconds=120)
    assert mesh.node(3).mac not in {
        info.address for info in coordinator.connection.candidates()
    }


async def test_options_firmware_catalog(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """A catalog URL must be http(s), a pinned key 64 hex digits; both are kept."""
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    base = {CONF_STALE_TIMEOUT: 45, CONF_EXCLUDED_ADDRESSES: []}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        base
        | {CONF_FIRMWARE_URL: "ftp://example.com/c.json", CONF_FIRMWARE_KEY: "xyz"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {
        CONF_FIRMWARE_URL: "invalid_url",
        CONF_FIRMWARE_KEY: "invalid_key_digest",
    }
    key = "0f" * 32
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        base
        | {CONF_FIRMWARE_URL: "https://example.com/c.json", CONF_FIRMWARE_KEY: key},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded_entry.options[CONF_FIRMWARE_URL] == "https://example.com/c.json"
    catalog = loaded_entry.runtime_data.updater.catalog
    assert catalog.trusted_key == bytes.fromhex(key)


async def test_mesh_membership_rules(hass: HomeAssistant, mesh: Mesh) -> None:
    from homeassistant.components.bluetooth import async_last_service_info

    from custom_components.dc_mesh.discovery import mesh_id_of

    info = async_last_service_info(hass, mesh.node(0).mac, connectable=True)
    assert mesh_id_of(info) == mesh_unique_id(mesh)
    # No service data (field firmware) or unreadable service data: the site's legacy mesh.
    assert mesh_id_of(_with_service_data(info, None)) == "legacy"
    # Service data we cannot read (a later format, garbage) is no v0.7 node: no mesh.
    assert mesh_id_of(_with_service_data(info, b"\x07")) is None


async def test_options_turn_mqtt_publishing_on(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    """With HA's MQTT integration set up, the options have an "mqtt" step.

    (Publishing itself, against a real broker, is in test_mqtt.py.)
    """
    hass.config.components.add("mqtt")
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_STALE_TIMEOUT: 60}
    )
    assert result["step_id"] == "mqtt"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_MQTT_PUBLISH: True,
            CONF_MQTT_BASE_TOPIC: "site/#",
            CONF_MQTT_RETAIN: False,
        },
    )
    assert result["errors"] == {CONF_MQTT_BASE_TOPIC: "invalid_topic"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_MQTT_PUBLISH: True,
            CONF_MQTT_BASE_TOPIC: "/site/",
            CONF_MQTT_RETAIN: False,
        },
    )
    assert loaded_entry.options == {
        CONF_STALE_TIMEOUT: 60,
        CONF_EXCLUDED_ADDRESSES: [],
        CONF_MQTT_PUBLISH: True,
        CONF_MQTT_BASE_TOPIC: "site",
        CONF_MQTT_RETAIN: False,
    }
    await hass.async_block_till_done()  # reloaded
