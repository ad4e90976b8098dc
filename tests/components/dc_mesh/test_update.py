"""Firmware updates through Home Assistant: update entities, the catalog, progressive rollouts.

Every transfer runs through HA's Bluetooth manager to simulated v1 nodes with the firmware's
update receiver (simulator/ota.py, replayed against firmware/vectors/ota.tsv): real flash
model, restart into the image, self-test and rollback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import hashlib
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.components.update import (
    ATTR_IN_PROGRESS,
    ATTR_INSTALLED_VERSION,
    ATTR_LATEST_VERSION,
    ATTR_RELEASE_SUMMARY,
    ATTR_UPDATE_PERCENTAGE,
    ATTR_VERSION,
    DOMAIN as UPDATE_DOMAIN,
    SERVICE_INSTALL,
    UpdateEntityFeature,
)
from homeassistant.const import (
    ATTR_ENTITY_ID,
    ATTR_SUPPORTED_FEATURES,
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from custom_components.dc_mesh.const import (
    CONF_FIRMWARE_KEY,
    CONF_FIRMWARE_URL,
    DOMAIN,
    EVENT_FIRMWARE_UPDATE,
)
from custom_components.dc_mesh.dcmesh import ProtocolMode
from simulator import ota as sim_ota, signing
from simulator.mesh import Latencies, Mesh, Profile, build_mesh

from . import unload_entries, wait_for
from .conftest import mesh_unique_id

NODES = 5
IMAGE_SIZE = 6000
HARDWARE = "ESP32-C6"


@pytest.fixture(autouse=True)
def fast_update_timing() -> Iterator[None]:
    """The simulated nodes restart and pass their self-test in milliseconds."""
    with (
        patch("custom_components.dc_mesh.updater.UPDATE_TRIAL_WINDOW", 1.0),
        patch("custom_components.dc_mesh.updater.UPDATE_TRIAL_POLL", 0.2),
        patch("custom_components.dc_mesh.updater.UPDATE_RETRY_DELAY", 0.05),
        patch("custom_components.dc_mesh.updater.UPDATE_REBOOT_TIMEOUT", 10.0),
    ):
        yield


@pytest.fixture
async def mesh(
    hass: HomeAssistant, enable_bluetooth: None, profile: Profile
) -> AsyncIterator[Mesh]:
    """Five universal v1 nodes with the update receiver (v0.7: no receiver)."""
    from simulator.ha import async_register_mesh

    sim = build_mesh(
        NODES, 0, profile=profile, latencies=Latencies.fast(), seed=11, ota=True
    )
    unregister = async_register_mesh(hass, sim, source="dc_mesh_sim")
    await hass.async_block_till_done()
    yield sim
    await unload_entries(hass)
    unregister()
    sim.shutdown()


@pytest.fixture
def firmware_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """The firmware folder of a config directory of the test's own."""
    hass.config.config_dir = str(tmp_path)
    folder = tmp_path / "dc_mesh" / "firmware"
    folder.mkdir(parents=True)
    return folder


def add_release(
    folder: Path,
    version: str,
    *,
    selftest_ok: bool = True,
    size: int = IMAGE_SIZE,
    notes: str = "",
    manifest: dict[str, Any] | None = None,
    signed: bool = False,
) -> bytes:
    """Put a release (image and manifest, as firmware/release.sh writes them) in `folder`."""
    image = sim_ota.build_image(version, size, selftest_ok=selftest_ok)
    if signed:
        image = signing.sign_image(image, signing.cached_key())
        manifest = {
            "signature": {
                "scheme": "secure-boot-v2-rsa3072",
                "public_key_sha256": signing.key_digest(signing.cached_key()).hex(),
            }
        } | (manifest or {})
    name = f"dc_universal_node-{version}.bin"
    (folder / name).write_bytes(image)
    description = {
        "format": 1,
        "version": version,
        "role": "U",
        "hardware": HARDWARE,
        "size": len(image),
        "sha256": hashlib.sha256(image).hexdigest(),
        "release_notes": notes,
        "image": name,
    } | (manifest or {})
    (folder / f"dc_universal_node-{version}.json").write_text(json.dumps(description))
    return image


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set the mesh up and wait until every node told its INFO (firmware, role)."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    nodes = entry.runtime_data.data.nodes
    if entry.runtime_data.data.mode is ProtocolMode.V1:
        await wait_for(
            lambda: sum(node.info is not None for node in nodes.values()) == NODES
        )


