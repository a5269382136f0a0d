"""Two operator processes, one Lease: the leader is killed (SIGKILL) while the fleet grows, and
the standby finishes the scale-up within the stated bound, without a decision, an Event or a
replica write made twice."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import Process, free_port, port_open
from voicefleet_operator.leadership import TAKEOVER_BOUND_SECONDS

from ..conftest import RunningOperator
from ..helpers import eventually, voice_agent
from .test_autoscaling import join_call

NS = "leadership"
LEASE = ("lease", "voicefleet-operator", "-n", "default")


@pytest.fixture
def standby(cluster: LocalCluster, operator: RunningOperator, tmp_path: Path) -> Iterator[Process]:
    """A second operator beside the session's, as the chart's second replica: same Lease."""
    port = free_port()
    command = [sys.executable, "-m", "voicefleet_operator.main", f"--metrics-port={port}",
               "--metrics-host=127.0.0.1", f"--webhook-port={free_port()}",
               "--webhook-host=127.0.0.1"]  # fmt: skip
    process = Process("voicefleet-operator (standby)", command, tmp_path / "standby.log",
                      env={"KUBECONFIG": str(cluster.kubeconfig)}).start()  # fmt: skip
    try:
        process.wait_until(lambda: port_open(port), 30, "serving /healthz")
        yield process
    finally:
        # The session's operator back first, then a clean stop hands it the lease at once.
        if not operator.process.running:
            operator.process.start()
        process.stop()


def holder(cluster: LocalCluster) -> str:
    lease = json.loads(cluster.kubectl("get", *LEASE, "-o", "json"))
    return str(lease["spec"].get("holderIdentity", ""))


def deployment(cluster: LocalCluster) -> dict[str, Any]:
    out = cluster.kubectl("get", "deployment", "grow-local", "-n", NS, "-o", "json")
    return dict(json.loads(out))


def scale_events(cluster: LocalCluster) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "events.events.k8s.io", "-n", NS, "-o", "json")
    return [e for e in json.loads(out)["items"] if e["reason"] in ("ScaledUp", "ScaledDown")]


def growing_agent(server: LiveKitServer) -> dict[str, Any]:
    region = {"name": "local", "minReplicas": 1, "maxReplicas": 6,
              "livekit": {"url": server.url, "credentialsSecret": "lk"}}  # fmt: skip
    # One worker per call, one worker more per decision: each step is its own write and Event.
    scaling = {"sessionsPerWorker": 1, "warmWorkers": 0, "headroomPercent": 0,
               "maxScaleUpStep": 1, "scaleDownStabilizationSeconds": 120,
               "pollIntervalSeconds": 1}  # fmt: skip
    return voice_agent("grow", NS, agentName="grow-agent", regions=[region], scaling=scaling)


async def test_the_standby_finishes_a_scale_up_its_killed_leader_began(
    cluster: LocalCluster, operator: RunningOperator, standby: Process, livekit: LiveKitServer
) -> None:
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("create", "secret", "generic", "lk", "-n", NS,
                    f"--from-literal=api-key={livekit.api_key}",
                    f"--from-literal=api-secret={livekit.api_secret}")  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=json.dumps(growing_agent(livekit)))
    await asyncio.to_thread(eventually, lambda: deployment(cluster)["spec"]["replicas"] == 1)
    leader = holder(cluster)  # the session's operator, started first
    assert leader
    start_generation = deployment(cluster)["metadata"]["generation"]
    # The region's workers got their NetworkPolicy with the Deployment.
    cluster.kubectl("get", "networkpolicy", "grow-local", "-n", NS)
    callers = [await join_call(livekit, f"grow-{i}", "grow-agent") for i in range(2)]
    try:
        # The leader takes the first step; more callers arrive as it is killed.
        await asyncio.to_thread(eventually, lambda: deployment(cluster)["spec"]["replicas"] >= 2)
        callers += [await join_call(livekit, f"grow-{i}", "grow-agent") for i in (2, 3)]
        assert operator.process.popen is not None
        os.killpg(operator.process.popen.pid, signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.to_thread(
            eventually, lambda: holder(cluster) not in ("", leader), TAKEOVER_BOUND_SECONDS + 5
        )
        took_over = time.monotonic() - killed
        await asyncio.to_thread(
            eventually, lambda: deployment(cluster)["spec"]["replicas"] == 4, 30
        )
        scaled = time.monotonic() - killed
        print(f"takeover after {took_over:.1f} s; fleet at 4 workers after {scaled:.1f} s")
        assert took_over <= TAKEOVER_BOUND_SECONDS + 1
        await asyncio.sleep(3)  # a late duplicate would show in the counts below
        # One write per step, 1→2→3→4, whoever made it: nothing undone, nothing made twice.
        assert deployment(cluster)["metadata"]["generation"] - start_generation == 3
        events = scale_events(cluster)
        steps = sorted(tuple(re.findall(r"from (\d+) to (\d+)", e["note"])) for e in events)
        assert steps == [(("1", "2"),), (("2", "3"),), (("3", "4"),)]
        assert [e.get("series") for e in events] == [None] * 3  # each occurred once
    finally:
        for caller in callers:
            await caller.disconnect()
        cluster.kubectl("delete", "voiceagent", "grow", "-n", NS, "--wait=false")
