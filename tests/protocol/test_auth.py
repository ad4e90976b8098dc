"""Authenticated sessions (protocol section 7): the library and the simulated v1 node against
the shared vectors, then the rules a stranger runs into."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import bleak_retry_connector
from hypothesis import given, strategies as st
import pytest

from custom_components.dc_mesh.dcmesh import (
    AuthenticationError,
    DcMeshLink,
    KeyRequiredError,
    derive_mesh_key,
    format_key,
    parse_key,
)
from custom_components.dc_mesh.dcmesh.auth import (
    ClientSession,
    client_proof,
    node_proof,
    session_key,
    wrap_command,
)
from simulator.auth import REFILL_SECONDS
from simulator.bleak_backend import SimBleakClient, discover
from simulator.mesh import GattSession, Latencies, Mesh, build_mesh

from .vectors import load

VECTORS = load("auth.tsv")


def _rows(section: str) -> list[list[str]]:
    return [columns for name, columns in VECTORS if name == section]


@pytest.mark.parametrize("row", _rows("kdf"), ids=lambda row: row[2][:8])
def test_mesh_key_derivation(row: list[str]) -> None:
    app_key, network_id, key, shown = row
    derived = derive_mesh_key(bytes.fromhex(app_key), bytes.fromhex(network_id))
    assert derived.hex() == key
    assert format_key(derived) == shown
    assert parse_key(shown) == derived
    assert parse_key(shown.upper().replace("-", " ")) == derived


@pytest.mark.parametrize("row", _rows("proof"), ids=lambda row: row[1])
def test_proofs_and_session_key(row: list[str]) -> None:
    key, nc, nn, proof_n, proof_c, session = (bytes.fromhex(c) for c in row)
    assert node_proof(key, nc, nn) == proof_n
    assert client_proof(key, nc, nn) == proof_c
    assert session_key(key, nc, nn) == session


@pytest.mark.parametrize("row", _rows("command"), ids=lambda row: row[2])
def test_command_wrapping(row: list[str]) -> None:
    session, counter, command, written = row
    wrapped = wrap_command(bytes.fromhex(session), int(counter), command.encode())
    assert wrapped.decode() == written
    assert len(wrapped) <= 64
    assert b"+" not in wrapped


@pytest.mark.parametrize(
    "text",
    ["", "1234", "g" * 32, "00" * 15, "00" * 17, "DCMESH1:1a2b3c4d:00", "00 11 zz"],
)
def test_bad_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="32 hexadecimal digits"):
        parse_key(text)


@given(st.binary(min_size=16, max_size=16))
def test_any_key_survives_its_shown_and_qr_forms(key: bytes) -> None:
    assert parse_key(format_key(key)) == key
    assert parse_key(f"DCMESH1:1a2b3c4d:{key.hex()}") == key


def test_client_refuses_a_node_without_the_key() -> None:
    session = ClientSession(bytes(16))
    nn = bytes(range(8))
    wrong = node_proof(bytes(range(16)), session.client_nonce, nn)
    with pytest.raises(AuthenticationError):
        session.answer(f"AUTH:N:{nn.hex()}:{wrong.hex()}")
    assert session.session is None


# --- the simulated node ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def simulated_bleak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let bleak-retry-connector build clients that connect through the simulator."""
    monkeypatch.setattr(
        bleak_retry_connector, "BleakClientWithServiceCache", SimBleakClient
    )


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    mesh = build_mesh(3, 1, latencies=Latencies.fast(), seed=3)
    yield mesh
    mesh.shutdown()


class Client:
    """A raw GATT client of a simulated node: writes, and the messages it gets back."""

    def __init__(self, session: GattSession) -> None:
        self.session = session
        self.messages: list[str] = []
        self._partial = b""
        session.subscribe(self._on_chunk)
        self.messages.clear()

    def _on_chunk(self, chunk: bytes) -> None:
        if chunk.startswith(b"+"):
            self._partial += chunk[1:]
            return
        self.messages.append((self._partial + chunk).decode())
        self._partial = b""

    async def send(self, text: str) -> list[str]:
        """Write; return what came back within a moment."""
        self.messages.clear()
        await self.session.write(text.encode())
        await asyncio.sleep(0.05)
        return [m for m in self.messages if m != "GATEWAY_CONNECTED"]


async def test_session_vectors(mesh: Mesh) -> None:
    """The scripted session of auth.tsv, replayed against a simulated v1 node."""
    rows = _rows("session")
    assert rows[0][0] == "key"
    node = mesh.node(0)
    node.mesh_key = bytes.fromhex(rows[0][1])
    client = Client(await mesh.connect(node.mac))
    for nonce, write, reply in rows[1:]:
        if nonce != "-":
            node.nonces.append(bytes.fromhex(nonce))
        answers = await client.send(write)
        auth = [m for m in answers if m.startswith(("AUTH:", "ERROR:"))]
        if reply == "-":
            assert not auth, (write, answers)
            assert answers, write  # carried out: a reading, SENT, INFO ...
        else:
            assert auth[:1] == [reply], (write, answers)


