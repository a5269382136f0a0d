"""Autoscaling on real LiveKit load: callers join → workers rise; they leave → idle workers go
first; LiveKit or a worker unreadable → the fleet holds and says why, then recovers."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from livekit import api, rtc

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import free_port

from ..conftest import RunningOperator
from ..helpers import WorkerMetrics, eventually, voice_agent

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


async def join_call(server: LiveKitServer, room_name: str, agent: str = AGENT) -> rtc.Room:
    """A caller whose token dispatches the agent, as the token function issues them."""
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(f"caller-{room_name}")
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .with_room_config(api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=agent)]))
        .to_jwt()
    )
    room = rtc.Room()
    await room.connect(server.url, token)
    return room


def running_pods(cluster: LocalCluster, deployment: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", NS, "-l", "voicefleet.io/agent=" +
                          deployment.rsplit("-", 1)[0], "-o", "json")  # fmt: skip
    return [
        p
        for p in json.loads(out)["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


async def test_callers_scale_the_fleet_up_then_idle_workers_go_first(
    cluster: LocalCluster, namespace: str, livekit: LiveKitServer
) -> None:
    add_credentials(cluster, "lk-main", livekit)
    workers = WorkerMetrics(free_port())
    manifest = scaling_agent("calls", livekit, "lk-main")
    manifest["spec"]["observability"] = {"metricsPort": workers.port}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    await asyncio.to_thread(eventually, lambda: deployment_replicas(cluster, "calls-local") == 1)

    callers = [await join_call(livekit, f"call-{i}") for i in range(3)]
    try:
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "calls-local") == 3, 20
        )
        await asyncio.to_thread(
            eventually, lambda: status(cluster, "calls").get("activeSessions") == 3
        )
        # Events are posted in the background: they may trail the replica change a little.
        await asyncio.to_thread(
            eventually,
            lambda: (
                "demand 3 sessions"
                in cluster.kubectl("get", "events", "-n", NS, "--field-selector=reason=ScaledUp")
            ),
        )
        pods = await asyncio.to_thread(
            eventually, lambda: (p := running_pods(cluster, "calls-local")) and len(p) == 3 and p
        )
        busy = pods[1]["metadata"]["name"]
        for pod in pods:
            workers.serve(pod["status"]["podIP"], 1 if pod["metadata"]["name"] == busy else 0)
        # While it has a call, node autoscalers are told to leave the busy worker alone.
        marks = await asyncio.to_thread(
            eventually, lambda: len(set(busy_marks(cluster, "calls-local").values())) == 2 and
            busy_marks(cluster, "calls-local"),
        )  # fmt: skip
        assert marks[busy] == (("false", "true"))
        assert {v for name, v in marks.items() if name != busy} == {(None, None)}
        for caller in (callers[0], callers[2]):
            await caller.disconnect()
        # After the 3 s stabilization window: one worker, and it is the one with a call.
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "calls-local") == 1, 30
        )
        survivors = await asyncio.to_thread(
            eventually, lambda: (p := running_pods(cluster, "calls-local")) and len(p) == 1 and p
        )
        assert survivors[0]["metadata"]["name"] == busy
        cost = survivors[0]["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"]
        assert cost == "1"
        region = status(cluster, "calls")["regions"][0]
        assert region["desiredReplicas"] == 1
        assert "scaling down" in region["lastScaleReason"]
        # Its call over, the worker is fair game for node autoscalers again.
        workers.serve(survivors[0]["status"]["podIP"], 0)
        await callers[1].disconnect()
        await asyncio.to_thread(
            eventually, lambda: busy_marks(cluster, "calls-local") == {busy: (None, None)}, 20
        )
    finally:
        await callers[1].disconnect()
        workers.close()


def busy_marks(cluster: LocalCluster, deployment: str) -> dict[str, tuple[str | None, ...]]:
    """Each running worker's cluster-autoscaler and Karpenter annotations."""
    keys = ("cluster-autoscaler.kubernetes.io/safe-to-evict", "karpenter.sh/do-not-disrupt")
    return {
        pod["metadata"]["name"]: tuple(pod["metadata"].get("annotations", {}).get(k) for k in keys)
        for pod in running_pods(cluster, deployment)
    }


