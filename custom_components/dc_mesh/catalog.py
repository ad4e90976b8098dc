"""The firmware catalog of a mesh: release manifests from the config folder and a URL.

Images are checked before the first byte goes to a node: size and SHA-256 against the
manifest, and the Secure Boot V2 signature against the release key pinned in the options or,
without one, the key the manifest names (the node itself only takes images signed with the key
of its running firmware). Offline sites drop a release (the signed image and its manifest, as `firmware/release.sh`
writes them) into `<config>/dc_mesh/firmware/`; sites with internet access may also name a
catalog URL in the options (one manifest, a list of them or `{"releases": [...]}`; image
names are relative to it). Manifests are read again at every refresh (a few times a day, and
before each install); images are read or downloaded only for an install, and checked (size,
SHA-256) before the first byte goes to a node.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import DOMAIN, FIRMWARE_DOWNLOAD_TIMEOUT, FIRMWARE_FOLDER, LOGGER
from .dcmesh import DcMeshError, FirmwareImage, NodeRole
from .dcmesh.release import Release, newest, parse_catalog, version_key


class _DownloadError(Exception):
    """A download failed (the message says why)."""


class FirmwareCatalog:
    """What releases a mesh can install, and their images."""

    def __init__(
        self, hass: HomeAssistant, url: str | None, trusted_key: str | None
    ) -> None:
        """Nothing is read before `async_refresh`.

        `trusted_key`: the SHA-256 digest (hex) of the release signing key; every image
        must then carry a valid signature by it, whatever its manifest says.
        """
        self.hass = hass
        self.url = url or None
        self.trusted_key = bytes.fromhex(trusted_key) if trusted_key else None
        self.folder = Path(hass.config.path(FIRMWARE_FOLDER))
        # each release and where its image is (a path or a URL)
        self._releases: dict[Release, str] = {}
        self._problems: set[str] = set()

    @property
    def releases(self) -> list[Release]:
        """Every valid release found, newest first."""
        return sorted(
            self._releases, key=lambda r: version_key(r.version), reverse=True
        )

    def newest(self, role: NodeRole, hardware: str) -> Release | None:
        """The newest release for nodes of `role` on `hardware`."""
        return newest(self._releases, role, hardware)

    def find(self, version: str, role: NodeRole, hardware: str) -> Release | None:
        """The release of `version` for `role` on `hardware`."""
        return next(
            (
                release
                for release in self._releases
                if release.version == version and release.fits(role, hardware)
            ),
            None,
        )

    async def async_refresh(self) -> None:
        """Read the folder's manifests and the URL's catalog again."""
        found: dict[Release, str] = {}
        problems: list[str] = []
        for name, catalog in await self.hass.async_add_executor_job(
            self._read_folder, problems
        ):
            self._add(found, problems, name, catalog, str(self.folder), local=True)
        if self.url is not None:
            try:
                catalog = await self._download_json(self.url)
            except _DownloadError as err:
                problems.append(f"{self.url}: cannot download it ({err})")
            else:
                self._add(found, problems, self.url, catalog, self.url, local=False)
        self._releases = found
        for problem in set(problems) - self._problems:
            LOGGER.warning("Firmware catalog: %s", problem)
        self._problems = set(problems)

    def _read_folder(self, problems: list[str]) -> list[tuple[str, object]]:
        catalogs: list[tuple[str, object]] = []
        if not self.folder.is_dir():
            return catalogs
        for path in sorted(self.folder.glob("*.json")):
            try:
                catalogs.append((path.name, json.loads(path.read_text("utf-8"))))
            except (OSError, ValueError) as err:
                problems.append(f"{path.name}: cannot read it ({err})")
        return catalogs

    @staticmethod
    def _add(
        found: dict[Release, str],
        problems: list[str],
        name: str,
        catalog: object,
        base: str,
        *,
        local: bool,
    ) -> None:
        releases, skipped = parse_catalog(catalog)
        problems.extend(f"{name}: {why}" for why in skipped)
        for release in releases:
            if "://" in release.image:
                found[release] = release.image
            elif local:  # only files of the folder itself
                found[release] = str(Path(base) / Path(release.image).name)
            else:
                found[release] = urljoin(base, release.image)

    async def async_image(self, release: Release) -> FirmwareImage:
        """The image of `release`, checked against its manifest (size, SHA-256)."""
        where = self._releases.get(release)
        if where is None:
            raise _error("release_gone", version=release.version)
        if "://" in where:
            try:
                data = await self._download(where, release.size)
            except _DownloadError as err:
                raise _error("download_failed", url=where, error=str(err)) from err
        else:
            try:
                data = await self.hass.async_add_executor_job(Path(where).read_bytes)
            except OSError as err:
                raise _error(
                    "image_unreadable", version=release.version, error=str(err)
                ) from err
        try:
            return release.image_from(data, self.trusted_key)
        except DcMeshError as err:
            raise _error(
                "image_invalid", version=release.version, error=str(err)
            ) from err

    async def _download_json(self, url: str) -> object:
        data = await self._download(url, 1_000_000)
        try:
            return json.loads(data)
        except ValueError as err:
            raise _DownloadError(f"not JSON: {err}") from err

    async def _download(self, url: str, limit: int) -> bytes:
        session = async_get_clientsession(self.hass)
        try:
            async with session.get(
                url, timeout=aiohttp.ClientTimeout(total=FIRMWARE_DOWNLOAD_TIMEOUT)
            ) as response:
                response.raise_for_status()
                data = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    data += chunk
                    if len(data) > limit:
                        raise _DownloadError(f"more than {limit} bytes")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise _DownloadError(str(err) or type(err).__name__) from err
        return bytes(data)


def _error(key: str, **placeholders: str) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )
