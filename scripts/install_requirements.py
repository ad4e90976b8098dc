"""Install the pinned test requirements, then those of the HA integrations we depend on.

The second step uses Home Assistant's own package constraints, so pip never backtracks.
Skips everything when nothing changed since the last successful run.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
import json
import os
from pathlib import Path
import subprocess
import sys

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "requirements_test.txt"
MANIFEST = REPO / "custom_components" / "dc_mesh" / "manifest.json"
STAMP = Path(sys.prefix) / ".dc-mesh-requirements"
# Packages whose compiled extension Home Assistant's installs have (its wheels), and that module.
# Built from source where no wheel fits, they fall back to pure Python without a word (a build
# without a compiler, a wheel cached from such a build): every state write then costs more than
# in the field, and the benchmarks say so wrongly.
SPEEDUPS = {"ulid-transform": "ulid_transform._ulid_impl"}


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, MANIFEST, Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def _integration_requirements(components: Path, roots: list[str]) -> set[str]:
    """Requirements of the given integrations and everything they depend on."""
    seen: set[str] = set()
    requirements: set[str] = set()
    todo = list(roots)
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = json.loads((components / domain / "manifest.json").read_text())
        requirements.update(manifest.get("requirements", []))
        todo.extend(manifest.get("dependencies", []))
        todo.extend(manifest.get("after_dependencies", []))
    return requirements


def main() -> None:
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        print("[dc-mesh] requirements up to date", file=sys.stderr)
        return
    print("[dc-mesh] installing requirements (a few minutes, once)", file=sys.stderr)
    _pip("--upgrade", "pip")
    _pip("-r", str(REQUIREMENTS))
    import homeassistant  # noqa: PLC0415  (installed just above)

    ha_dir = Path(homeassistant.__file__).parent
    ours = json.loads(MANIFEST.read_text())
    roots = ours.get("dependencies", []) + ours.get("after_dependencies", [])
    requirements = _integration_requirements(ha_dir / "components", roots)
    requirements.update(ours.get("requirements", []))
    _pip("-c", str(ha_dir / "package_constraints.txt"), *sorted(requirements))
    _require_speedups()
    STAMP.write_text(fingerprint)


def _require_speedups() -> None:
    """Build again, with its extension (or fail), each speed-up package that lacks it."""
    for package, module in SPEEDUPS.items():
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"], check=False, capture_output=True
        )
        if probe.returncode == 0:
            continue
        print(f"[dc-mesh] building {package} with its extension", file=sys.stderr)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "-q", "--force-reinstall"),
                *("--no-deps", "--no-cache-dir", "--no-binary", package),
                f"{package}=={metadata.version(package)}",
            ],
            check=True,
            env={**os.environ, "REQUIRE_EXTENSION": "1"},
        )


if __name__ == "__main__":
    main()
