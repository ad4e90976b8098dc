"""Layering rules: the protocol library stays HA-free, the integration never uses the simulator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "dc_mesh"
LIBRARY = INTEGRATION / "dcmesh"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name a file imports (relative imports excluded)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _top_levels(path: Path) -> set[str]:
    return {name.partition(".")[0] for name in imported_modules(path)}


def test_helper_sees_every_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import homeassistant.core\n"
        "from simulator import mesh\n"
        "from . import codec\n"
        "def f():\n    import asyncio as a\n"
        "if True:\n    from homeassistant.components import bluetooth\n"
    )
    assert _top_levels(sample) == {"homeassistant", "simulator", "asyncio"}


LIBRARY_FILES = sorted(LIBRARY.rglob("*.py"))
INTEGRATION_FILES = sorted(INTEGRATION.rglob("*.py"))


def test_files_found() -> None:
    assert {p.name for p in LIBRARY_FILES} >= {"__init__.py", "codec.py", "link.py"}


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.name)
def test_library_does_not_import_home_assistant(path: Path) -> None:
    assert not _top_levels(path) & {"homeassistant", "habluetooth", "custom_components"}


@pytest.mark.parametrize(
    "path", INTEGRATION_FILES, ids=lambda p: str(p.relative_to(INTEGRATION))
)
def test_integration_does_not_import_the_simulator(path: Path) -> None:
    assert "simulator" not in _top_levels(path)
