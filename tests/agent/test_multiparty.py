"""Several callers in one room with one agent, over a real livekit-server and a real worker:
the session listens to whoever takes the floor, names every speaker, and is one session."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest
from livekit import api

from tests.agent.conftest import (
    AgentWorker,
    agent_finals,
    answer,
    calling,
    eventually,
    pipeline_config,
)
from voicefleet_agent.floor import LISTENING_ATTRIBUTE
from voicefleet_agent.loadtest import Caller, utterance_pcm
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_operator.livekit_load import Collector, Endpoint

AGENT = "vf-party"
# Simulated providers number what they do: the recognizer's Nth segment is "simulated
# utterance N" and the model's reply to the Nth user turn is "Simulated reply N", so who said
# what, and what was answered, is known exactly.
FAST = [{"provider": "simulated", "simulation": {"delaySeconds": 0.1}}]


@pytest.fixture(scope="module")
def party_worker(worker_factory: Callable[..., AgentWorker]) -> AgentWorker:
    return worker_factory(pipeline_config(AGENT, FAST, FAST, FAST))


def user_lines(caller: Caller, speakers: set[str]) -> list[tuple[str, str]]:
    """Final user transcripts this caller received: (speaker, text), in arrival order."""
    return [(t.identity, t.text) for t in caller.transcripts if t.final and t.identity in speakers]


async def lines_from(caller: Caller, turn: int, speakers: set[str]) -> list[tuple[str, str]]:
    """The user lines from the `turn`th on, once there is one."""
    me = caller.room.local_participant.identity
    lines: list[tuple[str, str]] = await eventually(
        lambda: user_lines(caller, speakers)[turn - 1 :], what=f"turn {turn}'s line at {me}"
    )
    return lines


async def replied(caller: Caller, turn: int) -> None:
    await eventually(
        lambda: [t for t in agent_finals(caller) if t.startswith(f"Simulated reply {turn}.")],
        what=f"reply {turn}",
    )


def listening_to(caller: Caller) -> str | None:
    agent = caller.room.remote_participants.get(caller.agent_identity or "")
    return agent.attributes.get(LISTENING_ATTRIBUTE) if agent is not None else None


async def demand(livekit: LiveKitServer) -> int:
    """Sessions of the agent as the operator counts them from LiveKit."""
    collector = Collector(
        Endpoint(livekit.url, livekit.api_key, livekit.api_secret), 1.0, lambda _: None
    )
    async with api.LiveKitAPI(
        collector.endpoint.http_url, livekit.api_key, livekit.api_secret
    ) as lk:
        await collector.poll(lk)
    assert collector.snapshot.error is None, collector.snapshot.error
    return collector.snapshot.sessions[AGENT]


async def test_three_callers_take_turns_each_is_answered_and_named(
    livekit: LiveKitServer, party_worker: AgentWorker
) -> None:
    question = utterance_pcm("What is the weather like today?")
    names = ["ann", "bob", "cyd"]
    sessions = "voicefleet_agent_sessions_total"
    before = party_worker.sample(sessions)
    talked_before = party_worker.sample("voicefleet_agent_conversation_seconds_total")
    stacks = {name: AsyncExitStack() for name in names}
    callers: dict[str, Caller] = {}
    joined = time.monotonic()
    try:
        # Ann's token dispatches the agent; Bob and Cyd join the call already going, as
        # invited callers' tokens do.
        for name in names:
            callers[name] = await stacks[name].enter_async_context(
                calling(livekit, AGENT, "room-party", name, dispatch=name == "ann")
            )
        ann, bob = callers["ann"], callers["bob"]
        assert len({c.agent_identity for c in callers.values()}) == 1, "more than one agent"
        await eventually(lambda: listening_to(ann) == "ann", what="agent linked to Ann")
        speakers = set(names)

        for turn, name in enumerate(names, start=1):
            # The speaker hears the reply to what they said...
            await answer(callers[name], question)
            # ...and everyone sees the line under the speaker's own name, then the reply.
            for caller in callers.values():
                assert await lines_from(caller, turn, speakers) == [
                    (name, f"simulated utterance {turn}")
                ]
                await replied(caller, turn)
            assert listening_to(ann) == name

        # Three callers, one agent: one session on the worker, one in the operator's demand.
        assert await demand(livekit) == 1
        await eventually(
            lambda: party_worker.sample("voicefleet_agent_active_sessions", agent=AGENT) == 1,
            what="one active session",
        )
        assert party_worker.sample(sessions) == before

        # The caller listened to leaves: the others keep the call, and Ann is heard again.
        await stacks["cyd"].aclose()
        await eventually(lambda: listening_to(ann) in {"ann", "bob"}, what="agent relinked")
        await answer(ann, question)
        assert await lines_from(bob, 4, speakers) == [("ann", "simulated utterance 4")]
        await replied(bob, 4)
        await stacks["ann"].aclose()
        await eventually(lambda: listening_to(bob) == "bob", what="agent linked to Bob")
        assert bob.agent_present
        assert party_worker.sample(sessions) == before, "session ended before the last caller"
        await stacks["bob"].aclose()
        left = time.monotonic()
    finally:
        for stack in stacks.values():
            await stack.aclose()

    await eventually(
        lambda: party_worker.sample(sessions, outcome="completed") == before + 1,
        what="one session counted",
    )
    assert party_worker.sample(sessions) == before + 1
    # Conversation time runs until the last caller left, not the first.
    seconds = party_worker.sample("voicefleet_agent_conversation_seconds_total") - talked_before
    assert left - joined - 1 <= seconds <= time.monotonic() - joined + 1, seconds
