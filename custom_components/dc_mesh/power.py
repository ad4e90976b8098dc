"""Power budget balancer: keeps a mesh's total power near a budget by nudging node duties.

Pure logic (no I/O, no Home Assistant state), re-created from the behaviour of the v0.7 gateway's
PowerManager and improved:

- the user sets the budget; the balancer aims 500 mW (headroom) below it, so readings that
  fluctuate stay within it;
- the budget is shared equally among the nodes that answer, or with a priority node weighted 2.0;
  a share that a node cannot use (its load at full allowed duty is smaller) goes to the others
  (water-filling, where the v0.7 manager only redistributed the priority node's surplus);
- a node's duty never exceeds the user's own setting, frozen when balancing is enabled; disabling
  restores those settings;
- every adjustment is bounded (``max_step`` duty points) and at most one adjustment round happens
  per ``cooldown`` seconds; adjustments are fire-and-forget (waiting for each node to confirm made
  the v0.7 manager oscillate);
- improvement: instead of blind steps, each node's watts-per-duty-point is learned from its
  readings (PWM average power is proportional to duty), so one round lands close to the budget,
  and a dead band stops dithering once the total is within 2 % of the budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PRIORITY_WEIGHT = 2.0
DEAD_BAND = 0.02  # fraction of the budget
MIN_DUTY_FOR_SLOPE = 5  # below this the reading is too small to learn a slope from


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """What the balancer knows about one answering node."""

    node_id: int
    duty: int
    power_mw: float


class PowerBalancer:
    """Plans duty adjustments so the total power approaches the budget."""

    def __init__(
        self,
        *,
        budget_mw: float,
        headroom_mw: float = 500.0,
        max_step: int = 10,
        cooldown: float = 5.0,
    ) -> None:
        """Create a disabled balancer."""
        self.budget_mw = budget_mw
        self.headroom_mw = headroom_mw
        self.max_step = max_step
        self.cooldown = cooldown
        self.priority_node: int | None = None
        self._ceilings: dict[int, int] = {}
        self._slopes: dict[int, float] = {}
        self._last_round: float | None = None
        self.enabled = False

    @property
    def target_mw(self) -> float:
        """The total the balancer aims for: the budget minus the headroom."""
        return max(self.budget_mw - self.headroom_mw, 0.0)

    @property
    def ceilings(self) -> Mapping[int, int]:
        """The user's own duty per node, frozen when balancing was enabled."""
        return self._ceilings

    def enable(self, user_duties: Mapping[int, int]) -> None:
        """Start balancing; the current duties become the ceilings."""
        self._ceilings = dict(user_duties)
        self._last_round = None
        self.enabled = True

    def disable(self) -> dict[int, int]:
        """Stop balancing; return the user's duties to restore."""
        restore, self._ceilings = self._ceilings, {}
        self.enabled = False
        return restore

    def set_user_duty(self, node_id: int, duty: int) -> None:
        """Record a duty the user set while balancing: it is the node's new ceiling."""
        if self.enabled:
            self._ceilings[node_id] = duty

    def plan(self, loads: list[NodeLoad], now: float) -> dict[int, int]:
        """Return the duties to send now (only nodes whose duty changes)."""
        if not self.enabled or not loads:
            return {}
        for load in loads:
            self._ceilings.setdefault(load.node_id, load.duty)
            if load.duty >= MIN_DUTY_FOR_SLOPE and load.power_mw > 0:
                self._slopes[load.node_id] = load.power_mw / load.duty
        if self._last_round is not None and now - self._last_round < self.cooldown:
            return {}
        budget = self.target_mw
        total = sum(load.power_mw for load in loads)
        over_ceiling = any(load.duty > self._ceilings[load.node_id] for load in loads)
        if abs(total - budget) <= DEAD_BAND * budget and not over_ceiling:
            return {}
        allocation = self._allocate(loads, budget)
        changes: dict[int, int] = {}
        for load in loads:
            ceiling = self._ceilings[load.node_id]
            slope = self._slopes.get(load.node_id)
            if slope is None:
                # Nothing learned yet (the node sits near 0 %): probe upwards.
                target = load.duty + self.max_step
            else:
                target = round(allocation[load.node_id] / slope)
            step = max(-self.max_step, min(self.max_step, target - load.duty))
            duty = max(0, min(ceiling, load.duty + step))
            if duty != load.duty:
                changes[load.node_id] = duty
        if changes:
            self._last_round = now
        return changes

    def _allocate(self, loads: list[NodeLoad], budget: float) -> dict[int, float]:
        """Share the budget by weight; shares a node cannot use go to the others."""
        caps = {
            load.node_id: self._slopes[load.node_id] * self._ceilings[load.node_id]
            if load.node_id in self._slopes
            else float("inf")
            for load in loads
        }
        weights = {
            load.node_id: PRIORITY_WEIGHT if load.node_id == self.priority_node else 1.0
            for load in loads
        }
        allocation: dict[int, float] = {}
        remaining = budget
        open_nodes = set(caps)
        while open_nodes:
            total_weight = sum(weights[node] for node in open_nodes)
            saturated = {
                node
                for node in open_nodes
                if caps[node] <= remaining * weights[node] / total_weight
            }
            if not saturated:
                for node in open_nodes:
                    allocation[node] = remaining * weights[node] / total_weight
                break
            for node in saturated:
                allocation[node] = caps[node]
                remaining -= caps[node]
            open_nodes -= saturated
        return allocation
