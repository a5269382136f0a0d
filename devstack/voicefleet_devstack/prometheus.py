"""A Prometheus server bound to loopback, scraping the targets it is given."""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.process import Process, binary, free_port

REFRESH_SECONDS = 3.0


@dataclass
class Prometheus:
    """Prometheus with a static scrape config; `query()` asks its HTTP API."""

    workdir: Path
    targets: dict[str, list[str]] = field(default_factory=dict)
    pod_targets: dict[str, PodTargets] = field(default_factory=dict)
    """Jobs that scrape pods found through the API server, as in a cluster."""
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
        for pods in self.pod_targets.values():
            pods.start()
        return self

    def stop(self) -> None:
        for pods in self.pod_targets.values():
            pods.stop()
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
            + [pods.scrape_config(job, self.workdir) for job, pods in self.pod_targets.items()],
        }
        (self.workdir / "prometheus.yml").write_text(json.dumps(config, indent=2))

    def reload(self) -> None:
        """Re-read the config after `targets` or `rule_files` changed."""
        self.write_config()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        urllib.request.urlopen(request, timeout=5).close()

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query, now or `at` a Unix time; the `result` vector of the API's answer."""
        params = {"query": promql} if at is None else {"query": promql, "time": repr(at)}
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)


class PodTargets:
    """The running pods of `namespace` matching `selector`, scraped on `port`.

    Debian's Prometheus is built without Kubernetes discovery, so a thread asks the API server
    every few seconds and writes what it finds where Prometheus' file discovery reads it.
    """

    def __init__(self, cluster: LocalCluster, namespace: str, selector: str, port: int) -> None:
        self.cluster, self.namespace, self.selector, self.port = cluster, namespace, selector, port
        self.file: Path | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, daemon=True)

    def scrape_config(self, job: str, directory: Path) -> dict[str, Any]:
        self.file = directory / f"{job}-pods.json"
        self.write()
        return {"job_name": job, "file_sd_configs": [{"files": [str(self.file)],
                                                       "refresh_interval": "5s"}]}  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def write(self) -> None:
        assert self.file is not None
        out = self.cluster.kubectl("get", "pods", "-n", self.namespace, "-l", self.selector,
                                   "-o", "json", check=False)  # fmt: skip
        try:
            pods = json.loads(out)["items"]
        except (ValueError, KeyError):
            return  # the API server is busy or stopping: keep the last list
        groups = [
            {"targets": [f"{pod['status']['podIP']}:{self.port}"],
             "labels": {"pod": pod["metadata"]["name"]}}
            for pod in pods
            if pod["status"].get("phase") == "Running" and pod["status"].get("podIP")
        ]  # fmt: skip
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(json.dumps(groups))
        temporary.replace(self.file)  # Prometheus never reads a half-written file

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            self.write()
