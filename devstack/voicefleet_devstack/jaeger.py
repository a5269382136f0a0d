"""Jaeger v2 bound to loopback: an OTLP receiver keeping traces in memory, queryable over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from voicefleet_devstack.process import Process, binary, free_port

STORE = "memstore"


@dataclass
class Jaeger:
    """Jaeger v2 (an OpenTelemetry Collector build) with OTLP in and the query API out."""

    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: Process | None = None

    @property
    def otlp_http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['otlp_http']}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['otlp_grpc']}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['query_http']}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['health']}/status"

    def start(self, timeout: float = 30) -> Jaeger:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Every listener gets its own free port: the defaults (4317, 16686, 8888...) are fixed.
        for name in ("otlp_http", "otlp_grpc", "query_http", "query_grpc", "health", "metrics"):
            self.ports.setdefault(name, free_port())
        config = self.workdir / "jaeger.json"
        # JSON is YAML, which is what the collector's config loader reads.
        config.write_text(json.dumps(self.config(), indent=2))
        self.process = Process(
            "jaeger",
            [binary("jaeger"), f"--config={config}"],
            self.workdir / "jaeger.log",
        ).start()
        self.process.wait_until(self._ready, timeout, f"ready on {self.query_url}")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def config(self) -> dict[str, Any]:
        """Collector config: OTLP receiver → in-memory store ← query extension."""
        return {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": self.otlp_grpc_endpoint},
                        "http": {"endpoint": self._address("otlp_http")},
                    }
                }
            },
            "exporters": {"jaeger_storage_exporter": {"trace_storage": STORE}},
            "extensions": {
                "jaeger_storage": {"backends": {STORE: {"memory": {"max_traces": 10000}}}},
                "jaeger_query": {
                    "storage": {"traces": STORE},
                    # Otherwise the query service traces its own requests.
                    "enable_tracing": False,
                    "http": {"endpoint": self._address("query_http")},
                    "grpc": {"endpoint": self._address("query_grpc")},
                },
                "healthcheckv2": {
                    "use_v2": True,
                    "http": {"endpoint": self._address("health")},
                },
            },
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
                # No batch processor: spans are stored as soon as they arrive.
                "pipelines": {
                    "traces": {"receivers": ["otlp"], "exporters": ["jaeger_storage_exporter"]}
                },
                "telemetry": {
                    "metrics": {
                        "readers": [
                            {
                                "pull": {
                                    "exporter": {
                                        "prometheus": {
                                            "host": "127.0.0.1",
                                            "port": self.ports["metrics"],
                                        }
                                    }
                                }
                            }
                        ]
                    }
                },
            },
        }

    def traces(
        self, service: str, lookback: timedelta = timedelta(hours=1), limit: int = 100
    ) -> list[dict[str, Any]]:
        """Traces of `service` (API v3, OTLP JSON), one `{traceId, spans}` dict per trace.

        Each span carries its `resource` attributes; attributes are flattened to plain values
        and times are integers (nanoseconds).
        """
        now = datetime.now(UTC)
        query = {
            "query.service_name": service,
            "query.start_time_min": (now - lookback).isoformat(),
            "query.start_time_max": (now + timedelta(minutes=1)).isoformat(),
            "query.num_traces": limit,  # required: the in-memory store rejects 0
            # As received: no clock-skew adjustment nor the warnings it adds as attributes.
            "query.raw_traces": "true",
        }
        try:
            body = self._get(f"/api/v3/traces?{urllib.parse.urlencode(query)}")
        except urllib.error.HTTPError as error:
            if error.code == 404:  # the API's answer when nothing matches
                return []
            raise
        spans: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for resource_spans in body["result"].get("resourceSpans", []):
            resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    spans[span["traceId"]].append(_span(span, resource))
        return [{"traceId": trace_id, "spans": found} for trace_id, found in spans.items()]

    def _address(self, port: str) -> str:
        return f"127.0.0.1:{self.ports[port]}"

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.query_url}{path}", timeout=5) as response:
            return json.load(response)

    def _ready(self) -> bool:
        # Health (503 until every component is up) covers the OTLP receiver; the query API is
        # polled too since it is served by an extension of its own. Errors mean "not yet".
        with urllib.request.urlopen(self.health_url, timeout=2) as response:
            healthy = response.status == 200
        return healthy and isinstance(self._get("/api/v3/services"), dict)


def _span(span: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": span["name"],
        "spanId": span["spanId"],
        "parentSpanId": span.get("parentSpanId", ""),
        "startTimeUnixNano": int(span["startTimeUnixNano"]),
        "endTimeUnixNano": int(span["endTimeUnixNano"]),
        "attributes": _attributes(span.get("attributes", [])),
        "resource": resource,
    }


def _attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    return {pair["key"]: _value(pair.get("value", {})) for pair in pairs}


def _value(value: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue as a plain value (int64 arrives as a string)."""
    for kind, plain in value.items():
        if kind == "intValue":
            return int(plain)
        if kind in ("stringValue", "boolValue", "doubleValue"):
            return plain
        if kind == "arrayValue":
            return [_value(v) for v in plain.get("values", [])]
    return None
