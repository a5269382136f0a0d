"""Autoscaling on real LiveKit load: callers join → workers rise; they leave → workers fall;
LiveKit stops → the fleet holds and says why, then recovers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from livekit import api, rtc

from voicefleet_operator.local.cluster import LocalCluster
from voicefleet_operator.local.livekit import LiveKitServer

from ..conftest import RunningOperator
from ..helpers import eventually, voice_agent

NS = "autoscaling"
AGENT = "scaler"


@pytest.fixture(scope="module")
def namespace(cluster: LocalCluster, operator: RunningOperator) -> str:
    cluster.kubectl("create", "namespace", NS)
    return NS


def add_credentials(cluster: LocalCluster, name: str, server: LiveKitServer) -> None:
    cluster.kubectl(
        "create", "secret", "generic", name, "-n", NS,
        f"--from-literal=api-key={server.api_key}",
        f"--from-literal=api-secret={server.api_secret}",
    )  # fmt: skip


def scaling_agent(name: str, server: LiveKitServer, secret: str) -> dict[str, Any]:
    region = {
        "name": "local",
        "livekit": {"url": server.url, "credentialsSecret": secret},
        "minReplicas": 1,
        "maxReplicas": 6,
    }
    scaling = {
        "sessionsPerWorker": 1,
        "warmWorkers": 0,
        "headroomPercent": 0,
        "scaleDownStabilizationSeconds": 3,
        "pollIntervalSeconds": 1,
    }
    return voice_agent(name, NS, agentName=AGENT, regions=[region], scaling=scaling)


def deployment_replicas(cluster: LocalCluster, name: str) -> int:
    out = cluster.kubectl("get", "deployment", name, "-n", NS, "-o", "json", "--ignore-not-found")
    return int(json.loads(out)["spec"]["replicas"]) if out.strip() else -1


def status(cluster: LocalCluster, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "voiceagent", name, "-n", NS, "-o", "json")
    result: dict[str, Any] = json.loads(out).get("status", {})
    return result


def condition(cluster: LocalCluster, name: str, type_: str) -> dict[str, Any]:
    return next((c for c in status(cluster, name).get("conditions", []) if c["type"] == type_), {})


async def join_call(server: LiveKitServer, room_name: str) -> rtc.Room:
    """A caller whose token dispatches the agent, as the token function issues them."""
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(f"caller-{room_name}")
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .with_room_config(api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=AGENT)]))
        .to_jwt()
    )
    room = rtc.Room()
    await room.connect(server.url, token)
    return room


async def test_callers_scale_the_fleet_up_and_down(
    cluster: LocalCluster, namespace: str, livekit: LiveKitServer
) -> None:
    add_credentials(cluster, "lk-main", livekit)
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps(scaling_agent("calls", livekit, "lk-main"))
    )
    await asyncio.to_thread(eventually, lambda: deployment_replicas(cluster, "calls-local") == 1)

    callers = [await join_call(livekit, f"call-{i}") for i in range(3)]
    try:
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "calls-local") == 3, 20
        )
        seen = await asyncio.to_thread(
            eventually, lambda: status(cluster, "calls").get("activeSessions") == 3 or None
        )
        assert seen
        events = cluster.kubectl("get", "events", "-n", NS, "--field-selector=reason=ScaledUp")
        assert "demand" in events
    finally:
        for caller in callers[1:]:
            await caller.disconnect()
    # Two calls ended: after the 3 s stabilization window one worker per remaining call.
    await asyncio.to_thread(
        eventually, lambda: deployment_replicas(cluster, "calls-local") == 1, 30
    )
    await callers[0].disconnect()
    region = status(cluster, "calls")["regions"][0]
    assert region["desiredReplicas"] == 1
    assert "scaling down" in region["lastScaleReason"]


async def test_unreachable_livekit_holds_replicas_then_recovers(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    flaky = LiveKitServer(tmp_path / "flaky").start()
    try:
        add_credentials(cluster, "lk-flaky", flaky)
        manifest = scaling_agent("flaky", flaky, "lk-flaky")
        manifest["spec"]["regions"][0]["minReplicas"] = 2
        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        await asyncio.to_thread(
            eventually,
            lambda: condition(cluster, "flaky", "LiveKitReachable").get("status") == "True",
        )
        flaky.stop()
        reason = await asyncio.to_thread(
            eventually,
            lambda: (
                condition(cluster, "flaky", "LiveKitReachable").get("status") == "False"
                and condition(cluster, "flaky", "LiveKitReachable")
            ),
        )
        assert reason["reason"] == "LiveKitUnreachable"
        assert deployment_replicas(cluster, "flaky-local") == 2
        warnings = cluster.kubectl("get", "events", "-n", NS, "--field-selector=type=Warning")
        assert "LiveKitUnreachable" in warnings
        await asyncio.sleep(3)  # longer than the scale-down window: still held
        assert deployment_replicas(cluster, "flaky-local") == 2

        flaky.start()
        await asyncio.to_thread(
            eventually,
            lambda: condition(cluster, "flaky", "LiveKitReachable").get("status") == "True",
            30,
        )
    finally:
        flaky.stop()


async def test_webhooks_make_scaling_react_before_the_next_poll(
    cluster: LocalCluster, namespace: str, operator: RunningOperator, tmp_path: Path
) -> None:
    webhook = operator.metrics_url.replace("/metrics", "/livekit/webhook")
    hooked = LiveKitServer(tmp_path / "hooked", webhook_urls=[webhook]).start()
    try:
        add_credentials(cluster, "lk-hooked", hooked)
        manifest = scaling_agent("hooked", hooked, "lk-hooked")
        manifest["spec"]["scaling"]["pollIntervalSeconds"] = 120  # polling alone would be slow
        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        await asyncio.to_thread(
            eventually,
            lambda: condition(cluster, "hooked", "LiveKitReachable").get("status") == "True",
        )
        started = asyncio.get_running_loop().time()
        caller = await join_call(hooked, "hooked-call")
        callers = [caller, await join_call(hooked, "hooked-call-2")]
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "hooked-local") == 2, 20
        )
        reaction = asyncio.get_running_loop().time() - started
        assert reaction < 20, reaction  # far below the 120 s poll interval
        for room in callers:
            await room.disconnect()
        metrics = await asyncio.to_thread(_read, operator.metrics_url)
        assert 'voicefleet_operator_webhooks_received_total{event="participant_joined"}' in metrics
    finally:
        hooked.stop()


def _read(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())
