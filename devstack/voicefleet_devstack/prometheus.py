"""A Prometheus server bound to loopback, scraping the targets it is given."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicefleet_devstack.process import Process, binary, free_port


@dataclass
class Prometheus:
    """Prometheus with a static scrape config; `query()` asks its HTTP API."""

    workdir: Path
    targets: dict[str, list[str]] = field(default_factory=dict)
    pod_targets: dict[str, PodTargets] = field(default_factory=dict)
    """Jobs that discover their targets among a namespace's pods, as in a cluster."""
    target_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    """Labels added to every series of a job, as service discovery adds them in a cluster."""
    rule_files: list[Path] = field(default_factory=list)
    scrape_interval: str = "1s"
    port: int = 0
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.write_config()
        self.process = Process(
            "prometheus",
            [
                binary("prometheus"),
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            self.workdir / "prometheus.log",
        ).start()
        self.process.wait_until(self._ready, timeout, f"ready on {self.url}")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def write_config(self) -> None:
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [
                        {"targets": targets, "labels": self.target_labels.get(job, {})}
                    ],
                }
                for job, targets in self.targets.items()
            ]
            + [pods.scrape_config(job) for job, pods in self.pod_targets.items()],
        }
        (self.workdir / "prometheus.yml").write_text(json.dumps(config, indent=2))

    def reload(self) -> None:
        """Re-read the config after `targets` or `rule_files` changed."""
        self.write_config()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        urllib.request.urlopen(request, timeout=5).close()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the `result` vector of the API's answer."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)


@dataclass(frozen=True)
class PodTargets:
    """The pods of `namespace` that declare a container port named `port`."""

    kubeconfig: Path
    namespace: str
    port: str = "metrics"

    def scrape_config(self, job: str) -> dict[str, Any]:
        return {
            "job_name": job,
            "kubernetes_sd_configs": [
                {
                    "role": "pod",
                    "kubeconfig_file": str(self.kubeconfig),
                    "namespaces": {"names": [self.namespace]},
                }
            ],
            "relabel_configs": [
                {
                    "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                    "regex": self.port,
                    "action": "keep",
                },
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ],
        }
