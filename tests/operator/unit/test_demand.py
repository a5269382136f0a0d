"""Demand from LiveKit without a LiveKit: what a snapshot says when it is fresh, stale, failed or
not there yet; what a collector tells the autoscaler after each poll; and webhooks, trusted
only when one of the known endpoints' keys signed them."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from google.protobuf.json_format import MessageToJson
from livekit import api

from voicefleet_operator.livekit_load import (
    WEBHOOKS,
    Collector,
    Collectors,
    Endpoint,
    Snapshot,
    receive_webhook,
)

SECRET = "s" * 32
# Nothing listens there: the background polls of a collector in use fail at once.
NOWHERE = "ws://127.0.0.1:9"


def test_a_fresh_snapshot_counts_the_agents_sessions_and_zero_for_an_agent_without_any() -> None:
    snapshot = Snapshot(sessions=Counter({"support": 3}), polled_at=100.0)
    assert snapshot.demand("support", max_age=30, now=130.0) == 3
    # Known to have no calls: a zero, which may scale down, not a missing value, which holds.
    assert snapshot.demand("sales", max_age=30, now=130.0) == 0


def test_a_stale_failed_or_pending_snapshot_has_no_demand() -> None:
    fresh = Snapshot(sessions=Counter({"support": 3}), polled_at=100.0)
    assert fresh.demand("support", max_age=30, now=130.5) is None
    failed = Snapshot(polled_at=100.0, error="Unreachable (ClientConnectionError)")
    assert failed.demand("support", max_age=30, now=100.0) is None
    collector = Collector(Endpoint(NOWHERE, "key", SECRET), 5, lambda _: None)
    assert collector.snapshot.pending
    assert collector.snapshot.demand("support", max_age=1e9, now=0.0) is None


@dataclass
class FakeRoomService:
    """ListRooms and ListDispatch answers of one LiveKit: each room's agent and participants.
    While `down`, every call fails as against a LiveKit that cannot be reached."""

    agents: dict[str, str] = field(default_factory=dict)
    participants: dict[str, int] = field(default_factory=dict)
    down: bool = False

    def __post_init__(self) -> None:
        self.room = SimpleNamespace(list_rooms=self.list_rooms)
        self.agent_dispatch = SimpleNamespace(list_dispatch=self.list_dispatch)

    async def list_rooms(self, _: api.ListRoomsRequest) -> Any:
        if self.down:
            raise aiohttp.ClientConnectionError("refused")
        rooms = [
            SimpleNamespace(name=room, num_participants=self.participants.get(room, 1),
                            creation_time=0)
            for room in self.agents
        ]  # fmt: skip
        return SimpleNamespace(rooms=rooms)

    async def list_dispatch(self, room: str) -> list[Any]:
        return [SimpleNamespace(agent_name=self.agents[room])]


@dataclass
class Notes:
    """What a collector told the autoscaler: the agent names whose demand moved, None for all."""

    seen: list[set[str] | None] = field(default_factory=list)

    def __call__(self, agents: set[str] | None) -> None:
        self.seen.append(agents)


def collector_for(notes: Notes) -> Collector:
    return Collector(Endpoint(NOWHERE, "key", SECRET), 5, notes)


async def poll(collector: Collector, livekit: FakeRoomService) -> None:
    await collector.poll(livekit)  # type: ignore[arg-type]


async def test_livekit_down_from_the_start_is_told_once_and_leaves_no_demand() -> None:
    notes, livekit = Notes(), FakeRoomService(down=True)
    collector = collector_for(notes)
    await poll(collector, livekit)
    await poll(collector, livekit)
    assert notes.seen == [None]  # every agent of the endpoint holds, once
    assert collector.snapshot.error == "Unreachable (ClientConnectionError)"
    assert not collector.snapshot.pending
    assert (
        collector.snapshot.demand("support", max_age=60, now=collector.snapshot.polled_at) is None
    )


async def test_each_poll_tells_only_the_agents_whose_demand_moved() -> None:
    notes = Notes()
    livekit = FakeRoomService(agents={"r1": "support", "r2": "sales"})
    collector = collector_for(notes)
    await poll(collector, livekit)
    assert notes.seen == [None]  # the first answer: every agent's demand is news
    assert collector.snapshot.sessions == Counter({"support": 1, "sales": 1})

    livekit.agents["r3"] = "sales"
    await poll(collector, livekit)
    await poll(collector, livekit)
    assert notes.seen == [None, {"sales"}]
    assert collector.snapshot.demand("sales", 60, collector.snapshot.polled_at) == 2

    livekit.down = True
    await poll(collector, livekit)
    livekit.down = False
    await poll(collector, livekit)
    assert notes.seen == [None, {"sales"}, None, None]
    assert collector.snapshot.demand("support", 60, collector.snapshot.polled_at) == 1


def webhook(event: str, room: str, identity: str) -> str:
    message = api.WebhookEvent(
        event=event,
        room=api.Room(name=room),
        participant=api.ParticipantInfo(identity=identity),
    )
    return MessageToJson(message)


def signed(body: str, key: str, secret: str = SECRET) -> str:
    """The Authorization header LiveKit sends: a JWT of `key` carrying the body's hash."""
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(key, secret).with_sha256(digest).to_jwt()


@pytest.fixture
async def collectors() -> AsyncIterator[Collectors]:
    known = Collectors()
    for key in ("us-key", "eu-key"):
        known.use(("ns", "support", key), Endpoint(NOWHERE, key, SECRET), 60, lambda _: None)
    try:
        yield known
    finally:
        await known.stop()


def accepted(event: str) -> float:
    return float(WEBHOOKS.labels(event)._value.get())


async def test_a_webhook_signed_by_a_known_key_reaches_that_endpoints_demand(
    collectors: Collectors,
) -> None:
    us, eu = collectors.all()
    before = accepted("participant_joined")
    body = webhook("participant_joined", "call-1", "caller-1")
    assert receive_webhook(collectors, body, signed(body, "eu-key")) == "participant_joined"
    assert accepted("participant_joined") == before + 1
    # ListRooms still counts nobody in the room: the webhook is trusted for who joined.
    livekit = FakeRoomService(agents={"call-1": "support"}, participants={"call-1": 0})
    await poll(eu, livekit)
    await poll(us, livekit)
    assert eu.snapshot.sessions == Counter({"support": 1})
    assert us.snapshot.sessions == Counter()


async def test_a_webhook_no_known_key_signed_is_refused_and_changes_nothing(
    collectors: Collectors,
) -> None:
    before = accepted("participant_joined")
    body = webhook("participant_joined", "call-1", "caller-1")
    refused = [
        signed(body, "other-key"),  # a key no VoiceAgent region uses
        signed(body, "eu-key", "x" * 32),  # a known key, the wrong secret
        signed(webhook("participant_joined", "call-2", "caller-1"), "eu-key"),  # another body
        "not a token",
    ]
    for authorization in refused:
        assert receive_webhook(collectors, body, authorization) is None
    assert accepted("participant_joined") == before
    livekit = FakeRoomService(agents={"call-1": "support"}, participants={"call-1": 0})
    for collector in collectors.all():
        await poll(collector, livekit)
        assert collector.snapshot.sessions == Counter()
