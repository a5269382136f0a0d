"""A job process killed mid-call: its worker removes the dead agent from the room and
dispatches the agent again at once, and the caller is greeted back within seconds instead of
waiting for livekit-server to time the dead connection out, by an agent that continues the
conversation the lost one sealed into the room."""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil

from tests.agent.conftest import (
    AgentWorker,
    agent_finals,
    answer,
    calling,
    eventually,
    pipeline_config,
)
from voicefleet_agent.conversation_store import sealed_in
from voicefleet_agent.loadtest import utterance_pcm
from voicefleet_agent.resume import RESUME_LINE
from voicefleet_devstack.livekit import LiveKitServer

SIMULATED = [{"provider": "simulated", "simulation": {"delaySeconds": 0.2}}]
# livekit-server alone would keep the dead agent for about 20 s.
BACK_WITHIN = 8.0


def job_process(worker: AgentWorker) -> psutil.Process:
    """The worker's process that holds a call: the one job process with a media socket."""
    assert worker.process is not None
    assert worker.process.popen is not None
    tree = psutil.Process(worker.process.popen.pid).children(recursive=True)
    calling_ = [p for p in tree if p.net_connections(kind="udp")]
    assert len(calling_) == 1, [(p.pid, p.net_connections(kind="udp")) for p in tree]
    return calling_[0]


async def test_a_killed_job_process_is_replaced_by_its_worker_within_seconds(
    livekit: LiveKitServer, worker_factory: Callable[..., AgentWorker]
) -> None:
    worker = worker_factory(pipeline_config("vf-recover", SIMULATED, SIMULATED, SIMULATED))
    async with calling(livekit, "vf-recover", "room-recover") as caller:
        await answer(caller, utterance_pcm("hello there"))
        # The simulated model numbers its replies by the user turns in its context.
        assert any("Simulated reply 1." in text for text in agent_finals(caller))
        # The turn is saved into the room metadata, which the caller sees: sealed.
        sealed = await eventually(
            lambda: sealed_in(caller.room.metadata), what="the conversation saved in the room"
        )
        assert "Simulated" not in sealed
        lost = caller.agent_identity
        job_process(worker).kill()
        killed = time.time()
        heard = await caller.wait_audible_after(killed, BACK_WITHIN)
        print(f"job process killed → the new agent heard: {heard - killed:.1f}s")
        assert caller.agent_identity not in (lost, None)
        # The dead agent is gone from the room, not left beside the new one.
        assert lost not in caller.room.remote_participants
        await eventually(
            lambda: any(RESUME_LINE in text for text in agent_finals(caller)),
            what="the agent greeting the caller back",
        )
        await caller.wait_agent_silent(0.8, 20)
        greeted = len(agent_finals(caller))
        _, answered, _ = await answer(caller, utterance_pcm("are you still there"))
        assert answered > killed
        # The new agent's model saw the turn before the loss too: its reply is the second.
        replies = await eventually(
            lambda: [t for t in agent_finals(caller)[greeted:] if t.startswith("Simulated")],
            what="the new agent's reply",
        )
        assert "Simulated reply 2." in replies[0], replies
    assert worker.sample("voicefleet_agent_redispatches_total", outcome="dispatched") == 1
    carried = "voicefleet_agent_conversation_carryover_total"
    assert worker.sample(carried, operation="restore", outcome="restored") == 1
    assert worker.sample(carried, operation="save", outcome="saved") >= 2
    assert worker.sample(carried, operation="save", outcome="failed") == 0
