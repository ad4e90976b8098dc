"""Release manifests and catalogs (dcmesh/release.py)."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import given, strategies as st
import pytest

from custom_components.dc_mesh.dcmesh import ImageError, NodeRole
from custom_components.dc_mesh.dcmesh.release import (
    ManifestError,
    newest,
    parse_catalog,
    parse_manifest,
    version_key,
)
from custom_components.dc_mesh.dcmesh.signing import SignatureError
from simulator import ota as sim_ota, signing

IMAGE = sim_ota.build_image("1.1.0", 5000)


def manifest(**changes: Any) -> dict[str, Any]:
    """A valid manifest as firmware/release.sh writes it, with `changes`."""
    return {
        "format": 1,
        "version": "1.1.0",
        "role": "U",
        "hardware": "ESP32-C6",
        "size": len(IMAGE),
        "sha256": hashlib.sha256(IMAGE).hexdigest(),
        "release_notes": "Notes.",
        "image": "dc_universal_node-1.1.0.bin",
    } | changes


def test_manifest_round_trip() -> None:
    release = parse_manifest(manifest())
    assert release.version == "1.1.0"
    assert release.role is NodeRole.UNIVERSAL
    assert release.fits(NodeRole.UNIVERSAL, "ESP32-C6")
    assert not release.fits(NodeRole.RELAY, "ESP32-C6")
    image = release.image_from(IMAGE)
    assert image.version == "1.1.0"
    assert image.sha256 == hashlib.sha256(IMAGE).digest()


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"format": 2}, "'format' is not 1"),
        ({"version": "1.1"}, "'version' '1.1' is not x.y.z"),
        ({"version": 110}, "'version' is missing or not a str"),
        ({"role": "X"}, "'role' is not U or R"),
        ({"hardware": "ESP32 C6"}, "is not a hardware model"),
        ({"size": 0}, "'size' 0 is out of range"),
        ({"size": True}, "'size' is missing or not a int"),
        ({"sha256": "00"}, "'sha256' is not 64 hex digits"),
        ({"image": " "}, "'image' is empty"),
        ({"release_notes": 3}, "'release_notes' is not text"),
        ({"signature": "x"}, "'signature' is not an object"),
        (
            {"signature": {"scheme": "s", "public_key_sha256": "zz"}},
            "'public_key_sha256' is not 64 hex digits",
        ),
    ],
)
def test_manifest_errors_name_the_field(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ManifestError, match=why.replace("(", r"\(")):
        parse_manifest(manifest(**changes))


def test_not_an_object() -> None:
    with pytest.raises(ManifestError, match="a manifest is a JSON object"):
        parse_manifest([1])


def test_image_must_match_the_manifest() -> None:
    release = parse_manifest(manifest())
    with pytest.raises(ImageError, match="has 4999 bytes, its manifest says 5000"):
        release.image_from(IMAGE[:-1])
    tampered = bytes([IMAGE[0] ^ 1]) + IMAGE[1:]
    with pytest.raises(ImageError, match="SHA-256"):
        release.image_from(tampered)


def test_signed_image_checked_against_the_named_or_pinned_key() -> None:
    key = signing.cached_key()
    signed = signing.sign_image(IMAGE, key)
    digest = signing.key_digest(key)
    release = parse_manifest(
        manifest(
            size=len(signed),
            sha256=hashlib.sha256(signed).hexdigest(),
            signature={
                "scheme": "secure-boot-v2-rsa3072",
                "public_key_sha256": digest.hex(),
            },
        )
    )
    assert release.public_key_sha256 == digest
    assert release.image_from(signed).data == signed
    assert release.image_from(signed, digest).data == signed
    with pytest.raises(SignatureError):
        release.image_from(signed, bytes(32))  # another pinned key
    # no signature in the manifest, but a pinned key: an unsigned image is refused
    plain = parse_manifest(manifest())
    with pytest.raises(SignatureError, match="not signed"):
        plain.image_from(IMAGE, digest)


def test_catalog_forms_and_newest() -> None:
    older = manifest(version="1.0.9")
    relay = manifest(version="2.0.0", role="R")
    found, skipped = parse_catalog({"releases": [manifest(), older, relay, {"x": 1}]})
    assert [r.version for r in found] == ["1.1.0", "1.0.9", "2.0.0"]
    assert skipped == ["entry 3: 'format' is not 1"]
    assert parse_catalog([manifest()])[0][0].version == "1.1.0"
    assert parse_catalog(manifest())[0][0].version == "1.1.0"
    assert parse_catalog({"releases": manifest()})[0][0].version == "1.1.0"
    best = newest(found, NodeRole.UNIVERSAL, "ESP32-C6")
    assert best is not None
    assert best.version == "1.1.0"
    assert newest(found, NodeRole.UNIVERSAL, "ESP32-S3") is None


def test_version_order() -> None:
    assert version_key("1.10.0") > version_key("1.9.9")
    with pytest.raises(ValueError, match="not a version"):
        version_key("1.0")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    ["format", "version", "role", "hardware", "size", "sha256", "image"]
                )
                | st.text(max_size=8),
                children,
                max_size=8,
            )
        ),
        max_leaves=20,
    )
)
def test_any_json_is_a_catalog_or_a_reason(catalog: object) -> None:
    """Whatever a catalog holds, parsing never raises: releases, or why each was skipped."""
    found, skipped = parse_catalog(catalog)
    assert all(release.size > 0 for release in found)
    assert all(why.startswith("entry ") for why in skipped)