def apply_with_worker_metrics(
    cluster: LocalCluster, livekit: LiveKitServer, name: str, **scaling: Any
) -> WorkerMetrics:
    """A scaling VoiceAgent (agent name `<name>-agent`, `scaling` fields replaced) whose
    workers' loads the returned WorkerMetrics serves; the first test created the LiveKit
    Secret."""
    cluster.kubectl("get", "secret", "lk-main", "-n", NS)
    workers = WorkerMetrics(free_port())
    manifest = scaling_agent(name, livekit, "lk-main")
    manifest["spec"]["scaling"].update(scaling)
    manifest["spec"]["agentName"] = f"{name}-agent"
    manifest["spec"]["observability"] = {"metricsPort": workers.port}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    return workers


async def test_unreadable_worker_load_holds_scale_down(
    cluster: LocalCluster, namespace: str, livekit: LiveKitServer
) -> None:
    workers = apply_with_worker_metrics(cluster, livekit, "blind")
    callers = [await join_call(livekit, f"blind-{i}", "blind-agent") for i in range(2)]
    try:
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "blind-local") == 2, 20
        )
    finally:
        for caller in callers:
            await caller.disconnect()
    held = await asyncio.to_thread(
        eventually,
        lambda: (
            condition(cluster, "blind", "Scaling").get("reason") == "Holding"
            and condition(cluster, "blind", "Scaling")
        ),
        30,
    )
    assert "cannot read the load of worker" in held["message"]
    assert deployment_replicas(cluster, "blind-local") == 2
    try:
        for pod in running_pods(cluster, "blind-local"):
            workers.serve(pod["status"]["podIP"], 0)
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "blind-local") == 1, 30
        )
    finally:
        workers.close()


async def test_a_hand_scaled_deployment_is_set_back_and_idle_workers_go(
    cluster: LocalCluster, namespace: str, livekit: LiveKitServer
) -> None:
    workers = apply_with_worker_metrics(cluster, livekit, "drift")
    try:
        await asyncio.to_thread(
            eventually, lambda: len(running_pods(cluster, "drift-local")) == 1, 30
        )
        (original,) = running_pods(cluster, "drift-local")
        # No calls, so one worker is wanted; someone scales the Deployment to three anyway.
        cluster.kubectl("scale", "deployment", "drift-local", "-n", NS, "--replicas=3")
        pods = await asyncio.to_thread(
            eventually, lambda: (p := running_pods(cluster, "drift-local")) and len(p) == 3 and p
        )
        busy = next(p for p in pods if p["metadata"]["name"] != original["metadata"]["name"])
        for pod in pods:
            workers.serve(pod["status"]["podIP"], 1 if pod is busy else 0)
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "drift-local") == 1, 30
        )
        survivors = await asyncio.to_thread(
            eventually, lambda: (p := running_pods(cluster, "drift-local")) and len(p) == 1 and p
        )
        # The worker with a call stays, though it is the newest: deletion costs were refreshed.
        assert survivors[0]["metadata"]["name"] == busy["metadata"]["name"]
        # Set back at once where every new worker's load was read in time, else held at
        # three until it was (missing data never scales down), then scaled down.
        about = "--field-selector=involvedObject.name=drift"
        await asyncio.to_thread(
            eventually,
            lambda: re.search(
                r"ReplicasRestored .*asked for 3 workers, set back to 1|ScaledDown .*from 3 to 1 ",
                cluster.kubectl("get", "events", "-n", NS, about),
            ),
        )
    finally:
        workers.close()


def warnings_about(cluster: LocalCluster, name: str) -> str:
    selector = f"type=Warning,involvedObject.name={name}"
    return cluster.kubectl("get", "events", "-n", NS, f"--field-selector={selector}")


async def test_unreachable_livekit_holds_replicas_then_recovers(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    """Two callers raise the fleet above its minimum; LiveKit goes away with their rooms. With
    demand unknown the operator holds two workers (not its minimum of one) past the scale-down
    window, and knows the demand again once LiveKit answers."""
    flaky = LiveKitServer(tmp_path / "flaky").start()
    callers: list[rtc.Room] = []
    try:
        add_credentials(cluster, "lk-flaky", flaky)
        manifest = scaling_agent("flaky", flaky, "lk-flaky")
        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        await asyncio.to_thread(
            eventually,
            lambda: condition(cluster, "flaky", "LiveKitReachable").get("status") == "True",
        )
        # No false alarm while the endpoint's first poll was on its way.
        assert "LiveKitUnreachable" not in warnings_about(cluster, "flaky")
        callers += [await join_call(flaky, f"flaky-{n}") for n in range(2)]
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "flaky-local") == 2, 30
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
        await asyncio.to_thread(
            eventually, lambda: "LiveKitUnreachable" in warnings_about(cluster, "flaky")
        )
        await asyncio.sleep(5)  # longer than the 3 s scale-down window: still held
        assert deployment_replicas(cluster, "flaky-local") == 2

        # The callers hang up (else their SDK would rejoin the restarted server), and LiveKit
        # comes back empty: demand is 0.
        await asyncio.gather(*(room.disconnect() for room in callers), return_exceptions=True)
        flaky.start()
        await asyncio.to_thread(
            eventually,
            lambda: condition(cluster, "flaky", "LiveKitReachable").get("status") == "True",
            30,
        )
        # Demand is known again, and 0.
        await asyncio.to_thread(
            eventually, lambda: status(cluster, "flaky").get("activeSessions") == 0, 30
        )
    finally:
        await asyncio.gather(*(room.disconnect() for room in callers), return_exceptions=True)
        flaky.stop()


