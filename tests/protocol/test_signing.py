"""Secure Boot V2 image signatures: dcmesh.signing checks what simulator.signing writes."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
import zlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.dc_mesh.dcmesh import (
    DcMeshError,
    SignatureError,
    SignatureInfo,
    public_key_digest,
    verify_image,
)
from custom_components.dc_mesh.dcmesh.signing import (
    BAD_CRC,
    BAD_SIGNATURE,
    BLOCK_SIZE,
    DIGEST_MISMATCH,
    MALFORMED,
    SCHEME_ECDSA256,
    SCHEME_RSA3072,
    SECTOR_SIZE,
    UNSIGNED,
    UNSUPPORTED,
    UNTRUSTED_KEY,
)
from simulator.signing import cached_key, generate_key, key_digest, sign_image

APP = bytes([0xE9]) + bytes(range(256)) * 40  # 10241 bytes: padded to 12288 when signed


def rsa_key(name: str = "release") -> rsa.RSAPrivateKey:
    key = cached_key(name)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def ec_key(
    name: str = "release", scheme: str = "ecdsa256"
) -> ec.EllipticCurvePrivateKey:
    key = cached_key(name, scheme)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def block_at(data: bytes, index: int) -> int:
    """Offset of signature block `index` in a signed image."""
    return len(data) - SECTOR_SIZE + index * BLOCK_SIZE


def patch(
    data: bytes, offset: int, value: bytes, *, reseal: int | None = None
) -> bytes:
    """`data` with `value` at `offset`; `reseal`: recompute that block's CRC afterwards."""
    out = bytearray(data)
    out[offset : offset + len(value)] = value
    if reseal is not None:
        start = block_at(data, reseal)
        out[start + 1196 : start + 1200] = zlib.crc32(
            out[start : start + 1196]
        ).to_bytes(4, "little")
    return bytes(out)


def refused(data: bytes, reason: str, key: bytes | None = None, **kw: bool) -> str:
    with pytest.raises(SignatureError) as caught:
        verify_image(data, key, **kw)
    assert caught.value.reason == reason, str(caught.value)
    assert isinstance(caught.value, DcMeshError)
    return str(caught.value)


# --- round trips ------------------------------------------------------------------------------


def test_rsa_round_trip() -> None:
    key = rsa_key()
    signed = sign_image(APP, key)
    assert len(signed) == 12288 + SECTOR_SIZE
    assert signed[: len(APP)] == APP
    assert set(signed[len(APP) : 12288]) == {0xFF}  # espsecure pads with 0xFF
    digest = key_digest(key)
    assert digest == public_key_digest(key.public_key()) == key_digest(key.public_key())
    info = verify_image(signed, digest)
    assert info.trusted_block == 0
    assert info.signed_size == 12288
    assert info.image_digest == hashlib.sha256(signed[:12288]).digest()
    assert [(b.index, b.scheme) for b in info.blocks] == [(0, SCHEME_RSA3072)]
    assert info.key_digests == (digest,)
    # the block stores the image digest at offset 4 and the key digest covers bytes 36..811
    start = block_at(signed, 0)
    assert signed[start + 4 : start + 36] == info.image_digest
    assert hashlib.sha256(signed[start + 36 : start + 812]).digest() == digest
    assert set(signed[start + BLOCK_SIZE :]) == {0xFF}


def test_ecdsa_p256_round_trip() -> None:
    key = ec_key()
    signed = sign_image(APP, key)
    info = verify_image(signed, public_key_digest(key.public_key()))
    assert info.trusted_block == 0
    assert info.blocks[0].scheme == SCHEME_ECDSA256
    assert info.key_digests == (key_digest(key),)
    start = block_at(signed, 0)
    assert hashlib.sha256(signed[start + 36 : start + 101]).digest() == key_digest(key)


