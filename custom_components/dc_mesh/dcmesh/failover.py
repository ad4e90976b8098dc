"""Which node of a mesh to connect through, and when to try again: the failover policy.

Pure logic with an injected clock (seconds, any monotonic source): no I/O, no Home Assistant.

- Ranking: a node in its cool-off after a failure comes last; then a node whose mesh is not
  ready (a node booting after a site power cut would only answer NOT_READY); then nodes that
  have not advertised lately (probably gone), then nodes not heard for a few advertising
  intervals (maybe dead with their advertisement still cached); then strangers (addresses never verified as a
  gateway of this mesh, e.g. a device copying the mesh id in its advertisement); then the
  user's preferred node, the last good gateway, and the strongest signal.
- Cool-off: a node that failed (connect, negotiation, identity, or a link that did not hold)
  is demoted for a fixed time. "Failed since its last advertisement" is no good in the field:
  Home Assistant refreshes a device's advertisement time at every advert, so that lasts one
  advertising interval (~100 ms-1 s).
- Return: a node heard again after a silence of `recent` seconds was off; its cool-off ends
  (after a total outage the first node back is tried at once).
- Back-off: a round that finds only nodes in their cool-off waits first, 1 s doubling to a
  maximum. The back-off only resets once a link has stayed up for `stable_after` seconds, so
  a flapping node does not get a fresh 1 s schedule at every flap, while a healthy node that
  is not cooling off is tried at once (failover at the floor).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node that advertises as a member of the mesh."""

    address: str
    rssi: int
    last_advert: float  # when it last advertised (the policy's clock)
    mesh_ready: bool | None = None  # None: the advertisement does not say (v0.7)


@dataclass(frozen=True, slots=True)
class FailoverTiming:
    """The policy's time constants (seconds)."""

    cool_off: float = 60.0
    fresh: float = 30.0
    # Heard within this: present. Older: doubtful (it may have died with its advertisement
    # still cached); heard again after a silence this long: it came back.
    recent: float = 3.0
    # A connection attempt that takes longer than this gets the next candidate tried
    # alongside it (a dead node only times out).
    race_after: float = 1.2
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0


class FailoverPolicy:
    """Ranks candidates and paces retries for one mesh."""

    def __init__(
        self, timing: FailoverTiming | None = None, *, preferred: str | None = None
    ) -> None:
        """Start with nothing known: no failures, no verified gateway."""
        self.timing = timing or FailoverTiming()
        self.preferred = preferred
        self.last_good: str | None = None
        self._verified: set[str] = set()
        self._failed_at: dict[str, float] = {}
        self._delay = self.timing.backoff_initial
        self._up_since: float | None = None

    @property
    def verified(self) -> frozenset[str]:
        """Addresses that have been a working gateway of this mesh."""
        return frozenset(self._verified)

    def cooling_off(self, address: str, now: float) -> bool:
        """Whether `address` failed less than the cool-off ago."""
        failed_at = self._failed_at.get(address)
        return failed_at is not None and now - failed_at < self.timing.cool_off

    def rank(self, candidates: Iterable[Candidate], now: float) -> list[Candidate]:
        """The candidates, best first."""

        def key(c: Candidate) -> tuple[bool, bool, bool, bool, bool, bool, bool, int]:
            return (
                self.cooling_off(c.address, now),
                c.mesh_ready is False,
                now - c.last_advert > self.timing.fresh,
                now - c.last_advert > self.timing.recent,
                bool(self._verified) and c.address not in self._verified,
                c.address != self.preferred,
                c.address != self.last_good,
                -c.rssi,
            )

        return sorted(candidates, key=key)

    def worth_waking(self, candidate: Candidate, now: float) -> bool:
        """Whether a fresh advertisement of `candidate` should end a back-off wait early."""
        return not self.cooling_off(candidate.address, now) and (
            candidate.mesh_ready is not False
        )

    def heard(self, address: str, silence: float) -> bool:
        """`address` advertised after `silence` seconds without; True if it came back.

        A node silent for `recent` or longer was off (power cut, reboot, out of range):
        a failure before that says nothing about it now, so its cool-off ends.
        """
        if silence < self.timing.recent:
            return False
        self._failed_at.pop(address, None)
        return True

    def failed(self, address: str, now: float) -> None:
        """A connection to `address` failed, or it is no gateway of this mesh."""
        self._failed_at[address] = now

    def connected(self, address: str, now: float) -> None:
        """A link to `address` is up and verified as a gateway of this mesh."""
        self._failed_at.pop(address, None)
        self._verified.add(address)
        self.last_good = address
        self._up_since = now

    def lost(self, address: str, now: float) -> None:
        """The link to `address` dropped: its node is demoted for the cool-off.

        Only a link that held for `stable_after` resets the back-off: after a shorter one
        the next wait goes on doubling, so a flapping node is retried ever more slowly.
        """
        up_since, self._up_since = self._up_since, None
        self._failed_at[address] = now
        if up_since is not None and now - up_since >= self.timing.stable_after:
            self._delay = self.timing.backoff_initial

    def next_delay(self) -> float:
        """How long to wait before the next round when no candidate answered."""
        delay = self._delay
        self._delay = min(self._delay * 2, self.timing.backoff_max)
        return delay
