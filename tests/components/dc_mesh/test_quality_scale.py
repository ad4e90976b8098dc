"""quality_scale.yaml against the code: every rule marked done that a machine can check.

Each check is one rule of Home Assistant's Integration Quality Scale (the test id names it). It
runs when quality_scale.yaml says the rule is `done` and is skipped otherwise, so the yaml cannot
claim what the code contradicts. Rules that need judgement (docs wording, log levels, ...) have
no check here. `test_rule_is_listed` makes sure the yaml gives every rule of HA's scale a status.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
import importlib
import inspect
import json
from pathlib import Path
import re
import struct
import tomllib
from types import ModuleType
from typing import Any

from homeassistant.const import Platform
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity import Entity
import pytest
import yaml

ROOT = Path(__file__).parents[3]
INTEGRATION = ROOT / "custom_components" / "dc_mesh"
PACKAGE = "custom_components.dc_mesh"
DOMAIN = "dc_mesh"

# Home Assistant's rule set: ALL_RULES of script/hassfest/quality_scale.py in home-assistant/core
# (hassfest is not part of the homeassistant package, so this is a copy; add new rules here).
HA_RULES: dict[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}
ALL_RULES = [rule for rules in HA_RULES.values() for rule in rules]

# Entities whose key says they are about the link or the device, not the load: diagnostic.
DIAGNOSTIC_WORDS = (
    "firmware",
    "last_seen",
    "failover",
    "gateway",
    "rssi",
    "connectivity",
)
# Option or config fields that would let the user set the polling interval.
POLL_FIELDS = ("poll_interval", "scan_interval", "update_interval")
# Brand images (HA serves them from brand/ of a custom integration) and their sizes, as the
# home-assistant/brands repository requires them.
BRAND_IMAGES = {
    f"{dark}{kind}{hidpi}.png"
    for dark in ("", "dark_")
    for kind in ("icon", "logo")
    for hidpi in ("", "@2x")
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Home Assistant's exceptions by name, for names the module namespace cannot resolve.
HA_ERRORS = {
    "ConfigEntryAuthFailed",
    "ConfigEntryError",
    "ConfigEntryNotReady",
    "HomeAssistantError",
    "IntegrationError",
    "PlatformNotReady",
    "ServiceValidationError",
    "UpdateFailed",
}


# ----------------------------------------------------------------------------- inputs


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((INTEGRATION / name).read_text())
    return data


def _quality_scale() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load(
        (INTEGRATION / "quality_scale.yaml").read_text()
    )["rules"]
    return rules


def _status(rule: str) -> str | None:
    value = _quality_scale().get(rule)
    return value.get("status") if isinstance(value, dict) else value


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    """Every Python module of the integration (protocol library included)."""
    for path in sorted(INTEGRATION.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _tree(name: str) -> ast.Module:
    return ast.parse((INTEGRATION / name).read_text())


def _module_name(path: Path) -> str:
    relative = path.relative_to(INTEGRATION).with_suffix("")
    parts = [part for part in relative.parts if part != "__init__"]
    return ".".join([PACKAGE, *parts])


def _platform_modules() -> dict[str, ModuleType]:
    platforms = {platform.value for platform in Platform}
    return {
        path.stem: importlib.import_module(f"{PACKAGE}.{path.stem}")
        for path in sorted(INTEGRATION.glob("*.py"))
        if path.stem in platforms
    }


def _entity_classes() -> list[type[Entity]]:
    """The integration's own entity classes (base classes included)."""
    modules = [
        *_platform_modules().values(),
        importlib.import_module(f"{PACKAGE}.entity"),
    ]
    found: dict[str, type[Entity]] = {}
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Entity) and cls.__module__.startswith(PACKAGE):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(found.values())


@dataclass(frozen=True)
class _Described:
    platform: str
    where: str
    description: Any  # an EntityDescription (see _is_description)


