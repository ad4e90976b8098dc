"""Constants of the DC Mesh integration."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

from .dcmesh import FailoverTiming

DOMAIN: Final = "dc_mesh"
LOGGER = logging.getLogger(__package__)

MANUFACTURER: Final = "DC Mesh"
HUB_MODEL: Final = "DC-Monitor mesh"

# Config entry data.
CONF_MESH_ID: Final = "mesh_id"  # 8 hex digits (v1 advertisement) or LEGACY_MESH_ID
LEGACY_MESH_ID: Final = "legacy"  # all v0.7 nodes of a site form one mesh (see README)

# Options.
CONF_STALE_TIMEOUT: Final = "stale_timeout"
CONF_MESH_KEY: Final = "mesh_key"
# Fired when a v1 node reports a new boot (its INFO uptime); shown in the logbook.
EVENT_NODE_RESTARTED: Final = "dc_mesh_node_restarted"
CONF_MQTT_PUBLISH: Final = "mqtt_publish"
CONF_MQTT_BASE_TOPIC: Final = "mqtt_base_topic"
CONF_MQTT_RETAIN: Final = "mqtt_retain"
DEFAULT_MQTT_BASE_TOPIC: Final = "dc_mesh"
CONF_EXCLUDED_ADDRESSES: Final = "excluded_addresses"
CONF_FIRMWARE_URL: Final = "firmware_url"
CONF_FIRMWARE_KEY: Final = (
    "firmware_key"  # the pinned release key's SHA-256 digest (hex)
)
# Polling (not user-configurable). The v0.7 Pi gateway polled every 3 s; one ALL:READ of a
# 10-node mesh takes about 2-3 s through real mesh hops (each node's reply is a segmented mesh
# message; v1 nodes answer node id x 100 ms apart, protocol section 10), so one poll every 10 s
# keeps the mesh idle about three quarters of the time for commands and for readings nodes push,
# and still shows live values. Larger meshes answer for longer (30 nodes: ~5 s): each node
# beyond 10 adds 0.5 s, keeping about the same share of air time.
POLL_INTERVAL_BASE: Final = 10.0
POLL_INTERVAL_NODES: Final = 10
POLL_INTERVAL_PER_EXTRA_NODE: Final = 0.5
# The Pi gateway marked nodes stale after 45 s without data.
DEFAULT_STALE_TIMEOUT: Final = 45

# Link timing. A connection through a proxy takes up to a few seconds. A reply crosses up to
# ~5 mesh hops each way at 50-300 ms a hop (the firmware's own client timeout is 5 s). Readings
# of one ALL:READ arrive spread out by the hops, so a poll ends 0.6 s after the last new one.
LINK_CONNECT_TIMEOUT: Final = 10.0
LINK_REPLY_TIMEOUT: Final = 6.0
LINK_QUIET_PERIOD: Final = 0.6
# A GATT write or subscribe that a stalled proxy does not finish within this counts as a lost
# link. v0.7 nodes hold a write response up to ~8 s themselves (a unicast in flight, 5 s, plus
# stopping a monitor, 3 s), so the deadline sits above that.
LINK_WRITE_TIMEOUT: Final = 10.0
# Nodes advertise the name "DC-Monitor"; the old dedicated gateway "DC-Monitor-GW" or similar.
LOCAL_NAME_MATCH: Final = "DC-Monitor*"

# A mesh unreachable this long raises a repair issue (it clears itself on reconnect).
UNREACHABLE_ISSUE_AFTER: Final = timedelta(minutes=10)
# Failover (see dcmesh/failover.py). Nodes advertise several times a second, so a node not
# heard for 30 s is probably gone. A node that failed is tried last for 60 s. When only such
# nodes are left, rounds wait 1 s doubling to 60 s; the back-off resets once a link has held
# for 60 s.
FAILOVER_TIMING: Final = FailoverTiming(
    cool_off=60.0,
    fresh=30.0,
    recent=3.0,
    race_after=1.2,
    backoff_initial=1.0,
    backoff_max=60.0,
    stable_after=60.0,
)
# v1 nodes are asked for their INFO again this often (relays only answer INFO: one that stops
# answering for three rounds goes unavailable and can be removed).
INFO_INTERVAL: Final = timedelta(minutes=5)
RELAY_STALE_AFTER: Final = 3 * INFO_INTERVAL

# Power budget balancer (v0.7 PowerManager facts): 500 mW headroom, nudge at most every 5 s.
BALANCER_HEADROOM_MW: Final = 500.0
BALANCER_COOLDOWN: Final = 5.0
BALANCER_MAX_STEP: Final = 10
DEFAULT_BUDGET_W: Final = 20.0

# Firmware updates (section 9 of docs/protocol-v1.md). Releases are read from this folder of the
# config directory and the catalog URL of the options, again every few hours and before each
# install.
FIRMWARE_FOLDER: Final = "dc_mesh/firmware"
FIRMWARE_DOWNLOAD_TIMEOUT: Final = 300.0
CATALOG_REFRESH_INTERVAL: Final = timedelta(hours=6)
# Fired when a node's firmware update ends (installed or failed); shown in the logbook.
EVENT_FIRMWARE_UPDATE: Final = "dc_mesh_firmware_update"
# A transfer survives this many link losses in a row without progress (each resumes it).
UPDATE_LINK_ATTEMPTS: Final = 5
UPDATE_RETRY_DELAY: Final = 2.0
# A cancelled rollout tells the node to drop its transfer (OTA:ABORT) within this.
UPDATE_ABORT_TIMEOUT: Final = 10.0
# After OTA:DONE the node restarts (~1 s) and boots the image; it answers again within this.
UPDATE_REBOOT_TIMEOUT: Final = 90.0
# A new image runs on trial until its self-test passes; the firmware rolls it back when the
# test has not passed 120 s after boot. An update counts as done once the node has run the
# new version longer than that (its INFO uptime), and answers a READ.
UPDATE_TRIAL_WINDOW: Final = 125.0
UPDATE_TRIAL_POLL: Final = 10.0
# A progressive rollout: one node first, then a fifth of the nodes, then the rest.
ROLLOUT_PHASES: Final = (1, 0.2, 1.0)
