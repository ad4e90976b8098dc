"""Our own checks of the hassfest and HACS rules for manifest.json, hacs.json and translations."""

from __future__ import annotations

import json
from pathlib import Path
import re

from homeassistant.const import __version__ as ha_version
import yaml

ROOT = Path(__file__).parents[3]
INTEGRATION = ROOT / "custom_components" / "dc_mesh"


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_manifest_follows_hassfest() -> None:
    manifest = _json(INTEGRATION / "manifest.json")
    keys = list(manifest)
    # hassfest: domain and name first, the rest sorted.
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["domain"] == "dc_mesh"
    for key in ("codeowners", "documentation", "issue_tracker", "version", "iot_class"):
        assert manifest[key], key
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert manifest["config_flow"] is True
    assert manifest["integration_type"] == "hub"
    assert manifest["iot_class"] in {"local_polling", "local_push"}
    assert manifest["dependencies"] == ["bluetooth_adapters"]
    # MQTT publishing uses HA's MQTT integration when it is there (no hard dependency)
    assert manifest["after_dependencies"] == ["mqtt"]
    assert {"local_name": "DC-Monitor*"} in manifest["bluetooth"]
    uuids = [m["service_uuid"] for m in manifest["bluetooth"] if "service_uuid" in m]
    assert uuids == ["0000dc01-0000-1000-8000-00805f9b34fb"]
    assert all(uuid == uuid.lower() for uuid in uuids)
    assert manifest["documentation"].startswith("https://")


def test_hacs_json() -> None:
    hacs = _json(ROOT / "hacs.json")
    assert set(hacs) <= {
        "name",
        "homeassistant",
        "render_readme",
        "hide_default_branch",
        "country",
    }
    assert hacs["name"]
    # The minimum Home Assistant version is the one the tests run against.
    assert hacs["homeassistant"] == ha_version
    assert (ROOT / "README.md").is_file()
    # HACS: exactly one integration under custom_components/.
    integrations = [
        p
        for p in (ROOT / "custom_components").iterdir()
        if (p / "manifest.json").exists()
    ]
    assert integrations == [INTEGRATION]


def test_english_translation_matches_strings() -> None:
    strings = _json(INTEGRATION / "strings.json")
    english = _json(INTEGRATION / "translations" / "en.json")

    def shape(node: object) -> object:
        return (
            {k: shape(v) for k, v in node.items()} if isinstance(node, dict) else None
        )

    assert shape(strings) == shape(english)


def test_icons_and_services_are_translated() -> None:
    strings = _json(INTEGRATION / "strings.json")
    icons = _json(INTEGRATION / "icons.json")
    for platform, keys in icons["entity"].items():
        assert set(keys) <= set(strings["entity"][platform]), platform
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text())
    assert set(services) == set(strings["services"]) == set(icons["services"])
    for name, service in services.items():
        assert set(service["fields"]) == set(strings["services"][name]["fields"])


def test_quality_scale_lists_every_rule() -> None:
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]
    for status in rules.values():
        value = status if isinstance(status, str) else status["status"]
        assert value in {"done", "todo", "exempt"}
        if isinstance(status, dict) and value != "done":
            assert status["comment"]
    assert len(rules) >= 52


def test_every_translation_key_in_code_is_translated() -> None:
    strings = _json(INTEGRATION / "strings.json")
    known = (
        set(strings["exceptions"])
        | set(strings["issues"])
        | {key for platform in strings["entity"].values() for key in platform}
        | set(strings["device"])
    )
    used = set()
    for path in INTEGRATION.glob("*.py"):
        used |= set(re.findall(r'translation_key\s*=\s*"([a-z_]+)"', path.read_text()))
    assert used
    assert used <= known, used - known