def test_aligned_image_is_not_padded_and_no_key_means_no_trust_check() -> None:
    app = APP[:8192]
    signed = sign_image(app, rsa_key())
    assert signed[:8192] == app
    assert len(signed) == 8192 + SECTOR_SIZE
    info = verify_image(signed)
    assert isinstance(info, SignatureInfo)
    assert info.trusted_block is None


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", APP, APP[:8192], bytes(SECTOR_SIZE), b"\xff" * (3 * SECTOR_SIZE)],
    ids=["empty", "plain-app", "aligned-app", "sector-only", "erased-flash"],
)
def test_unsigned(data: bytes) -> None:
    assert "not signed" in refused(data, UNSIGNED)


@pytest.mark.parametrize("cut", [1, 100, BLOCK_SIZE, SECTOR_SIZE - 1])
def test_truncated_sector(cut: int) -> None:
    signed = sign_image(APP, rsa_key())
    refused(signed[:-cut], UNSIGNED)


def test_sector_cut_off_and_erased_flash_appended() -> None:
    signed = sign_image(APP, rsa_key())
    refused(signed[:-SECTOR_SIZE] + b"\xff" * SECTOR_SIZE, UNSIGNED)


@pytest.mark.parametrize("offset", [0, 5000, 10240, 12287])
def test_tampered_image_byte(offset: int) -> None:
    signed = sign_image(APP, rsa_key())
    tampered = patch(signed, offset, bytes([signed[offset] ^ 0x01]))
    assert "altered after signing" in refused(
        tampered, DIGEST_MISMATCH, key_digest(rsa_key())
    )


@pytest.mark.parametrize(
    ("scheme", "at"),
    [("rsa3072", 812), ("rsa3072", 1195), ("ecdsa256", 101), ("ecdsa256", 164)],
)
def test_tampered_signature(scheme: str, at: int) -> None:
    key = cached_key("release", scheme)
    signed = sign_image(APP, key)
    offset = block_at(signed, 0) + at
    tampered = patch(signed, offset, bytes([signed[offset] ^ 0x80]), reseal=0)
    assert "does not verify" in refused(tampered, BAD_SIGNATURE, key_digest(key))
    # without a new CRC the block is caught earlier
    refused(patch(signed, offset, bytes([signed[offset] ^ 0x80])), BAD_CRC)


def test_signature_of_another_image_with_its_digest() -> None:
    """A block copied from another image, digest field rewritten: the signature fails."""
    key = rsa_key()
    signed = sign_image(APP, key)
    other = sign_image(APP[::-1], key)
    start = block_at(signed, 0)
    forged = other[: len(other) - SECTOR_SIZE] + signed[len(signed) - SECTOR_SIZE :]
    forged = patch(forged, start + 4, hashlib.sha256(forged[:start]).digest(), reseal=0)
    refused(forged, BAD_SIGNATURE)


def test_wrong_key_digest() -> None:
    signed = sign_image(APP, rsa_key())
    wrong = key_digest(rsa_key("old"))
    message = refused(signed, UNTRUSTED_KEY, wrong)
    assert wrong.hex() in message
    assert key_digest(rsa_key()).hex() in message
    refused(signed, UNTRUSTED_KEY, wrong, any_block=True)


@pytest.mark.parametrize("at", [1196, 1199, 4, 500])
def test_bad_crc(at: int) -> None:
    signed = sign_image(APP, rsa_key())
    offset = block_at(signed, 0) + at
    # changing a CRC byte, or any covered byte without a new CRC
    assert "bad CRC" in refused(
        patch(signed, offset, bytes([signed[offset] ^ 0xFF])), BAD_CRC
    )


# --- several blocks: key rotation ---------------------------------------------------------------


def test_key_rotation_blocks() -> None:
    old, new = rsa_key("old"), rsa_key()
    both = sign_image(APP, old, new)
    appended = sign_image(sign_image(APP, old), new, append=True)
    for signed in (both, appended):
        info = verify_image(signed, key_digest(old))
        assert info.trusted_block == 0
        assert info.key_digests == (key_digest(old), key_digest(new))
        assert verify_image(signed, key_digest(new), any_block=True).trusted_block == 1
        # a node without hardware secure boot checks block 0 only: refused by default
        message = refused(signed, UNTRUSTED_KEY, key_digest(new))
        assert "block 0 alone" in message
    assert both[:12288] == appended[:12288]  # the same signed contents


def test_three_blocks_mixed_schemes_and_no_fourth() -> None:
    keys = (rsa_key("old"), ec_key(), rsa_key())
    signed = sign_image(APP, *keys)
    info = verify_image(signed, key_digest(keys[2]), any_block=True)
    assert [b.scheme for b in info.blocks] == [
        SCHEME_RSA3072,
        SCHEME_ECDSA256,
        SCHEME_RSA3072,
    ]
    assert info.trusted_block == 2
    assert block_at(signed, 3) + 448 == len(
        signed
    )  # 448 bytes of 0xFF after three blocks
    assert set(signed[block_at(signed, 3) :]) == {0xFF}
    with pytest.raises(ValueError, match="3 blocks"):
        sign_image(signed, rsa_key(), append=True)
    with pytest.raises(ValueError, match="3 blocks"):
        sign_image(APP, *keys, rsa_key())


def test_append_to_an_unsigned_aligned_image_signs_afresh() -> None:
    app = APP[:8192]
    assert sign_image(app, rsa_key(), append=True)[:8192] == app
    assert len(sign_image(app, rsa_key(), append=True)) == 8192 + SECTOR_SIZE
    # not aligned: padded and signed, as espsecure does
    assert verify_image(sign_image(APP, rsa_key(), append=True)).signed_size == 12288


def test_append_keeps_only_the_valid_leading_blocks() -> None:
    signed = sign_image(APP, rsa_key("old"), rsa_key())
    damaged = patch(signed, block_at(signed, 1) + 100, b"\x00\x01")  # block 1: bad CRC
    resigned = sign_image(damaged, ec_key(), append=True)
    info = verify_image(resigned)
    assert info.key_digests == (key_digest(rsa_key("old")), key_digest(ec_key()))


# --- malformed and unsupported blocks -------------------------------------------------------------


def test_unknown_version() -> None:
    signed = sign_image(APP, rsa_key())
    assert "version 0x04" in refused(
        patch(signed, block_at(signed, 0) + 1, b"\x04", reseal=0), MALFORMED
    )


@pytest.mark.parametrize(
    ("scheme", "at"),
    [
        ("rsa3072", 2),
        ("rsa3072", 3),
        ("ecdsa256", 3),
        ("ecdsa256", 165),
        ("ecdsa256", 1195),
    ],
)
def test_reserved_bytes_not_zero(scheme: str, at: int) -> None:
    signed = sign_image(APP, cached_key("release", scheme))
    refused(patch(signed, block_at(signed, 0) + at, b"\x01", reseal=0), MALFORMED)


def test_block_tail_padding_not_zero() -> None:
    signed = sign_image(APP, rsa_key())
    # not covered by the CRC, but espsecure writes zeros
    assert "last 16 bytes" in refused(
        patch(signed, block_at(signed, 0) + 1210, b"\x01"), MALFORMED
    )


@pytest.mark.parametrize("index", [1, 2, 3])
def test_garbage_after_the_blocks(index: int) -> None:
    signed = sign_image(APP, rsa_key())
    offset = block_at(signed, index) + 7 if index < 3 else len(signed) - 1
    assert "0xFF padding" in refused(patch(signed, offset, b"\x00"), MALFORMED)


def test_damaged_magic_of_a_second_block() -> None:
    signed = sign_image(APP, rsa_key("old"), rsa_key())
    refused(patch(signed, block_at(signed, 1), b"\xe6"), MALFORMED)


def test_rsa_modulus_not_3072_bits() -> None:
    signed = sign_image(APP, rsa_key())
    top = block_at(signed, 0) + 36 + 383  # most significant byte of n (little-endian)
    assert "bits" in refused(patch(signed, top, b"\x00", reseal=0), MALFORMED)