async def test_stranger_reads_but_cannot_drive(mesh: Mesh) -> None:
    stranger = Client(await mesh.connect(mesh.node(1).mac))
    assert any(m.startswith("NODE1:DATA") for m in await stranger.send("1:READ"))
    for command in ("1:DUTY:100", "ALL:ON", "2:RAMP", "ALL:OFF", "1:stop"):
        assert await stranger.send(command) == ["ERROR:AUTH:REQUIRED"]
    assert mesh.node(1).duty == 0
    assert mesh.radio_log.count((mesh.node(1).address, mesh.node(2).address, "r")) == 0


async def test_recorded_command_is_refused_later_and_elsewhere(mesh: Mesh) -> None:
    """A command sniffed from the owner's session, replayed: same session, new one, other client."""
    owner_gatt = await mesh.connect(mesh.node(0).mac)
    owner = Client(owner_gatt)
    session = ClientSession(mesh.mesh_key)
    (challenge,) = await owner.send(session.hello().decode())
    assert await owner.send(session.answer(challenge).decode()) == ["AUTH:OK"]
    recorded = session.wrap(b"1:DUTY:70").decode()
    assert "ERROR" not in " ".join(await owner.send(recorded))
    assert mesh.node(1).duty == 70
    assert await owner.send(recorded) == ["ERROR:AUTH:REPLAY"]
    # The owner reconnects: a new session, the recording means nothing there either.
    owner_gatt.disconnect()
    owner = Client(await mesh.connect(mesh.node(0).mac))
    assert await owner.send(recorded) == ["ERROR:AUTH:NO_SESSION"]
    fresh = ClientSession(mesh.mesh_key)
    (challenge,) = await owner.send(fresh.hello().decode())
    await owner.send(fresh.answer(challenge).decode())
    assert await owner.send(recorded) == ["ERROR:AUTH:BAD_MAC"]
    # A second client of the same node has no session of its own.
    mesh.node(0).max_connections = 2
    second = Client(await mesh.connect(mesh.node(0).mac))
    assert await second.send(recorded) == ["ERROR:AUTH:NO_SESSION"]
    assert await second.send("1:DUTY:10") == ["ERROR:AUTH:REQUIRED"]
    assert mesh.node(1).duty == 70


async def test_guessing_locks_the_node_for_a_while(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    node = mesh.node(0)
    monkeypatch.setattr(node.auth_limiter, "_now", lambda: now[0])
    node.auth_limiter._at = now[0]
    guesser = Client(await mesh.connect(node.mac))
    for _ in range(5):
        (challenge,) = await guesser.send(f"AUTH:{'00' * 8}")
        assert challenge.startswith("AUTH:N:")
        assert await guesser.send(f"AUTH:P:{'00' * 8}") == ["ERROR:AUTH:BAD_PROOF"]
    assert await guesser.send(f"AUTH:{'00' * 8}") == ["ERROR:AUTH:LOCKED"]
    # Locked for everyone, the owner too, until a token comes back.
    owner = ClientSession(mesh.mesh_key)
    assert await guesser.send(owner.hello().decode()) == ["ERROR:AUTH:LOCKED"]
    now[0] += REFILL_SECONDS
    (challenge,) = await guesser.send(owner.hello().decode())
    assert await guesser.send(owner.answer(challenge).decode()) == ["AUTH:OK"]


# --- the link -----------------------------------------------------------------------


def _device(mesh: Mesh, node_id: int):
    mac = mesh.node(node_id).mac
    return next(device for device, _ in discover(mesh) if device.address == mac)


async def test_link_authenticates_and_drives(mesh: Mesh) -> None:
    link = DcMeshLink(_device(mesh, 0), mesh_key=mesh.mesh_key, reply_timeout=1.0)
    await link.connect()
    try:
        assert link.requires_key
        assert link.authenticated
        assert (await link.set_duty_confirmed(1, 30)).duty == 30
        await link.stop("ALL")
    finally:
        await link.disconnect()
    assert not link.authenticated


async def test_link_without_or_with_a_wrong_key(mesh: Mesh) -> None:
    without = DcMeshLink(_device(mesh, 0), reply_timeout=1.0)
    with pytest.raises(KeyRequiredError):
        await without.connect()
    assert not without.is_connected
    wrong = DcMeshLink(_device(mesh, 0), mesh_key=bytes(16), reply_timeout=1.0)
    with pytest.raises(AuthenticationError):
        await wrong.connect()
    assert not wrong.is_connected


async def test_link_refuses_a_rogue_node(mesh: Mesh) -> None:
    """A node of another mesh (another key) posing with our mesh's id cannot prove it."""
    rogue = build_mesh(1, 0, latencies=Latencies.fast(), seed=99)
    rogue.mesh_id = mesh.mesh_id
    link = DcMeshLink(_device(rogue, 0), mesh_key=mesh.mesh_key, reply_timeout=1.0)
    with pytest.raises(AuthenticationError, match="does not prove"):
        await link.connect()
    rogue.shutdown()
