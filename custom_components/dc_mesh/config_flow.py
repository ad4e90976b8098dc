"""Config flow: Bluetooth discovery or a pick from discovered nodes, options, reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import Any
from urllib.parse import urlparse

from homeassistant.components.bluetooth import (
    BluetoothServiceInfoBleak,
    async_discovered_service_info,
)
from homeassistant.config_entries import (
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_ADDRESS
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio as vol

from .const import (
    CONF_EXCLUDED_ADDRESSES,
    CONF_FIRMWARE_KEY,
    CONF_FIRMWARE_URL,
    CONF_MESH_ID,
    CONF_MESH_KEY,
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_PUBLISH,
    CONF_MQTT_RETAIN,
    CONF_STALE_TIMEOUT,
    DEFAULT_MQTT_BASE_TOPIC,
    DEFAULT_STALE_TIMEOUT,
    DOMAIN,
    LEGACY_MESH_ID,
    LOGGER,
)
from .coordinator import DcMeshConfigEntry
from .dcmesh import (
    AuthenticationError,
    AuthRefusedError,
    DcMeshError,
    DcMeshLink,
    KeyRequiredError,
    parse_key,
)
from .discovery import advertisement_of, mesh_id_of, mesh_title

# A connection test must not keep the user waiting for long.
PROBE_CONNECT_TIMEOUT = 15.0


async def _async_probe(
    service_info: BluetoothServiceInfoBleak, mesh_key: bytes | None
) -> None:
    """Connect to a node, negotiate, and read the mesh once; raise DcMeshError.

    Negotiating is INFO and, if the node needs one, a session with the mesh key. A v0.7 mesh in fallback mode is not read (the coordinator then shows a repair issue).
    """
    link = DcMeshLink(
        service_info.device,
        name=service_info.name,
        connect_timeout=PROBE_CONNECT_TIMEOUT,
        mesh_key=mesh_key,
    )
    try:
        await link.connect()
        if not link.fallback:  # in fallback a READ would switch loads on
            await link.read_all()
    finally:
        await link.disconnect()


def _seconds(low: int, high: int) -> vol.All[int]:
    """A whole number of seconds in a box."""
    return vol.All(
        NumberSelector(
            NumberSelectorConfig(
                min=low,
                max=high,
                step=1,
                unit_of_measurement="s",
                mode=NumberSelectorMode.BOX,
            )
        ),
        vol.Coerce(int),
    )


_KEY_SCHEMA = vol.Schema({vol.Required(CONF_MESH_KEY): TextSelector()})


def _node_label(info: BluetoothServiceInfoBleak, mesh_id: str) -> str:
    return f"{info.name} {info.address} ({mesh_title(mesh_id)}, {info.rssi} dBm)"


class DcMeshConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up one config entry per mesh."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start with nothing discovered."""
        self._discovery: BluetoothServiceInfoBleak | None = None
        self._discovered: dict[str, BluetoothServiceInfoBleak] = {}
        self._keyed: BluetoothServiceInfoBleak | None = None  # needs the mesh key

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: DcMeshConfigEntry) -> DcMeshOptionsFlow:
        """Options of a mesh."""
        return DcMeshOptionsFlow()

    async def async_step_bluetooth(
        self, discovery_info: BluetoothServiceInfoBleak
    ) -> ConfigFlowResult:
        """A DC-Monitor node advertised: offer its mesh unless it is configured."""
        mesh_id = mesh_id_of(discovery_info)
        if mesh_id is None:
            return self.async_abort(reason="not_supported")
        # Every further node of a configured mesh becomes a failover candidate silently.
        await self.async_set_unique_id(mesh_id)
        self._abort_if_unique_id_configured()
        self._discovery = discovery_info
        self.context["title_placeholders"] = {"name": mesh_title(mesh_id)}
        return await self.async_step_bluetooth_confirm()

    async def async_step_bluetooth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm the discovered mesh; test the connection first."""
        assert self._discovery is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            if (error := await self._async_test(self._discovery)) is None:
                return self._async_create(self._discovery)
            if error == "key_required":
                return await self._async_ask_key(self._discovery)
            errors["base"] = error
        self._set_confirm_only()
        return self.async_show_form(
            step_id="bluetooth_confirm",
            description_placeholders={
                "name": mesh_title(self.unique_id or LEGACY_MESH_ID),
                "address": self._discovery.address,
            },
            errors=errors,
        )

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick a discovered node of a mesh that is not configured yet."""
        errors: dict[str, str] = {}
        if user_input is not None:
            info = self._discovered[user_input[CONF_ADDRESS]]
            mesh_id = mesh_id_of(info)
            assert mesh_id is not None
            await self.async_set_unique_id(mesh_id, raise_on_progress=False)
            self._abort_if_unique_id_configured()
            if (error := await self._async_test(info)) is None:
                return self._async_create(info)
            if error == "key_required":
                return await self._async_ask_key(info)
            errors["base"] = error

        configured = self._async_current_ids(include_ignore=False)
        self._discovered = {
            info.address: info
            for info in async_discovered_service_info(self.hass, connectable=True)
            if (mesh_id := mesh_id_of(info)) is not None and mesh_id not in configured
        }
        if not self._discovered:
            return self.async_abort(reason="no_devices_found")
        options = [
            SelectOptionDict(
                value=address, label=_node_label(info, mesh_id_of(info) or "")
            )
            for address, info in sorted(
                self._discovered.items(), key=lambda item: -item[1].rssi
            )
        ]
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_ADDRESS): SelectSelector(
                        SelectSelectorConfig(options=options)
                    )
                }
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the node the mesh prefers to connect through."""
        entry = self._get_reconfigure_entry()
        candidates = {
            info.address: info
            for info in async_discovered_service_info(self.hass, connectable=True)
            if mesh_id_of(info) == entry.unique_id
        }
        errors: dict[str, str] = {}
        if user_input is not None:
            info = candidates.get(user_input[CONF_ADDRESS])
            if info is None:
                errors["base"] = "cannot_connect"
            elif (error := await self._async_test(info, _entry_key(entry))) is None:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_ADDRESS: info.address}
                )
            else:
                errors["base"] = error
        if not candidates:
            return self.async_abort(reason="no_devices_found")
        options = [
            SelectOptionDict(
                value=address, label=_node_label(info, entry.unique_id or "")
            )
            for address, info in candidates.items()
        ]
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_ADDRESS, default=entry.data[CONF_ADDRESS]
                    ): SelectSelector(SelectSelectorConfig(options=options))
                }
            ),
            errors=errors,
        )

    async def _async_ask_key(self, info: BluetoothServiceInfoBleak) -> ConfigFlowResult:
        self._keyed = info
        return await self.async_step_mesh_key()

    async def async_step_mesh_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The mesh's nodes need its key (firmware v1): ask for it, check it, keep it."""
        assert self._keyed is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            error, key = await self._async_test_key(self._keyed, user_input)
            if error is None:
                return self._async_create(self._keyed, key)
            errors["base"] = error
        return self.async_show_form(
            step_id="mesh_key",
            data_schema=_KEY_SCHEMA,
            description_placeholders={"name": mesh_title(self.unique_id or "")},
            errors=errors,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The mesh's gateways reject the stored key (the mesh was provisioned again)."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the mesh's new key; check it with a node before saving it."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            candidates = sorted(
                (
                    info
                    for info in async_discovered_service_info(
                        self.hass, connectable=True
                    )
                    if mesh_id_of(info) == entry.unique_id
                ),
                key=lambda info: -info.rssi,
            )
            error: str | None = "cannot_connect"
            key: bytes | None = None
            for info in candidates[:3]:
                error, key = await self._async_test_key(info, user_input)
                if error != "cannot_connect":
                    break
            if error is None and key is not None:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_MESH_KEY: key.hex()}
                )
            errors["base"] = error or "cannot_connect"
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=_KEY_SCHEMA,
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    async def _async_test_key(
        self, info: BluetoothServiceInfoBleak, user_input: dict[str, Any]
    ) -> tuple[str | None, bytes | None]:
        """Parse the key the user entered and prove it with a node."""
        try:
            key = parse_key(user_input[CONF_MESH_KEY])
        except ValueError:
            return "invalid_key_format", None
        return await self._async_test(info, key), key

    async def _async_test(
        self, info: BluetoothServiceInfoBleak, mesh_key: bytes | None = None
    ) -> str | None:
        try:
            await _async_probe(info, mesh_key)
        except KeyRequiredError:
            return "key_required"
        except AuthenticationError as err:
            LOGGER.debug("%s did not accept the mesh key: %s", info.address, err)
            return "invalid_key"
        except AuthRefusedError as err:
            LOGGER.debug("%s refused a session: %s", info.address, err)
            return "too_many_attempts" if err.detail == "LOCKED" else "cannot_connect"
        except DcMeshError as err:
            LOGGER.debug("Connection test with %s failed: %s", info.address, err)
            return "cannot_connect"
        except Exception:
            LOGGER.exception("Unexpected error testing %s", info.address)
            return "unknown"
        return None

    def _async_create(
        self, info: BluetoothServiceInfoBleak, mesh_key: bytes | None = None
    ) -> ConfigFlowResult:
        mesh_id = self.unique_id
        assert mesh_id is not None
        data = {CONF_MESH_ID: mesh_id, CONF_ADDRESS: info.address}
        if mesh_key is not None:
            data[CONF_MESH_KEY] = mesh_key.hex()
        return self.async_create_entry(title=mesh_title(mesh_id), data=data)


