"""The node side of authenticated sessions (docs/protocol-v1.md section 7), as v1 nodes run it.

Each GATT connection has its own `SessionState`; the node's `RateLimiter` is shared by all of
them. `authorise` takes a write and returns the command to run, or None when it answered itself
(an AUTH step, or an error). The crypto comes from the integration's library (one
implementation, checked against firmware/vectors/auth.tsv like the firmware's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import hmac
import re
from typing import Final

from custom_components.dc_mesh.dcmesh.auth import (
    client_proof,
    command_mac,
    node_proof,
    session_key,
)

TOKENS: Final = 5
REFILL_SECONDS: Final = 10.0

_HELLO_RE: Final = re.compile(rb"AUTH:([0-9a-fA-F]{16})")
_PROOF_RE: Final = re.compile(rb"AUTH:P:([0-9a-fA-F]{16})")
_WRAPPED_RE: Final = re.compile(
    rb"S:([0-9a-fA-F]{8}):([0-9a-fA-F]{16}):(.*)", re.DOTALL
)
_STATE_CHANGING: Final = frozenset({b"DUTY", b"RAMP", b"ON", b"STOP", b"OFF"})


@dataclass(slots=True)
class SessionState:
    """One connection's session: a pending challenge, or an established session."""

    client_nonce: bytes | None = None
    node_nonce: bytes | None = None
    key: bytes | None = None  # the session key once established
    counter: int = 0


class RateLimiter:
    """5 tokens per node; a failed proof or MAC costs one; one comes back every 10 s."""

    def __init__(self, now: Callable[[], float]) -> None:
        """Start full."""
        self._now = now
        self._tokens = float(TOKENS)
        self._at = now()

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(TOKENS, self._tokens + (now - self._at) / REFILL_SECONDS)
        self._at = now

    def locked(self) -> bool:
        """Whether no token is left."""
        self._refill()
        return self._tokens < 1

    def fail(self) -> None:
        """Take a token for a failure."""
        self._refill()
        self._tokens = max(0.0, self._tokens - 1)


def needs_session(command: bytes) -> bool:
    """Whether a plain command changes a load's state (DUTY, RAMP/ON, STOP/OFF)."""
    parts = command.split(b":")
    return len(parts) >= 2 and parts[1].upper() in _STATE_CHANGING


def authorise(
    raw: bytes,
    *,
    mesh_key: bytes,
    state: SessionState,
    limiter: RateLimiter,
    draw_nonce: Callable[[], bytes],
    answer: Callable[[str], None],
) -> bytes | None:
    """Handle one write of a node that holds `mesh_key`; the command to run, or None."""
    if raw.startswith(b"AUTH:P:") or raw == b"AUTH:P":
        _proof(raw, mesh_key, state, limiter, answer)
        return None
    if raw.startswith(b"AUTH:"):
        _hello(raw, mesh_key, state, limiter, draw_nonce=draw_nonce, answer=answer)
        return None
    if raw.startswith(b"S:"):
        return _unwrap(raw, state, limiter, answer)
    if needs_session(raw):
        answer("ERROR:AUTH:REQUIRED")
        return None
    return raw


def _hello(
    raw: bytes,
    mesh_key: bytes,
    state: SessionState,
    limiter: RateLimiter,
    *,
    draw_nonce: Callable[[], bytes],
    answer: Callable[[str], None],
) -> None:
    match = _HELLO_RE.fullmatch(raw)
    if match is None:
        answer("ERROR:AUTH:MALFORMED")
        return
    state.key = None  # a new hello ends the current session
    state.client_nonce = state.node_nonce = None
    if limiter.locked():
        answer("ERROR:AUTH:LOCKED")
        return
    client_nonce = bytes.fromhex(match[1].decode())
    node_nonce = draw_nonce()
    state.client_nonce, state.node_nonce = client_nonce, node_nonce
    proof = node_proof(mesh_key, client_nonce, node_nonce)
    answer(f"AUTH:N:{node_nonce.hex()}:{proof.hex()}")


def _proof(
    raw: bytes,
    mesh_key: bytes,
    state: SessionState,
    limiter: RateLimiter,
    answer: Callable[[str], None],
) -> None:
    match = _PROOF_RE.fullmatch(raw)
    if match is None:
        answer("ERROR:AUTH:MALFORMED")
        return
    client_nonce, node_nonce = state.client_nonce, state.node_nonce
    if client_nonce is None or node_nonce is None:
        answer("ERROR:AUTH:NO_SESSION")
        return
    state.client_nonce = state.node_nonce = None  # one try per challenge
    expected = client_proof(mesh_key, client_nonce, node_nonce)
    if not hmac.compare_digest(bytes.fromhex(match[1].decode()), expected):
        limiter.fail()
        answer("ERROR:AUTH:BAD_PROOF")
        return
    state.key = session_key(mesh_key, client_nonce, node_nonce)
    state.counter = 0
    answer("AUTH:OK")


def _unwrap(
    raw: bytes,
    state: SessionState,
    limiter: RateLimiter,
    answer: Callable[[str], None],
) -> bytes | None:
    match = _WRAPPED_RE.fullmatch(raw)
    counter = int(match[1], 16) if match is not None else 0
    if match is None or counter == 0:
        answer("ERROR:AUTH:MALFORMED")
        return None
    if state.key is None:
        answer("ERROR:AUTH:NO_SESSION")
        return None
    if counter <= state.counter:
        answer("ERROR:AUTH:REPLAY")
        return None
    command = match[3]
    mac = bytes.fromhex(match[2].decode())
    if not hmac.compare_digest(mac, command_mac(state.key, counter, command)):
        limiter.fail()
        answer("ERROR:AUTH:BAD_MAC")
        return None
    state.counter = counter
    return command
