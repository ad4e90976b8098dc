"""Secure Boot V2 signatures of ESP-IDF app images, checked before an update is sent.

A release image is signed with `espsecure sign-data --version 2` (firmware/release.sh). The node
(CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT) refuses an unsigned or wrongly signed image only
at `esp_ota_end`, after the whole transfer; `verify_image` gives the same answer before the first
byte is sent, and refuses any image not signed by the key the caller trusts.

Layout (all integers little-endian). Sources: ESP-IDF `components/esp_rom/esp32c6/include/
esp32c6/rom/secure_boot.h` (`struct ets_secure_boot_sig_block`, `struct
ets_secure_boot_signature`, `CRC_SIGN_BLOCK_LEN`, `ETS_SECURE_BOOT_V2_SIGNATURE_MAGIC`),
`.../rom/rsa_pss.h` (`ets_rsa_pubkey_t`), `components/bootloader_support/include/
esp_secure_boot.h` (version values), `components/bootloader_support/src/secure_boot_v2/
secure_boot_signatures_app.c`, `secure_boot_rsa_signature.c`, `secure_boot_ecdsa_signature.c`
(what the app checks during an update), `components/bootloader_support/src/esp_image_format.c`
(`verify_secure_boot_signature`: the image is padded to 4 KB before the sector); esptool
`espsecure/__init__.py` (`sign_secure_boot_v2`, `generate_rsa_signature_block`,
`generate_ecdsa_signature_block`, `_get_sbv2_rsa_primitives`, `_microecc_format`,
`_digest_sbv2_public_key`, `verify_signature_v2`, `signature_info_v2`).

    signed image = contents + signature sector
    contents     = the app image padded with 0xFF to a multiple of 4096 bytes
    sector       = 4096 bytes: up to 3 blocks of 1216 bytes one after another, then 0xFF
    image digest = SHA-256(contents)  (every block carries it; a block's signature signs it)

    block (1216 bytes), RSA-3072 (version 0x02, "secure-boot-v2-rsa3072"):
        0     magic 0xE7
        1     version 0x02
        2..3  reserved, 0
        4     image digest (32)
        36    public key, `ets_rsa_pubkey_t` (776):
                36   n (384, little-endian)
                420  e (u32)
                424  rinv = 2^6144 mod n (384, little-endian)
                808  mdash = -n^-1 mod 2^32 (u32)
        812   RSA-PSS signature (384, little-endian): MGF1-SHA-256, salt 32 bytes, over the
              image digest (espsecure signs the digest Prehashed; the app verifies with
              PSA_ALG_RSA_PSS(SHA-256), whose salt length is the hash length)
        1196  CRC-32 (zlib / esp_rom_crc32_le(0, ...)) of bytes 0..1195
        1200  padding (16), 0

    block, ECDSA (version 0x03; the ESP32-C6 supports P-256, "secure-boot-v2-ecdsa256"):
        0     magic 0xE7
        1     version 0x03
        2     SHA scheme: 0 = SHA-256 (1 = SHA-384 with P-384: another layout, refused here)
        3     reserved, 0
        4     image digest (32)
        36    curve id: 1 = P-192, 2 = P-256 (3 = P-384)
        37    public point: X (32, little-endian), Y (32, little-endian)
        101   signature: r (32, little-endian), s (32, little-endian), ECDSA over the digest
        165   padding (1031), 0
        1196  CRC-32 of bytes 0..1195
        1200  padding (16), 0

    public key digest = SHA-256 of the key as stored in the block: bytes 36..811 (RSA),
    36..100 (ECDSA P-256); what `espsecure digest-sbv2-public-key` prints and what the node
    compares (`sizeof(block.key)` / `sizeof(block.ecdsa.key)` in secure_boot_signatures_app.c).

What the node accepts (secure_boot_signatures_app.c, CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT):
only the **first** block of the new image counts (`secure_boot_num_blocks = 1`), and its key
digest must equal that of the first valid block of the running image; further blocks are
ignored. So `verify_image` by default accepts only a block 0 signed by the expected key;
`any_block=True` accepts the key in any block, as `espsecure verify-signature` and a node with
hardware Secure Boot V2 (trusted digests in eFuse, all three blocks) do.

Stricter than the node: every block present must be well formed, carry the right digest and
verify under its own key, and the sector must be exactly what espsecure writes (blocks, then
0xFF). Curves other than P-256 and the P-384 layout are refused as unsupported (the ESP32-C6
verifies RSA-3072 and ECDSA P-256 app signatures only).
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from typing import Final
import zlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from .exceptions import DcMeshError

SECTOR_SIZE: Final = 4096
BLOCK_SIZE: Final = 1216
MAX_BLOCKS: Final = 3
CRC_LEN: Final = 1196
MAGIC: Final = 0xE7
VERSION_RSA: Final = 0x02
VERSION_ECDSA: Final = 0x03
ECDSA_SHA_256: Final = 0
CURVE_P192: Final = 1
CURVE_P256: Final = 2
RSA_BITS: Final = 3072
SALT_LEN: Final = 32

SCHEME_RSA3072: Final = "secure-boot-v2-rsa3072"
SCHEME_ECDSA256: Final = "secure-boot-v2-ecdsa256"

# Reason codes of SignatureError (stable, snake_case).
UNSIGNED: Final = "unsigned"
MALFORMED: Final = "malformed"
UNSUPPORTED: Final = "unsupported"
BAD_CRC: Final = "bad_crc"
DIGEST_MISMATCH: Final = "digest_mismatch"
BAD_SIGNATURE: Final = "bad_signature"
UNTRUSTED_KEY: Final = "untrusted_key"

_RSA_LEN: Final = RSA_BITS // 8  # 384
_RSA_KEY: Final = slice(36, 36 + 2 * _RSA_LEN + 8)  # ets_rsa_pubkey_t, 776 bytes
_RSA_SIG: Final = slice(_RSA_KEY.stop, _RSA_KEY.stop + _RSA_LEN)  # 812..1195
_EC_KEY: Final = slice(36, 101)  # curve id + point
_EC_SIG: Final = slice(101, 165)
_EC_PAD: Final = slice(165, CRC_LEN)
_TAIL: Final = slice(CRC_LEN + 4, BLOCK_SIZE)

type PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class SignatureError(DcMeshError):
    """The image's Secure Boot V2 signature is missing, malformed, wrong or untrusted.

    `reason` is a stable code: "unsigned", "malformed", "unsupported", "bad_crc",
    "digest_mismatch", "bad_signature" or "untrusted_key"; the message says what was found.
    """

    def __init__(self, reason: str, detail: str) -> None:
        """Keep the stable reason code apart from the human-readable detail."""
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SignatureBlock:
    """One verified signature block of an image."""

    index: int  # 0..2, its place in the signature sector
    scheme: str  # SCHEME_RSA3072 or SCHEME_ECDSA256
    # SHA-256 of its public key, as `espsecure digest-sbv2-public-key` prints it
    key_digest: bytes


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    """What `verify_image` found: every block verified, and the one made by the trusted key."""

    image_digest: bytes  # SHA-256 of the signed contents (the image before the sector)
    signed_size: int  # bytes before the signature sector
    blocks: tuple[SignatureBlock, ...]
    # the index of the block signed by the expected key; None when no key was given
    trusted_block: int | None

    @property
    def key_digests(self) -> tuple[bytes, ...]:
        """The public key digests of the blocks, in order."""
        return tuple(block.key_digest for block in self.blocks)


def public_key_digest(key: PublicKey) -> bytes:
    """The Secure Boot V2 digest of a public key, as `espsecure digest-sbv2-public-key`.

    RSA-3072 or ECDSA P-256 only (the schemes of the ESP32-C6); `SignatureError` otherwise.
    """
    return hashlib.sha256(_key_bytes(key)).digest()


def verify_image(
    data: bytes, key_digest: bytes | None = None, *, any_block: bool = False
) -> SignatureInfo:
    """Check the Secure Boot V2 signature sector of a signed app image.

    Every block present must be well formed (`malformed`, `unsupported`), have a good CRC
    (`bad_crc`), carry the SHA-256 of the contents (`digest_mismatch`) and verify under its
    own key (`bad_signature`); an image without a block is `unsigned`. With `key_digest`, block 0
    must be signed by that key, as on the node (`untrusted_key`); `any_block=True` accepts any.
    """
    size = len(data)
    if size < 2 * SECTOR_SIZE or size % SECTOR_SIZE:
        raise SignatureError(
            UNSIGNED,
            f"the image is not signed: a signed image is a multiple of {SECTOR_SIZE} bytes "
            f"ending with a signature sector, this one has {size} bytes (or it was cut short)",
        )
    view = memoryview(data)
    signed_size = size - SECTOR_SIZE
    sector = view[signed_size:]
    if sector[0] != MAGIC:
        raise SignatureError(
            UNSIGNED,
            "the image is not signed: its last 4096 bytes hold no signature block "
            "(sign it with `espsecure sign-data --version 2`)",
        )
    image_digest = hashlib.sha256(view[:signed_size]).digest()
    blocks: list[SignatureBlock] = []
    for index in range(MAX_BLOCKS):
        raw = bytes(sector[index * BLOCK_SIZE : (index + 1) * BLOCK_SIZE])
        if raw[0] != MAGIC:
            break
        blocks.append(_verify_block(index, raw, image_digest))
    rest = bytes(sector[len(blocks) * BLOCK_SIZE :])
    if rest.count(0xFF) != len(rest):
        raise SignatureError(
            MALFORMED,
            f"the signature sector holds {len(blocks)} block(s) followed by data other than "
            "0xFF padding (a damaged block, or not a sector written by espsecure)",
        )
    trusted = None
    if key_digest is not None:
        trusted = _trusted_block(blocks, key_digest, any_block=any_block)
    return SignatureInfo(image_digest, signed_size, tuple(blocks), trusted)


def _trusted_block(
    blocks: list[SignatureBlock], key_digest: bytes, *, any_block: bool
) -> int:
    for block in blocks if any_block else blocks[:1]:
        if block.key_digest == key_digest:
            return block.index
    found = ", ".join(f"block {b.index}: {b.key_digest.hex()}" for b in blocks)
    later = [b.index for b in blocks[1:] if b.key_digest == key_digest]
    if later:
        raise SignatureError(
            UNTRUSTED_KEY,
            f"the expected key {key_digest.hex()} signed only block {later[0]}; a node "
            f"checks block 0 alone, and block 0 was signed by another key ({found})",
        )
    raise SignatureError(
        UNTRUSTED_KEY,
        f"the image is not signed by the expected key {key_digest.hex()} ({found})",
    )


def _verify_block(index: int, raw: bytes, image_digest: bytes) -> SignatureBlock:
    crc = int.from_bytes(raw[CRC_LEN : CRC_LEN + 4], "little")
    if zlib.crc32(raw[:CRC_LEN]) != crc:
        raise SignatureError(
            BAD_CRC,
            f"signature block {index} has a bad CRC (it was damaged or altered)",
        )
    if any(raw[_TAIL]):
        raise SignatureError(
            MALFORMED, f"signature block {index}: its last 16 bytes are not zero"
        )
    version = raw[1]
    key: PublicKey
    if version == VERSION_RSA:
        key, scheme = _rsa_block_key(index, raw), SCHEME_RSA3072
        key_bytes = raw[_RSA_KEY]
    elif version == VERSION_ECDSA:
        key, scheme = _ecdsa_block_key(index, raw), SCHEME_ECDSA256
        key_bytes = raw[_EC_KEY]
    else:
        raise SignatureError(
            MALFORMED,
            f"signature block {index} has version {version:#04x}, not "
            f"{VERSION_RSA:#04x} (RSA) or {VERSION_ECDSA:#04x} (ECDSA)",
        )
    if raw[4:36] != image_digest:
        raise SignatureError(
            DIGEST_MISMATCH,
            f"signature block {index} was made for another image (its digest "
            f"{raw[4:36].hex()} is not the image's {image_digest.hex()}): the image "
            "was altered after signing",
        )
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(
                raw[_RSA_SIG][::-1],
                image_digest,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=SALT_LEN),
                utils.Prehashed(hashes.SHA256()),
            )
        else:
            signature = raw[_EC_SIG]
            der = utils.encode_dss_signature(
                int.from_bytes(signature[:32], "little"),
                int.from_bytes(signature[32:], "little"),
            )
            key.verify(der, image_digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise SignatureError(
            BAD_SIGNATURE,
            f"the signature of block {index} does not verify with its own public key "
            f"({scheme}): the signature was altered or made over other data",
        ) from None
    return SignatureBlock(index, scheme, hashlib.sha256(key_bytes).digest())


def _rsa_block_key(index: int, raw: bytes) -> rsa.RSAPublicKey:
    if raw[2:4] != b"\0\0":
        raise SignatureError(
            MALFORMED, f"signature block {index}: its reserved bytes 2..3 are not zero"
        )
    key = raw[_RSA_KEY]
    n = int.from_bytes(key[:_RSA_LEN], "little")
    e = int.from_bytes(key[_RSA_LEN : _RSA_LEN + 4], "little")
    if n.bit_length() != RSA_BITS:
        raise SignatureError(
            MALFORMED,
            f"signature block {index}: its RSA modulus has {n.bit_length()} bits, "
            f"not {RSA_BITS}",
        )
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as err:
        raise SignatureError(
            MALFORMED,
            f"signature block {index}: its RSA public key is not valid ({err})",
        ) from None


def _ecdsa_block_key(index: int, raw: bytes) -> ec.EllipticCurvePublicKey:
    sha, curve = raw[2], raw[36]
    if sha != ECDSA_SHA_256:
        raise SignatureError(
            UNSUPPORTED,
            f"signature block {index} is an ECDSA block with SHA scheme {sha} "
            "(P-384 / SHA-384, or unknown); the ESP32-C6 verifies ECDSA P-256 only",
        )
    if curve != CURVE_P256:
        name = "P-192" if curve == CURVE_P192 else f"curve id {curve}"
        raise SignatureError(
            UNSUPPORTED,
            f"signature block {index} is signed with ECDSA {name}; "
            "the ESP32-C6 verifies ECDSA P-256 only",
        )
    if raw[3] or any(raw[_EC_PAD]):
        raise SignatureError(
            MALFORMED, f"signature block {index}: its reserved bytes are not zero"
        )
    point = raw[37:101]
    x = int.from_bytes(point[:32], "little")
    y = int.from_bytes(point[32:], "little")
    try:
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except ValueError:
        raise SignatureError(
            MALFORMED,
            f"signature block {index}: its public key is not a point of P-256",
        ) from None


def _key_bytes(key: PublicKey) -> bytes:
    """The public key as a signature block stores it (`ets_rsa_pubkey_t`, or curve + point)."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size != RSA_BITS:
            raise SignatureError(
                UNSUPPORTED,
                f"an RSA key of {key.key_size} bits: Secure Boot V2 uses RSA-{RSA_BITS}",
            )
        numbers = key.public_numbers()
        n = numbers.n
        rinv = (1 << (2 * RSA_BITS)) % n
        mdash = -pow(n, -1, 1 << 32) & 0xFFFFFFFF
        return (
            n.to_bytes(_RSA_LEN, "little")
            + numbers.e.to_bytes(4, "little")
            + rinv.to_bytes(_RSA_LEN, "little")
            + mdash.to_bytes(4, "little")
        )
    if not isinstance(key.curve, ec.SECP256R1):
        raise SignatureError(
            UNSUPPORTED,
            f"an ECDSA key on {key.curve.name}: the ESP32-C6 verifies ECDSA P-256 only",
        )
    point = key.public_numbers()
    return (
        bytes([CURVE_P256])
        + point.x.to_bytes(32, "little")
        + point.y.to_bytes(32, "little")
    )
