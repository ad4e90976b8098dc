"""A real MQTT broker (Debian's mosquitto) and a real subscriber, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
import shutil
import socket
import subprocess
import threading
import time

from paho.mqtt import client as paho


class Broker:
    """A mosquitto on a free localhost port that can be stopped and started again."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._process = subprocess.Popen(  # noqa: S603 (our own config, localhost)
            [binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(5)
            self._process = None


class Subscriber:
    """A real MQTT client that records every message under a topic filter."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        self._client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_message(
        self, _client: object, _userdata: object, msg: paho.MQTTMessage
    ) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def take(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def publish(self, topic: str, payload: str) -> None:
        """Publish as any MQTT client of the site would (QoS 1)."""
        self._client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
