"""Small helpers shared by the tests."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import prometheus_client


def eventually(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """Return the first truthy result of `check`, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last result: {last!r}")


BASE_AGENT: dict[str, Any] = {
    "apiVersion": "voicefleet.io/v1alpha1",
    "kind": "VoiceAgent",
    "metadata": {"name": "support"},
    "spec": {
        "image": "voicefleet-agent:test",
        "pipeline": {
            "stt": [{"provider": "simulated"}],
            "llm": [{"provider": "simulated"}],
            "tts": [{"provider": "simulated"}],
        },
        "regions": [
            {
                "name": "us-east",
                "livekit": {"url": "ws://127.0.0.1:7880", "credentialsSecret": "livekit-us"},
                "minReplicas": 1,
                "maxReplicas": 5,
            }
        ],
    },
}


def voice_agent(name: str = "support", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """A valid VoiceAgent manifest with `spec` fields replaced."""
    agent = copy.deepcopy(BASE_AGENT)
    agent["metadata"] = {"name": name, "namespace": namespace}
    agent["spec"].update(spec)
    return agent


class WorkerMetrics:
    """Serves the worker's active-sessions gauge on each pod's IP, as the agent worker does.

    KWOK pods run no containers; their IPs are on loopback (see LocalCluster), so the operator
    reads these endpoints exactly as it reads real workers' /metrics in a cluster.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._servers: dict[str, tuple[Any, Any, Any]] = {}

    def serve(self, pod_ip: str, sessions: int) -> None:
        if pod_ip not in self._servers:
            registry = prometheus_client.CollectorRegistry()
            gauge = prometheus_client.Gauge(
                "voicefleet_agent_active_sessions",
                "Sessions in progress.",
                ["agent", "region"],
                registry=registry,
            )
            server, thread = prometheus_client.start_http_server(
                self.port, pod_ip, registry=registry
            )
            self._servers[pod_ip] = (gauge, server, thread)
        self._servers[pod_ip][0].labels("test", "local").set(sessions)

    def close(self) -> None:
        for _, server, thread in self._servers.values():
            server.shutdown()
            thread.join(5)
        self._servers.clear()


def livekit_secret(cluster: Any, namespace: str, name: str, server: Any) -> None:
    """The Secret a VoiceAgent region names for `server`'s API key and secret (a LocalCluster
    and a LiveKitServer)."""
    cluster.kubectl(
        "create", "secret", "generic", name, "-n", namespace,
        f"--from-literal=api-key={server.api_key}",
        f"--from-literal=api-secret={server.api_secret}",
    )  # fmt: skip
