"""Shared by the agent benchmarks: a livekit-server and agent worker subprocesses on loopback."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from voicefleet_agent.process_tree import WorkerProcesses
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import Process, free_port


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@dataclass
class Worker:
    process: Process
    metrics_port: int
    started_at: float
    ready_after: float = 0.0

    def processes(self) -> WorkerProcesses:
        """Its process tree on this machine, as the load test's ramp measures it."""
        assert self.process.popen is not None
        return WorkerProcesses(self.process.popen.pid)

    def tree(self) -> list[psutil.Process]:
        return self.processes().tree()

    def cpu_seconds(self) -> float:
        return self.processes().cpu_seconds()

    def pss_bytes(self) -> int:
        return self.processes().memory_bytes()

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
            return str(r.read().decode())


def start_worker(livekit: LiveKitServer, workdir: Path, config: dict[str, Any]) -> Worker:
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_port = free_port()
    observability = {**config.get("observability", {}), "metricsPort": metrics_port}
    config = {**config, "observability": observability}
    (workdir / "config.json").write_text(json.dumps(config))
    env = {
        "VOICEFLEET_CONFIG": str(workdir / "config.json"),
        "LIVEKIT_URL": livekit.url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
        "VOICEFLEET_WORKER_HTTP_PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }
    started = time.monotonic()
    process = Process(
        "agent worker",
        [sys.executable, "-m", "voicefleet_agent", "start"],
        workdir / "worker.log",
        env=env,
    ).start()
    worker = Worker(process, metrics_port, started)
    process.wait_until(
        lambda: http_status(f"http://127.0.0.1:{metrics_port}/readyz") == 200, 60, "ready"
    )
    worker.ready_after = time.monotonic() - started
    return worker


@contextlib.contextmanager
def livekit_server(workdir: Path) -> Iterator[LiveKitServer]:
    server = LiveKitServer(workdir / "livekit")
    try:
        yield server.start()
    finally:
        server.stop()


def histogram_mean(text: str, name: str) -> float | None:
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{name}_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total / count if count else None