def _is_description(value: object) -> bool:
    """An entity description, frozen or thawed.

    HA's FrozenOrThawed metaclass gives EntityDescription classes a parallel "thawed"
    hierarchy (homeassistant.util.frozen_dataclass_compat), so isinstance() misses them.
    """
    return any(cls.__name__ == "EntityDescription" for cls in type(value).__mro__)


def _descriptions() -> list[_Described]:
    """Every entity description of the platform modules (module level or on a class)."""
    found: dict[int, _Described] = {}

    def visit(platform: str, where: str, value: object) -> None:
        if _is_description(value):
            found.setdefault(id(value), _Described(platform, where, value))
        elif isinstance(value, (tuple, list, set, frozenset)):
            for item in value:
                visit(platform, where, item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(platform, where, item)

    for platform, module in _platform_modules().items():
        for name, value in vars(module).items():
            visit(platform, f"{module.__name__}.{name}", value)
            if inspect.isclass(value) and issubclass(value, Entity):
                visit(platform, name, value.__dict__.get("entity_description"))
    return list(found.values())


def _call_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _called(node: ast.AST) -> set[str]:
    """Names of everything called inside node (`a.b.c()` counts as `c`)."""
    return {
        name
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and (name := _call_name(call.func))
    }


def _constant_keywords(
    function: str, keyword: str
) -> Iterator[tuple[Path, ast.Call, object]]:
    """Each literal value passed as `keyword=` to a call of `function` in the integration."""
    for path, tree in _sources():
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and _call_name(call.func) == function:
                for kw in call.keywords:
                    if kw.arg == keyword and isinstance(kw.value, ast.Constant):
                        yield path, call, kw.value.value


def _readme() -> str:
    # Markdown emphasis and code marks out of the way: "*not* part" reads "not part".
    return re.sub(r"[*`]", "", (ROOT / "README.md").read_text()).lower()


def _headings() -> list[str]:
    return [
        line.lstrip("#").strip().lower()
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("#")
    ]


def _class_attr(cls: type, name: str) -> object:
    """An entity's class attribute `_attr_x`, as HA's CachedProperties stores it.

    The metaclass keeps the value in `__attr_x` and installs a property under `_attr_x`.
    """
    for base in cls.__mro__:
        if f"_{name}" in vars(base):
            return vars(base)[f"_{name}"]
        value = vars(base).get(name)
        if value is not None and not isinstance(value, property):
            return value
    return None


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


# ----------------------------------------------------------------------------- the rules


def check_action_setup() -> None:
    """Actions are registered in async_setup, never per config entry."""
    functions = _functions(_tree("__init__.py"))
    registers = {
        name
        for _, tree in _sources()
        for name, function in _functions(tree).items()
        if any(
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "async_register"
            and isinstance(call.func.value, ast.Attribute)
            and call.func.value.attr == "services"
            for call in ast.walk(function)
        )
    }
    assert registers, "no hass.services.async_register call found"
    assert registers & (_called(functions["async_setup"]) | {"async_setup"}), (
        f"async_setup does not register the actions ({sorted(registers)})"
    )
    per_entry = registers & _called(functions["async_setup_entry"])
    assert not per_entry, f"async_setup_entry registers actions: {sorted(per_entry)}"


def check_appropriate_polling() -> None:
    """The user cannot set the polling interval (HA decides it; users can poll on demand)."""
    offered = []
    for name in ("strings.json", "translations/en.json"):
        texts = _json(name)
        for flow in ("config", "options"):
            for step_id, step in texts.get(flow, {}).get("step", {}).items():
                offered += [
                    f"{name}: {flow}.step.{step_id}.data.{field}"
                    for field in step.get("data", {})
                    if field in POLL_FIELDS
                ]
    assert not offered, (
        "appropriate-polling is marked done, but the flows offer a polling interval: "
        f"{offered}. The rule asks that users cannot change it (they can disable polling "
        "and call homeassistant.update_entity instead): remove the option, or mark the "
        "rule todo."
    )


def check_brands() -> None:
    """brand/ holds valid brand images: icon.png and logo.png at least, right sizes."""
    brand = INTEGRATION / "brand"
    assert brand.is_dir(), "no brand/ folder"
    present = {path.name for path in brand.iterdir()}
    assert {"icon.png", "logo.png"} <= present, f"brand/ has only {sorted(present)}"
    assert present <= BRAND_IMAGES, f"unknown files in brand/: {present - BRAND_IMAGES}"
    for name in sorted(present):
        width, height = _png_size(brand / name)
        scale = 2 if "@2x" in name else 1
        if "icon" in name:
            assert (width, height) == (256 * scale, 256 * scale), (
                f"{name} is {width}x{height}, must be {256 * scale} px square"
            )
        else:
            assert 128 * scale <= min(width, height) <= 256 * scale, (
                f"{name} is {width}x{height}: its shortest side must be "
                f"{128 * scale}-{256 * scale} px"
            )


def check_config_entry_unloading() -> None:
    """The integration can unload its config entries."""
    assert "async_unload_entry" in _functions(_tree("__init__.py")), (
        "__init__.py has no async_unload_entry"
    )


def check_config_flow() -> None:
    """Set up through the UI, and every field of every step is explained."""
    assert _json("manifest.json").get("config_flow") is True
    strings = _json("strings.json")
    undescribed = [
        f"{flow}.step.{step_id}.data.{field}"
        for flow in ("config", "options")
        for step_id, step in strings.get(flow, {}).get("step", {}).items()
        for field in step.get("data", {})
        if field not in step.get("data_description", {})
    ]
    assert not undescribed, f"fields without data_description: {undescribed}"


def check_config_flow_test_coverage() -> None:
    """The flow's tests exist and reach every step, error and abort reason."""
    tests = ROOT / "tests" / "components" / DOMAIN / "test_config_flow.py"
    assert tests.is_file(), f"{tests.relative_to(ROOT)} is missing"
    text = tests.read_text()
    missing = []
    for step in _functions(_tree("config_flow.py")):
        if not step.startswith("async_step_"):
            continue
        name = step.removeprefix("async_step_")
        evidence = [f'"{name}"', f"SOURCE_{name.upper()}"]
        evidence += {
            "reconfigure": ["start_reconfigure_flow"],
            "init": ["options.async_init"],
        }.get(name, [])
        if not any(word in text for word in evidence):
            missing.append(f"step {name}")
    strings = _json("strings.json")
    for flow in ("config", "options"):
        for kind in ("error", "abort"):
            missing += [
                f"{flow} {kind} {key}"
                for key in strings.get(flow, {}).get(kind, {})
                if f'"{key}"' not in text
            ]
    assert not missing, f"not exercised by {tests.name}: {missing}"


def check_diagnostics() -> None:
    """Config entry diagnostics are implemented."""
    assert (INTEGRATION / "diagnostics.py").is_file(), "no diagnostics.py"
    assert "async_get_config_entry_diagnostics" in _functions(
        _tree("diagnostics.py")
    ), "diagnostics.py has no async_get_config_entry_diagnostics"


def check_discovery() -> None:
    """Discovered via the manifest's matchers, with the matching config flow step."""
    manifest = _json("manifest.json")
    steps = _functions(_tree("config_flow.py"))
    kinds = [
        kind
        for kind in ("bluetooth", "dhcp", "homekit", "mqtt", "ssdp", "usb", "zeroconf")
        if manifest.get(kind)
    ]
    assert kinds, "the manifest declares no discovery"
    missing = [kind for kind in kinds if f"async_step_{kind}" not in steps]
    assert not missing, f"no config flow step for {missing} discovery"


def check_docs_actions() -> None:
    """The README documents every action."""
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text()) or {}
    readme = _readme()
    missing = [name for name in services if f"{DOMAIN}.{name}" not in readme]
    assert not missing, f"actions not in the README: {missing}"


