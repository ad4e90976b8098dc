"""Authenticated sessions of protocol v1 (docs/protocol-v1.md section 7): pure, no I/O.

A mesh key (16 bytes) is derived on every node from the mesh's application key; the user
enters it once. Client and node prove to each other that they hold it (HMAC-SHA256 over fresh
nonces of both), derive a session key, and every state-changing command then carries a
counter and a MAC under that key, so a recorded command is refused in this session and in any
later one. The crypto is the standard library's HMAC and `cryptography`'s HKDF.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import hmac
import re
import secrets
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .exceptions import AuthenticationError, CommandError, ProtocolError

KEY_LEN: Final = 16
NONCE_LEN: Final = 8
PROOF_LEN: Final = 8
MAC_LEN: Final = 8
COUNTER_MAX: Final = 0xFFFFFFFF

KDF_INFO: Final = b"DC Mesh v1 mesh key"
NODE_LABEL: Final = b"DCM1 node"
CLIENT_LABEL: Final = b"DCM1 client"
SESSION_LABEL: Final = b"DCM1 session"
COMMAND_LABEL: Final = b"DCM1 cmd"

# Commands that change the state of a load: only these need a session.
STATE_CHANGING: Final = frozenset({b"DUTY", b"RAMP", b"ON", b"STOP", b"OFF"})

_KEY_INPUT_RE: Final = re.compile(r"[0-9a-f]{32}")
_CHALLENGE_RE: Final = re.compile(
    r"AUTH:N:(?P<nn>[0-9a-f]{16}):(?P<proof>[0-9a-f]{16})"
)


def derive_mesh_key(app_key: bytes, network_id: bytes) -> bytes:
    """The mesh key: HKDF-SHA256(IKM = AppKey, salt = Network ID, info, L = 16)."""
    if len(app_key) != 16 or len(network_id) != 8:
        raise ValueError("the AppKey has 16 bytes, the Network ID 8")
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_LEN, salt=network_id, info=KDF_INFO
    ).derive(app_key)


def format_key(key: bytes) -> str:
    """How the provisioner shows a key: lower-case hex in 8 groups of 4, `-` between."""
    text = key.hex()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_key(text: str) -> bytes:
    """A key as a user types or scans it: hex, any case, spaces and dashes ignored.

    The provisioner's QR code holds `DCMESH1:<mesh id>:<key>`; that form is taken too.
    Raises ValueError for anything that is not 16 bytes of hex.
    """
    value = text.strip()
    if value.upper().startswith("DCMESH1:"):
        value = value.rpartition(":")[2]
    value = re.sub(r"[\s-]", "", value).lower()
    if not _KEY_INPUT_RE.fullmatch(value):
        raise ValueError("a mesh key is 32 hexadecimal digits")
    return bytes.fromhex(value)


def _mac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def node_proof(key: bytes, client_nonce: bytes, node_nonce: bytes) -> bytes:
    """What the node sends to prove it holds the mesh key."""
    return _mac(key, NODE_LABEL, client_nonce, node_nonce)[:PROOF_LEN]


def client_proof(key: bytes, client_nonce: bytes, node_nonce: bytes) -> bytes:
    """What the client sends to prove it holds the mesh key."""
    return _mac(key, CLIENT_LABEL, client_nonce, node_nonce)[:PROOF_LEN]


def session_key(key: bytes, client_nonce: bytes, node_nonce: bytes) -> bytes:
    """The key of one session's command MACs."""
    return _mac(key, SESSION_LABEL, client_nonce, node_nonce)[:KEY_LEN]


def command_mac(session: bytes, counter: int, command: bytes) -> bytes:
    """The MAC of an authenticated command: counter (u32 big-endian) and exact bytes."""
    return _mac(session, COMMAND_LABEL, counter.to_bytes(4, "big"), command)[:MAC_LEN]


def wrap_command(session: bytes, counter: int, command: bytes) -> bytes:
    """`S:<counter, 8 hex>:<MAC, 16 hex>:<command>`, what an authenticated client writes."""
    if not 0 < counter <= COUNTER_MAX:
        raise CommandError(f"session counter {counter} is out of range")
    mac = command_mac(session, counter, command)
    return b"S:%08x:%s:%s" % (counter, mac.hex().encode(), command)


def hello(client_nonce: bytes) -> bytes:
    """The client's first handshake message."""
    return b"AUTH:" + client_nonce.hex().encode()


def parse_challenge(message: str) -> tuple[bytes, bytes]:
    """The node's nonce and proof from `AUTH:N:<nn>:<proof>`."""
    match = _CHALLENGE_RE.fullmatch(message)
    if match is None:
        raise ProtocolError("bad_auth", message)
    return bytes.fromhex(match["nn"]), bytes.fromhex(match["proof"])


def needs_session(payload: bytes) -> bool:
    """Whether a command as written needs a session on a node that holds a mesh key.

    `TARGET:COMMAND[:VALUE]` when COMMAND changes a load's state (section 7.2), and every
    firmware update command but `OTA:STATUS` (first field `OTA`, any case; section 9.2).
    """
    parts = payload.split(b":")
    if parts[0].upper() == b"OTA":
        return not (len(parts) >= 2 and parts[1].upper() == b"STATUS")
    return len(parts) >= 2 and parts[1].upper() in STATE_CHANGING


@dataclass(slots=True)
class ClientSession:
    """The client side of one session: the handshake, then counters and MACs."""

    key: bytes
    client_nonce: bytes = field(default_factory=lambda: secrets.token_bytes(NONCE_LEN))
    session: bytes | None = None
    counter: int = 0

    def hello(self) -> bytes:
        """The first message."""
        return hello(self.client_nonce)

    def answer(self, challenge: str) -> bytes:
        """Check the node's proof; return the client's proof message.

        Raises `AuthenticationError` when the node does not prove the mesh key.
        """
        node_nonce, proof = parse_challenge(challenge)
        if not hmac.compare_digest(
            proof, node_proof(self.key, self.client_nonce, node_nonce)
        ):
            raise AuthenticationError("the node does not prove the mesh key")
        self.session = session_key(self.key, self.client_nonce, node_nonce)
        return (
            b"AUTH:P:"
            + client_proof(self.key, self.client_nonce, node_nonce).hex().encode()
        )

    def wrap(self, command: bytes) -> bytes:
        """The authenticated form of `command`, with the next counter."""
        if self.session is None:
            raise CommandError("no session")
        self.counter += 1
        return wrap_command(self.session, self.counter, command)