async def test_webhooks_make_scaling_react_before_the_next_poll(
    cluster: LocalCluster, namespace: str, operator: RunningOperator, tmp_path: Path
) -> None:
    webhook = operator.webhook_url
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


async def test_region_gauges_follow_the_fleet_and_leave_with_it(
    cluster: LocalCluster, namespace: str, operator: RunningOperator, livekit: LiveKitServer
) -> None:
    add_credentials(cluster, "lk-gauged", livekit)
    manifest = scaling_agent("gauged", livekit, "lk-gauged")
    manifest["spec"]["agentName"] = "gauged"
    manifest["spec"]["regions"][0]["minReplicas"] = 2
    series = f'agent="gauged",namespace="{NS}",region="local"'  # exposed in name order
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    metrics = await asyncio.to_thread(
        eventually,
        lambda: (
            (text := _read(operator.metrics_url))
            and f"voicefleet_operator_desired_replicas{{{series}}} 2.0" in text
            and text
        ),
    )
    assert f"voicefleet_operator_max_replicas{{{series}}} 6.0" in metrics
    endpoint = f'agent="gauged",endpoint="{livekit.url}",namespace="{NS}",region="local"'
    reachable = f"voicefleet_operator_livekit_reachable{{{endpoint}}} 1.0"
    assert reachable in metrics

    cluster.kubectl("delete", "voiceagent", "gauged", "-n", NS)
    await asyncio.to_thread(eventually, lambda: 'agent="gauged"' not in _read(operator.metrics_url))


async def test_a_restarted_operator_waits_out_the_scale_down_window_it_inherits(
    cluster: LocalCluster, namespace: str, operator: RunningOperator, livekit: LiveKitServer
) -> None:
    """Callers leave while the operator is down: the new process has no history of the two
    workers it was asked for, yet holds them until the window persisted in status expires."""
    workers = apply_with_worker_metrics(
        cluster, livekit, "window", scaleDownStabilizationSeconds=20
    )
    callers = [await join_call(livekit, f"window-{i}", "window-agent") for i in range(2)]
    try:
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "window-local") == 2, 30
        )
        await asyncio.to_thread(
            eventually, lambda: status(cluster, "window")["regions"][0].get("scaleDownFloor") == 2
        )
        for pod in await asyncio.to_thread(
            eventually, lambda: (p := running_pods(cluster, "window-local")) and len(p) == 2 and p
        ):
            workers.serve(pod["status"]["podIP"], 0)  # idle: nothing but the window holds them
        operator.process.stop()
    finally:
        for caller in callers:
            await caller.disconnect()
    try:
        expiry = status(cluster, "window")["regions"][0]["scaleDownFloorExpiry"]
        operator.process.start()
        # The new process has seen the callers gone (and written it), and still holds two.
        region = await asyncio.to_thread(
            eventually,
            lambda: (r := status(cluster, "window")["regions"][0])["activeSessions"] == 0 and r,
            30,
        )
        left = datetime.fromisoformat(expiry.replace("Z", "+00:00")).timestamp() - time.time()
        assert left > 0, "the window expired before the new process decided: test too slow"
        assert region["desiredReplicas"] == 2
        assert deployment_replicas(cluster, "window-local") == 2
        # Once the window has passed, down to the one idle worker wanted.
        await asyncio.to_thread(
            eventually, lambda: deployment_replicas(cluster, "window-local") == 1, left + 30
        )
        gone = status(cluster, "window")["regions"][0]
        assert "scaleDownFloor" not in gone
    finally:
        if not operator.process.running:
            operator.process.start()
        workers.close()