def check_docs_configuration_parameters() -> None:
    """The README names every option."""
    readme = _readme()
    options = _json("strings.json").get("options", {}).get("step", {})
    missing = [
        label
        for step in options.values()
        for label in step.get("data", {}).values()
        if label.lower() not in readme
    ]
    assert not missing, f"options not described in the README: {missing}"


def _heading_check(*words: str) -> Callable[[], None]:
    def check() -> None:
        headings = _headings()
        assert any(all(w in h for w in words) for h in headings), (
            f"the README has no section about {' '.join(words)!r} (headings: {headings})"
        )

    check.__doc__ = f"The README has a section about {' '.join(words)}."
    return check


def check_docs_examples() -> None:
    """The README shows automation examples."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```ya?ml\n(.*?)```", text, re.DOTALL)
    assert any("triggers:" in block and "actions:" in block for block in blocks), (
        "no automation example (a yaml block with triggers and actions)"
    )


def check_docs_high_level_description() -> None:
    """The README starts with the integration's name and says what it is."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0] == f"# {_json('manifest.json')['name']}", lines[0]
    assert any(line.strip() and not line.startswith("#") for line in lines[1:5])


def check_docs_removal_instructions() -> None:
    """The README says how to remove the integration."""
    assert re.search(
        r"\bto remove\b|\bremov(e|al|ing) (the )?integration", _readme()
    ), "the README does not say how to remove the integration"


