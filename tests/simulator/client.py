"""A test GATT client for the simulator: reassembles '+' chunks into messages."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulator.mesh import GattSession, Mesh


class Collector:
    """A GATT client that reassembles '+' chunks into messages, like any reader."""

    def __init__(self, session: GattSession) -> None:
        self.session = session
        self.chunks: list[bytes] = []
        self.messages: list[bytes] = []
        self._partial = b""
        session.subscribe(self._on_chunk)

    def _on_chunk(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        if chunk.startswith(b"+"):
            self._partial += chunk[1:]
            return
        self.messages.append(self._partial + chunk)
        self._partial = b""

    @property
    def lines(self) -> list[str]:
        return [message.decode("ascii", errors="replace") for message in self.messages]

    async def send(self, command: str, settle: float = 0.03) -> list[str]:
        """Write a command, wait `settle` seconds, return the messages that came."""
        start = len(self.messages)
        await self.session.write(command.encode())
        await asyncio.sleep(settle)
        return self.lines[start:]

    async def wait_for(
        self, predicate: Callable[[str], bool], limit: float = 2.0
    ) -> str:
        async with asyncio.timeout(limit):
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                await asyncio.sleep(0.002)


async def connect(mesh: Mesh, node_id: int = 0) -> Collector:
    """Connect to a node and subscribe; drop the GATEWAY_CONNECTED greeting."""
    node = mesh.node(node_id)
    assert node.mac is not None
    collector = Collector(await mesh.connect(node.mac))
    await collector.wait_for(lambda line: line == "GATEWAY_CONNECTED")
    collector.messages.clear()
    collector.chunks.clear()
    return collector