def entity_id(hass: HomeAssistant, mesh: Mesh, node_id: int) -> str:
    """The update entity of a node."""
    found = er.async_get(hass).async_get_entity_id(
        UPDATE_DOMAIN, DOMAIN, f"{mesh_unique_id(mesh)}_{node_id}_firmware_update"
    )
    assert found is not None
    return found


async def install(
    hass: HomeAssistant, mesh: Mesh, node_id: int, version: str | None = None
) -> None:
    """Press install on a node's update entity (waits until the update ended)."""
    data: dict[str, Any] = {ATTR_ENTITY_ID: entity_id(hass, mesh, node_id)}
    if version is not None:
        data[ATTR_VERSION] = version
    await hass.services.async_call(UPDATE_DOMAIN, SERVICE_INSTALL, data, blocking=True)


@pytest.fixture
def logbook_events(hass: HomeAssistant) -> list[Event]:
    """Every firmware update outcome fired for the logbook."""
    return async_capture_events(hass, EVENT_FIRMWARE_UPDATE)


async def test_node_shows_release_and_installs_it(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
    logbook_events: list[Event],
) -> None:
    """Installed version from INFO, newest from the folder; install runs to the end."""
    image = add_release(firmware_dir, "1.1.0", notes="Faster ramps.", size=60000)
    await set_up(hass, config_entry)

    state = hass.states.get(entity_id(hass, mesh, 2))
    assert state is not None
    assert state.state == STATE_ON
    assert state.attributes[ATTR_INSTALLED_VERSION] == "1.0.0"
    assert state.attributes[ATTR_LATEST_VERSION] == "1.1.0"
    features = UpdateEntityFeature(state.attributes[ATTR_SUPPORTED_FEATURES])
    assert UpdateEntityFeature.INSTALL in features
    assert UpdateEntityFeature.PROGRESS in features
    assert UpdateEntityFeature.SPECIFIC_VERSION in features

    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    await install(hass, mesh, 2)

    shown = [
        (new.attributes[ATTR_IN_PROGRESS], new.attributes[ATTR_UPDATE_PERCENTAGE])
        for event in changes
        if event.data["entity_id"] == entity_id(hass, mesh, 2)
        and (new := event.data["new_state"]) is not None
    ]
    percentages = [p for in_progress, p in shown if in_progress and p is not None]
    assert percentages == sorted(percentages)  # only forward, never back to 0
    assert len(percentages) > 10
    assert 0 < percentages[0] < 20
    assert percentages[-1] == 100
    assert shown[-1] == (False, None)
    state = hass.states.get(entity_id(hass, mesh, 2))
    assert state is not None
    assert state.state == STATE_OFF
    assert state.attributes[ATTR_INSTALLED_VERSION] == "1.1.0"
    assert state.attributes[ATTR_IN_PROGRESS] is False
    node = mesh.node(2)
    assert node.firmware == "1.1.0"
    assert node.flash.holds(image)
    assert node.flash.rewrites == 0
    assert "self-test passed on 1.1.0" in node.ota_log
    assert [e.data["version"] for e in logbook_events] == ["1.1.0"]
    assert logbook_events[0].data["from_version"] == "1.0.0"
    assert logbook_events[0].data["error"] is None
    # the other nodes are untouched
    assert {mesh.node(n).firmware for n in (0, 1, 3, 4)} == {"1.0.0"}