def check_entity_category() -> None:
    """Diagnostic-looking entities have an entity category."""
    missing = [
        f"{d.platform} {d.description.key} ({d.where})"
        for d in _descriptions()
        if any(word in d.description.key for word in DIAGNOSTIC_WORDS)
        and d.description.entity_category is None
    ]
    assert not missing, (
        f"entities about the link or the device without entity_category: {missing}"
    )


def check_entity_translations() -> None:
    """Every entity is named by a translation (or its device class), and it exists."""
    strings = _json("strings.json")
    entity_strings = strings.get("entity", {})
    descriptions = _descriptions()
    unseen = set(_platform_modules()) - {d.platform for d in descriptions}
    assert not unseen, (
        f"no entity description found in {sorted(unseen)}: this test sees those at module "
        "level or as an entity class's entity_description"
    )
    problems = []
    for d in descriptions:
        key = d.description.translation_key
        if key is None and d.description.device_class is None:
            problems.append(f"{d.where}: no translation_key nor device_class")
        elif key is not None and key not in entity_strings.get(d.platform, {}):
            problems.append(f"{d.where}: entity.{d.platform}.{key} not in strings.json")
    for cls in _entity_classes():
        key = _class_attr(cls, "_attr_translation_key")
        platform = cls.__module__.rsplit(".", 1)[-1]
        if key and key not in entity_strings.get(platform, {}):
            problems.append(f"{cls.__name__}: entity.{platform}.{key} not in strings")
    # Devices named by translation (DeviceInfo(translation_key=...)).
    problems += [
        f"{path.name}:{call.lineno}: device.{key} not in strings.json"
        for path, call, key in _constant_keywords("DeviceInfo", "translation_key")
        if key not in strings.get("device", {})
    ]
    assert not problems, problems


def check_entity_unique_id() -> None:
    """Every entity class sets a unique id (itself or through a base class)."""

    def sets_unique_id(cls: type) -> bool:
        if not cls.__module__.startswith(PACKAGE):
            return False  # HA's base classes set none
        if "unique_id" in vars(cls) or vars(cls).get("__attr_unique_id"):
            return True
        init = cls.__dict__.get("__init__")
        if init is None:
            return False
        source = ast.parse(inspect.getsource(init).strip())
        return any(
            isinstance(node, ast.Attribute)
            and node.attr == "_attr_unique_id"
            and isinstance(node.ctx, ast.Store)
            for node in ast.walk(source)
        )

    platform_classes = [
        cls
        for cls in _entity_classes()
        if cls.__module__.rsplit(".", 1)[-1] in {p.value for p in Platform}
    ]
    assert platform_classes, "no entity classes found"
    missing = [
        cls.__name__
        for cls in platform_classes
        if not any(sets_unique_id(base) for base in cls.__mro__)
    ]
    assert not missing, f"entity classes without a unique id: {missing}"


