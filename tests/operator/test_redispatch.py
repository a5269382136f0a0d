"""A worker killed mid-call: LiveKit reports its agent lost, and the operator dispatches the
agent into the room again, where a warm worker takes the call and greets the caller back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.conftest import AgentWorker, agent_finals, answer, calling, pipeline_config
from voicefleet_agent.loadtest import utterance_pcm
from voicefleet_agent.resume import RESUME_LINE
from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer

from ..conftest import RunningOperator
from ..helpers import eventually, livekit_secret, voice_agent

pytestmark = pytest.mark.slow

NS = "redispatch"
AGENT = "phoenix"
SIMULATED = [{"provider": "simulated", "simulation": {"delaySeconds": 0.2}}]
# livekit-server drops a participant whose connection died after about 20 s (its connection
# timeout); the new agent then needs a second or two.
BACK_WITHIN = 45.0


@pytest.fixture
def hooked(
    cluster: LocalCluster, operator: RunningOperator, tmp_path: Path
) -> Iterator[tuple[LiveKitServer, str]]:
    """A livekit-server whose webhooks reach the operator, and a VoiceAgent on it."""
    webhook = operator.webhook_url
    server = LiveKitServer(tmp_path / "livekit", webhook_urls=[webhook]).start()
    cluster.kubectl("create", "namespace", NS)
    livekit_secret(cluster, NS, "lk", server)
    region = {"name": "local", "livekit": {"url": server.url, "credentialsSecret": "lk"}}
    manifest = voice_agent(AGENT, NS, agentName=AGENT, regions=[region])
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    # The operator reads this LiveKit (and so hears its webhooks) once it is reachable.
    eventually(lambda: reachable(cluster), 30)
    yield server, operator.metrics_url
    cluster.kubectl("delete", "namespace", NS, "--wait=false")
    server.stop()


def reachable(cluster: LocalCluster) -> bool:
    out = cluster.kubectl("get", "voiceagent", AGENT, "-n", NS, "-o", "json")
    conditions = json.loads(out).get("status", {}).get("conditions", [])
    return any(c["type"] == "LiveKitReachable" and c["status"] == "True" for c in conditions)


def redispatches(metrics_url: str, outcome: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    prefix = "voicefleet_operator_redispatches_total{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and f'outcome="{outcome}"' in line
    )


async def test_a_killed_worker_is_replaced_and_its_caller_greeted_back(
    hooked: tuple[LiveKitServer, str], tmp_path: Path
) -> None:
    server, metrics_url = hooked
    config = pipeline_config(AGENT, SIMULATED, SIMULATED, SIMULATED)
    first = AgentWorker(json.loads(json.dumps(config)), server, tmp_path / "first").start()
    warm: AgentWorker | None = None
    try:
        async with calling(server, AGENT, "room-phoenix") as caller:
            await answer(caller, utterance_pcm("hello there"))
            lost = caller.agent_identity
            # A warm worker for the call to move to, started once the first one holds it.
            warm = AgentWorker(json.loads(json.dumps(config)), server, tmp_path / "warm").start()
            assert first.process is not None
            os.killpg(first.process.popen.pid, signal.SIGKILL)  # the worker and its job
            killed = time.time()
            await asyncio.to_thread(
                eventually, lambda: caller.agent_identity not in (lost, None), BACK_WITHIN
            )
            heard = await caller.wait_audible_after(killed, 20)
            print(f"kill → the new agent's first audio: {heard - killed:.1f}s")
            await asyncio.to_thread(eventually, lambda: RESUME_LINE in agent_finals(caller), 20)
            # The call goes on with the new agent.
            await caller.wait_agent_silent(0.8, 20)
            _, answered, _ = await answer(caller, utterance_pcm("are you still there"))
            assert answered > killed
        assert redispatches(metrics_url, "dispatched") == 1
        # The caller left, and the room's end does not count as another loss.
        assert redispatches(metrics_url, "no_caller") == 0
    finally:
        first.stop()
        if warm is not None:
            warm.stop()