@pytest.mark.parametrize("exponent", [1, 2, 65536])
def test_rsa_exponent_not_valid(exponent: int) -> None:
    signed = sign_image(APP, rsa_key())
    at = block_at(signed, 0) + 36 + 384
    bad = patch(signed, at, exponent.to_bytes(4, "little"), reseal=0)
    assert "not valid" in refused(bad, MALFORMED)


def test_ecdsa_point_not_on_the_curve() -> None:
    signed = sign_image(APP, ec_key())
    at = block_at(signed, 0) + 37
    bad = patch(signed, at, bytes([signed[at] ^ 0x01]), reseal=0)
    assert "not a point of P-256" in refused(bad, MALFORMED)


@pytest.mark.parametrize(
    ("scheme", "says"),
    [("ecdsa192", "P-192"), ("ecdsa384", "SHA scheme 1")],
)
def test_other_curves_unsupported(scheme: str, says: str) -> None:
    signed = sign_image(APP, ec_key(scheme=scheme))
    assert says in refused(signed, UNSUPPORTED)


def test_unknown_curve_id() -> None:
    signed = sign_image(APP, ec_key())
    bad = patch(signed, block_at(signed, 0) + 36, b"\x03", reseal=0)
    assert "curve id 3" in refused(bad, UNSUPPORTED)


def test_public_key_digest_of_other_keys_is_refused() -> None:
    with pytest.raises(SignatureError, match="RSA-3072") as caught:
        public_key_digest(rsa.generate_private_key(65537, 2048).public_key())
    assert caught.value.reason == UNSUPPORTED
    with pytest.raises(SignatureError, match="P-256"):
        public_key_digest(ec_key(scheme="ecdsa384").public_key())


# --- the simulator's signer -------------------------------------------------------------------


def test_signer_arguments() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        sign_image(APP)
    with pytest.raises(ValueError, match="empty"):
        sign_image(b"", rsa_key())
    with pytest.raises(ValueError, match="unknown scheme"):
        generate_key("ed25519")
    assert cached_key() is cached_key("release", "rsa3072")


def test_signatures_are_randomized_but_both_verify() -> None:
    """RSA-PSS and ECDSA draw a salt / nonce: two signatures differ, both verify."""
    for key in (rsa_key(), ec_key()):
        first, second = sign_image(APP, key), sign_image(APP, key)
        assert first != second
        for signed in (first, second):
            verify_image(signed, key_digest(key))


# --- the parser never raises anything but SignatureError ----------------------------------------


def _check(data: bytes, key: bytes | None = None) -> None:
    try:
        info = verify_image(data, key)
    except SignatureError:
        return
    assert info.signed_size == len(data) - SECTOR_SIZE


@given(st.binary(max_size=3 * SECTOR_SIZE))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(data)


