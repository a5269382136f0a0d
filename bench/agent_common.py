"""Shared by the agent benchmarks: a livekit-server and agent worker subprocesses on loopback."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from voicefleet_operator.local.livekit import LiveKitServer
from voicefleet_operator.local.process import Process, free_port


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

    def tree(self) -> list[psutil.Process]:
        assert self.process.popen is not None
        root = psutil.Process(self.process.popen.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def pss_bytes(self) -> int:
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_full_info().pss
        return total

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
        [sys.executable, "-m", "voicefleet_agent.main", "start"],
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


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    start: float
    end: float
    attributes: dict[str, Any]


class SpanReceiver:
    """An OTLP/HTTP trace endpoint on loopback (POST /v1/traces) keeping every span."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._store(request)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _store(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        spans = [
            Span(
                name=s.name,
                trace_id=s.trace_id.hex(),
                span_id=s.span_id.hex(),
                parent_id=s.parent_span_id.hex(),
                start=s.start_time_unix_nano / 1e9,
                end=s.end_time_unix_nano / 1e9,
                attributes={a.key: _value(a.value) for a in s.attributes},
            )
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for s in scope_spans.spans
        ]
        with self._lock:
            self.spans.extend(spans)

    def snapshot(self) -> list[Span]:
        with self._lock:
            return list(self.spans)

    def close(self) -> None:
        self._server.shutdown()


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None
