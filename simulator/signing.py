"""Signed images for the simulator and the tests, made the way `espsecure sign-data -v 2` does.

Written from esptool's `espsecure/__init__.py` (`sign_secure_boot_v2`,
`generate_signature_block_using_private_key`, `generate_rsa_signature_block`,
`generate_ecdsa_signature_block`, `validate_signature_block`, `_digest_sbv2_public_key`)
independently of `dcmesh.signing`, which checks what this writes:

- the image is padded with 0xFF to a multiple of 4096 bytes (unless `append` finds it signed
  already: then its valid blocks are kept and the new ones follow, `--append-signatures`);
- one 1216-byte block per key: magic 0xE7, version 2 (RSA) or 3 (ECDSA), SHA-256 of the padded
  image, the public key and the signature as little-endian numbers, CRC-32 of the first 1196
  bytes, 16 zero bytes;
- a 4096-byte sector: the blocks (3 at most), then 0xFF.

Keys: RSA-3072 (the project's scheme; PSS, MGF1-SHA-256, salt 32), or ECDSA P-256 (P-192 and
P-384, which espsecure also writes, are here only to show that the C6 check refuses them).
Generating an RSA-3072 key takes a while: `cached_key` keeps one per name for the process.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from typing import Final
import zlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

SECTOR: Final = 4096
BLOCK: Final = 1216
MAX_BLOCKS: Final = 3
MAGIC: Final = 0xE7
RSA_VERSION: Final = 0x02
ECDSA_VERSION: Final = 0x03
SCHEMES: Final = ("rsa3072", "ecdsa192", "ecdsa256", "ecdsa384")

type SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
type VerifyingKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# curve -> (curve id in the block, byte length of a coordinate)
_CURVES: Final[dict[str, tuple[int, int]]] = {
    "secp192r1": (1, 24),
    "secp256r1": (2, 32),
    "secp384r1": (3, 48),
}


def generate_key(scheme: str = "rsa3072") -> SigningKey:
    """A new signing key, as `espsecure generate-signing-key -v 2 --scheme <scheme>`."""
    if scheme == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    curves: dict[str, ec.EllipticCurve] = {
        "ecdsa192": ec.SECP192R1(),
        "ecdsa256": ec.SECP256R1(),
        "ecdsa384": ec.SECP384R1(),
    }
    if scheme not in curves:
        raise ValueError(f"unknown scheme {scheme!r}, one of {', '.join(SCHEMES)}")
    return ec.generate_private_key(curves[scheme])


def cached_key(name: str = "release", scheme: str = "rsa3072") -> SigningKey:
    """One key per (name, scheme) for the whole process: tests share them."""
    return _cached_key(name, scheme)


@functools.cache
def _cached_key(name: str, scheme: str) -> SigningKey:
    return generate_key(scheme)


def key_digest(key: SigningKey | VerifyingKey) -> bytes:
    """SHA-256 of the public key as a block stores it: `espsecure digest-sbv2-public-key`."""
    public = (
        key.public_key()
        if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        else key
    )
    return hashlib.sha256(_public_key_field(public)).digest()


def sign_image(image: bytes, *keys: SigningKey, append: bool = False) -> bytes:
    """`image` with a signature sector holding one block per key (after any it keeps)."""
    if not keys:
        raise ValueError("sign_image needs at least one key")
    contents = bytes(image)
    kept: list[bytes] = []
    if len(contents) % SECTOR:
        contents += b"\xff" * (SECTOR - len(contents) % SECTOR)
    elif append:
        kept = _valid_blocks(contents)
        if kept:
            contents = contents[:-SECTOR]
    if not contents:
        raise ValueError("nothing to sign: the image is empty")
    if len(kept) + len(keys) > MAX_BLOCKS:
        raise ValueError(
            f"{len(kept)} block(s) kept + {len(keys)} key(s) > {MAX_BLOCKS} blocks"
        )
    digest = hashlib.sha256(contents).digest()
    blocks = kept + [_block(key, contents, digest) for key in keys]
    sector = b"".join(blocks)
    return contents + sector + b"\xff" * (SECTOR - len(sector))


def _valid_blocks(contents: bytes) -> list[bytes]:
    """The leading valid blocks of a signed image's sector (espsecure's check: magic, CRC)."""
    sector = contents[-SECTOR:]
    found = []
    for index in range(MAX_BLOCKS):
        block = sector[index * BLOCK : (index + 1) * BLOCK]
        (crc,) = struct.unpack_from("<I", block, 1196)
        if (
            block[0] != MAGIC
            or block[1] not in (RSA_VERSION, ECDSA_VERSION)
            or zlib.crc32(block[:1196]) != crc
        ):
            break
        found.append(block)
    return found


def _block(key: SigningKey, contents: bytes, digest: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(
            digest,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            utils.Prehashed(hashes.SHA256()),
        )
        body = (
            struct.pack("<BBxx32s", MAGIC, RSA_VERSION, digest)
            + _public_key_field(key.public_key())
            + signature[::-1]
        )
    else:
        curve_id, length = _CURVES[key.curve.name]
        sha_scheme, hash_algorithm, block_digest = (
            (1, hashes.SHA384(), hashlib.sha384(contents).digest())
            if curve_id == 3
            else (0, hashes.SHA256(), digest)
        )
        der = key.sign(block_digest, ec.ECDSA(utils.Prehashed(hash_algorithm)))
        r, s = utils.decode_dss_signature(der)
        fields = (
            struct.pack("<BBBx", MAGIC, ECDSA_VERSION, sha_scheme)
            + block_digest
            + _public_key_field(key.public_key())
            + _le(r, length)
            + _le(s, length)
        )
        body = fields + bytes(1196 - len(fields))
    assert len(body) == 1196
    return body + struct.pack("<I", zlib.crc32(body)) + bytes(16)


def _public_key_field(key: VerifyingKey) -> bytes:
    """The key as the block holds it: `ets_rsa_pubkey_t`, or curve id + X + Y (+ zeros)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        n = numbers.n
        rinv = pow(2, 2 * key.key_size, n)
        mdash = (-pow(n, -1, 1 << 32)) % (1 << 32)
        return struct.pack("<384sI384sI", _le(n, 384), numbers.e, _le(rinv, 384), mdash)
    curve_id, length = _CURVES[key.curve.name]
    point = key.public_numbers()
    xy = _le(point.x, length) + _le(point.y, length)
    # P-192 points are padded to the 64 bytes of a P-256 point; P-384 takes 96
    return bytes([curve_id]) + xy.ljust(96 if curve_id == 3 else 64, b"\0")


def _le(value: int, length: int) -> bytes:
    """Big-endian bytes reversed, as espsecure writes numbers (`int_to_bytes(v)[::-1]`)."""
    return value.to_bytes(length, "big")[::-1]