def _entry_key(entry: DcMeshConfigEntry) -> bytes | None:
    key = entry.data.get(CONF_MESH_KEY)
    return bytes.fromhex(key) if key else None


class DcMeshOptionsFlow(OptionsFlowWithReload):
    """Staleness timeout, and the advertising nodes that are not part of this mesh."""

    def __init__(self) -> None:
        """Collect the options of both steps."""
        self._options: dict[str, Any] = {}

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the options; then MQTT publishing, if HA's MQTT integration is set up."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url = str(user_input.get(CONF_FIRMWARE_URL, "")).strip()
            if url and urlparse(url).scheme not in ("http", "https"):
                errors[CONF_FIRMWARE_URL] = "invalid_url"
            key = str(user_input.get(CONF_FIRMWARE_KEY, "")).strip().lower()
            if key and not re.fullmatch(r"[0-9a-f]{64}", key):
                errors[CONF_FIRMWARE_KEY] = "invalid_key_digest"
        if user_input is not None and not errors:
            self._options = dict(user_input)
            if "mqtt" in self.hass.config.components:
                return await self.async_step_mqtt()
            # without HA's MQTT integration the MQTT options stay as they were
            kept = {
                key: value
                for key, value in self.config_entry.options.items()
                if key in (CONF_MQTT_PUBLISH, CONF_MQTT_BASE_TOPIC, CONF_MQTT_RETAIN)
            }
            return self.async_create_entry(data=kept | self._options)
        options = self.config_entry.options
        excluded: list[str] = options.get(CONF_EXCLUDED_ADDRESSES, [])
        labels = {address: address for address in excluded}
        for info in async_discovered_service_info(self.hass, connectable=True):
            if mesh_id_of(info) == self.config_entry.unique_id:
                advertisement = advertisement_of(info)
                labels[info.address] = (
                    f"Node {advertisement.node_id} ({info.address})"
                    if advertisement is not None and advertisement.node_id is not None
                    else f"{info.name} ({info.address})"
                )
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_STALE_TIMEOUT,
                        default=options.get(CONF_STALE_TIMEOUT, DEFAULT_STALE_TIMEOUT),
                    ): _seconds(10, 3600),
                    vol.Optional(
                        CONF_EXCLUDED_ADDRESSES, default=excluded
                    ): SelectSelector(
                        SelectSelectorConfig(
                            options=[
                                SelectOptionDict(value=address, label=label)
                                for address, label in sorted(labels.items())
                            ],
                            multiple=True,
                        )
                    ),
                    vol.Optional(
                        CONF_FIRMWARE_URL,
                        description={"suggested_value": options.get(CONF_FIRMWARE_URL)},
                    ): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
                    vol.Optional(
                        CONF_FIRMWARE_KEY,
                        description={"suggested_value": options.get(CONF_FIRMWARE_KEY)},
                    ): TextSelector(),
                }
            ),
            errors=errors,
        )

    async def async_step_mqtt(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Publish readings to MQTT: on or off, base topic, retained state."""
        errors: dict[str, str] = {}
        if user_input is not None:
            base = str(user_input[CONF_MQTT_BASE_TOPIC]).strip().strip("/")
            if not base or any(c in base for c in "#+\0"):
                errors[CONF_MQTT_BASE_TOPIC] = "invalid_topic"
            else:
                return self.async_create_entry(
                    data=self._options | user_input | {CONF_MQTT_BASE_TOPIC: base}
                )
        options = self.config_entry.options
        return self.async_show_form(
            step_id="mqtt",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_MQTT_PUBLISH,
                        default=options.get(CONF_MQTT_PUBLISH, False),
                    ): BooleanSelector(),
                    vol.Required(
                        CONF_MQTT_BASE_TOPIC,
                        default=options.get(
                            CONF_MQTT_BASE_TOPIC, DEFAULT_MQTT_BASE_TOPIC
                        ),
                    ): TextSelector(),
                    vol.Required(
                        CONF_MQTT_RETAIN, default=options.get(CONF_MQTT_RETAIN, True)
                    ): BooleanSelector(),
                }
            ),
            errors=errors,
        )
