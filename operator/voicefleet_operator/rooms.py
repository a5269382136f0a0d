"""Per-room lookups of one LiveKit endpoint: the agents dispatched to each live room, and the
participants of rooms too young for ListRooms to count them.

A surge brings hundreds of new rooms between two polls. Their lookups run side by side, a
bounded number at a time (LiveKit and the operator's event loop stay responsive), and a room
whose lookup fails is left out of this poll, counted, and asked again at the next: one bad
room must not make the whole endpoint's demand unknown. A room's dispatches, once found, are
kept while the room lives; a room found without any is asked again only after a while, not on
every poll, as most such rooms belong to other applications and never get one.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from collections.abc import Set as AbstractSet
from functools import partial
from typing import TypeVar

from livekit import api
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.room import ListParticipantsResponse

LOOKUP_CONCURRENCY = 16
# A dispatch made through the API follows the caller's join by moments: a room younger than
# this without one is asked on every poll. An older one most likely belongs to another
# application and is asked again only this often (a caller joining it, as a webhook says,
# makes it be asked at the next poll).
NEW_ROOM_SECONDS = 60.0
NO_DISPATCH_SECONDS = 30.0

T = TypeVar("T")


async def bounded(
    limit: asyncio.Semaphore, calls: Iterable[Callable[[], Awaitable[T]]]
) -> list[T | Exception]:
    """Run every call, at most `limit` at a time; each one's result or its error, in order."""

    async def one(call: Callable[[], Awaitable[T]]) -> T | Exception:
        async with limit:
            try:
                return await call()
            except Exception as error:  # noqa: BLE001 - the caller decides per room
                return error

    return list(await asyncio.gather(*(one(call) for call in calls)))


class RoomLookups:
    """The dispatch cache of one endpoint, and the concurrent lookups that fill it."""

    def __init__(
        self,
        concurrency: int = LOOKUP_CONCURRENCY,
        no_dispatch_seconds: float = NO_DISPATCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = asyncio.Semaphore(concurrency)
        self._no_dispatch_seconds = no_dispatch_seconds
        self._clock = clock
        self._agents: dict[str, frozenset[str]] = {}
        self._asked_at: dict[str, float] = {}  # rooms without a dispatch: when last asked
        self.failed = 0  # rooms whose lookup failed in the last poll

    def to_ask(self, live: Iterable[str], new: AbstractSet[str]) -> list[str]:
        """The live rooms whose dispatches are unknown: never asked, found without any while
        `new`, or a while ago."""
        now = self._clock()
        return [
            room
            for room in live
            if not self._agents.get(room)
            and (
                room in new
                or now - self._asked_at.get(room, -float("inf")) >= self._no_dispatch_seconds
            )
        ]

    def record(self, room: str, agents: frozenset[str]) -> None:
        self._agents[room] = agents
        if agents:
            self._asked_at.pop(room, None)
        else:
            self._asked_at[room] = self._clock()

    def recheck(self, room: str) -> None:
        """Ask the room again at the next poll (someone joined: a dispatch may come with it)."""
        if not self._agents.get(room):
            self._asked_at.pop(room, None)

    def sessions(self, live: set[str]) -> Counter[str]:
        """Sessions per agent name over the live rooms; forgets rooms that are gone."""
        for gone in self._agents.keys() - live:
            del self._agents[gone]
            self._asked_at.pop(gone, None)
        return Counter(agent for room in live for agent in self._agents.get(room, ()))

    async def participants(self, lk: api.LiveKitAPI, rooms: list[str]) -> dict[str, int]:
        """The participant count of each room that could be read."""
        counts = await self._run(
            rooms, lambda room: lk.room.list_participants(api.ListParticipantsRequest(room=room))
        )
        return {room: len(found.participants) for room, found in counts.items()}

    async def listings(
        self, lk: api.LiveKitAPI, rooms: list[str]
    ) -> dict[str, list[ParticipantInfo]]:
        """The participants of each room that could be read, sharing the poll's bound (a room
        that failed or closed meanwhile is left out, not counted as a poll error)."""

        def listing(room: str) -> Callable[[], Awaitable[ListParticipantsResponse]]:
            return partial(lk.room.list_participants, api.ListParticipantsRequest(room=room))

        results = await bounded(self._limit, [listing(room) for room in rooms])
        return {
            room: list(result.participants)
            for room, result in zip(rooms, results, strict=True)
            if not isinstance(result, Exception)
        }

    async def each(self, calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T | Exception]:
        """Run calls about this endpoint's rooms within the same bound as the poll's."""
        return await bounded(self._limit, calls)

    async def dispatches(
        self, lk: api.LiveKitAPI, live: set[str], new: AbstractSet[str] = frozenset()
    ) -> None:
        """Look up the rooms to ask (see to_ask) and remember their agents."""
        found = await self._run(self.to_ask(live, new), lk.agent_dispatch.list_dispatch)
        for room, dispatches in found.items():
            # LiveKit lists a room without any named dispatch as dispatched to "" (automatic
            # dispatch of unnamed agents): no VoiceAgent's, and still waiting for its own.
            self.record(room, frozenset(d.agent_name for d in dispatches if d.agent_name))

    async def _run(self, rooms: list[str], lookup: Callable[[str], Awaitable[T]]) -> dict[str, T]:
        """Each room's answer. Failures are counted in `failed`; when every room failed, the
        first failure is raised: LiveKit is then as unreadable as when ListRooms fails."""
        results = await bounded(self._limit, [partial(lookup, room) for room in rooms])
        errors = [result for result in results if isinstance(result, Exception)]
        if errors and len(errors) == len(results):
            raise errors[0]
        self.failed += len(errors)
        return {
            room: result
            for room, result in zip(rooms, results, strict=True)
            if not isinstance(result, Exception)
        }
