"""A livekit-server on one local address (loopback, or a real node's), for the demo and the
tests."""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from voicefleet_devstack.process import Process, binary, free_port


@dataclass
class LiveKitServer:
    """One single-node livekit-server; `url`, `api_key` and `api_secret` reach it."""

    workdir: Path
    api_key: str = "devkey"
    api_secret: str = field(default_factory=lambda: secrets.token_hex(24))
    webhook_urls: list[str] = field(default_factory=list)
    port: int = 0
    # Where it listens and what it tells clients for media: a real node's pods reach it at the
    # node's address (voicefleet_devstack.node), anything else on this machine at either.
    host: str = "127.0.0.1"
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> LiveKitServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.workdir / "livekit.yaml"
        # JSON is YAML: no YAML writer needed for a flat config.
        config.write_text(json.dumps(self._config(), indent=2))
        self.process = Process(
            "livekit-server",
            [binary("livekit-server"), f"--config={config}", f"--node-ip={self.host}"],
            self.workdir / "livekit-server.log",
        ).start()
        self.process.wait_until(self._healthy, timeout, f"serving on {self.http_url}")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def _healthy(self) -> bool:
        with urllib.request.urlopen(self.http_url, timeout=2) as response:
            return bool(response.status == 200)

    def _config(self) -> dict[str, object]:
        config: dict[str, object] = {
            "port": self.port,
            "bind_addresses": [self.host],
            "rtc": {
                "tcp_port": free_port(),
                "udp_port": free_port(),
                "use_external_ip": False,
                "node_ip": self.host,
            },
            "keys": {self.api_key: self.api_secret},
            "logging": {"level": "info", "json": True},
            "room": {"empty_timeout": 30, "departure_timeout": 5},
        }
        if self.webhook_urls:
            config["webhook"] = {"api_key": self.api_key, "urls": self.webhook_urls}
        return config