def check_exception_translations() -> None:
    """Every Home Assistant exception raised is translated (translation_key + domain)."""
    exceptions = _json("strings.json").get("exceptions", {})
    problems = []
    for path, tree in _sources():
        module = importlib.import_module(_module_name(path))

        def is_ha_error(node: ast.expr, module: ModuleType = module) -> bool:
            name = _call_name(node)
            if name is None:
                return False
            cls = getattr(module, name, None)
            if cls is None:  # imported inside a function, or `exceptions.X`
                return name in HA_ERRORS
            return inspect.isclass(cls) and issubclass(cls, HomeAssistantError)

        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue  # a bare `raise` re-raises
            where = f"{path.relative_to(INTEGRATION)}:{node.lineno}"
            exc = node.exc
            if not isinstance(exc, ast.Call):
                # `raise err` (a variable) is fine; `raise UpdateFailed` (the class) is not.
                if is_ha_error(exc):
                    problems.append(
                        f"{where}: raises {_call_name(exc)} without message"
                    )
                continue
            if not is_ha_error(exc.func):
                continue
            keywords = {kw.arg: kw.value for kw in exc.keywords}
            if (
                "translation_key" not in keywords
                or "translation_domain" not in keywords
            ):
                problems.append(
                    f"{where}: {_call_name(exc.func)} without translation_domain and "
                    "translation_key"
                )
                continue
            key = keywords["translation_key"]
            if isinstance(key, ast.Constant) and key.value not in exceptions:
                problems.append(
                    f"{where}: exceptions.{key.value!r} not in strings.json"
                )
    assert not problems, problems


def check_has_entity_name() -> None:
    """Every entity uses has_entity_name = True."""
    classes = _entity_classes()
    assert classes, "no entity classes found"
    missing = [
        cls.__name__
        for cls in classes
        if _class_attr(cls, "_attr_has_entity_name") is not True
    ]
    assert not missing, f"without _attr_has_entity_name = True: {missing}"


def check_icon_translations() -> None:
    """Entities named by translation key have an icon (device classes bring theirs)."""
    icons = _json("icons.json")
    missing = []
    for d in _descriptions():
        key = d.description.translation_key
        if key is None or d.description.device_class is not None:
            continue
        icon = icons.get("entity", {}).get(d.platform, {}).get(key, {})
        if not {"default", "state", "range"} & set(icon):
            missing.append(f"entity.{d.platform}.{key}")
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text()) or {}
    missing += [
        f"services.{name}"
        for name in services
        if "service" not in icons.get("services", {}).get(name, {})
    ]
    assert not missing, f"no icon in icons.json for: {missing}"


def check_integration_owner() -> None:
    """The manifest names a code owner."""
    assert _json("manifest.json").get("codeowners"), "no codeowners in the manifest"


def check_parallel_updates() -> None:
    """Every platform says how many updates may run at once."""
    missing = [
        name
        for name, module in _platform_modules().items()
        if not isinstance(getattr(module, "PARALLEL_UPDATES", None), int)
    ]
    assert not missing, f"platforms without PARALLEL_UPDATES: {missing}"


def check_reconfiguration_flow() -> None:
    """The config flow can be reconfigured."""
    assert "async_step_reconfigure" in _functions(_tree("config_flow.py")), (
        "config_flow.py has no async_step_reconfigure"
    )