@given(st.binary(max_size=SECTOR_SIZE), st.booleans())
def test_arbitrary_sector(start: bytes, magic: bool) -> None:
    sector = (b"\xe7" + start[1:] if magic else start).ljust(SECTOR_SIZE, b"\xff")
    _check(APP[:4096] + sector)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["rsa3072", "ecdsa256"]),
    st.lists(
        st.tuples(st.integers(0, SECTOR_SIZE - 1), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_mutated_sector(
    scheme: str, edits: list[tuple[int, int]], reseal: bool
) -> None:
    key = cached_key("release", scheme)
    signed = _signed(scheme)
    for offset, value in edits:
        signed = patch(signed, len(signed) - SECTOR_SIZE + offset, bytes([value]))
    if reseal:
        signed = patch(signed, 0, signed[:1], reseal=0)
    _check(signed, key_digest(key))


@functools.cache
def _signed(scheme: str) -> bytes:
    return sign_image(APP, cached_key("release", scheme))


# --- real espsecure output (opt-in: needs esptool's test/secure_images) ------------------------
#
# esptool's repository (github.com/espressif/esptool, test/secure_images/, see its README.md)
# holds images signed by `espsecure sign-data -v 2` and key digests written by
# `espsecure digest-sbv2-public-key`. They are not copied here; point ESPTOOL_SECURE_IMAGES at
# that directory to check this module against them. Known values (esptool commit bb72741):
# rsa_public_key_digest.bin (digest of rsa_secure_boot_signing_key.pem) and
# ecdsa256_public_key_digest_v2.bin (digest of ecdsa256_secure_boot_signing_key_v2.pem):
ESPTOOL_RSA_KEY_DIGEST = (
    "cb2791a371b0c0322bf7370478ba0962224cab1cf2287879e429673e7da84463"
)
ESPTOOL_ECDSA256_V2_KEY_DIGEST = (
    "bf0f6af68bd36d8b53b3daa933f60a04901b65877e35ea57da735e99b271a744"
)

ESPTOOL = Path(os.environ.get("ESPTOOL_SECURE_IMAGES", "/nonexistent"))
needs_esptool = pytest.mark.skipif(
    not (ESPTOOL / "bootloader_signed_v2_rsa.bin").is_file(),
    reason="set ESPTOOL_SECURE_IMAGES to esptool's test/secure_images",
)


def _esptool_key(name: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((ESPTOOL / name).read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key


@needs_esptool
def test_espsecure_key_digests() -> None:
    assert (
        ESPTOOL / "rsa_public_key_digest.bin"
    ).read_bytes().hex() == ESPTOOL_RSA_KEY_DIGEST
    rsa_pem = _esptool_key("rsa_secure_boot_signing_key.pem").public_key()
    assert isinstance(rsa_pem, rsa.RSAPublicKey)
    assert public_key_digest(rsa_pem).hex() == ESPTOOL_RSA_KEY_DIGEST
    assert key_digest(rsa_pem).hex() == ESPTOOL_RSA_KEY_DIGEST
    v2 = _esptool_key("ecdsa256_secure_boot_signing_key_v2.pem")
    assert (
        ESPTOOL / "ecdsa256_public_key_digest_v2.bin"
    ).read_bytes().hex() == ESPTOOL_ECDSA256_V2_KEY_DIGEST
    assert public_key_digest(v2.public_key()).hex() == ESPTOOL_ECDSA256_V2_KEY_DIGEST


@needs_esptool
@pytest.mark.parametrize("scheme", ["rsa", "ecdsa256"])
def test_espsecure_signed_images(scheme: str) -> None:
    single = (ESPTOOL / f"bootloader_signed_v2_{scheme}.bin").read_bytes()
    multi = (ESPTOOL / f"bootloader_multi_signed_v2_{scheme}.bin").read_bytes()
    names = ["", "2", "3"]
    digests = [
        public_key_digest(
            _esptool_key(f"{scheme}_secure_boot_signing_key{n}.pem").public_key()
        )
        for n in names
    ]
    assert verify_image(single, digests[0]).trusted_block == 0
    info = verify_image(multi, digests[0])
    assert info.key_digests == tuple(digests)
    for index, digest in enumerate(digests):
        assert verify_image(multi, digest, any_block=True).trusted_block == index
    # the simulator writes the same bytes apart from the (randomized) signature
    unsigned = (ESPTOOL / "bootloader_unsigned_v2.bin").read_bytes()
    refused(unsigned, UNSIGNED)
    ours = sign_image(unsigned, _esptool_key(f"{scheme}_secure_boot_signing_key.pem"))
    key_end = len(unsigned) + (812 if scheme == "rsa" else 101)
    assert ours[:key_end] == single[:key_end]
    assert ours[len(unsigned) + 1200 :] == single[len(unsigned) + 1200 :]


@needs_esptool
@pytest.mark.parametrize("scheme", ["ecdsa192", "ecdsa384"])
def test_espsecure_other_curves_unsupported(scheme: str) -> None:
    refused((ESPTOOL / f"bootloader_signed_v2_{scheme}.bin").read_bytes(), UNSUPPORTED)
