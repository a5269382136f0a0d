"""A surge: 500 callers in new rooms whose agent dispatches appear between two polls. The next
poll counts every one of them, and the fleet grows in one correct step within a poll interval.

The callers join through LiveKit's signal connection only (voicefleet_devstack.callers): real
participants to LiveKit, without 500 WebRTC peers. Their rooms get the agent's dispatch through
the dispatch API once the operator has polled them without one, as a backend that dispatches
agents to calls does; no webhook is configured, so polling alone must see them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit import api

from voicefleet_devstack.callers import SignalCallers
from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer

from ..conftest import RunningOperator
from ..helpers import eventually, livekit_secret, voice_agent

NS = "surge"
AGENT = "surge"
ROOMS = 500
SESSIONS_PER_WORKER = 25
POLL_SECONDS = 5
# The next poll, its 1,000 lookups and the write of the decision, on two shared cores.
SLACK_SECONDS = 3.0


@pytest.fixture
def surge_livekit(
    cluster: LocalCluster, operator: RunningOperator, tmp_path: Path
) -> Iterator[LiveKitServer]:
    server = LiveKitServer(tmp_path / "livekit").start()
    cluster.kubectl("create", "namespace", NS)
    livekit_secret(cluster, NS, "lk", server)
    region = {"name": "local", "minReplicas": 1, "maxReplicas": 40,
              "livekit": {"url": server.url, "credentialsSecret": "lk"}}  # fmt: skip
    scaling = {"sessionsPerWorker": SESSIONS_PER_WORKER, "warmWorkers": 0, "headroomPercent": 0,
               "maxScaleUpStep": 100, "pollIntervalSeconds": POLL_SECONDS}  # fmt: skip
    manifest = voice_agent(AGENT, NS, agentName=AGENT, regions=[region], scaling=scaling)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    yield server
    cluster.kubectl("delete", "namespace", NS, "--wait=false")
    server.stop()


def metric(metrics_url: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def replicas(cluster: LocalCluster) -> int:
    out = cluster.kubectl("get", "deployment", f"{AGENT}-local", "-n", NS, "-o", "json",
                          "--ignore-not-found")  # fmt: skip
    return int(json.loads(out)["spec"]["replicas"]) if out.strip() else -1


def sessions(cluster: LocalCluster) -> int:
    out = cluster.kubectl("get", "voiceagent", AGENT, "-n", NS, "-o", "json")
    regions = json.loads(out).get("status", {}).get("regions", [])
    return sum(int(r.get("activeSessions", 0)) for r in regions)


async def next_polls(metrics_url: str, endpoint: str, count: int) -> None:
    """Wait until `count` more polls of the endpoint have ended."""
    name = "voicefleet_operator_livekit_poll_duration_seconds_count"
    start = metric(metrics_url, name, endpoint=endpoint)
    await asyncio.to_thread(
        eventually, lambda: metric(metrics_url, name, endpoint=endpoint) >= start + count, 30, 0.05
    )


async def dispatch_all(server: LiveKitServer, rooms: list[str]) -> None:
    limit = asyncio.Semaphore(32)
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:

        async def one(room: str) -> None:
            async with limit:
                request = api.CreateAgentDispatchRequest(agent_name=AGENT, room=room)
                await lk.agent_dispatch.create_dispatch(request)

        await asyncio.gather(*(one(room) for room in rooms))


async def test_500_rooms_dispatched_between_two_polls_scale_up_once_within_a_poll_interval(
    cluster: LocalCluster, operator: RunningOperator, surge_livekit: LiveKitServer
) -> None:
    server, url = surge_livekit, operator.metrics_url
    await asyncio.to_thread(eventually, lambda: replicas(cluster) == 1, 30)
    rooms = [f"surge-{n:03d}" for n in range(ROOMS)]
    async with SignalCallers(server) as callers:
        await callers.join(rooms, agent_name=None)
        # A poll that began after every caller was in has seen all rooms without a dispatch.
        await next_polls(url, server.url, 2)
        assert sessions(cluster) == 0
        assert replicas(cluster) == 1
        await dispatch_all(server, rooms)
        dispatched = time.monotonic()
        await asyncio.to_thread(
            eventually, lambda: replicas(cluster) != 1, POLL_SECONDS + SLACK_SECONDS, 0.1
        )
        reaction = time.monotonic() - dispatched
        print(f"{ROOMS} rooms dispatched → scaled up after {reaction:.1f}s")
        assert replicas(cluster) == ROOMS // SESSIONS_PER_WORKER
        await asyncio.to_thread(eventually, lambda: sessions(cluster) == ROOMS, 15)
        # One decision, straight to the right size: no step through a partial count.
        up = metric(url, "voicefleet_operator_scale_decisions_total",
                    namespace=NS, agent=AGENT, direction="up")  # fmt: skip
        assert up == 1
        failed = metric(url, "voicefleet_operator_livekit_room_lookup_errors_total",
                        endpoint=server.url)  # fmt: skip
        assert failed == 0