def check_reauthentication_flow() -> None:
    """A rejected key starts reauth, whose step asks for the key and checks it."""
    steps = _functions(_tree("config_flow.py"))
    assert {"async_step_reauth", "async_step_reauth_confirm"} <= set(steps), (
        "config_flow.py has no reauth steps"
    )
    raised = any(
        isinstance(node, ast.Name) and node.id == "ConfigEntryAuthFailed"
        for _, tree in _sources()
        for node in ast.walk(tree)
    )
    assert raised, "nothing raises ConfigEntryAuthFailed"
    config = _json("strings.json")["config"]
    assert "reauth_confirm" in config["step"], "strings.json: no reauth_confirm step"
    assert "reauth_successful" in config["abort"], "strings.json: no reauth_successful"


def check_repair_issues() -> None:
    """Repair issues are translated; every issue raised has its strings."""
    issues = _json("strings.json").get("issues", {})
    assert issues, "strings.json has no issues section"
    problems = [
        f"{path.name}:{call.lineno}: issues.{key} not in strings.json"
        for path, call, key in _constant_keywords(
            "async_create_issue", "translation_key"
        )
        if key not in issues
    ]
    assert not problems, problems


def check_runtime_data() -> None:
    """Runtime objects live in entry.runtime_data, not in hass.data[DOMAIN]."""

    def is_domain(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id == "DOMAIN") or (
            isinstance(node, ast.Constant) and node.value == DOMAIN
        )

    def is_hass_data(node: ast.expr) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "data"
            and (
                (isinstance(node.value, ast.Name) and node.value.id == "hass")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "hass")
            )
        )

    uses = []
    assigns_runtime_data = False
    for path, tree in _sources():
        for node in ast.walk(tree):
            where = f"{path.relative_to(INTEGRATION)}:{getattr(node, 'lineno', '?')}"
            # hass.data[DOMAIN], hass.data.get(DOMAIN) / setdefault / pop, DOMAIN in hass.data
            if (
                (
                    isinstance(node, ast.Subscript)
                    and is_hass_data(node.value)
                    and is_domain(node.slice)
                )
                or (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and is_hass_data(node.func.value)
                    and bool(node.args)
                    and is_domain(node.args[0])
                )
                or (
                    isinstance(node, ast.Compare)
                    and is_domain(node.left)
                    and any(is_hass_data(c) for c in node.comparators)
                )
            ):
                uses.append(where)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "runtime_data"
                for t in node.targets
            ):
                assigns_runtime_data = True
    assert not uses, f"hass.data[DOMAIN] used at {uses}"
    assert assigns_runtime_data, "nothing is stored in entry.runtime_data"


def check_stale_devices() -> None:
    """Users can remove devices that are gone."""
    assert "async_remove_config_entry_device" in _functions(_tree("__init__.py")), (
        "__init__.py has no async_remove_config_entry_device"
    )


def check_strict_typing() -> None:
    """mypy --strict covers the integration, and its config entry is typed."""
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy.get("strict") is True, "pyproject: [tool.mypy] strict is not true"
    files = mypy.get("files", [])
    assert any("custom_components/dc_mesh".startswith(f.rstrip("/")) for f in files), (
        f"pyproject: [tool.mypy] files {files} do not cover custom_components/dc_mesh"
    )
    typed_entry = any(
        isinstance(node, (ast.TypeAlias, ast.AnnAssign, ast.Assign))
        and "ConfigEntry[" in ast.unparse(node)
        for _, tree in _sources()
        for node in tree.body
    )
    assert typed_entry, "no typed config entry alias (type X = ConfigEntry[...])"


def check_test_before_setup() -> None:
    """Setting up an entry fails early (ConfigEntryNotReady & co.) when it cannot work."""
    called = _called(_functions(_tree("__init__.py"))["async_setup_entry"])
    assert called & {
        "async_config_entry_first_refresh",
        "ConfigEntryNotReady",
        "ConfigEntryError",
        "ConfigEntryAuthFailed",
    }, "async_setup_entry neither refreshes first nor raises ConfigEntryNotReady"


