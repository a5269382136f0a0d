"""Fixtures of the delivery tests: namespaces and the monitoring API on the shared cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voicefleet_devstack.cluster import LocalCluster

FIXTURES = Path(__file__).with_name("fixtures")


@pytest.fixture(scope="session")
def monitoring_api(cluster: LocalCluster) -> None:
    """ServiceMonitor and PrometheusRule served (test-fixture CRDs). They stay installed: the
    operator tests install the same PrometheusRule definition."""
    cluster.kubectl("apply", "-f", str(FIXTURES / "monitoring-crds.yaml"))
    for name in ("servicemonitors", "prometheusrules"):
        cluster.wait_established(f"{name}.monitoring.coreos.com")


@pytest.fixture
def namespaces(cluster: LocalCluster) -> Iterator[Callable[..., None]]:
    """Create namespaces for one test; they are deleted afterwards."""
    created: list[str] = []

    def create(*names: str) -> None:
        for name in names:
            cluster.kubectl("create", "namespace", name)
            created.append(name)

    yield create
    if created:
        cluster.kubectl("delete", "namespace", *created, "--wait=false")
