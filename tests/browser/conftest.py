"""Home Assistant as `scripts/develop` starts it (simulated mesh, owner dev / dev), and Chromium.

Home Assistant runs in its own process with a fresh config directory on a free port of
127.0.0.1; `scripts/onboard.py` creates the owner as it does for `scripts/develop`. The
browser is Debian's headless Chromium behind Debian's chromedriver (nothing is downloaded).
Sockets stay on 127.0.0.1 (`socket_enabled`; the test plugin allows no other host).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import json
import os
from pathlib import Path
import re
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

from homeassistant.components.http.config import HTTP_STORAGE_SCHEMA
import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options

ROOT = Path(__file__).parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CLIENT_ID = "http://localhost:8123/"  # scripts/onboard.py's
STARTUP_TIMEOUT = 90.0


@dataclass(frozen=True)
class HomeAssistant:
    """A running Home Assistant: its URL, an owner's access token, its log."""

    url: str
    token: str
    log: Path

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        """Call the REST API as the owner."""
        response = requests.request(
            method,
            f"{self.url}{path}",
            json=payload,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def template(self, template: str) -> str:
        """A template rendered by Home Assistant."""
        response = requests.post(
            f"{self.url}/api/template",
            json={"template": template},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.text

    def state(self, entity_id: str) -> dict[str, Any]:
        """An entity's state object."""
        result: dict[str, Any] = self.api("GET", f"/api/states/{entity_id}")
        return result

    def mesh_key(self) -> str:
        """The simulated mesh's key, as the dc_mesh_sim component logs it."""
        match = re.search(r"mesh key ([0-9a-f-]{39})", self.log.read_text())
        assert match, "dc_mesh_sim logged no mesh key"
        return match.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.25)


def _login_token(url: str) -> str:
    """An access token of the owner dev / dev, through the login flow's API."""

    def post(path: str, payload: dict[str, Any]) -> Any:
        response = requests.post(f"{url}{path}", json=payload, timeout=30)
        response.raise_for_status()
        return response.json()

    flow = post(
        "/auth/login_flow",
        {
            "client_id": CLIENT_ID,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{CLIENT_ID}?auth_callback=1",
        },
    )
    result = post(
        f"/auth/login_flow/{flow['flow_id']}",
        {"client_id": CLIENT_ID, "username": "dev", "password": "dev"},
    )
    response = requests.post(
        f"{url}/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": result["result"],
            "client_id": CLIENT_ID,
        },
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture
def home_assistant(
    socket_enabled: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HomeAssistant]:
    """Home Assistant with dc_mesh on a simulated v1 mesh, onboarded (dev / dev)."""
    config = tmp_path_factory.mktemp("config")
    (config / "custom_components").mkdir()
    for name, source in (
        ("dc_mesh", ROOT / "custom_components" / "dc_mesh"),
        ("dc_mesh_sim", ROOT / "simulator" / "dev_component" / "dc_mesh_sim"),
    ):
        (config / "custom_components" / name).symlink_to(source)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # scripts/develop's configuration (less its debug logging)...
    (config / "configuration.yaml").write_text(
        "default_config:\nlogger:\n  default: warning\n"
        "dc_mesh_sim:\n  profile: v1\n  nodes: 5\n"
    )
    # ...on our own port of 127.0.0.1: HTTP settings live in storage (YAML would ask the
    # user in the UI to confirm them).
    (config / ".storage").mkdir()
    (config / ".storage" / "http").write_text(
        json.dumps(
            {
                "version": 2,
                "minor_version": 2,
                "key": "http",
                "data": {
                    "stable": HTTP_STORAGE_SCHEMA(
                        {"server_host": ["127.0.0.1"], "server_port": port}
                    ),
                    "pending": None,
                    "yaml_migration_done": True,
                },
            }
        )
    )
    log = config / "hass.log"
    with log.open("wb") as output:
        hass = subprocess.Popen(  # noqa: S603 (our own command line)
            # `hass` as scripts/develop runs it (`python -m` would put the checkout's own
            # custom_components package first on the path).
            [str(Path(sys.executable).parent / "hass"), "-c", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        subprocess.run(  # noqa: S603
            [sys.executable, str(ROOT / "scripts" / "onboard.py"), url],
            check=True,
            timeout=STARTUP_TIMEOUT,
        )
        token = _login_token(url)
        yield HomeAssistant(url, token, log)
    finally:
        hass.terminate()
        try:
            hass.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hass.kill()
            hass.wait()
        if os.environ.get("DC_MESH_KEEP_BROWSER_LOG"):
            shutil.copy(log, ROOT / "hass-browser-test.log")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """Tell the browser fixture whether its test failed (it then keeps a screenshot)."""
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def browser(
    socket_enabled: None, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[webdriver.Remote]:
    """Headless Chromium through chromedriver, both Debian's.

    After a failure, the page as it was is saved as failure.png in the test's tmp_path.
    """
    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).exists(), (
            f"{path} is missing: install Debian's chromium and chromium-driver "
            "(scripts/bootstrap does)"
        )
    port = _free_port()
    driver_process = subprocess.Popen(  # noqa: S603
        [CHROMEDRIVER, f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def driver_up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/status", timeout=2).ok
        except requests.ConnectionError:
            return False

    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a chroot: no user namespaces for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    try:
        _wait(driver_up, 20, "chromedriver to answer")
        driver = webdriver.Remote(
            command_executor=f"http://127.0.0.1:{port}", options=options
        )
        try:
            yield driver
            if request.node.stash.get(FAILED, False):
                driver.save_screenshot(str(tmp_path / "failure.png"))
                sys.stderr.write(f"screenshot of the failure: {tmp_path}/failure.png\n")
        finally:
            driver.quit()
    finally:
        driver_process.terminate()
        driver_process.wait(timeout=10)
