"""Device automations and blueprints, through Home Assistant's automation engine and the simulator."""

from __future__ import annotations

from datetime import timedelta
import logging
from pathlib import Path
import shutil
from typing import Any

from freezegun.api import TickingDateTimeFactory
from homeassistant.components import automation
from homeassistant.components.blueprint import models as blueprint_models
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.components.device_automation.exceptions import (
    InvalidDeviceAutomationConfig,
)
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.dc_mesh import device_action
from custom_components.dc_mesh.const import DEFAULT_STALE_TIMEOUT, DOMAIN
from simulator.mesh import Mesh

from . import advance, wait_for
from .conftest import mesh_unique_id

BLUEPRINTS = Path(__file__).parents[3] / "blueprints" / "automation" / "dc_mesh"
RELAY = 4  # conftest's mesh: nodes 0-3 drive loads, node 4 is a relay


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, suffix: str = "") -> str:
    """The hub device (no suffix) or a node's ("_<node id>")."""
    identifier = (DOMAIN, f"{entry.unique_id}{suffix}")
    device = dr.async_get(hass).async_get_device_by_identifier(
        identifier, entry.entry_id
    )
    assert device is not None, identifier
    return device.id


def _entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    return entity_id


async def _automation(
    hass: HomeAssistant, *configs: dict[str, Any]
) -> list[ServiceCall]:
    """Set up automations whose actions may call test.automation; return those calls."""
    calls = async_mock_service(hass, "test", "automation")
    assert await async_setup_component(
        hass, automation.DOMAIN, {automation.DOMAIN: list(configs)}
    )
    await hass.async_block_till_done()
    return calls


def _record(what: str) -> dict[str, Any]:
    return {"action": "test.automation", "data": {"what": what}}


def _device(kind: str, device_id: str, type_: str, **extra: Any) -> dict[str, Any]:
    key = {"trigger": "trigger", "condition": "condition", "platform": "platform"}.get(
        kind
    )
    base = {key: "device"} if key else {}
    return base | {"domain": DOMAIN, "device_id": device_id, "type": type_} | extra


async def _set_duty(
    hass: HomeAssistant, entry: MockConfigEntry, node: int, duty: int
) -> None:
    await entry.runtime_data.async_set_duty(node, duty)
    await hass.async_block_till_done()


async def _until_offline(
    hass: HomeAssistant, freezer: TickingDateTimeFactory, mesh: Mesh, node: int
) -> None:
    """Let polls pass until the powered-off node's entities are unavailable."""
    power = _entity_id(hass, "sensor", f"{mesh_unique_id(mesh)}_{node}_power")
    await advance(hass, freezer, DEFAULT_STALE_TIMEOUT)
    for _ in range(10):
        await advance(hass, freezer, 10)
        if hass.states.get(power).state == STATE_UNAVAILABLE:
            return
    raise AssertionError(f"node {node} never went unavailable")


# ----------------------------------------------------------------------------- lists


