"""A worker pod found dead: against a real livekit-server, the operator's collector removes
the agents that named that pod from their rooms and dispatches those rooms' agents again,
leaving every other room alone."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from livekit import api, rtc
from livekit.protocol.models import ParticipantInfo

from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_models.room import POD_ATTRIBUTE, RESUMED
from voicefleet_operator.livekit_load import Collector, Endpoint
from voicefleet_operator.redispatch import REDISPATCHES
from voicefleet_operator.worker_loss import WORKER_LOST

pytestmark = pytest.mark.slow

AGENT = "phantom"  # no worker serves it: the dispatches stay listed for the test to read
DEAD, ALIVE = "phantom-node-1-dead", "phantom-node-1-alive"


def token(server: LiveKitServer, room: str, identity: str, pod: str | None = None) -> str:
    """A caller's token dispatching AGENT, or (with `pod`) an agent's naming its pod."""
    grant = api.AccessToken(server.api_key, server.api_secret).with_identity(identity)
    grant = grant.with_grants(api.VideoGrants(room_join=True, room=room))
    if pod is None:
        dispatch = api.RoomAgentDispatch(agent_name=AGENT)
        return grant.with_room_config(api.RoomConfiguration(agents=[dispatch])).to_jwt()
    return grant.with_kind("agent").with_attributes({POD_ATTRIBUTE: pod}).to_jwt()


@asynccontextmanager
async def joined(server: LiveKitServer, room: str, identity: str,
                 pod: str | None = None) -> AsyncIterator[rtc.Room]:  # fmt: skip
    participant = rtc.Room()
    await participant.connect(server.url, token(server, room, identity, pod))
    try:
        yield participant
    finally:
        await participant.disconnect()


async def until(check: Callable[[], Awaitable[bool]], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within}s"
        await asyncio.sleep(0.1)


async def test_the_dead_pod_s_rooms_get_their_agent_dispatched_again(
    livekit: LiveKitServer,
) -> None:
    endpoint = Endpoint(livekit.url, livekit.api_key, livekit.api_secret)
    collector = Collector(endpoint, interval=60, changed=lambda _: None)
    counted = REDISPATCHES.labels(WORKER_LOST, "dispatched")
    before = counted._value.get()
    collector.start()
    async with (
        api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk,
        joined(livekit, "lost-room", "caller-lost"),
        joined(livekit, "lost-room", "agent-dead", DEAD),
        joined(livekit, "kept-room", "caller-kept"),
        joined(livekit, "kept-room", "agent-alive", ALIVE),
    ):

        async def agents(room: str) -> set[str]:
            listing = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            kind = ParticipantInfo.Kind.AGENT
            return {p.identity for p in listing.participants if p.kind == kind}

        async def polled() -> bool:
            return collector.polls > 0

        try:
            await until(polled)
            collector.worker_lost(DEAD)

            async def restored() -> bool:
                return counted._value.get() > before

            await until(restored)
            assert await agents("lost-room") == set()
            assert await agents("kept-room") == {"agent-alive"}
            again = [d for d in await lk.agent_dispatch.list_dispatch("lost-room") if d.metadata]
            assert [d.agent_name for d in again] == [AGENT]
            assert json.loads(again[0].metadata) == {RESUMED: {"lostBy": WORKER_LOST}}
            kept = await lk.agent_dispatch.list_dispatch("kept-room")
            assert [d.metadata for d in kept] == [""]
            assert counted._value.get() == before + 1
        finally:
            await collector.stop()
