"""Runs the power budget balancer of a mesh: plans after every update, sends in the background.

The plan is `PowerBalancer` (power.py, pure logic). Its commands never run inside the
coordinator's refresh (they would hold every entity update), and they take their turn with polls
and user commands on the coordinator's command lock. Failures are logged as a warning once per
streak, where a user sees them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .dcmesh import DcMeshError, LinkError
from .power import NodeLoad

if TYPE_CHECKING:
    from .coordinator import DcMeshCoordinator


class BalancerController:
    """Applies the balancer's plan to one mesh."""

    def __init__(self, coordinator: DcMeshCoordinator) -> None:
        """Bind to the mesh; nothing runs until `async_start`."""
        self.coordinator = coordinator
        self.logic = coordinator.balancer
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Plan after every coordinator update; return the undo callable."""
        return self.coordinator.async_add_listener(self._async_on_update)

    @property
    def busy(self) -> bool:
        """Whether a round of duty commands is being sent."""
        return self._task is not None and not self._task.done()

    @callback
    def _async_on_update(self) -> None:
        data = self.coordinator.data
        if not self.logic.enabled or self.busy or not data.connected or data.fallback:
            return
        loads = [
            NodeLoad(node.node_id, node.reading.duty, node.reading.power_mw)
            for node in data.nodes.values()
            if node.available and node.reading is not None
        ]
        changes = self.logic.plan(loads, dt_util.utcnow().timestamp())
        if changes:
            entry = self.coordinator.config_entry
            self._task = entry.async_create_background_task(
                self.coordinator.hass,
                self._async_apply(changes),
                f"{DOMAIN} balancer {self.coordinator.mesh_id}",
            )

    async def _async_apply(self, changes: dict[int, int]) -> None:
        """Send one round of duties (fire-and-forget: the next poll shows the effect)."""
        failed: list[str] = []
        async with self.coordinator.command_lock:
            link = self.coordinator.link
            if link is None or self.coordinator.data.fallback:
                return
            for node_id, duty in changes.items():
                try:
                    await link.set_duty(node_id, duty)
                except LinkError:
                    return  # paused until the failover is done
                except DcMeshError as err:
                    failed.append(f"node {node_id} to {duty} %: {err}")
        title = self.coordinator.config_entry.title
        if failed and not self._failing:
            LOGGER.warning("Power balancer of %s could not set %s", title, failed)
        elif not failed and self._failing:
            LOGGER.info("Power balancer of %s sets duties again", title)
        self._failing = bool(failed)

    async def async_set_enabled(self, enabled: bool) -> None:
        """Turn balancing on (freezing the user's duties) or off (restoring them).

        Turning it off needs the link: the user's duties are sent back to every node that
        answers. If one of them fails, balancing stays on (nothing is lost) and the error
        is raised, so the user can try again.
        """
        coordinator = self.coordinator
        if enabled == self.logic.enabled:
            return
        if enabled:
            self.logic.enable(
                {
                    node.node_id: node.reading.duty
                    for node in coordinator.data.nodes.values()
                    if node.reading is not None
                }
            )
            coordinator.async_update_listeners()
            return
        coordinator.require_link()
        if self._task is not None:
            await asyncio.wait([self._task])
        ceilings = dict(self.logic.ceilings)
        self.logic.disable()
        try:
            for node_id, duty in ceilings.items():
                node = coordinator.data.nodes.get(node_id)
                if node is None or not node.available:
                    LOGGER.info(
                        "Node %s is unavailable: its duty is not restored", node_id
                    )
                    continue
                await coordinator.async_set_duty(node_id, duty, user=False)
        except HomeAssistantError:
            self.logic.enable(ceilings)
            raise
        finally:
            coordinator.async_update_listeners()
