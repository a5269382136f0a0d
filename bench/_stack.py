"""Shared set-up for the operator benchmarks: the same real servers the tests use."""

from __future__ import annotations

import json
import signal
import statistics
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.images import Image, build_images
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.node import RealNode
from voicefleet_devstack.process import Process, free_port, port_open

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    cluster: LocalCluster
    operator: Process
    operator_port: int
    webhook_port: int


def stop_on_sigterm() -> None:
    """Unwind (and stop every server) on SIGTERM too, e.g. from `timeout`."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@contextmanager
def operator_stack(workdir: Path, stack: ExitStack) -> Iterator[Stack]:
    cluster = LocalCluster(workdir / "cluster")
    stack.callback(cluster.stop)
    cluster.start()
    cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "base" / "crd.yaml"))
    cluster.wait_established("voiceagents.voicefleet.io")
    port, webhook_port = free_port(), free_port()
    operator = start_operator(workdir, cluster, port, webhook_port)
    stack.callback(operator.stop)
    yield Stack(cluster, operator, port, webhook_port)


@dataclass
class NodeStack:
    cluster: LocalCluster
    node: RealNode
    livekit: LiveKitServer
    images: dict[str, Image]


@contextmanager
def real_node_stack(
    workdir: Path, stack: ExitStack, webhook_urls: tuple[str, ...] = ()
) -> Iterator[NodeStack]:
    """A control plane whose one node is real, holding the built images, and a livekit-server
    on the node's address: what tests/e2e/test_real_fleet.py runs on."""
    images = build_images()
    cluster = LocalCluster(workdir / "cluster", nodes=0)
    stack.callback(cluster.stop)
    cluster.start()
    node = RealNode(cluster, workdir / "node")
    stack.callback(node.stop)
    node.start(images["pause"].reference)
    node.load(*(image.archive for image in images.values()))
    livekit = LiveKitServer(workdir / "livekit", host=node.address, webhook_urls=[*webhook_urls])
    stack.callback(livekit.stop)
    livekit.start()
    yield NodeStack(cluster, node, livekit, images)


def start_operator(
    workdir: Path, cluster: LocalCluster, port: int, webhook_port: int | None = None
) -> Process:
    """The operator, its metrics on `port`, its webhooks on `webhook_port` (any free one)."""
    webhook_port = webhook_port or free_port()
    operator = Process(
        "voicefleet-operator",
        [sys.executable, "-m", "voicefleet_operator.main", f"--metrics-port={port}",
         "--metrics-host=127.0.0.1", f"--webhook-port={webhook_port}",
         "--webhook-host=127.0.0.1", "--log-level=warning"],
        workdir / "operator.log",
        env={"KUBECONFIG": str(cluster.kubeconfig)},
    ).start()  # fmt: skip
    operator.wait_until(lambda: port_open(port), 30, "serving /healthz")
    return operator


def credentials(cluster: LocalCluster, namespace: str, name: str, server: LiveKitServer) -> None:
    cluster.kubectl(
        "create", "secret", "generic", name, "-n", namespace,
        f"--from-literal=api-key={server.api_key}",
        f"--from-literal=api-secret={server.api_secret}",
    )  # fmt: skip


def apply(cluster: LocalCluster, manifest: dict[str, object]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(label: str, values: list[float], unit: str = "s") -> str:
    return (
        f"{label}: n={len(values)} median={statistics.median(values):.3f}{unit} "
        f"p95={percentile(values, 0.95):.3f}{unit} max={max(values):.3f}{unit}"
    )