async def test_release_notes(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
    hass_ws_client: Any,
) -> None:
    """The update dialog shows the manifest's release notes."""
    add_release(firmware_dir, "1.1.0", notes="## 1.1.0\nFaster ramps.")
    await set_up(hass, config_entry)
    client = await hass_ws_client(hass)
    await client.send_json(
        {"id": 1, "type": "update/release_notes", "entity_id": entity_id(hass, mesh, 1)}
    )
    result = await client.receive_json()
    assert result["result"] == "## 1.1.0\nFaster ramps."


async def test_updating_the_gateway_moves_the_monitoring_link(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
) -> None:
    """The node carrying the link is updated over a link of its own; monitoring goes on."""
    add_release(firmware_dir, "1.1.0")
    await set_up(hass, config_entry)
    coordinator = config_entry.runtime_data
    assert coordinator.data.gateway_node_id == 0
    gateways: list[int | None] = []  # while bytes go to node 0

    def _seen() -> None:
        progress = coordinator.updater.progress.get(0)
        if progress is not None and progress.percentage is not None:
            gateways.append(coordinator.data.gateway_node_id)

    coordinator.async_add_listener(_seen)

    await install(hass, mesh, 0)

    assert mesh.node(0).firmware == "1.1.0"
    # the link moved to another node and never came back to node 0 during the update
    assert coordinator.data.gateway_node_id not in (None, 0)
    assert gateways
    assert 0 not in gateways
    await wait_for(lambda: coordinator.data.connected)


async def test_progressive_rollout_resumes_survives_drops_and_stops_at_rollback(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
    logbook_events: list[Event],
) -> None:
    """The issue's end-to-end case.

    A 5-node mesh goes to 1.1.0 in phases (1 node, then the rest), one node loses its link
    half way (resumed, not restarted), one drops frames like a busy proxy; then a bad
    1.2.0 rolls back on the first node: the rollout stops, says why, and every node
    still runs a good version.
    """
    add_release(firmware_dir, "1.1.0")
    await set_up(hass, config_entry)
    mesh.node(2).faults.ota_disconnect_at = 0.5
    mesh.set_ota_drops(3, 0.05)
    gateway = config_entry.runtime_data.data.gateway_node_id
    assert gateway is not None
    # the node carrying the link goes last (its link moves once)
    order = [n for n in range(NODES) if n != gateway] + [gateway]

    response = await hass.services.async_call(
        DOMAIN,
        "update_mesh_firmware",
        {"config_entry_id": config_entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert response == {"phases": [order[:1], order[1:]]}
    await hass.async_block_till_done(wait_background_tasks=True)

    assert {mesh.node(n).firmware for n in range(NODES)} == {"1.1.0"}
    assert [e.data["node_id"] for e in logbook_events] == order
    assert all(e.data["error"] is None for e in logbook_events)
    # node 2 lost its link half way and resumed: its slot was erased once
    assert mesh.node(2).flash.erases == 1
    for n in range(NODES):
        assert mesh.node(n).flash.rewrites == 0
    assert not ir.async_get(hass).async_get_issue(
        DOMAIN, f"rollout_stopped_{config_entry.entry_id}"
    )

    # a bad release: the first node rolls back and the rollout stops there
    add_release(firmware_dir, "1.2.0", selftest_ok=False)
    logbook_events.clear()
    response = await hass.services.async_call(
        DOMAIN,
        "update_mesh_firmware",
        {"config_entry_id": config_entry.entry_id, "version": "1.2.0"},
        blocking=True,
        return_response=True,
    )
    gateway = config_entry.runtime_data.data.gateway_node_id
    first = min(n for n in range(NODES) if n != gateway)
    assert response is not None
    assert response["phases"][0] == [first]
    await hass.async_block_till_done(wait_background_tasks=True)

    assert {mesh.node(n).firmware for n in range(NODES)} == {"1.1.0"}
    assert "rolled back to 1.1.0" in mesh.node(first).ota_log
    assert [e.data["node_id"] for e in logbook_events] == [first]
    assert "rolled back" in logbook_events[0].data["error"]
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"rollout_stopped_{config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["done"] == "0"
    assert "rolled back" in issue.translation_placeholders["error"]
    state = hass.states.get(entity_id(hass, mesh, first))
    assert state is not None
    assert state.attributes[ATTR_INSTALLED_VERSION] == "1.1.0"
    assert state.attributes[ATTR_IN_PROGRESS] is False
    assert "rolled back" in state.attributes[ATTR_RELEASE_SUMMARY]


async def test_image_that_does_not_match_its_manifest_is_never_sent(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
) -> None:
    """Size and SHA-256 are checked before the first byte goes to the node."""
    add_release(firmware_dir, "1.1.0", manifest={"sha256": "ab" * 32})
    await set_up(hass, config_entry)

    with pytest.raises(HomeAssistantError, match="failed its checks"):
        await install(hass, mesh, 1)
    assert mesh.node(1).flash.erases == 0
    state = hass.states.get(entity_id(hass, mesh, 1))
    assert state is not None
    assert state.attributes[ATTR_IN_PROGRESS] is False


async def test_unknown_version_and_bad_manifests(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A version not in the catalog is refused; a broken manifest is skipped and logged."""
    add_release(firmware_dir, "1.1.0")
    (firmware_dir / "broken.json").write_text("{not json")
    (firmware_dir / "other.json").write_text(json.dumps({"format": 1, "version": "x"}))
    await set_up(hass, config_entry)
    assert "broken.json: cannot read it" in caplog.text
    assert "other.json: entry 0: 'version' 'x' is not x.y.z" in caplog.text

    with pytest.raises(HomeAssistantError, match=r"No firmware release 9\.9\.9"):
        await install(hass, mesh, 1, "9.9.9")
    assert mesh.node(1).flash.erases == 0


async def test_catalog_from_url(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    aioclient_mock: AiohttpClientMocker,
) -> None:
    """A catalog URL of the options: manifests and images come through HA's web session."""
    image = sim_ota.build_image("1.1.0", IMAGE_SIZE)
    aioclient_mock.get(
        "https://example.com/dc/catalog.json",
        json={
            "releases": [
                {
                    "format": 1,
                    "version": "1.1.0",
                    "role": "U",
                    "hardware": HARDWARE,
                    "size": len(image),
                    "sha256": hashlib.sha256(image).hexdigest(),
                    "image": "images/u-1.1.0.bin",
                }
            ]
        },
    )
    aioclient_mock.get("https://example.com/dc/images/u-1.1.0.bin", content=image)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"DC Mesh {mesh_unique_id(mesh)}",
        unique_id=mesh_unique_id(mesh),
        data=_entry_data(mesh),
        options={CONF_FIRMWARE_URL: "https://example.com/dc/catalog.json"},
    )
    await set_up(hass, entry)
    state = hass.states.get(entity_id(hass, mesh, 3))
    assert state is not None
    assert state.attributes[ATTR_LATEST_VERSION] == "1.1.0"

    await install(hass, mesh, 3)
    assert mesh.node(3).firmware == "1.1.0"


async def test_catalog_url_down_is_logged_and_install_refused(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    aioclient_mock: AiohttpClientMocker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unreachable catalog: a warning, the entity shows the installed version."""
    aioclient_mock.get("https://example.com/dc/catalog.json", status=503)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"DC Mesh {mesh_unique_id(mesh)}",
        unique_id=mesh_unique_id(mesh),
        data=_entry_data(mesh),
        options={CONF_FIRMWARE_URL: "https://example.com/dc/catalog.json"},
    )
    await set_up(hass, entry)
    assert "catalog.json: cannot download it" in caplog.text
    state = hass.states.get(entity_id(hass, mesh, 3))
    assert state is not None
    assert state.state == STATE_OFF
    assert state.attributes[ATTR_LATEST_VERSION] == "1.0.0"
    with pytest.raises(HomeAssistantError, match="No firmware release"):
        await install(hass, mesh, 3, "1.1.0")


async def test_unload_mid_update_leaves_nothing_in_progress_and_resumes(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
) -> None:
    """Like a restart of HA mid-transfer: nothing stays in progress; the next install resumes."""
    image = add_release(firmware_dir, "1.1.0", size=IMAGE_SIZE * 20)
    await set_up(hass, config_entry)
    node = mesh.node(4)
    task = hass.async_create_task(install(hass, mesh, 4))
    await wait_for(lambda: node.flash.written >= IMAGE_SIZE)
    await hass.config_entries.async_unload(config_entry.entry_id)
    with pytest.raises(BaseException):  # noqa: B017, PT011 - cancelled with the entry
        await task
    assert node.firmware == "1.0.0"
    written = node.flash.written

    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    nodes = config_entry.runtime_data.data.nodes
    await wait_for(lambda: 4 in nodes and nodes[4].info is not None)
    state = hass.states.get(entity_id(hass, mesh, 4))
    assert state is not None
    assert state.attributes[ATTR_IN_PROGRESS] is False
    await install(hass, mesh, 4)
    assert node.firmware == "1.1.0"
    assert node.flash.holds(image)
    assert node.flash.erases == 1  # resumed: never erased (restarted) again
    assert written > 0


async def test_cancelled_rollout_keeps_firmware(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
) -> None:
    """Cancel: the node being updated aborts its transfer; the rest are not started."""
    add_release(firmware_dir, "1.1.0")
    await set_up(hass, config_entry)
    with pytest.raises(ServiceValidationError, match="No firmware rollout"):
        await hass.services.async_call(
            DOMAIN,
            "cancel_firmware_update",
            {"config_entry_id": config_entry.entry_id},
            blocking=True,
        )
    await hass.services.async_call(
        DOMAIN,
        "update_mesh_firmware",
        {"config_entry_id": config_entry.entry_id},
        blocking=True,
        return_response=True,
    )
    await wait_for(lambda: mesh.node(1).flash.written > 1000)
    with pytest.raises(HomeAssistantError, match="already running"):
        await install(hass, mesh, 2)
    await hass.services.async_call(
        DOMAIN,
        "cancel_firmware_update",
        {"config_entry_id": config_entry.entry_id},
        blocking=True,
    )
    # (HA does not wait for a task being cancelled: wait for the abort to end)
    await wait_for(lambda: not config_entry.runtime_data.updater.progress)
    assert {mesh.node(n).firmware for n in range(NODES)} == {"1.0.0"}
    assert mesh.node(1).ota is not None
    assert mesh.node(1).ota.state is sim_ota.State.IDLE  # aborted, not left open
    for n in (0, 2, 3, 4):
        assert mesh.node(n).flash.erases == 0
    state = hass.states.get(entity_id(hass, mesh, 1))
    assert state is not None
    assert state.attributes[ATTR_IN_PROGRESS] is False


@pytest.mark.parametrize("profile", [Profile.V07])
async def test_legacy_nodes_show_legacy_firmware_and_a_repair(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
) -> None:
    """v0.7: no install button, the newest release shown, a repair issue explains USB."""
    add_release(firmware_dir, "1.1.0")
    await set_up(hass, config_entry)
    state = hass.states.get(entity_id(hass, mesh, 1))
    assert state is not None
    assert state.attributes[ATTR_INSTALLED_VERSION] == "0.7.0"
    assert state.attributes[ATTR_LATEST_VERSION] == "1.1.0"
    features = UpdateEntityFeature(state.attributes[ATTR_SUPPORTED_FEATURES])
    assert UpdateEntityFeature.INSTALL not in features
    assert "USB" in state.attributes[ATTR_RELEASE_SUMMARY]
    assert ir.async_get(hass).async_get_issue(
        DOMAIN, f"legacy_firmware_{config_entry.entry_id}"
    )
    with pytest.raises(HomeAssistantError):
        await install(hass, mesh, 1)


def _entry_data(mesh: Mesh) -> dict[str, str]:
    from .conftest import entry_data

    return entry_data(mesh)


async def test_signed_release_installs_and_a_forged_one_is_never_sent(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
) -> None:
    """The signature is checked against the key the manifest names before sending."""
    image = add_release(firmware_dir, "1.1.0", signed=True)
    forged = bytearray(add_release(firmware_dir, "1.2.0", signed=True))
    forged[IMAGE_SIZE - 1] ^= 0x01  # one bit of the signed contents
    (firmware_dir / "dc_universal_node-1.2.0.bin").write_bytes(forged)
    manifest = json.loads((firmware_dir / "dc_universal_node-1.2.0.json").read_text())
    manifest["sha256"] = hashlib.sha256(forged).hexdigest()  # the manifest matches
    (firmware_dir / "dc_universal_node-1.2.0.json").write_text(json.dumps(manifest))
    await set_up(hass, config_entry)

    with pytest.raises(HomeAssistantError, match="failed its checks"):
        await install(hass, mesh, 1, "1.2.0")
    assert mesh.node(1).flash.erases == 0

    await install(hass, mesh, 1, "1.1.0")
    assert mesh.node(1).flash.holds(image)
    assert mesh.node(1).firmware == "1.1.0"


async def test_pinned_release_key_refuses_other_keys(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
) -> None:
    """With the release key pinned in the options, an image signed by another key is refused."""
    add_release(firmware_dir, "1.1.0", signed=True)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"DC Mesh {mesh_unique_id(mesh)}",
        unique_id=mesh_unique_id(mesh),
        data=_entry_data(mesh),
        options={CONF_FIRMWARE_KEY: "ab" * 32},
    )
    await set_up(hass, entry)
    with pytest.raises(HomeAssistantError, match="failed its checks"):
        await install(hass, mesh, 2)
    assert mesh.node(2).flash.erases == 0


def test_logbook_describes_updates(hass: HomeAssistant) -> None:
    """The node's logbook says which version it went to, or why it failed."""
    from custom_components.dc_mesh.logbook import async_describe_events

    described: dict[str, Any] = {}
    async_describe_events(
        hass, lambda domain, event, describe: described.update({event: describe})
    )
    data = {"device_id": "d", "name": "Pump", "node_id": 1, "from_version": "1.0.0"}
    installed = Event(EVENT_FIRMWARE_UPDATE, data | {"version": "1.1.0", "error": None})
    failed = Event(
        EVENT_FIRMWARE_UPDATE, data | {"version": "1.2.0", "error": "it rolled back"}
    )
    assert described[EVENT_FIRMWARE_UPDATE](installed) == {
        "name": "Pump",
        "message": "firmware updated from 1.0.0 to 1.1.0",
    }
    assert described[EVENT_FIRMWARE_UPDATE](failed) == {
        "name": "Pump",
        "message": "firmware update to 1.2.0 failed: it rolled back",
    }


async def test_rollout_never_downgrades_unless_asked(
    hass: HomeAssistant,
    mesh: Mesh,
    firmware_dir: Path,
    config_entry: MockConfigEntry,
) -> None:
    """The newest release goes to older nodes only; a version named goes to all others."""
    add_release(firmware_dir, "1.1.0")
    for n in range(NODES):
        mesh.node(n).firmware = "1.2.0" if n != 3 else "1.0.0"
    await set_up(hass, config_entry)

    response = await hass.services.async_call(
        DOMAIN,
        "update_mesh_firmware",
        {"config_entry_id": config_entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert response == {"phases": [[3]]}
    await hass.async_block_till_done(wait_background_tasks=True)
    assert mesh.node(3).firmware == "1.1.0"
    with pytest.raises(HomeAssistantError, match="already runs that firmware"):
        await hass.services.async_call(
            DOMAIN,
            "update_mesh_firmware",
            {"config_entry_id": config_entry.entry_id},
            blocking=True,
            return_response=True,
        )
    response = await hass.services.async_call(
        DOMAIN,
        "update_mesh_firmware",
        {"config_entry_id": config_entry.entry_id, "version": "1.1.0"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert sorted(n for phase in response["phases"] for n in phase) == [0, 1, 2, 4]
    await hass.async_block_till_done(wait_background_tasks=True)
    assert {mesh.node(n).firmware for n in range(NODES)} == {"1.1.0"}
