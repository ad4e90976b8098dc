"""Errors raised by the DC Mesh protocol library."""

from __future__ import annotations


class DcMeshError(Exception):
    """Root of every error the library raises."""


class ProtocolError(DcMeshError):
    """Malformed input from the device (a chunk, a message, an advertisement).

    `reason` is a stable snake_case code, such as "bad_utf8" or "out_of_range".
    """

    def __init__(self, reason: str, detail: str | None = None) -> None:
        """Keep the stable reason code apart from the human-readable detail."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class CommandError(DcMeshError):
    """A command that cannot be encoded (bad target, duty out of range, too long)."""


class DeviceError(DcMeshError):
    """The node answered `ERROR:<kind>`."""

    def __init__(self, kind: str, detail: str | None = None) -> None:
        """Keep the error kind and its optional detail (`UNKNOWN_CMD:<detail>`)."""
        super().__init__(f"{kind}:{detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class NotReadyError(DeviceError):
    """ERROR:NOT_READY: the node's mesh is not ready yet."""


class InvalidNodeError(DeviceError):
    """ERROR:INVALID_NODE: the node id was refused."""


class MeshSendError(DeviceError):
    """ERROR:MESH_SEND_FAIL: the node could not send over the mesh."""


class MeshTimeoutError(DeviceError):
    """ERROR:MESH_TIMEOUT or TIMEOUT:0x<addr>: a mesh node did not answer."""

    def __init__(
        self,
        kind: str = "MESH_TIMEOUT",
        detail: str | None = None,
        *,
        node_id: int | None = None,
    ) -> None:
        """Record which node did not answer, when the reply names it."""
        super().__init__(kind, detail)
        self.node_id = node_id


class FallbackModeError(DeviceError):
    """`SENT:ON(fallback)`/`SENT:OFF(fallback)`: the mesh's vendor models are unbound.

    A v0.7 node in this state turns every command but STOP/OFF into Generic OnOff = 1: the
    load goes to 100 %. Whatever was asked, it was not done, and nothing should be sent to
    the mesh until it reports MESH_READY:VENDOR.
    """

    def __init__(self, command: str) -> None:
        """Record the fallback acknowledgement the node sent."""
        super().__init__("FALLBACK", command)


class ResponseTimeoutError(DcMeshError):
    """No answer arrived before our own deadline."""


class LinkError(DcMeshError):
    """The BLE link could not be set up or was lost."""


class NotConnectedError(LinkError):
    """An operation needs a connected link."""


class CharacteristicMissingError(LinkError):
    """The data or command characteristic is missing, even after clearing the cache."""


class AuthenticationError(DcMeshError):
    """The mesh key did not match: the node cannot prove it, or it refused our proof.

    A node that cannot prove the key is no gateway of this mesh (a stranger copying its
    id, or the mesh was provisioned again with new keys).
    """


class KeyRequiredError(AuthenticationError):
    """The node requires a session (v1, capability AUTH) and no mesh key is known."""


class AuthRefusedError(DeviceError):
    """`ERROR:AUTH:<reason>`: the node refused a handshake step or a command.

    Reasons: REQUIRED (no session), NO_SESSION, BAD_PROOF, BAD_MAC, REPLAY, LOCKED (too
    many failures), MALFORMED.
    """
