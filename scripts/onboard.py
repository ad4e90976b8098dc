"""Finish Home Assistant's onboarding for local development (owner dev / dev).

Started by scripts/develop beside Home Assistant (its parent process). Waits until the frontend
answers, creates the owner and finishes the remaining onboarding steps, then exits. It never
lingers: it exits at once when onboarding is already done, when Home Assistant exits first, on
Ctrl-C, and after 10 minutes at most.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from typing import Any
import urllib.error
import urllib.request

CLIENT_ID = "http://localhost:8123/"
DEADLINE_SECONDS = 600
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _exit_with_parent() -> int:
    """Die with the process that started us (Home Assistant); return its pid.

    scripts/develop starts this helper in the background (where the shell ignores SIGINT)
    and then execs Home Assistant in its own process, so Home Assistant is our parent.
    """
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends us quietly
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError, AttributeError:
            pass  # the polling in _wait_for_frontend covers it
    if os.getppid() != parent:  # it exited before prctl took effect
        sys.exit(0)
    return parent


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read() or b"null")


def _post(url: str, payload: dict[str, Any], token: str | None = None) -> Any:
    data = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _token(base: str, code: str) -> str:
    body = f"grant_type=authorization_code&code={code}&client_id={CLIENT_ID}".encode()
    request = urllib.request.Request(f"{base}/auth/token", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["access_token"])


def _wait_for_frontend(base: str, parent: int) -> bool:
    """Wait until the frontend serves its manifest; False if HA exits or never comes up.

    The HTTP server listens before the onboarding API is registered, so a 404 from
    /api/onboarding means something only once the frontend (which depends on onboarding) is up.
    """
    deadline = time.monotonic() + DEADLINE_SECONDS
    while os.getppid() == parent and time.monotonic() < deadline:
        try:
            _get(f"{base}/manifest.json")
        except urllib.error.URLError, ConnectionError, TimeoutError, ValueError:
            time.sleep(0.5)
        else:
            return True
    return False


def main(base: str) -> None:
    parent = _exit_with_parent()
    if not _wait_for_frontend(base, parent):
        return
    try:
        steps = _get(f"{base}/api/onboarding")
    except urllib.error.HTTPError as err:
        if err.code != 404:
            raise
        steps = []  # HA drops the onboarding API once onboarding is complete
    if not all(step["done"] for step in steps):
        user = _post(
            f"{base}/api/onboarding/users",
            {
                "client_id": CLIENT_ID,
                "name": "Developer",
                "username": "dev",
                "password": "dev",
                "language": "en",
            },
        )
        token = _token(base, user["auth_code"])
        _post(f"{base}/api/onboarding/core_config", {}, token)
        _post(f"{base}/api/onboarding/analytics", {}, token)
        _post(
            f"{base}/api/onboarding/integration",
            {"client_id": CLIENT_ID, "redirect_uri": f"{CLIENT_ID}?auth_callback=1"},
            token,
        )
        print("[dc-mesh] onboarding done", file=sys.stderr)
    print(
        f"[dc-mesh] {base} is up: log in as dev / dev (Ctrl-C stops Home Assistant)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main(sys.argv[1])
