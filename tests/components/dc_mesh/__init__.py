"""Tests of the dc_mesh integration, driven through HA's Bluetooth manager and the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the event loop run until the predicate holds (fail after the timeout)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
