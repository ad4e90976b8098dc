"""Constants of the DC Mesh integration."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "dc_mesh"
LOGGER = logging.getLogger(__package__)

MANUFACTURER: Final = "DC Mesh"
HUB_MODEL: Final = "DC-Monitor mesh"

# Config entry data.
CONF_MESH_ID: Final = "mesh_id"  # 8 hex digits (v1 advertisement) or LEGACY_MESH_ID
CONF_ADDRESS: Final = (
    "address"  # the node the entry was set up through (preferred gateway)
)
LEGACY_MESH_ID: Final = "legacy"  # all v0.7 nodes of a site form one mesh (see README)

# Options.
CONF_POLL_INTERVAL: Final = "poll_interval"
CONF_STALE_TIMEOUT: Final = "stale_timeout"
CONF_EXCLUDED_ADDRESSES: Final = "excluded_addresses"
# The v0.7 Pi gateway polled every 3 s; one ALL:READ of a 10-node mesh takes about 1-2 s through
# real mesh hops, so 10 s keeps the mesh quiet enough for commands and still shows live values.
DEFAULT_POLL_INTERVAL: Final = 10
# The Pi gateway marked nodes stale after 45 s without data.
DEFAULT_STALE_TIMEOUT: Final = 45

# Link timing. A connection through a proxy takes up to a few seconds. A reply crosses up to
# ~5 mesh hops each way at 50-300 ms a hop (the firmware's own client timeout is 5 s). Readings
# of one ALL:READ arrive spread out by the hops, so a poll ends 0.6 s after the last new one.
LINK_CONNECT_TIMEOUT: Final = 10.0
LINK_REPLY_TIMEOUT: Final = 6.0
LINK_QUIET_PERIOD: Final = 0.6

# A mesh unreachable this long raises a repair issue (it clears itself on reconnect).
UNREACHABLE_ISSUE_AFTER: Final = timedelta(minutes=10)
# Failover back-off when no candidate answers: 1 s doubling to 60 s.
BACKOFF_INITIAL: Final = 1.0
BACKOFF_MAX: Final = 60.0
# Candidates whose last advertisement is older than this are not tried first.
CANDIDATE_FRESH_SECONDS: Final = 60.0

# Power budget balancer (v0.7 PowerManager facts): 500 mW headroom, nudge at most every 5 s.
BALANCER_HEADROOM_MW: Final = 500.0
BALANCER_COOLDOWN: Final = 5.0
BALANCER_MAX_STEP: Final = 10
DEFAULT_BUDGET_W: Final = 20.0
