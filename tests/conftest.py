"""Real servers for the test suite, started once per session on free loopback ports.

A server that cannot start fails the tests that need it with its name and log path; nothing is
skipped. Logs stay under pytest's temporary directory (printed at the end of a failing run).

Every test that uses a server fixture, directly or through another fixture, is marked `slow`:
`pytest -m "not slow"` runs the pure and in-process layer in seconds and starts no server.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.images import Image, build_images
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.node import RealNode
from voicefleet_devstack.process import Process, binary, free_port, port_open

ROOT = Path(__file__).resolve().parents[1]
# Servers the tests start as `python -m ...` import this clone's sources too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [*(str(ROOT / part) for part in ("models", "operator", "agent", "dashboards", "devstack")),
     *filter(None, [os.environ.get("PYTHONPATH")])]
)  # fmt: skip


# Fixtures that start a server or build images: those of this file, the agent worker's, and
# the ones of tests/e2e and test modules that start theirs without depending on these.
SERVER_FIXTURES = frozenset(
    {"cluster", "livekit", "images", "real_cluster", "real_node", "node_livekit", "crd",
     "operator", "worker_factory", "jaeger", "frontend", "signin_frontend", "supabase_project"}
)  # fmt: skip


# End-to-end tests run the system as users do (the demo, the browser, real pods): all slow.
END_TO_END = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test's fixturenames hold every fixture it needs, those its fixtures need included.
    for item in items:
        uses_servers = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses_servers or END_TO_END in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def cluster(servers_dir: Path) -> Iterator[LocalCluster]:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK."""
    local = LocalCluster(servers_dir / "cluster")
    try:
        yield local.start()
    finally:
        local.stop()


@pytest.fixture(scope="session")
def livekit(servers_dir: Path) -> Iterator[LiveKitServer]:
    server = LiveKitServer(servers_dir / "livekit")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def images() -> dict[str, Image]:
    """The operator, agent and pause images, built by `make images` (cached by content)."""
    return build_images()


@pytest.fixture(scope="session")
def real_cluster(servers_dir: Path) -> Iterator[LocalCluster]:
    """A second control plane, without KWOK, for the real node: apart from `cluster`, whose
    operator process watches every namespace."""
    local = LocalCluster(servers_dir / "real-cluster", nodes=0)
    try:
        yield local.start()
    finally:
        local.stop()


@pytest.fixture(scope="session")
def real_node(
    real_cluster: LocalCluster, images: dict[str, Image], servers_dir: Path
) -> Iterator[RealNode]:
    """kubelet, containerd and runc registered with `real_cluster`, holding every image."""
    node = RealNode(real_cluster, servers_dir / "node")
    try:
        node.start(images["pause"].reference)
        node.load(*(image.archive for image in images.values()))
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def node_livekit(real_node: RealNode, servers_dir: Path) -> Iterator[LiveKitServer]:
    """A livekit-server on the real node's address, where its pods reach it."""
    server = LiveKitServer(servers_dir / "node-livekit", host=real_node.address)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tool() -> type[Tools]:
    return Tools


class Tools:
    """Paths of the command-line tools installed by scripts/setup.sh."""

    @staticmethod
    def path(name: str) -> str:
        return binary(name)


@pytest.fixture(scope="session")
def crd(cluster: LocalCluster) -> None:
    """The VoiceAgent CRD, applied from the committed manifest and established."""
    cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "base" / "crd.yaml"))
    cluster.wait_established("voiceagents.voicefleet.io")


@dataclass
class RunningOperator:
    process: Process
    metrics_url: str
    webhook_url: str


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster, crd: None, servers_dir: Path) -> Iterator[RunningOperator]:
    """The operator as users run it: `voicefleet-operator` against the local cluster."""
    port, webhook_port = free_port(), free_port()
    command = [sys.executable, "-m", "voicefleet_operator.main", f"--metrics-port={port}",
               f"--webhook-port={webhook_port}"]  # fmt: skip
    process = Process(
        "voicefleet-operator",
        [*command, "--metrics-host=127.0.0.1", "--webhook-host=127.0.0.1"],
        servers_dir / "operator.log",
        env={"KUBECONFIG": str(cluster.kubeconfig)},
    ).start()
    try:
        process.wait_until(lambda: port_open(port), 30, "serving /healthz")
        webhook = f"http://127.0.0.1:{webhook_port}/livekit/webhook"
        yield RunningOperator(process, f"http://127.0.0.1:{port}/metrics", webhook)
    finally:
        process.stop()
