"""The GATT link of one mesh: connect through the best node, verify it, fail over.

The failover policy (ranking, cool-off, back-off) is the library's `FailoverPolicy`; this file
wires it to Home Assistant: the advertisers HA's Bluetooth manager knows, an advertisement
callback that ends a back-off wait (or jumps the queue of a running round) as soon as a usable
node is heard again, HA's clock for the retries, and the repair issue of a mesh that stays
unreachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
from datetime import datetime

from bleak.backends.device import BLEDevice
from homeassistant.components import bluetooth
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    DOMAIN,
    FAILOVER_TIMING,
    LEGACY_MESH_ID,
    LINK_CONNECT_TIMEOUT,
    LINK_QUIET_PERIOD,
    LINK_REPLY_TIMEOUT,
    LINK_WRITE_TIMEOUT,
    LOCAL_NAME_MATCH,
    LOGGER,
    UNREACHABLE_ISSUE_AFTER,
)
from .dcmesh import (
    SERVICE_UUID,
    AuthenticationError,
    Candidate,
    DcMeshError,
    DcMeshLink,
    FailoverPolicy,
    ProtocolMode,
)
from .discovery import advertisement_of, mesh_id_of


@dataclass(slots=True)
class _Attempt:
    """What one connection round learned about the candidates that failed."""

    last_error: str | None = None
    key_rejected: bool = False


@dataclass(slots=True)
class _Race:
    """The connection attempts of one failover round, and the nodes to try next."""

    queue: list[bluetooth.BluetoothServiceInfoBleak]
    # each running attempt, oldest first: its node, and when it began (Bluetooth's clock)
    pending: dict[asyncio.Future[DcMeshLink | None], tuple[str, float]] = field(
        default_factory=dict
    )
    # attempts that began while their node was off (it came back since): they only time out
    stale: set[asyncio.Future[DcMeshLink | None]] = field(default_factory=set)
    hurried: list[bluetooth.BluetoothServiceInfoBleak] = field(default_factory=list)
    # the round waits on this with its attempts; set (to no link) to wake it
    wakeup: asyncio.Future[DcMeshLink | None] | None = None

    def back(self, address: str, silent_since: float) -> None:
        """`address` was heard again after a silence: attempts begun since were on a node off.

        (An attempt begun before the silence is left alone: a proxy may stop scanning while
        it connects, so a node being connected may seem silent.)
        """
        self.stale.update(
            t
            for t, (a, began) in self.pending.items()
            if a == address and began > silent_since
        )

    def hurry(self, info: bluetooth.BluetoothServiceInfoBleak) -> None:
        """Try `info`'s node next, at once: it was just heard and is worth a try.

        An attempt on it that runs already is left alone, unless it is stale: then it
        starts over.
        """
        if any(i.address == info.address for i in self.hurried) or any(
            a == info.address and t not in self.stale
            for t, (a, _) in self.pending.items()
        ):
            return
        self.queue = [i for i in self.queue if i.address != info.address]
        self.hurried.append(info)
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    def make_room(
        self, address: str, silent: Callable[[str], bool]
    ) -> list[asyncio.Future[DcMeshLink | None]]:
        """Cancel what stands in the way of a hurried attempt on `address`; return it.

        Its own stale attempt, and, with two other attempts running, the oldest one on a
        node that is `silent` now: its connection slot goes to a node on air.
        """
        cancel = [t for t, (a, _) in self.pending.items() if a == address]
        if len(self.pending) - len(cancel) >= 2:
            cancel += [
                t for t, (a, _) in self.pending.items() if a != address and silent(a)
            ][:1]
        for task in cancel:
            self.finished(task)
            task.cancel()
        return cancel

    def finished(self, task: asyncio.Future[DcMeshLink | None]) -> None:
        """An attempt is over (it ended, with a link or without, or it is cancelled)."""
        del self.pending[task]
        self.stale.discard(task)


async def _discard(task: asyncio.Future[DcMeshLink | None]) -> None:
    """Wait for a cancelled attempt to end; close its link if it won the race to cancel."""
    with contextlib.suppress(asyncio.CancelledError):
        if (link := await task) is not None:
            await link.disconnect()


class MeshConnection:
    """Holds the one link of a mesh and replaces it when it dies."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        mesh_id: str,
        title: str,
        entry_id: str,
        excluded: list[str],
        preferred: str | None,
        mesh_key: bytes | None,
        on_connected: Callable[[DcMeshLink], None],
        on_lost: Callable[[DcMeshLink], None],
        on_key_rejected: Callable[[], None],
    ) -> None:
        """Nothing is connected until `async_connect`.

        `on_key_rejected` is called when a failover round finds that the mesh's own
        gateways no longer accept the mesh key (re-provisioned): time for reauth.
        """
        self.hass = hass
        self.mesh_id = mesh_id
        self.title = title
        self._entry_id = entry_id
        self._excluded = set(excluded)
        # nodes being updated: never the monitoring link's node meanwhile
        self._reserved: set[str] = set()
        self.policy = FailoverPolicy(FAILOVER_TIMING, preferred=preferred)
        self.link: DcMeshLink | None = None
        self.failover_count = 0
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._on_key_rejected = on_key_rejected
        self._mesh_key = mesh_key
        self._lock = asyncio.Lock()
        self._closing = False
        self._retry_unsub: CALLBACK_TYPE | None = None
        self._round: asyncio.Task[None] | None = None
        self._racing: _Race | None = None
        self._unreachable_since: datetime | None = None
        self._refused: set[str] = set()
        self._outage_logged = False
        self._lost_before = False
        self._link_up_at = 0.0
        self._unsubs: list[CALLBACK_TYPE] = []
        # every advertisement of each member (not only changed ones): when it was heard
        self._heard: dict[str, float] = {}
        self._packet_unsubs: dict[str, CALLBACK_TYPE] = {}
        # node id -> Bluetooth address, from v1 advertisements
        self.node_addresses: dict[int, str] = {}

    # ------------------------------------------------------------------ candidates
    def belongs(self, service_info: bluetooth.BluetoothServiceInfoBleak) -> bool:
        """Whether an advertising DC-Monitor node is part of this mesh."""
        return (
            service_info.address not in self._excluded
            and service_info.address not in self._reserved
            and mesh_id_of(service_info) == self.mesh_id
        )

    def _candidate(self, info: bluetooth.BluetoothServiceInfoBleak) -> Candidate:
        advertisement = advertisement_of(info)
        return Candidate(
            address=info.address,
            rssi=info.rssi,
            last_advert=info.time,
            mesh_ready=advertisement.mesh_ready if advertisement else None,
        )

    def candidates(self) -> list[bluetooth.BluetoothServiceInfoBleak]:
        """Connectable nodes of this mesh, best first (see `FailoverPolicy.rank`)."""
        infos = {
            info.address: info
            for info in bluetooth.async_discovered_service_info(
                self.hass, connectable=True
            )
            if self.belongs(info)
        }
        for info in infos.values():
            self._learn_address(info)
            self._track(info)
        ranked = self.policy.rank(
            (self._candidate(info) for info in infos.values()),
            bluetooth.MONOTONIC_TIME(),
        )
        return [infos[candidate.address] for candidate in ranked]

    def _learn_address(self, info: bluetooth.BluetoothServiceInfoBleak) -> None:
        advertisement = advertisement_of(info)
        if advertisement is not None and advertisement.node_id is not None:
            self.node_addresses[advertisement.node_id] = info.address

    # ------------------------------------------------------------------ lifecycle
    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Listen to the mesh's advertisements (they end back-off waits early).

        Return the undo callable.
        """
        for matcher in (
            bluetooth.BluetoothCallbackMatcher(
                service_uuid=SERVICE_UUID, connectable=True
            ),
            bluetooth.BluetoothCallbackMatcher(
                local_name=LOCAL_NAME_MATCH, connectable=True
            ),
        ):
            self._unsubs.append(
                bluetooth.async_register_callback(
                    self.hass,
                    self._async_on_advertisement,
                    matcher,
                    bluetooth.BluetoothScanningMode.PASSIVE,
                )
            )
        return self._stop_listening

    @callback
    def _stop_listening(self) -> None:
        for unsub in (*self._unsubs, *self._packet_unsubs.values()):
            unsub()
        self._unsubs.clear()
        self._packet_unsubs.clear()

    def _track(self, info: bluetooth.BluetoothServiceInfoBleak) -> None:
        """Hear every advertisement of a member, also the unchanged ones.

        HA's matcher callbacks only fire when an advertisement changes; a node back
        from a power cut usually advertises exactly what it did before.
        """
        if info.address in self._packet_unsubs or self._closing:
            return
        self._heard[info.address] = info.time
        self._packet_unsubs[info.address] = (
            bluetooth.async_register_advertisement_callback(
                self.hass, self._async_on_packet, info.address
            )
        )

    @callback
    def _async_on_packet(self, info: bluetooth.BluetoothServiceInfoBleak) -> None:
        """Any advertisement of a member: one back after a silence ends its cool-off."""
        previous = self._heard.get(info.address, info.time)
        self._heard[info.address] = info.time
        if not self.policy.heard(info.address, info.time - previous):
            return
        if self._racing is not None:
            self._racing.back(info.address, previous)
        LOGGER.debug("%s: %s is back on air", self.title, info.address)
        self._wake(info)

    def _wake(self, info: bluetooth.BluetoothServiceInfoBleak) -> None:
        """A node worth a try was heard: end a back-off wait, or try it next in a round."""
        if self.link is not None or not (
            self.belongs(info)
            and self.policy.worth_waking(
                self._candidate(info), bluetooth.MONOTONIC_TIME()
            )
        ):
            return
        if self._racing is not None:
            self._racing.hurry(info)
        elif self._retry_unsub is not None:
            self._schedule_round(0.0)

    def _silent(self, address: str) -> bool:
        """Whether a member has not been heard for a while (off, or out of range)."""
        heard = self._heard.get(address)
        return (
            heard is None
            or bluetooth.MONOTONIC_TIME() - heard >= self.policy.timing.recent
        )

    async def async_close(self) -> None:
        """Stop failing over and close the link; nothing is adopted afterwards."""
        self._closing = True
        self._stop_listening()
        self._cancel_retry()
        if self._round is not None:
            self._round.cancel()
        link, self.link = self.link, None
        if link is not None:
            await link.disconnect()

    def delete_issue(self) -> None:
        """Remove the unreachable repair issue."""
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)

    @property
    def closing(self) -> bool:
        """Whether the mesh is being unloaded (no link may be adopted any more)."""
        return self._closing

    @property
    def issue_id(self) -> str:
        """The id of the mesh's unreachable repair issue."""
        return unreachable_issue_id(self._entry_id)

    @property
    def failing_over(self) -> bool:
        """Whether a failover round runs or is scheduled."""
        return self._retry_unsub is not None or (
            self._round is not None and not self._round.done()
        )

    # ------------------------------------------------------------------ connecting
    async def async_connect(self, *, failover: bool = False) -> DcMeshLink:
        """Connect through the best candidate that answers; raise UpdateFailed if none.

        `failover`: the mesh had a link that died (counted in `failover_count`).
        Candidates are tried best first; when one takes longer than the policy's
        `race_after` (a node that died with its advertisement still cached only times
        out), the next one is tried alongside it, at most two at a time, and the first
        that answers wins (the other attempt is cancelled, its slot freed). A usable node
        heard meanwhile goes first (see `_race`).

        A node that cannot prove the mesh key is never adopted. Raises
        ConfigEntryAuthFailed when no node answered and a node known to be of this mesh
        (a gateway before, or the preferred node) rejected the key: the mesh was
        provisioned again and the user has to enter its new key.
        """
        async with self._lock:
            if self.link is not None and self.link.is_connected:
                return self.link
            candidates = self.candidates()
            if not candidates:
                self._note_unreachable()
                raise UpdateFailed(
                    translation_domain=DOMAIN, translation_key="no_nodes"
                )
            attempt = _Attempt()
            link = await self._race(candidates, attempt)
            if link is not None:
                if failover:
                    self.failover_count += 1
                self._adopt(link)
                return link
            self._note_unreachable()
            if attempt.key_rejected:
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN,
                    translation_key="key_rejected",
                    translation_placeholders={"mesh": self.title},
                )
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(attempt.last_error)},
            )

    async def _race(
        self,
        candidates: list[bluetooth.BluetoothServiceInfoBleak],
        attempt: _Attempt,
    ) -> DcMeshLink | None:
        """Try the candidates, staggered (see `async_connect`); the winner or None.

        A node heard again while the round runs (back after a silence, or just ready)
        is tried at once, ahead of the queue (see `_Race.hurry`): after a total outage
        the first node back does not wait for the round to work through the dead ones.
        """
        loop = asyncio.get_running_loop()
        race = self._racing = _Race(list(candidates))
        started_at = 0.0
        winner: DcMeshLink | None = None

        def start(
            info: bluetooth.BluetoothServiceInfoBleak,
            after: list[asyncio.Task[None]] | None = None,
        ) -> None:
            nonlocal started_at
            task = self.hass.async_create_task(
                self._try(info, attempt, after), eager_start=False
            )
            race.pending[task] = (info.address, bluetooth.MONOTONIC_TIME())
            started_at = loop.time()

        try:
            while winner is None and not self._closing:
                if race.hurried:
                    info = race.hurried.pop(0)
                    ended = [
                        self.hass.async_create_task(_discard(c), eager_start=False)
                        for c in race.make_room(info.address, self._silent)
                    ]
                    if len(race.pending) < 2:
                        start(info, ended)
                    else:  # two nodes on air are being tried: it is next
                        race.queue.insert(0, info)
                elif race.queue and (
                    not race.pending
                    or (
                        len(race.pending) < 2
                        and loop.time() - started_at >= self.policy.timing.race_after
                    )
                ):
                    start(race.queue.pop(0))
                if not race.pending:
                    break
                if race.hurried:
                    continue  # more nodes heard meanwhile: they start first
                timeout = None
                if race.queue and len(race.pending) < 2:
                    timeout = max(
                        0.0, started_at + self.policy.timing.race_after - loop.time()
                    )
                race.wakeup = loop.create_future()
                done, _ = await asyncio.wait(
                    [*race.pending, race.wakeup],
                    timeout=timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                race.wakeup.cancel()
                for finished in done:
                    if finished is race.wakeup:
                        continue
                    race.finished(finished)
                    if (link := finished.result()) is not None and winner is None:
                        winner = link
                    elif link is not None:
                        await link.disconnect()
        finally:
            self._racing = None
            for task in race.pending:
                task.cancel()
            for task in race.pending:
                await _discard(task)
        if winner is not None and self._closing:
            await winner.disconnect()
            return None
        return winner

    async def _try(
        self,
        info: bluetooth.BluetoothServiceInfoBleak,
        attempt: _Attempt,
        after: list[asyncio.Task[None]] | None = None,
    ) -> DcMeshLink | None:
        """Connect to one candidate and check it: the link, or None (noted in `attempt`).

        `after`: the ends of cancelled attempts (their connection slots, maybe to the same
        node) to wait for first.
        """
        if after:
            await asyncio.wait(after)
        link = self._new_link(info)
        try:
            await link.connect()
        except AuthenticationError as err:
            self.policy.failed(info.address, bluetooth.MONOTONIC_TIME())
            own = info.address in self.policy.verified or (
                info.address == self.policy.preferred
            )
            attempt.key_rejected = attempt.key_rejected or own
            self._warn_refused(info.address, str(err))
            attempt.last_error = str(err)
            return None
        except DcMeshError as err:
            LOGGER.debug("Could not connect to %s: %s", info.address, err)
            self.policy.failed(info.address, bluetooth.MONOTONIC_TIME())
            attempt.last_error = str(err)
            return None
        if (refusal := self._refusal(link, info)) is not None:
            await link.disconnect()
            self.policy.failed(info.address, bluetooth.MONOTONIC_TIME())
            self._warn_refused(info.address, refusal)
            attempt.last_error = refusal
            return None
        return link

    def _warn_refused(self, address: str, why: str) -> None:
        """Log a refused gateway once (not at every failover round)."""
        if address not in self._refused:
            self._refused.add(address)
            LOGGER.warning("%s refused %s as its gateway: %s", self.title, address, why)

    @callback
    def reserve(self, address: str) -> CALLBACK_TYPE:
        """Keep the monitoring link off a node (being updated); return the release.

        When the link runs through that node it moves to another one now.
        """
        self._reserved.add(address)
        if self.link is not None and self.link.address == address:
            LOGGER.debug("%s: moving the link off %s", self.title, address)
            self.drop(self.link)

        @callback
        def _release() -> None:
            self._reserved.discard(address)

        return _release

    def link_to(self, address: str) -> DcMeshLink | None:
        """A new link straight to one node of the mesh; None if no adapter or proxy hears it."""
        service_info = bluetooth.async_last_service_info(
            self.hass, address, connectable=True
        )
        return self._new_link(service_info) if service_info is not None else None

    def _new_link(self, info: bluetooth.BluetoothServiceInfoBleak) -> DcMeshLink:
        return DcMeshLink(
            info.device,
            name=info.name,
            ble_device_callback=self._ble_device_getter(info),
            connect_timeout=LINK_CONNECT_TIMEOUT,
            reply_timeout=LINK_REPLY_TIMEOUT,
            quiet_period=LINK_QUIET_PERIOD,
            write_timeout=LINK_WRITE_TIMEOUT,
            max_attempts=1,
            mesh_key=self._mesh_key,
        )

    def _ble_device_getter(
        self, service_info: bluetooth.BluetoothServiceInfoBleak
    ) -> Callable[[], BLEDevice]:
        """The newest BLEDevice of a node for each connection attempt."""

        def _get() -> BLEDevice:
            return (
                bluetooth.async_ble_device_from_address(
                    self.hass, service_info.address, connectable=True
                )
                or service_info.device
            )

        return _get

    def _refusal(
        self, link: DcMeshLink, info: bluetooth.BluetoothServiceInfoBleak
    ) -> str | None:
        """Why a connected node cannot be this mesh's gateway, or None if it can.

        Without a key this is what can be checked: a v1 mesh's gateway speaks v1, says
        which mesh it belongs to in its INFO, and is the node its advertisement names.
        A device that only copies the mesh id into its advertisement fails here.
        """
        if self.mesh_id == LEGACY_MESH_ID:
            return None
        if link.mode is not ProtocolMode.V1:
            return "it speaks v0.7, the mesh speaks v1"
        gateway = link.gateway_info
        if gateway is None:
            return "it did not answer INFO with its own line"
        if f"{gateway.mesh_id:08x}" != self.mesh_id:
            return f"its INFO names mesh {gateway.mesh_id:08x}"
        advertisement = advertisement_of(info)
        if advertisement is not None and advertisement.node_id not in (
            None,
            gateway.node_id,
        ):
            return (
                f"it advertises node {advertisement.node_id} "
                f"but is node {gateway.node_id}"
            )
        return None

    @callback
    def _adopt(self, link: DcMeshLink) -> None:
        self.link = link
        self._link_up_at = bluetooth.MONOTONIC_TIME()
        self.policy.connected(link.address, self._link_up_at)
        self._refused.discard(link.address)
        link.register_disconnect_callback(lambda: self._handle_link_lost(link))
        if self._unreachable_since is not None:
            self._unreachable_since = None
            self.delete_issue()
        if self._outage_logged:
            self._outage_logged = False
            LOGGER.info("%s is reachable again through %s", self.title, link.address)
        LOGGER.debug(
            "Connected to %s through %s (node %s, protocol %s)",
            self.title,
            link.address,
            link.gateway_node_id,
            link.mode,
        )
        self._on_connected(link)

    # ------------------------------------------------------------------ failover
    @callback
    def drop(self, link: DcMeshLink) -> None:
        """Give up a link that is up but useless (its node does not reach the mesh)."""
        if link is not self.link:
            return
        self.hass.async_create_background_task(
            link.disconnect(), f"{DOMAIN} drop link {self.mesh_id}"
        )
        self._handle_link_lost(link)

    @callback
    def _handle_link_lost(self, link: DcMeshLink) -> None:
        """The link dropped: fail over at once, without a scan."""
        if link is not self.link or self._closing:
            return
        self.link = None
        now = bluetooth.MONOTONIC_TIME()
        self.policy.lost(link.address, now)
        # A flapping link logs its first loss only: later short-lived links stay quiet.
        held = now - self._link_up_at >= self.policy.timing.stable_after
        if not self._outage_logged and (held or not self._lost_before):
            self._outage_logged = True
            LOGGER.info("Lost the link to %s through %s", self.title, link.address)
        self._lost_before = True
        self._unreachable_since = self._unreachable_since or dt_util.utcnow()
        self._on_lost(link)
        self._schedule_round(0.0)

    def _schedule_round(self, delay: float) -> None:
        """Run a failover round after `delay` seconds.

        At once if 0; such a round waits first if it only finds nodes in their cool-off.
        """
        self._cancel_retry()
        if self._closing:
            return
        if delay <= 0:
            self._start_round(patient=True)
            return
        LOGGER.debug("%s: next failover round in %.0f s", self.title, delay)
        self._retry_unsub = async_call_later(
            self.hass, delay, HassJob(self._retry_now, cancel_on_shutdown=True)
        )

    @callback
    def _retry_now(self, _now: datetime) -> None:
        self._retry_unsub = None
        self._start_round(patient=False)

    def _cancel_retry(self) -> None:
        if self._retry_unsub is not None:
            self._retry_unsub()
            self._retry_unsub = None

    def _start_round(self, *, patient: bool) -> None:
        if self._round is not None and not self._round.done():
            return
        self._round = self.hass.async_create_background_task(
            self._async_round(patient=patient), f"{DOMAIN} failover {self.mesh_id}"
        )

    async def _async_round(self, *, patient: bool) -> None:
        """Try the candidates once.

        A `patient` round (right after a loss, or woken by an advertisement) that finds
        only nodes in their cool-off waits the back-off first; the round after that wait
        tries them.
        """
        candidates = self.candidates()
        if not candidates or (
            patient
            and self.policy.cooling_off(
                candidates[0].address, bluetooth.MONOTONIC_TIME()
            )
        ):
            # Only nodes that just failed: give them time (a flapping node is retried
            # ever more slowly), unless a usable node advertises in the meantime.
            self._note_unreachable()
            self._schedule_round(self.policy.next_delay())
            return
        try:
            await self.async_connect(failover=True)
        except ConfigEntryAuthFailed:
            self._on_key_rejected()
            self._schedule_round(self.policy.next_delay())
        except UpdateFailed as err:
            LOGGER.debug("Failover of %s: %s", self.title, err)
            self._schedule_round(self.policy.next_delay())

    @callback
    def _async_on_advertisement(
        self,
        service_info: bluetooth.BluetoothServiceInfoBleak,
        _change: bluetooth.BluetoothChange,
    ) -> None:
        """A node advertised: learn its address; end a back-off wait if it is usable."""
        if not self.belongs(service_info):
            return
        self._learn_address(service_info)
        self._track(service_info)
        self._wake(service_info)

    def _note_unreachable(self) -> None:
        now = dt_util.utcnow()
        since = self._unreachable_since = self._unreachable_since or now
        if now - since >= UNREACHABLE_ISSUE_AFTER:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self.issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="mesh_unreachable",
                translation_placeholders={
                    "mesh": self.title,
                    "minutes": str(int(UNREACHABLE_ISSUE_AFTER.total_seconds() // 60)),
                },
            )


def unreachable_issue_id(entry_id: str) -> str:
    """The id of a mesh's unreachable repair issue."""
    return f"mesh_unreachable_{entry_id}"
