"""Finish Home Assistant's onboarding for local development (owner dev / dev).

Waits for the HTTP server, then does nothing if onboarding is already done.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any
import urllib.error
import urllib.request

CLIENT_ID = "http://localhost:8123/"


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


def main(base: str) -> None:
    deadline = time.monotonic() + 600
    while True:
        try:
            with urllib.request.urlopen(
                f"{base}/api/onboarding", timeout=5
            ) as response:
                steps = json.loads(response.read())
            break
        except urllib.error.URLError, ConnectionError, TimeoutError:
            if time.monotonic() > deadline:
                return
            time.sleep(1)
    if all(step["done"] for step in steps):
        return
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
    print(
        "[dc-mesh] onboarding done: log in at http://localhost:8123 as dev / dev",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main(sys.argv[1])
