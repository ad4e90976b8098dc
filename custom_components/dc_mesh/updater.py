"""Firmware updates of a mesh's nodes: one node (its update entity) or a whole mesh, in phases.

One update at a time per mesh. An update goes over a direct GATT link to the node (the
library's `OtaTransfer`), never over the mesh; when the node carries the monitoring link, that
link moves to another node first and stays off it until the update ends. A lost link resumes
the transfer where the node says it stopped. After `OTA:DONE` the node restarts into the image;
the update counts as done once the node reconnects, runs the new version past its self-test
window and answers a READ. A node that rolled back, or any other failure, is shown on the
node's update entity and in the logbook; nothing stays "in progress" after a failure, a
cancellation or a restart of Home Assistant (the next install resumes the node's transfer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
from datetime import datetime
import math
from typing import TYPE_CHECKING

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval

from .catalog import FirmwareCatalog
from .const import (
    CATALOG_REFRESH_INTERVAL,
    CONF_FIRMWARE_KEY,
    CONF_FIRMWARE_URL,
    DOMAIN,
    EVENT_FIRMWARE_UPDATE,
    LOGGER,
    ROLLOUT_PHASES,
    UPDATE_ABORT_TIMEOUT,
    UPDATE_LINK_ATTEMPTS,
    UPDATE_REBOOT_TIMEOUT,
    UPDATE_RETRY_DELAY,
    UPDATE_TRIAL_POLL,
    UPDATE_TRIAL_WINDOW,
)
from .dcmesh import (
    CAP_OTA,
    DcMeshError,
    DcMeshLink,
    DeviceError,
    FirmwareImage,
    LinkError,
    NodeInfo,
    NodeRole,
    OtaInterruptedError,
    OtaStalledError,
    OtaTransfer,
    ResponseTimeoutError,
    abort_update,
    confirm_installed,
)
from .dcmesh.release import Release, version_key

if TYPE_CHECKING:
    from .coordinator import DcMeshCoordinator


@dataclass(slots=True)
class NodeProgress:
    """A node's update in progress."""

    version: str
    percentage: int | None = None  # None until the first byte is acknowledged


def rollout_phases(count: int) -> list[int]:
    """How many nodes each phase of a rollout of `count` nodes updates (1, 20 %, the rest)."""
    phases: list[int] = []
    done = 0
    for share in ROLLOUT_PHASES:
        size = share if isinstance(share, int) else math.ceil(share * count)
        size = min(size, count) - done
        if size > 0:
            phases.append(size)
            done += size
    return phases


