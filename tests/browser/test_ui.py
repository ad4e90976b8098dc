"""A user's first minutes, in Chromium: log in, add the discovered mesh, drive a load.

Home Assistant's frontend is web components in shadow roots: elements are found by a
script that walks every shadow root (`_DEEP`), and typed into or clicked through
WebDriver. The checks read Home Assistant's REST API, as the frontend's own state does.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import re
import time
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
import yaml

from .conftest import HomeAssistant

# Every element matching a CSS selector, in the document and in every shadow root.
# `text(node)`: its text, shadow roots included.
_DEEP = """
const deep = (selector, root = document) => {
  const found = [];
  const walk = (node) => {
    for (const element of node.querySelectorAll('*')) {
      if (element.matches(selector)) found.push(element);
      if (element.shadowRoot) walk(element.shadowRoot);
    }
  };
  walk(root.shadowRoot || root);
  return found;
};
const text = (node) => {
  let result = '';
  for (const child of node.childNodes) {
    result += child.nodeType === Node.TEXT_NODE ? child.textContent : text(child);
  }
  return node.shadowRoot ? result + text(node.shadowRoot) : result;
};
"""
# How long the frontend may take to show what a step waits for ("Loading..." beyond it fails).
UI_TIMEOUT = 20.0
DUTY = 40
# The simulated load: 12 V supply into 24 ohm (+0.1 ohm source): P = duty * V^2 / R.
WATTS_AT_FULL_DUTY = 12.0 * 12.0 / 24.1


def _until(what: str, check: Callable[[], Any], timeout: float = UI_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return result


def _deep(browser: WebDriver, script: str, *args: Any) -> Any:
    return browser.execute_script(_DEEP + script, *args)


def _button(browser: WebDriver, label: str) -> WebElement | None:
    """A visible button of the page or of a dialog, by its label."""
    element: WebElement | None = _deep(
        browser,
        "return deep('ha-button, mwc-button, button').find("
        "b => b.textContent.trim() === arguments[0] && b.getClientRects().length > 0"
        ") || null;",
        label,
    )
    return element


def _click(browser: WebDriver, label: str) -> None:
    _until(f"a button {label!r}", lambda: _button(browser, label)).click()


def _toasts(browser: WebDriver) -> list[str]:
    """The texts of the toasts (snackbars) the frontend shows now: its error messages."""
    texts: list[str] = _deep(
        browser,
        "return deep('ha-toast').filter(t => t.open || t.hasAttribute('open'))"
        ".map(t => t.textContent.trim() || (t.labelText || ''));",
    )
    return texts


def test_add_mesh_and_set_a_duty_in_the_browser(
    home_assistant: HomeAssistant, browser: WebDriver
) -> None:
    ha = home_assistant
    # Log in through the login page.
    browser.get(ha.url)
    for name in ("username", "password"):
        field = _until(
            f"the login form's {name}",
            lambda name=name: _deep(
                browser, f"return deep('input[name={name}]')[0] || null;"
            ),
        )
        field.send_keys("dev")
    _click(browser, "Log in")
    _until(
        "the frontend after login",
        lambda: (
            "/auth/" not in browser.current_url
            and _deep(browser, "return deep('home-assistant-main').length > 0;")
        ),
    )

    # The mesh is discovered (through the simulated Bluetooth proxy): add it, with its key.
    browser.get(f"{ha.url}/config/integrations/dashboard")
    _until(
        "the discovered mesh's card",
        lambda: _deep(browser, "return deep('ha-config-flow-card').length === 1;"),
    )
    _click(browser, "Add")
    _click(browser, "Submit")  # "Set up DC Mesh 1a2b3c4d through node ...?"
    key_field = _until(
        "the mesh key field",
        lambda: _deep(browser, "return deep('input[name=mesh_key]')[0] || null;"),
    )
    key_field.send_keys(ha.mesh_key())
    _click(browser, "Submit")
    _click(browser, "Skip and finish")  # the devices keep their names, no area

    # Node 1's device page shows its entities, the Duty cycle slider among them.
    duty_entity = _until(
        "node 1's duty cycle entity",
        lambda: next(
            (
                state["entity_id"]
                for state in ha.api("GET", "/api/states")
                if state["entity_id"].startswith("number.dc_mesh_")
                and state["entity_id"].endswith("_node_1_duty_cycle")
                and state["state"] not in ("unavailable", "unknown")
            ),
            None,
        ),
        timeout=60,
    )
    power_entity = duty_entity.replace("number.", "sensor.").replace(
        "_duty_cycle", "_power"
    )
    device_id = ha.template(f"{{{{ device_id('{duty_entity}') }}}}")
    browser.get(f"{ha.url}/config/devices/device/{device_id}")
    slider = _until(
        "the Duty cycle slider on the device page",
        lambda: _deep(
            browser,
            "const row = deep('hui-number-entity-row')"
            ".find(r => text(r).includes('Duty cycle'));"
            "return row ? deep('ha-slider', row)[0] || null : null;",
        ),
    )
    page = _deep(browser, "return text(document.body);")
    for entity in ("Voltage", "Current", "Power", "Energy", "Run duty ramp test"):
        assert entity in page, f"no {entity} on the device page"

    # Move the slider: the value the user lets go at is sent to the node.
    browser.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true, composed: true}));",
        slider,
        DUTY,
    )
    _until(
        f"duty {DUTY} % confirmed by the node",
        lambda: ha.state(duty_entity)["state"] == str(DUTY),
        timeout=30,
    )
    # The simulated node draws the power of that duty (its next reading shows it).
    expected = WATTS_AT_FULL_DUTY * DUTY / 100
    _until(
        f"node 1's power near {expected:.2f} W",
        lambda: abs(float(ha.state(power_entity)["state"]) - expected) < 0.3,
        timeout=30,
    )
    assert _toasts(browser) == []

    # `scripts/screenshots`: the pictures of the README, taken from this running product.
    if shots := os.environ.get("DC_MESH_SCREENSHOTS"):
        _screenshots(browser, ha, Path(shots), device_id)


def _screenshots(
    browser: WebDriver, ha: HomeAssistant, folder: Path, device_id: str
) -> None:
    """The device page, and the README's dashboard created through the frontend's API."""
    folder.mkdir(parents=True, exist_ok=True)
    time.sleep(2)  # the slider's and the power sensor's new values settle on the page
    browser.save_screenshot(str(folder / "device-page.png"))
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"## Dashboard.*?```yaml\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "the README has no dashboard YAML"
    mesh_id = ha.template(
        "{{ states.sensor | map(attribute='entity_id') | select('search', '_total_power') | first }}"
    )
    config = yaml.safe_load(block.group(1).replace("1a2b3c4d", mesh_id.split("_")[2]))
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const hass = document.querySelector('home-assistant').hass;"
        "hass.callWS({type: 'lovelace/dashboards/create', url_path: 'dc-loads',"
        " title: 'DC loads', mode: 'storage', show_in_sidebar: true})"
        ".catch(() => null)"
        ".then(() => hass.callWS({type: 'lovelace/config/save', url_path: 'dc-loads',"
        " config: arguments[0]}))"
        ".then(() => done(true), (error) => done(String(error)));",
        config,
    )
    browser.get(f"{ha.url}/dc-loads/0")
    _until(
        "the dashboard's cards",
        lambda: _deep(browser, "return deep('hui-gauge-card').length > 0;"),
    )
    time.sleep(3)  # charts draw
    browser.save_screenshot(str(folder / "dashboard.png"))