def check_test_coverage() -> None:
    """scripts/test measures coverage of the integration and fails below 95 %."""
    script = (ROOT / "scripts" / "test").read_text()
    assert f"--cov={PACKAGE}" in script, "scripts/test does not measure coverage"
    gate = re.search(r"--cov-fail-under[= ](\d+(?:\.\d+)?)", script)
    assert gate, "scripts/test has no --cov-fail-under"
    assert float(gate.group(1)) >= 95, f"coverage gate {gate.group(1)} % < 95 %"


def check_unique_config_entry() -> None:
    """The config flow sets a unique id and aborts on an already configured one."""
    called = _called(_tree("config_flow.py"))
    assert "async_set_unique_id" in called, "no async_set_unique_id"
    assert called & {"_abort_if_unique_id_configured", "_async_abort_entries_match"}, (
        "duplicates are not aborted"
    )


CHECKS: dict[str, Callable[[], None]] = {
    "action-setup": check_action_setup,
    "appropriate-polling": check_appropriate_polling,
    "brands": check_brands,
    "config-entry-unloading": check_config_entry_unloading,
    "config-flow": check_config_flow,
    "config-flow-test-coverage": check_config_flow_test_coverage,
    "diagnostics": check_diagnostics,
    "discovery": check_discovery,
    "docs-actions": check_docs_actions,
    "docs-configuration-parameters": check_docs_configuration_parameters,
    "docs-data-update": _heading_check("data update"),
    "docs-examples": check_docs_examples,
    "docs-high-level-description": check_docs_high_level_description,
    "docs-installation-instructions": _heading_check("install"),
    "docs-known-limitations": _heading_check("limitation"),
    "docs-removal-instructions": check_docs_removal_instructions,
    "docs-supported-devices": _heading_check("supported devices"),
    "docs-troubleshooting": _heading_check("troubleshooting"),
    "docs-use-cases": _heading_check("use cases"),
    "entity-category": check_entity_category,
    "entity-translations": check_entity_translations,
    "entity-unique-id": check_entity_unique_id,
    "exception-translations": check_exception_translations,
    "has-entity-name": check_has_entity_name,
    "icon-translations": check_icon_translations,
    "integration-owner": check_integration_owner,
    "parallel-updates": check_parallel_updates,
    "reauthentication-flow": check_reauthentication_flow,
    "reconfiguration-flow": check_reconfiguration_flow,
    "repair-issues": check_repair_issues,
    "runtime-data": check_runtime_data,
    "stale-devices": check_stale_devices,
    "strict-typing": check_strict_typing,
    "test-before-setup": check_test_before_setup,
    "test-coverage": check_test_coverage,
    "unique-config-entry": check_unique_config_entry,
}


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("rule", ALL_RULES)
def test_rule_is_listed(rule: str) -> None:
    """quality_scale.yaml gives every rule of HA's scale a valid status."""
    rules = _quality_scale()
    assert rule in rules, f"quality_scale.yaml does not list the rule {rule!r}"
    value = rules[rule]
    status = value.get("status") if isinstance(value, dict) else value
    assert status in {"done", "todo", "exempt"}, f"{rule}: status {status!r}"
    if status == "exempt":
        assert isinstance(value, dict), f"{rule} is exempt without a comment saying why"
        assert value.get("comment"), f"{rule} is exempt without a comment saying why"


def test_no_unknown_rules() -> None:
    """quality_scale.yaml lists no rule that HA's scale does not have."""
    assert sorted(set(_quality_scale()) - set(ALL_RULES)) == []


def test_every_check_is_a_rule() -> None:
    """The checks below are keyed by real rule names."""
    assert sorted(set(CHECKS) - set(ALL_RULES)) == []


@pytest.mark.parametrize("rule", sorted(CHECKS))
def test_done_rule_holds(rule: str) -> None:
    """A rule marked done is not contradicted by the code."""
    status = _status(rule)
    if status != "done":
        pytest.skip(f"{rule} is {status}")
    CHECKS[rule]()