class MeshUpdater:
    """Installs firmware on the nodes of one mesh."""

    def __init__(self, hass: HomeAssistant, coordinator: DcMeshCoordinator) -> None:
        """Nothing runs before `async_start`."""
        self.hass = hass
        self.coordinator = coordinator
        options = coordinator.config_entry.options
        self.catalog = FirmwareCatalog(
            hass, options.get(CONF_FIRMWARE_URL), options.get(CONF_FIRMWARE_KEY)
        )
        self.progress: dict[int, NodeProgress] = {}
        # a node's last failed update (cleared by its next successful one)
        self.failures: dict[int, str] = {}
        self._lock = asyncio.Lock()
        self._rollout: asyncio.Task[None] | None = None
        self._running: asyncio.Task[object] | None = (
            None  # the task of the update running
        )
        # a cancelled rollout aborts the node's transfer; an unload leaves it to resume
        self._abort_on_cancel = False

    @property
    def title(self) -> str:
        """The mesh's name."""
        return self.coordinator.config_entry.title

    async def async_start(self) -> CALLBACK_TYPE:
        """Read the catalog now and every few hours; return the undo callable."""
        await self.catalog.async_refresh()

        async def _refresh(_now: datetime) -> None:
            await self.catalog.async_refresh()
            self.coordinator.async_update_listeners()

        return async_track_time_interval(
            self.hass, _refresh, CATALOG_REFRESH_INTERVAL, cancel_on_shutdown=True
        )

    @callback
    def async_stop(self) -> None:
        """The entry unloads: stop updating; the node keeps the transfer to resume it."""
        self._abort_on_cancel = False
        for task in (self._rollout, self._running):
            if task is not None:
                task.cancel()

    def can_update(self, node_id: int) -> bool:
        """Whether the node has the update receiver (v1 universal node, capability 0008)."""
        node = self.coordinator.data.nodes.get(node_id)
        info = node.info if node is not None else None
        return info is not None and bool(info.capabilities & CAP_OTA)

    def newest(self, node_id: int) -> Release | None:
        """The newest release for the node, as far as its INFO tells role and hardware."""
        node = self.coordinator.data.nodes.get(node_id)
        if node is None or node.info is None:
            return None
        return self.catalog.newest(node.info.role, node.info.hardware)

    # ------------------------------------------------------------------ one node
    async def async_install(self, node_id: int, version: str | None) -> None:
        """Update one node to `version` (None: the newest release for it)."""
        if self._lock.locked() or self.rollout_running:
            raise _error("update_busy", mesh=self.title)
        async with self._lock:
            await self.catalog.async_refresh()
            release = self._release(node_id, version)
            await self._async_update(node_id, release)

    def _release(self, node_id: int, version: str | None) -> Release:
        node = self.coordinator.data.nodes.get(node_id)
        info = node.info if node is not None else None
        if info is None or not self.can_update(node_id):
            raise _error("update_not_supported", node=str(node_id))
        release = (
            self.catalog.find(version, info.role, info.hardware)
            if version is not None
            else self.catalog.newest(info.role, info.hardware)
        )
        if release is None:
            raise _error(
                "no_release",
                version=version or "-",
                role=info.role.value,
                hardware=info.hardware,
            )
        return release

    async def _async_update(self, node_id: int, release: Release) -> None:
        """Download, check, transfer, verify; a translated error says what failed."""
        image = await self.catalog.async_image(release)
        connection = self.coordinator.connection
        node = self.coordinator.data.nodes[node_id]
        address = connection.node_addresses.get(node_id) or node.address
        if address is None or connection.link_to(address) is None:
            raise _error("node_out_of_range", node=str(node_id))
        before = node.info.firmware if node.info is not None else "?"
        self._running = asyncio.current_task()
        self.progress[node_id] = NodeProgress(release.version)
        self.failures.pop(node_id, None)
        self.coordinator.async_update_listeners()
        release_node = connection.reserve(address)
        LOGGER.info(
            "%s: updating node %s from %s to %s",
            self.title,
            node_id,
            before,
            release.version,
        )
        try:
            await self._transfer(node_id, address, image)
            self.progress[node_id].percentage = 100
            self.coordinator.async_update_listeners()
            info = await self._verify(node_id, address, image)
        except DcMeshError as err:
            self.failures[node_id] = str(err)
            LOGGER.warning(
                "%s: the update of node %s to %s failed: %s",
                self.title,
                node_id,
                release.version,
                err,
            )
            self._log(node_id, before, release.version, str(err))
            raise _error("update_failed", node=str(node_id), error=str(err)) from err
        finally:
            self._running = None
            release_node()
            self.progress.pop(node_id, None)
            self.coordinator.async_update_listeners()
        self.coordinator.node_updated(info)
        LOGGER.info("%s: node %s runs %s", self.title, node_id, info.firmware)
        self._log(node_id, before, release.version, None)

    def _link(self, node_id: int, address: str) -> DcMeshLink:
        link = self.coordinator.connection.link_to(address)
        if link is None:
            raise LinkError(f"no adapter or proxy hears node {node_id} any more")
        return link

    async def _transfer(self, node_id: int, address: str, image: FirmwareImage) -> None:
        """Send the image until OTA:DONE; resume after each lost link, wait for the restart."""
        losses = 0
        acknowledged = -1
        while True:
            link = self._link(node_id, address)
            transfer = OtaTransfer(
                link, image, progress=self._progress_callback(node_id)
            )
            restarted = asyncio.Event()
            link.register_disconnect_callback(restarted.set)
            try:
                await link.connect()
                await transfer.run()
            except asyncio.CancelledError:
                if self._abort_on_cancel:
                    await self._abort(node_id, address, link)
                await link.disconnect()
                raise
            except (LinkError, OtaStalledError, OtaInterruptedError) as err:
                await link.disconnect()
                if transfer.acknowledged > acknowledged:
                    acknowledged, losses = transfer.acknowledged, 0
                losses += 1
                if losses >= UPDATE_LINK_ATTEMPTS:
                    raise
                LOGGER.debug("%s: node %s: %s; resuming", self.title, node_id, err)
                await asyncio.sleep(UPDATE_RETRY_DELAY)
                continue
            except DcMeshError:
                await link.disconnect()
                raise
            # OTA:DONE: the node restarts about 1 s later and drops the link.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(UPDATE_REBOOT_TIMEOUT):
                    await restarted.wait()
            await link.disconnect()
            return

    async def _abort(self, node_id: int, address: str, link: DcMeshLink) -> None:
        """Cancelled mid-transfer: the node drops it and keeps its firmware.

        The cancellation may have cut the link in the middle of a write: over a new one.
        """
        await link.disconnect()
        try:
            async with asyncio.timeout(UPDATE_ABORT_TIMEOUT):
                link = self._link(node_id, address)
                await link.connect()
                await abort_update(link)
        except (DcMeshError, TimeoutError) as err:
            LOGGER.warning(
                "%s: could not abort the transfer of node %s (%s); it stays until the "
                "node restarts or another update begins",
                self.title,
                node_id,
                err,
            )
        finally:
            await link.disconnect()

    def _progress_callback(self, node_id: int) -> Callable[[int, int], None]:
        def _progress(acknowledged: int, total: int) -> None:
            progress = self.progress.get(node_id)
            percentage = min(99, acknowledged * 100 // total)
            if progress is not None and progress.percentage != percentage:
                progress.percentage = percentage
                self.coordinator.async_update_listeners()

        return _progress

    async def _verify(
        self, node_id: int, address: str, image: FirmwareImage
    ) -> NodeInfo:
        """The restarted node's INFO once it ran `image` past its self-test, and a READ.

        Raise `RolledBackError` when it runs another version (the image failed its
        self-test), `LinkError` when it does not come back in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UPDATE_REBOOT_TIMEOUT + UPDATE_TRIAL_WINDOW
        while True:
            link: DcMeshLink | None = None
            try:
                link = self._link(node_id, address)
                return await self._check(link, node_id, image)
            except (LinkError, ResponseTimeoutError, DeviceError) as err:
                # not back yet, or still joining its mesh (NOT_READY)
                if loop.time() >= deadline:
                    raise LinkError(
                        f"node {node_id} did not come back after the update: {err}"
                    ) from err
                await asyncio.sleep(UPDATE_RETRY_DELAY)
            finally:
                if link is not None:
                    await link.disconnect()

    @staticmethod
    async def _check(link: DcMeshLink, node_id: int, image: FirmwareImage) -> NodeInfo:
        """Connect; wait while `image` is on trial; raise unless it stayed; READ."""
        await link.connect()
        info = link.gateway_info
        if info is None:
            raise LinkError(f"node {node_id} did not answer INFO")
        while info.firmware == image.version and info.uptime < UPDATE_TRIAL_WINDOW:
            await asyncio.sleep(
                min(UPDATE_TRIAL_POLL, UPDATE_TRIAL_WINDOW - info.uptime)
            )
            info = await link.info(info.node_id)
        confirm_installed(info, image)
        await link.read(node_id)
        return info

    def _log(self, node_id: int, before: str, version: str, error: str | None) -> None:
        """An update's outcome, in the logbook of the node's device."""
        device = dr.async_get(self.hass).async_get_device_by_identifier(
            self.coordinator.node_identifier(node_id),
            self.coordinator.config_entry.entry_id,
        )
        if device is None:
            return
        self.hass.bus.async_fire(
            EVENT_FIRMWARE_UPDATE,
            {
                "device_id": device.id,
                "name": device.name_by_user or device.name or str(node_id),
                "node_id": node_id,
                "from_version": before,
                "version": version,
                "error": error,
            },
        )

    # ------------------------------------------------------------------ whole mesh
    @callback
    def async_start_rollout(self, version: str | None) -> list[list[int]]:
        """Update every universal node that can, in phases; return the plan.

        Phases: one node, then a fifth of the nodes, then the rest; each node's update
        ends with its health check, and the rollout stops at the first failure. The
        node carrying the monitoring link goes last (its link moves once).
        """
        if self._lock.locked() or self.rollout_running:
            raise _error("update_busy", mesh=self.title)
        nodes = self.coordinator.data.nodes
        candidates = sorted(
            node_id
            for node_id, node in nodes.items()
            if node.info is not None
            and node.info.role is NodeRole.UNIVERSAL
            and self.can_update(node_id)
        )
        if not candidates:
            raise _error("nothing_to_update", mesh=self.title)
        gateway = self.coordinator.data.gateway_node_id
        candidates.sort(key=lambda node_id: node_id == gateway)
        releases = {node_id: self._release(node_id, version) for node_id in candidates}
        plan = [
            node_id
            for node_id in candidates
            if _wants(
                nodes[node_id].info, releases[node_id], explicit=version is not None
            )
        ]
        if not plan:
            raise _error("nothing_to_update", mesh=self.title)
        phases: list[list[int]] = []
        for size in rollout_phases(len(plan)):
            phases.append(plan[:size])
            plan = plan[size:]
        ir.async_delete_issue(self.hass, DOMAIN, self.rollout_issue_id)
        self._rollout = self.coordinator.config_entry.async_create_background_task(
            self.hass,
            self._async_rollout(phases, releases),
            f"{DOMAIN} firmware rollout {self.coordinator.mesh_id}",
        )
        return phases

    @property
    def rollout_running(self) -> bool:
        """Whether a rollout runs (between two nodes too)."""
        return self._rollout is not None and not self._rollout.done()

    @callback
    def async_cancel_rollout(self) -> bool:
        """Stop a rollout: the node being updated keeps its firmware, so do the rest."""
        if self._rollout is None or self._rollout.done():
            return False
        self._abort_on_cancel = True
        self._rollout.cancel()
        return True

    @property
    def rollout_issue_id(self) -> str:
        """The id of the repair issue of a rollout that stopped on a failure."""
        return rollout_issue_id(self.coordinator.config_entry.entry_id)

    async def _async_rollout(
        self, phases: list[list[int]], releases: dict[int, Release]
    ) -> None:
        total = sum(len(phase) for phase in phases)
        done = 0
        node_id = phases[0][0]
        try:
            for number, phase in enumerate(phases, 1):
                for node_id in phase:
                    async with self._lock:
                        await self._async_update(node_id, releases[node_id])
                    done += 1
                LOGGER.info(
                    "%s: rollout phase %s of %s done (%s of %s nodes)",
                    self.title,
                    number,
                    len(phases),
                    done,
                    total,
                )
        except HomeAssistantError as err:
            why = f"node {node_id}: {self.failures.get(node_id, err)}"
            LOGGER.warning(
                "%s: the firmware rollout stopped after %s of %s nodes: %s",
                self.title,
                done,
                total,
                why,
            )
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self.rollout_issue_id,
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="rollout_stopped",
                translation_placeholders={
                    "mesh": self.title,
                    "done": str(done),
                    "total": str(total),
                    "error": why,
                },
            )
        except asyncio.CancelledError:
            LOGGER.info(
                "%s: the firmware rollout was cancelled after %s of %s nodes",
                self.title,
                done,
                total,
            )
            raise


def _wants(info: NodeInfo | None, release: Release, *, explicit: bool) -> bool:
    """Whether a rollout updates a node: to a version asked for, or to a newer one."""
    if info is None or info.firmware == release.version:
        return False
    if explicit:
        return True
    try:
        return version_key(info.firmware) < version_key(release.version)
    except ValueError:
        return True  # a version we cannot compare: the release is what the site runs


def rollout_issue_id(entry_id: str) -> str:
    """The id of the repair issue of a mesh's rollout that stopped on a failure."""
    return f"rollout_stopped_{entry_id}"


def _error(key: str, **placeholders: str) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )
