"""Firmware update entity of each universal node."""

from __future__ import annotations

from typing import Any

from homeassistant.components.update import (
    UpdateDeviceClass,
    UpdateEntity,
    UpdateEntityDescription,
    UpdateEntityFeature,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import DcMeshConfigEntry, DcMeshCoordinator
from .dcmesh import NodeRole, ProtocolMode
from .dcmesh.release import Release
from .entity import DcMeshNodeEntity, async_add_node_entities
from .updater import MeshUpdater

PARALLEL_UPDATES = 0  # one update at a time per mesh: the updater's lock decides
LEGACY_VERSION = "0.7.0"
FIRMWARE_UPDATE = UpdateEntityDescription(
    key="firmware_update",
    translation_key="firmware_update",
    device_class=UpdateDeviceClass.FIRMWARE,
)
UPDATABLE = (
    UpdateEntityFeature.INSTALL
    | UpdateEntityFeature.PROGRESS
    | UpdateEntityFeature.RELEASE_NOTES
    | UpdateEntityFeature.SPECIFIC_VERSION
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DcMeshConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a firmware entity for every universal node."""
    coordinator = entry.runtime_data
    async_add_node_entities(
        entry,
        async_add_entities,
        coordinator.sensor_node_ids,
        lambda node_id: [DcMeshFirmwareEntity(coordinator, node_id)],
    )


class DcMeshFirmwareEntity(DcMeshNodeEntity, UpdateEntity):
    """The node's firmware: installed (INFO), newest in the catalog, install with progress.

    A v0.7 node has no update receiver: it shows its firmware as legacy, with the newest
    release and no install button (the repair issue explains the one-time USB flash).
    """

    entity_description = FIRMWARE_UPDATE
    _shows_readings = False  # pushed readings alone change nothing here

    def __init__(self, coordinator: DcMeshCoordinator, node_id: int) -> None:
        """Attach to the node."""
        super().__init__(coordinator, node_id, FIRMWARE_UPDATE.key)

    @property
    def _updater(self) -> MeshUpdater:
        return self.coordinator.updater

    @property
    def _legacy(self) -> bool:
        return self.coordinator.data.mode is ProtocolMode.LEGACY

    @property
    def _release(self) -> Release | None:
        if self._legacy:
            releases = self._updater.catalog.releases
            return next((r for r in releases if r.role is NodeRole.UNIVERSAL), None)
        return self._updater.newest(self.node_id)

    @property
    def available(self) -> bool:
        """Available while the node is, and throughout its update (it restarts)."""
        return super().available or self.node_id in self._updater.progress

    @property
    def supported_features(self) -> UpdateEntityFeature:
        """Install only where the node has the update receiver."""
        if self._updater.can_update(self.node_id):
            return UPDATABLE
        return UpdateEntityFeature.RELEASE_NOTES

    @property
    def installed_version(self) -> str | None:
        """The version of the node's INFO (v0.7: the legacy field firmware)."""
        if self._legacy:
            return LEGACY_VERSION
        info = self.node.info
        return info.firmware if info is not None else None

    @property
    def latest_version(self) -> str | None:
        """The newest release for the node; the installed one when there is none."""
        release = self._release
        return release.version if release is not None else self.installed_version

    @property
    def in_progress(self) -> bool:
        """Whether the node's update runs (never left on after a failure or a restart)."""
        return self.node_id in self._updater.progress

    @property
    def update_percentage(self) -> int | None:
        """Share of the image the node acknowledged."""
        progress = self._updater.progress.get(self.node_id)
        return progress.percentage if progress is not None else None

    @property
    def release_summary(self) -> str | None:
        """Why the last update failed, or why a legacy node cannot install."""
        if self._legacy:
            return (
                "v0.7 field firmware: no updates over Bluetooth. Flash v1 once by USB "
                "(see the repair issue); later updates install from here."
            )
        if (failure := self._updater.failures.get(self.node_id)) is not None:
            return f"The last update failed: {failure}"
        return None

    async def async_release_notes(self) -> str | None:
        """The release notes of the newest release."""
        release = self._release
        return release.release_notes if release is not None else None

    async def async_install(
        self, version: str | None, backup: bool, **kwargs: Any
    ) -> None:
        """Update the node (progress on this entity; errors are translated)."""
        await self._updater.async_install(self.node_id, version)