async def test_automations_of_each_device(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    def types(kind: DeviceAutomationType, device_id: str) -> set[str]:
        return {
            item["type"]
            for item in automations[kind][device_id]
            if item["domain"] == DOMAIN
        }

    node = _device_id(hass, loaded_entry, "_1")
    relay = _device_id(hass, loaded_entry, f"_{RELAY}")
    hub = _device_id(hass, loaded_entry)
    automations = {
        kind: await async_get_device_automations(hass, kind, [node, relay, hub])
        for kind in DeviceAutomationType
    }
    assert types(DeviceAutomationType.ACTION, node) == {"set_duty", "ramp", "stop"}
    assert types(DeviceAutomationType.CONDITION, node) == {
        "is_power_above",
        "is_power_below",
        "is_available",
    }
    assert types(DeviceAutomationType.TRIGGER, node) == {
        "power_above",
        "power_below",
        "went_offline",
    }
    # A relay has no load: it can only be offline.
    assert types(DeviceAutomationType.ACTION, relay) == set()
    assert types(DeviceAutomationType.CONDITION, relay) == {"is_available"}
    assert types(DeviceAutomationType.TRIGGER, relay) == {"went_offline"}
    # The mesh's hub device: its failovers.
    assert types(DeviceAutomationType.ACTION, hub) == set()
    assert types(DeviceAutomationType.CONDITION, hub) == set()
    assert types(DeviceAutomationType.TRIGGER, hub) == {"failover", "gateway_changed"}


async def test_capabilities(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """What the automation editor shows: the fields, with their selectors and units."""
    assert await async_setup_component(hass, "device_automation", {})
    node = _device_id(hass, loaded_entry, "_1")
    client = await hass_ws_client(hass)

    async def fields(kind: str, config: dict[str, Any]) -> list[dict[str, Any]]:
        await client.send_json_auto_id(
            {"type": f"device_automation/{kind}/capabilities", kind: config}
        )
        message = await client.receive_json()
        assert message["success"], message
        return message["result"].get("extra_fields", [])

    duty = await fields("action", _device("action", node, "set_duty"))
    assert duty == [
        {
            "name": "duty",
            "required": True,
            "selector": {
                "number": {
                    "min": 0.0,
                    "max": 100.0,
                    "step": 1.0,
                    "unit_of_measurement": "%",
                    "mode": "slider",
                }
            },
        }
    ]
    assert await fields("action", _device("action", node, "ramp")) == []
    above = await fields("trigger", _device("trigger", node, "power_above"))
    assert [(f["name"], f["required"]) for f in above] == [
        ("above", True),
        ("for", False),
    ]
    assert above[0]["selector"]["number"]["unit_of_measurement"] == "W"
    assert "duration" in above[1]["selector"]
    offline = await fields("trigger", _device("trigger", node, "went_offline"))
    assert [f["name"] for f in offline] == ["for"]
    hub = _device_id(hass, loaded_entry)
    assert await fields("trigger", _device("trigger", hub, "failover")) == []
    below = await fields("condition", _device("condition", node, "is_power_below"))
    assert [(f["name"], f["required"]) for f in below] == [("below", True)]
    assert below[0]["selector"]["number"]["unit_of_measurement"] == "W"
    assert await fields("condition", _device("condition", node, "is_available")) == []


# ----------------------------------------------------------------------------- actions


async def test_actions_drive_the_node(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    node = _device_id(hass, loaded_entry, "_2")
    duty_entity = _entity_id(hass, "number", f"{mesh_unique_id(mesh)}_2_duty_setting")
    await _automation(
        hass,
        {
            "triggers": {"trigger": "event", "event_type": "set"},
            "actions": _device("action", node, "set_duty", duty=35),
        },
        {
            "triggers": {"trigger": "event", "event_type": "ramp"},
            "actions": _device("action", node, "ramp"),
        },
        {
            "triggers": {"trigger": "event", "event_type": "stop"},
            "actions": _device("action", node, "stop"),
        },
    )
    hass.bus.async_fire("set")
    await wait_for(lambda: mesh.node(2).duty == 35)
    await wait_for(lambda: hass.states.get(duty_entity).state == "35")

    sent = len(mesh.radio_log)
    hass.bus.async_fire("ramp")
    # The ramp test starts at 0 % and climbs (the simulated ramp steps in milliseconds).
    await wait_for(
        lambda: any(
            payload == "r" and destination == mesh.node(2).address
            for _, destination, payload in list(mesh.radio_log)[sent:]
        )
    )

    await _set_duty(hass, loaded_entry, 2, 80)
    coordinator = loaded_entry.runtime_data
    await coordinator.balancer_control.async_set_enabled(True)
    hass.bus.async_fire("stop")
    await wait_for(lambda: mesh.node(2).duty == 0)
    await wait_for(lambda: hass.states.get(duty_entity).state == "0")
    # Stop is the user's duty now: the balancer never turns the load back on.
    assert coordinator.balancer.ceilings[2] == 0


async def test_action_config_is_checked(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    node = _device_id(hass, loaded_entry, "_1")
    with pytest.raises(vol.Invalid):
        await device_action.async_validate_action_config(
            hass, _device("action", node, "set_duty", duty=101)
        )
    with pytest.raises(vol.Invalid):
        await device_action.async_validate_action_config(
            hass, _device("action", node, "set_duty")
        )
    for device in (
        _device_id(hass, loaded_entry),
        _device_id(hass, loaded_entry, f"_{RELAY}"),
    ):
        with pytest.raises(InvalidDeviceAutomationConfig):
            await device_action.async_validate_action_config(
                hass, _device("action", device, "ramp")
            )


async def test_action_errors_are_translated(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    node = _device_id(hass, loaded_entry, "_1")
    config = await device_action.async_validate_action_config(
        hass, _device("action", node, "set_duty", duty=20)
    )
    # The mesh is unreachable: the coordinator's own translated error.
    for node_id in range(5):
        mesh.power_off(node_id)
    await wait_for(lambda: not loaded_entry.runtime_data.data.connected)
    with pytest.raises(HomeAssistantError) as err:
        await device_action.async_call_action_from_config(hass, config, {}, None)
    assert err.value.translation_key == "not_connected"
    # The mesh is not set up at all.
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(HomeAssistantError) as err:
        await device_action.async_call_action_from_config(hass, config, {}, None)
    assert err.value.translation_key == "node_not_loaded"
    assert err.value.translation_placeholders == {
        "device": f"{loaded_entry.title} node 1"
    }


# ----------------------------------------------------------------------------- conditions


async def test_power_conditions(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    node = _device_id(hass, loaded_entry, "_1")
    calls = await _automation(
        hass,
        *(
            {
                "triggers": {"trigger": "event", "event_type": "check"},
                "conditions": _device("condition", node, type_, **{field: 3.0}),
                "actions": _record(type_),
            }
            for type_, field in (
                ("is_power_above", "above"),
                ("is_power_below", "below"),
            )
        ),
    )

    async def check() -> set[str]:
        calls.clear()
        hass.bus.async_fire("check")
        await hass.async_block_till_done()
        return {call.data["what"] for call in calls}

    # 12 V into 24 ohm: about 6 W at 100 %, 1.5 W at 25 %.
    await _set_duty(hass, loaded_entry, 1, 100)
    assert await check() == {"is_power_above"}
    await _set_duty(hass, loaded_entry, 1, 25)
    assert await check() == {"is_power_below"}
    # Thresholds stay in W when the sensor is shown in mW.
    power = _entity_id(hass, "sensor", f"{mesh_unique_id(mesh)}_1_power")
    er.async_get(hass).async_update_entity_options(
        power, "sensor", {"unit_of_measurement": "mW"}
    )
    await _set_duty(hass, loaded_entry, 1, 100)
    assert hass.states.get(power).attributes["unit_of_measurement"] == "mW"
    assert float(hass.states.get(power).state) > 5000
    assert await check() == {"is_power_above"}


async def test_available_condition(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    calls = await _automation(
        hass,
        *(
            {
                "triggers": {"trigger": "event", "event_type": "check"},
                "conditions": _device(
                    "condition",
                    _device_id(hass, loaded_entry, f"_{node}"),
                    "is_available",
                ),
                "actions": _record(str(node)),
            }
            for node in (2, RELAY)
        ),
    )
    hass.bus.async_fire("check")
    await hass.async_block_till_done()
    assert {call.data["what"] for call in calls} == {"2", str(RELAY)}

    mesh.power_off(2)
    await _until_offline(hass, freezer, mesh, 2)
    calls.clear()
    hass.bus.async_fire("check")
    await hass.async_block_till_done()
    assert {call.data["what"] for call in calls} == {str(RELAY)}


# ----------------------------------------------------------------------------- triggers


async def test_power_triggers(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    node = _device_id(hass, loaded_entry, "_3")
    await _set_duty(hass, loaded_entry, 3, 50)  # about 3 W
    calls = await _automation(
        hass,
        {
            "triggers": _device("trigger", node, "power_above", above=4.5),
            "actions": {
                "action": "test.automation",
                "data": {"what": "above {{ trigger.to_state.state }}"},
            },
        },
        {
            "triggers": _device("trigger", node, "power_below", below=2),
            "actions": _record("below"),
        },
    )
    await _set_duty(hass, loaded_entry, 3, 90)
    assert len(calls) == 1
    assert calls[0].data["what"].startswith("above 5.")
    await _set_duty(hass, loaded_entry, 3, 100)  # still above: crossed once
    assert len(calls) == 1
    await _set_duty(hass, loaded_entry, 3, 20)
    assert [call.data["what"] for call in calls[1:]] == ["below"]


async def test_went_offline_trigger(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    freezer: TickingDateTimeFactory,
) -> None:
    calls = await _automation(
        hass,
        {
            "triggers": _device(
                "trigger", _device_id(hass, loaded_entry, "_2"), "went_offline"
            ),
            "actions": _record("at once"),
        },
        {
            "triggers": _device(
                "trigger",
                _device_id(hass, loaded_entry, "_2"),
                "went_offline",
                **{"for": {"minutes": 2}},
            ),
            "actions": _record("for 2 minutes"),
        },
    )
    mesh.power_off(2)
    await _until_offline(hass, freezer, mesh, 2)
    assert [call.data["what"] for call in calls] == ["at once"]
    await advance(hass, freezer, 60)
    assert len(calls) == 1
    await advance(hass, freezer, 61)
    assert [call.data["what"] for call in calls] == ["at once", "for 2 minutes"]


async def test_failover_and_gateway_triggers(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    hub = _device_id(hass, loaded_entry)
    coordinator = loaded_entry.runtime_data
    calls = await _automation(
        hass,
        {
            "triggers": _device("trigger", hub, "failover"),
            "actions": {
                "action": "test.automation",
                "data": {"what": "failover {{ trigger.to_state.state }}"},
            },
        },
        {
            "triggers": _device("trigger", hub, "gateway_changed"),
            "actions": {
                "action": "test.automation",
                "data": {
                    "what": "gateway {{ trigger.from_state.state }} -> "
                    "{{ trigger.to_state.state }}"
                },
            },
        },
    )
    gateway = mesh.by_mac(coordinator.data.gateway_address)
    mesh.power_off(gateway.node_id)
    await wait_for(lambda: len(calls) == 2)
    new_gateway = coordinator.data.gateway_node_id
    assert new_gateway not in (None, gateway.node_id)
    assert sorted(call.data["what"] for call in calls) == [
        "failover 1",
        f"gateway {gateway.node_id} -> {new_gateway}",
    ]


async def test_trigger_config_is_checked(
    hass: HomeAssistant, mesh: Mesh, loaded_entry: MockConfigEntry
) -> None:
    from custom_components.dc_mesh import device_condition, device_trigger

    node = _device_id(hass, loaded_entry, "_1")
    hub = _device_id(hass, loaded_entry)
    with pytest.raises(vol.Invalid):  # no threshold
        await device_trigger.async_validate_trigger_config(
            hass, _device("platform", node, "power_above")
        )
    with pytest.raises(InvalidDeviceAutomationConfig):  # the hub has no power sensor
        await device_trigger.async_validate_trigger_config(
            hass, _device("platform", hub, "power_above", above=1)
        )
    with pytest.raises(InvalidDeviceAutomationConfig):
        await device_condition.async_validate_condition_config(
            hass, _device("condition", hub, "is_available")
        )


# ----------------------------------------------------------------------------- blueprints


@pytest.fixture
def blueprints(hass: HomeAssistant, tmp_path: Path) -> Path:
    """The repository's blueprints where Home Assistant looks for them, as imported."""
    hass.config.config_dir = str(tmp_path)
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints" / "automation" / "dc_mesh")
    return tmp_path


def test_blueprints_are_valid() -> None:
    """Every blueprint passes Home Assistant's automation blueprint schema."""
    paths = sorted(BLUEPRINTS.glob("*.yaml"))
    assert len(paths) == 3
    for path in paths:
        data = load_yaml(path)
        blueprint = blueprint_models.Blueprint(
            data,
            path=path.name,
            expected_domain=automation.DOMAIN,
            schema=automation.config.AUTOMATION_BLUEPRINT_SCHEMA,
        )
        url = blueprint.metadata["source_url"]
        assert url == (
            "https://github.com/dc-mesh/dc_mesh/blob/main/blueprints/automation/"
            f"dc_mesh/{path.name}"
        )


def _jump(hass: HomeAssistant, freezer: TickingDateTimeFactory, seconds: float) -> None:
    """Let `seconds` pass and run the timers due, without waiting for what they start."""
    freezer.move_to(freezer() + timedelta(seconds=seconds))
    async_fire_time_changed(hass)


def _use(blueprint: str, **inputs: Any) -> dict[str, Any]:
    return {"use_blueprint": {"path": f"dc_mesh/{blueprint}.yaml", "input": inputs}}


async def test_power_budget_blueprint(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    blueprints: Path,
    freezer: TickingDateTimeFactory,
) -> None:
    key = mesh_unique_id(mesh)
    budget = _entity_id(hass, "number", f"{key}_power_budget")
    balancing = _entity_id(hass, "switch", f"{key}_balancing")
    now = dt_util.now()
    await _automation(
        hass,
        {"alias": "budget"}
        | _use(
            "power_budget_by_time_of_day",
            budget=budget,
            balancing=balancing,
            day_start=(now - timedelta(hours=1)).strftime("%H:%M:%S"),
            day_budget=15,
            night_start=(now + timedelta(hours=1)).strftime("%H:%M:%S"),
            night_budget=4.5,
        ),
    )
    # What its start trigger does when Home Assistant starts: the budget of the window.
    await hass.services.async_call(
        automation.DOMAIN, "trigger", {"entity_id": "automation.budget"}, blocking=True
    )
    await hass.async_block_till_done()
    assert hass.states.get(budget).state == "15.0"
    assert hass.states.get(balancing).state == "on"
    assert loaded_entry.runtime_data.balancer.budget_mw == 15000

    await advance(hass, freezer, 3601)  # night starts
    assert hass.states.get(budget).state == "4.5"
    await advance(hass, freezer, 22 * 3600)  # day starts
    assert hass.states.get(budget).state == "15.0"


async def test_offline_notification_blueprint(
    hass: HomeAssistant,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    blueprints: Path,
    freezer: TickingDateTimeFactory,
) -> None:
    calls = await _automation(
        hass,
        _use(
            "node_offline_notification",
            node=_device_id(hass, loaded_entry, "_3"),
            minutes=3,
            actions=[
                {
                    "action": "test.automation",
                    "data": {"what": "{{ node_name }}, {{ minutes }} min"},
                }
            ],
        ),
        # With its default action: a persistent notification.
        _use("node_offline_notification", node=_device_id(hass, loaded_entry, "_3")),
    )
    notifications = async_mock_service(hass, "persistent_notification", "create")
    mesh.power_off(3)
    await _until_offline(hass, freezer, mesh, 3)
    await advance(hass, freezer, 2 * 60)
    assert calls == []
    await advance(hass, freezer, 61)
    assert [call.data["what"] for call in calls] == [
        f"{loaded_entry.title} node 3, 3 min"
    ]
    assert notifications == []
    await advance(hass, freezer, 2 * 60)
    assert [call.data["message"] for call in notifications] == [
        f"{loaded_entry.title} node 3 has not answered for 5 minutes."
    ]


async def test_soft_start_blueprint(
    hass: HomeAssistant,
    *,
    mesh: Mesh,
    loaded_entry: MockConfigEntry,
    blueprints: Path,
    freezer: TickingDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = mesh_unique_id(mesh)
    coordinator = loaded_entry.runtime_data
    connectivity = _entity_id(hass, "binary_sensor", f"{key}_connectivity")
    loads = [_entity_id(hass, "number", f"{key}_{n}_duty_setting") for n in (2, 0, 1)]
    caplog.set_level(logging.DEBUG, logger="homeassistant.components.automation")

    def delays() -> int:
        """The automation's delays begun so far (its timer is set when it logs the step)."""
        return sum("Executing step delay" in r.getMessage() for r in caplog.records)

    await _automation(
        hass,
        _use(
            "soft_start_after_power_cut",
            connectivity=connectivity,
            loads=loads,
            duty=70,
            stagger=10,
            min_outage=30,
        ),
    )
    seen: list[str] = []
    hass.bus.async_listen(
        "state_changed",
        lambda event: (
            seen.append(event.data["new_state"].state)
            if event.data["entity_id"] == connectivity
            else None
        ),
    )
    # A short loss of the link (failover) is not a power cut.
    gateway = mesh.by_mac(coordinator.data.gateway_address).node_id
    mesh.power_off(gateway)
    await wait_for(lambda: seen[-2:] == ["off", "on"])
    await hass.async_block_till_done()
    assert all(mesh.node(n).duty == 0 for n in range(4))
    mesh.power_on(gateway)

    # The site's power is cut for a minute: every node boots with its load off.
    for node_id in range(5):
        mesh.power_off(node_id)
    await wait_for(lambda: seen[-1] == "off")
    await advance(hass, freezer, 60)
    for node_id in range(5):
        mesh.power_on(node_id)
    await wait_for(lambda: hass.states.get(connectivity).state == "on", timeout=30)
    # One node after the other: the next one once its delay has passed.
    await wait_for(lambda: hass.states.get(loads[0]).state == "70")
    assert [mesh.node(n).duty for n in (2, 0, 1)] == [70, 0, 0]
    # (advance() would wait for the running automation, through its next delay; the clock
    # jumps once the delay runs: a jump before it would end nothing.)
    await wait_for(lambda: delays() == 1)
    _jump(hass, freezer, 10)
    await wait_for(lambda: hass.states.get(loads[1]).state == "70")
    assert [mesh.node(n).duty for n in (2, 0, 1)] == [70, 70, 0]
    await wait_for(lambda: delays() == 2)
    _jump(hass, freezer, 10)
    await wait_for(lambda: hass.states.get(loads[2]).state == "70")
    assert mesh.node(3).duty == 0  # not listed
