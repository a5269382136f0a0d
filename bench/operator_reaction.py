"""Reaction time: a caller joins on livekit-server → the Deployment's replica count changes.

Measured twice in one run on the same control plane: with LiveKit webhooks to the operator,
and by polling alone. Prints median, p95 and the ratio between the two.

    .venv/bin/python bench/operator_reaction.py [--trials 20] [--poll-interval 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _stack import Stack, apply, credentials, operator_stack, stop_on_sigterm, summary
from kubernetes import client, config
from livekit import api, rtc

from voicefleet_devstack.livekit import LiveKitServer

AGENT = "bench"


def agent(name: str, server: LiveKitServer, secret: str, poll: int) -> dict[str, object]:
    return {
        "apiVersion": "voicefleet.io/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {
            "image": "voicefleet-agent:bench",
            "agentName": f"{AGENT}-{name}",
            "pipeline": {s: [{"provider": "simulated"}] for s in ("stt", "llm", "tts")},
            "regions": [{"name": "local", "minReplicas": 1, "maxReplicas": 50,
                         "livekit": {"url": server.url, "credentialsSecret": secret}}],
            "scaling": {"sessionsPerWorker": 1, "warmWorkers": 1, "headroomPercent": 0,
                        "scaleDownStabilizationSeconds": 300, "pollIntervalSeconds": poll,
                        "maxScaleUpStep": 50},
        },
    }  # fmt: skip


async def join(server: LiveKitServer, room: str, agent_name: str) -> rtc.Room:
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(f"caller-{room}")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=agent_name)])
        )
        .to_jwt()
    )
    caller = rtc.Room()
    await caller.connect(server.url, token)
    return caller


async def wait_replicas(apps: client.AppsV1Api, name: str, expected: int, limit: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            deployment = await asyncio.to_thread(apps.read_namespaced_deployment, name, "bench")
        except client.ApiException as error:
            if error.status != 404:  # not created yet
                raise
            deployment = None
        if deployment and deployment.spec.replicas == expected:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{name} did not reach {expected} replicas within {limit}s")


async def trials(
    stack: Stack, server: LiveKitServer, name: str, count: int, poll: int
) -> list[float]:
    """Callers join one by one; time from each join until the fleet has grown by one worker.
    Callers stay connected, so no trial waits for a scale-down."""
    apps = client.AppsV1Api()
    deployment = f"{name}-local"
    await wait_replicas(apps, deployment, 1, 60)
    await asyncio.sleep(poll + 1)  # let the collector reach the endpoint once
    reactions, callers = [], []
    try:
        for trial in range(count):
            # A random phase against the poll cycle, as real callers arrive.
            await asyncio.sleep(random.uniform(0, poll))
            callers.append(await join(server, f"{name}-{trial}", f"{AGENT}-{name}"))
            started = time.monotonic()  # the caller is in the room: LiveKit's demand changed
            await wait_replicas(apps, deployment, trial + 2, poll * 3 + 30)
            reactions.append(time.monotonic() - started)
            print(f"  {name} trial {trial + 1}/{count}: {reactions[-1]:.3f}s", flush=True)
    finally:
        for caller in callers:
            await caller.disconnect()
    return reactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--poll-interval", type=int, default=5)
    parser.add_argument("--workdir", help="keep server logs here instead of a temporary folder")
    args = parser.parse_args()
    stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="vf-bench-") as tmp, ExitStack() as stack:
        work = Path(args.workdir or tmp)
        with operator_stack(work, stack) as running:
            config.load_kube_config(str(running.cluster.kubeconfig))
            running.cluster.kubectl("create", "namespace", "bench")
            webhook = f"http://127.0.0.1:{running.webhook_port}/livekit/webhook"
            hooked = LiveKitServer(work / "hooked", webhook_urls=[webhook]).start()
            stack.callback(hooked.stop)
            polled = LiveKitServer(work / "polled").start()
            stack.callback(polled.stop)
            results = {}
            for name, server in (("webhooks", hooked), ("polling", polled)):
                credentials(running.cluster, "bench", f"lk-{name}", server)
                apply(running.cluster, agent(name, server, f"lk-{name}", args.poll_interval))
                results[name] = asyncio.run(
                    trials(running, server, name, args.trials, args.poll_interval)
                )
    print()
    print(f"reaction time, caller joins → Deployment replicas change "
          f"(poll interval {args.poll_interval}s):")  # fmt: skip
    for name, values in results.items():
        print("  " + summary(name, values))
    ratio = statistics.median(results["polling"]) / statistics.median(results["webhooks"])
    print(f"  polling/webhooks median ratio: {ratio:.1f}x")
    print(f"  targets: webhooks p95 ≤ 2 s; polling p95 ≤ {args.poll_interval + 1} s")


if __name__ == "__main__":
    main()
