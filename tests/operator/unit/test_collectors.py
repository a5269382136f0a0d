"""LiveKit collectors live as long as some VoiceAgent region reads their endpoint, and a poll's
per-room lookups are concurrent, bounded, cached and tolerant of one bad room."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from voicefleet_operator.livekit_load import COLLECTORS, Collectors, Endpoint
from voicefleet_operator.rooms import RoomLookups

# Nothing listens there: the collectors' polls fail fast, which is all these tests need.
NOWHERE = "ws://127.0.0.1:9"


def endpoint(key: str = "key", url: str = NOWHERE) -> Endpoint:
    return Endpoint(url, key, "s" * 32)


def ignore(_: set[str] | None) -> None:
    return None


async def settled() -> None:
    """Let stopping collectors finish (a stop is scheduled, not awaited, by a release)."""
    await asyncio.sleep(0.2)


async def test_collectors_are_shared_by_endpoint_and_stopped_when_no_region_reads_them() -> None:
    collectors = Collectors()
    try:
        first = collectors.use(("ns", "a", "us"), endpoint(), 5, ignore)
        assert collectors.use(("ns", "b", "us"), endpoint(), 2, ignore) is first
        assert first.interval == 2  # as often as its most eager reader asks
        assert COLLECTORS._value.get() == 1

        collectors.release_agent(("ns", "b"))
        assert first.interval == 5
        assert first.running
        # A rotated key is another endpoint: the old one's poller goes with its last reader.
        rotated = collectors.use(("ns", "a", "us"), endpoint("rotated"), 5, ignore)
        await settled()
        assert rotated is not first
        assert rotated.running
        assert not first.running
        assert collectors.all() == [rotated]

        # An edited URL, then the region dropped from the spec.
        edited = collectors.use(("ns", "a", "us"), endpoint("rotated", NOWHERE + "0"), 5, ignore)
        collectors.release_agent(("ns", "a"), keep=["eu"])
        await settled()
        assert not rotated.running
        assert not edited.running
        assert collectors.all() == []
        assert COLLECTORS._value.get() == 0
    finally:
        await collectors.stop()


async def test_a_deleted_voiceagent_leaves_no_poller() -> None:
    collectors = Collectors()
    try:
        regions = [collectors.use(("ns", "gone", r), endpoint(r), 5, ignore) for r in ("us", "eu")]
        kept = collectors.use(("ns", "kept", "us"), endpoint("us"), 5, ignore)
        collectors.release_agent(("ns", "gone"))
        await settled()
        assert [c.running for c in regions] == [True, False]  # "us" is still read by "kept"
        assert collectors.all() == [kept]
    finally:
        await collectors.stop()
    assert not kept.running


@dataclass
class FakeLiveKit:
    """Answers ListDispatch and ListParticipants per room, and records how many were asked at
    once."""

    agents: dict[str, list[str]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def __post_init__(self) -> None:
        self.agent_dispatch = SimpleNamespace(list_dispatch=self.list_dispatch)
        self.room = SimpleNamespace(list_participants=self.list_participants)

    async def list_dispatch(self, room: str) -> list[Any]:
        self.asked.append(room)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            if room in self.failing:
                raise TimeoutError(room)
            return [SimpleNamespace(agent_name=a) for a in self.agents.get(room, [])]
        finally:
            self.in_flight -= 1

    async def list_participants(self, request: Any) -> Any:
        if request.room in self.failing:
            raise TimeoutError(request.room)
        return SimpleNamespace(participants=[object()])


async def test_500_new_rooms_are_looked_up_side_by_side_at_most_16_at_once() -> None:
    rooms = {f"room-{n}": ["support"] for n in range(500)}
    lk, lookups = FakeLiveKit(agents=rooms), RoomLookups(concurrency=16)
    await lookups.dispatches(lk, set(rooms))  # type: ignore[arg-type]
    assert lookups.sessions(set(rooms)) == {"support": 500}
    assert lk.most_in_flight == 16
    # Found once: the next poll asks nothing.
    await lookups.dispatches(lk, set(rooms))  # type: ignore[arg-type]
    assert len(lk.asked) == 500


async def test_a_failing_room_is_left_out_counted_and_asked_again() -> None:
    lk = FakeLiveKit(agents={"a": ["support"], "b": ["support"]}, failing={"b"})
    lookups = RoomLookups()
    await lookups.dispatches(lk, {"a", "b"})  # type: ignore[arg-type]
    assert lookups.failed == 1
    assert lookups.sessions({"a", "b"}) == {"support": 1}
    assert await lookups.participants(lk, ["a", "b"]) == {"a": 1}  # type: ignore[arg-type]
    lk.failing.clear()
    await lookups.dispatches(lk, {"a", "b"})  # type: ignore[arg-type]
    assert lookups.sessions({"a", "b"}) == {"support": 2}


async def test_when_every_room_fails_the_poll_fails() -> None:
    lk = FakeLiveKit(failing={"a", "b"})
    with pytest.raises(TimeoutError):
        await RoomLookups().dispatches(lk, {"a", "b"})  # type: ignore[arg-type]


async def test_rooms_without_a_dispatch_are_asked_again_only_after_a_while() -> None:
    now = [0.0]
    lk = FakeLiveKit(agents={"app": [""]})  # as LiveKit lists a room without a named dispatch
    lookups = RoomLookups(no_dispatch_seconds=10, clock=lambda: now[0])
    await lookups.dispatches(lk, {"app"}, new={"app"})  # type: ignore[arg-type]
    await lookups.dispatches(lk, {"app"}, new={"app"})  # type: ignore[arg-type]
    assert lk.asked == ["app", "app"]  # a new room's dispatch may come any moment
    for now[0] in (0.0, 3.0, 9.9):  # no longer new: asked now and then
        await lookups.dispatches(lk, {"app"})  # type: ignore[arg-type]
    assert lk.asked == ["app", "app"]
    now[0] = 10.0
    lk.agents["app"] = ["support"]  # dispatched through the API meanwhile
    await lookups.dispatches(lk, {"app"})  # type: ignore[arg-type]
    assert lookups.sessions({"app"}) == {"support": 1}


async def test_a_join_asks_again_at_once_and_a_gone_room_is_forgotten() -> None:
    lk = FakeLiveKit(agents={"r": []})
    lookups = RoomLookups(no_dispatch_seconds=60)
    await lookups.dispatches(lk, {"r"})  # type: ignore[arg-type]
    lk.agents["r"] = ["support"]
    lookups.recheck("r")  # a participant joined, as a webhook said
    await lookups.dispatches(lk, {"r"})  # type: ignore[arg-type]
    assert lookups.sessions({"r"}) == {"support": 1}
    assert lookups.sessions(set()) == {}
    await lookups.dispatches(lk, {"r"})  # type: ignore[arg-type]
    assert lk.asked == ["r", "r", "r"]  # gone, then new again: asked afresh
