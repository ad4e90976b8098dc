"""Firmware release manifests (firmware/README.md "Firmware updates"), free of Home Assistant.

`firmware/release.sh` writes one manifest per release next to its signed image:

    {"format": 1, "version": "1.1.0", "role": "U", "hardware": "ESP32-C6", "size": 1200000,
     "sha256": "<hex>", "signature": {"scheme": "secure-boot-v2-rsa3072",
     "public_key_sha256": "<hex>"}, "release_notes": "...", "image": "<file name or URL>"}

A catalog is one manifest, a list of manifests, or `{"releases": [...]}`. `parse_catalog`
keeps the valid releases and says why each other one was skipped; `Release.image` turns the
downloaded bytes into a `FirmwareImage` after checking size and SHA-256 against the manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import re
from typing import Any, Final

from .exceptions import DcMeshError
from .models import NodeRole
from .ota import MAX_SIZE, FirmwareImage, ImageError
from .signing import verify_image

MANIFEST_FORMAT: Final = 1
RELEASE_NOTES_MAX: Final = 20_000
_VERSION_RE: Final = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")
_HEX64_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
_HARDWARE_RE: Final = re.compile(r"[A-Za-z0-9-]{1,16}")


class ManifestError(DcMeshError):
    """A release manifest is not valid; the message says which field and why."""


def version_key(version: str) -> tuple[int, int, int]:
    """`x.y.z` as a tuple that sorts like the versions; ValueError if it is not one."""
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not a version x.y.z")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


@dataclass(frozen=True, slots=True)
class Release:
    """One release of node firmware, as its manifest describes it."""

    version: str
    role: NodeRole
    hardware: str
    size: int
    sha256: bytes
    image: str  # file name (relative to the manifest) or URL
    release_notes: str = ""
    signature_scheme: str | None = None
    public_key_sha256: bytes | None = None

    def fits(self, role: NodeRole, hardware: str) -> bool:
        """Whether this release is for nodes of `role` on `hardware`."""
        return self.role is role and self.hardware == hardware

    def image_from(
        self, data: bytes, trusted_key: bytes | None = None
    ) -> FirmwareImage:
        """The image to send: raise unless `data` is what the manifest says.

        `ImageError`: size or SHA-256 differ. `SignatureError`: the image's first
        Secure Boot V2 signature block (the one a node checks) is not a valid signature
        by `trusted_key` (the pinned release key) or, without one, by the key the
        manifest names. An image whose manifest names no key is sent unchecked unless a
        key is pinned; the node still refuses it unless it is signed with the key of
        its running firmware.
        """
        if len(data) != self.size:
            raise ImageError(
                f"the image of {self.version} has {len(data)} bytes, "
                f"its manifest says {self.size}"
            )
        image = FirmwareImage(
            data, self.version, self.role, self.hardware, self.size, self.sha256
        )
        image.check()
        if (key := trusted_key or self.public_key_sha256) is not None:
            verify_image(data, key)
        return image


def _field(manifest: Mapping[str, Any], name: str, kind: type) -> Any:
    value = manifest.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"{name!r} is missing or not a {kind.__name__}")
    return value


def parse_manifest(manifest: object) -> Release:
    """One release from a decoded manifest; `ManifestError` says what is wrong."""
    if not isinstance(manifest, Mapping):
        raise ManifestError("a manifest is a JSON object")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"'format' is not {MANIFEST_FORMAT}")
    version = _field(manifest, "version", str)
    if _VERSION_RE.fullmatch(version) is None:
        raise ManifestError(f"'version' {version!r} is not x.y.z")
    try:
        role = NodeRole(_field(manifest, "role", str))
    except ValueError as err:
        raise ManifestError("'role' is not U or R") from err
    hardware = _field(manifest, "hardware", str)
    if _HARDWARE_RE.fullmatch(hardware) is None:
        raise ManifestError(f"'hardware' {hardware!r} is not a hardware model")
    size = _field(manifest, "size", int)
    if not 0 < size <= MAX_SIZE:
        raise ManifestError(f"'size' {size} is out of range")
    sha256 = _field(manifest, "sha256", str)
    if _HEX64_RE.fullmatch(sha256) is None:
        raise ManifestError("'sha256' is not 64 hex digits")
    image = _field(manifest, "image", str).strip()
    if not image:
        raise ManifestError("'image' is empty")
    notes = manifest.get("release_notes", "")
    if not isinstance(notes, str):
        raise ManifestError("'release_notes' is not text")
    scheme: str | None = None
    key: bytes | None = None
    if (signature := manifest.get("signature")) is not None:
        if not isinstance(signature, Mapping):
            raise ManifestError("'signature' is not an object")
        scheme = _field(signature, "scheme", str)
        digest = _field(signature, "public_key_sha256", str)
        if _HEX64_RE.fullmatch(digest) is None:
            raise ManifestError("'public_key_sha256' is not 64 hex digits")
        key = bytes.fromhex(digest)
    return Release(
        version=version,
        role=role,
        hardware=hardware,
        size=size,
        sha256=bytes.fromhex(sha256),
        image=image,
        release_notes=notes[:RELEASE_NOTES_MAX],
        signature_scheme=scheme,
        public_key_sha256=key,
    )


def parse_catalog(catalog: object) -> tuple[list[Release], list[str]]:
    """The valid releases of a catalog and, for each skipped entry, why."""
    entries: Iterable[object]
    if isinstance(catalog, Mapping) and "releases" in catalog:
        releases = catalog["releases"]
        entries = releases if isinstance(releases, list) else [releases]
    elif isinstance(catalog, list):
        entries = catalog
    else:
        entries = [catalog]
    found: list[Release] = []
    skipped: list[str] = []
    for index, entry in enumerate(entries):
        try:
            found.append(parse_manifest(entry))
        except ManifestError as err:
            skipped.append(f"entry {index}: {err}")
    return found, skipped


def newest(
    releases: Iterable[Release], role: NodeRole, hardware: str
) -> Release | None:
    """The highest version among the releases for `role` on `hardware`."""
    fitting = [release for release in releases if release.fits(role, hardware)]
    return max(fitting, key=lambda r: version_key(r.version), default=None)
