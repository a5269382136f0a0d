"""First call beyond capacity → a new worker ready for jobs, on a real node, webhooks on.

A VoiceAgent with one session per worker and no warm worker runs one worker, which takes a
first caller. A second caller then joins: LiveKit's webhook tells the operator, which raises
the Deployment's replicas; the kubelet starts a pod; the worker registers with LiveKit. Timed
from the second caller's join until the new pod's /readyz answers 200, and until the caller
hears that an agent joined its room (if one does: the job may find no worker). Both callers
then leave, the fleet returns to one worker,
and the round repeats. Prints each round, then median and p95.

    python bench/node_scale_up.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from _stack import (
    ROOT,
    apply,
    credentials,
    real_node_stack,
    start_operator,
    stop_on_sigterm,
    summary,
)
from livekit import rtc

from voicefleet_agent.loadtest import LoadTestOptions, caller_token
from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import free_port

NS = "bench"
AGENT = "scale-up"
AGENT_TIMEOUT = 30.0
LOAD_REPORT_SECONDS = 3.0


def voice_agent(server: LiveKitServer, image: str) -> dict[str, object]:
    offline = [{"provider": "offline"}]
    return {
        "apiVersion": "voicefleet.io/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": AGENT, "namespace": NS},
        "spec": {
            "image": image,
            "pipeline": {"stt": offline, "llm": offline, "tts": offline},
            "regions": [{"name": "node", "minReplicas": 1, "maxReplicas": 2,
                         "livekit": {"url": server.url, "credentialsSecret": "lk"}}],
            "scaling": {"sessionsPerWorker": 1, "warmWorkers": 0, "headroomPercent": 0,
                        "scaleDownStabilizationSeconds": 1, "pollIntervalSeconds": 30},
            "drainTimeoutSeconds": 10,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
    }  # fmt: skip


def ready_ips(cluster: LocalCluster) -> dict[str, str]:
    out = cluster.kubectl("get", "pods", "-n", NS, "-o", "json")
    return {
        p["metadata"]["name"]: p["status"].get("podIP", "")
        for p in json.loads(out)["items"]
        if "deletionTimestamp" not in p["metadata"] and _ready(p["status"].get("podIP", ""))
    }


def _ready(ip: str) -> bool:
    if not ip:
        return False
    try:
        with urllib.request.urlopen(f"http://{ip}:9100/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def pod_count(cluster: LocalCluster) -> int:
    return len(cluster.kubectl("get", "pods", "-n", NS, "-o", "name").split())


def one_idle_worker(cluster: LocalCluster) -> bool:
    """One pod, ready, with no session (a job outlives its caller by a few seconds)."""
    ips = list(ready_ips(cluster).values())
    if len(ips) != 1 or pod_count(cluster) != 1:
        return False
    with urllib.request.urlopen(f"http://{ips[0]}:9100/metrics", timeout=2) as response:
        text = response.read().decode()
    return any(
        line.startswith("voicefleet_agent_active_sessions{") and line.endswith(" 0.0")
        for line in text.splitlines()
    )


async def wait(check: object, limit: float) -> float:
    start = time.monotonic()
    while not await asyncio.to_thread(check):  # type: ignore[arg-type]
        if time.monotonic() - start > limit:
            raise TimeoutError(f"not within {limit:.0f}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def join(server: LiveKitServer, room: str) -> tuple[rtc.Room, asyncio.Event]:
    options = LoadTestOptions(server.url, server.api_key, server.api_secret, AGENT)
    token = caller_token(options, room, f"caller-{room}")
    caller, agent_joined = rtc.Room(), asyncio.Event()

    def on_join(participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            agent_joined.set()

    caller.on("participant_connected", on_join)
    await caller.connect(server.url, token)
    return caller, agent_joined


async def rounds(cluster: LocalCluster, server: LiveKitServer, count: int) -> None:
    ready, answered = [], []
    await wait(lambda: one_idle_worker(cluster), 120)
    for n in range(1, count + 1):
        first, first_agent = await join(server, f"first-{n}")
        await asyncio.wait_for(first_agent.wait(), 30)
        before = set(ready_ips(cluster))
        start = time.monotonic()
        second, second_agent = await join(server, f"second-{n}")
        await wait(lambda: set(ready_ips(cluster)) - before, 120)  # noqa: B023
        ready.append(time.monotonic() - start)
        try:
            await asyncio.wait_for(second_agent.wait(), AGENT_TIMEOUT)
            answered.append(time.monotonic() - start)
            joined = f"agent in the caller's room after {answered[-1]:.2f} s"
        except TimeoutError:
            joined = f"no agent in the caller's room within {AGENT_TIMEOUT:.0f} s"
        print(f"round {n}/{count}: new worker ready after {ready[-1]:.2f} s, {joined}",
              flush=True)  # fmt: skip
        await first.disconnect()
        await second.disconnect()
        await wait(lambda: one_idle_worker(cluster), 120)
        # LiveKit learns the worker is free at its next load report; a job offered before
        # that finds no worker and is not offered again.
        await asyncio.sleep(LOAD_REPORT_SECONDS)
    print(summary("first call beyond capacity → new worker ready", ready))
    print(f"second callers an agent joined: {len(answered)} of {count}")
    if answered:
        print(summary("first call beyond capacity → agent joins the caller's room", answered))


def main(count: int) -> None:
    stop_on_sigterm()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work, port, webhook_port = Path(tmp), free_port(), free_port()
        webhook = f"http://127.0.0.1:{webhook_port}/livekit/webhook"
        node = stack.enter_context(real_node_stack(work, stack, webhook_urls=(webhook,)))
        cluster = node.cluster
        cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "base" / "crd.yaml"))
        cluster.wait_established("voiceagents.voicefleet.io")
        stack.callback(start_operator(work, cluster, port, webhook_port).stop)
        cluster.kubectl("create", "namespace", NS)
        credentials(cluster, NS, "lk", node.livekit)
        apply(cluster, voice_agent(node.livekit, node.images["agent"].reference))
        asyncio.run(rounds(cluster, node.livekit, count))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args().rounds)
