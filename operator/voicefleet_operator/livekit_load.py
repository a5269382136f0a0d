"""Demand as LiveKit sees it: one collector per LiveKit endpoint, shared by every VoiceAgent
region that reads it and stopped once none does (a rotated key or an edited URL is another
endpoint; a deleted VoiceAgent uses none).

A room counts as one session of agent X when it has an agent dispatch for X (from the caller's
token RoomConfiguration or the dispatch API) and at least one participant. Each poll costs one
ListRooms call per endpoint, plus one ListDispatch call per room not seen before (a room
without any dispatch is asked again while it is new, then only now and then) and one
ListParticipants call per room younger than 15 s that reports no participants yet; those
per-room calls run side by side, a bounded number at a time (rooms.py). So LiveKit calls
grow with regions and new rooms, never with the number of VoiceAgents. A LiveKit webhook
makes the matching collector poll at once and is trusted for who joined and left, because
ListRooms' participant counts lag by a few seconds; so changes are seen well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from functools import partial

import aiohttp
from livekit import api
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge, Histogram

from voicefleet_operator.redispatch import REDISPATCHES, Redispatcher, lost_agent
from voicefleet_operator.rooms import NEW_ROOM_SECONDS, RoomLookups
from voicefleet_operator.worker_loss import WORKER_LOST, served_by

log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=5)
SETTLE_SECONDS = 1.0
WEBHOOK_TRUST_SECONDS = 15.0
YOUNG_ROOM_SECONDS = 15

POLL_SECONDS = Histogram(
    "voicefleet_operator_livekit_poll_duration_seconds",
    "Duration of one LiveKit RoomService poll.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
POLL_ERRORS = MetricCounter(
    "voicefleet_operator_livekit_poll_errors_total",
    "LiveKit polls that failed.",
    ["endpoint", "reason"],
)
ROOM_ERRORS = MetricCounter(
    "voicefleet_operator_livekit_room_lookup_errors_total",
    "Rooms whose participants or dispatches could not be read in a poll; the poll counted "
    "the other rooms and asks those again at the next.",
    ["endpoint"],
)
COLLECTORS = Gauge(
    "voicefleet_operator_livekit_collectors",
    "LiveKit endpoints being polled: one per endpoint some VoiceAgent region reads.",
)


@dataclass(frozen=True)
class Endpoint:
    """A LiveKit deployment and the credentials to read it."""

    url: str
    api_key: str
    api_secret: str

    @property
    def http_url(self) -> str:
        return self.url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


@dataclass
class Snapshot:
    """The last poll: sessions per agent name, when, or why it failed."""

    sessions: Counter[str] = field(default_factory=Counter)
    polled_at: float = 0.0
    error: str | None = None
    # Before the first poll has answered: nothing is known yet, not even that LiveKit is down.
    pending: bool = False

    def demand(self, agent_name: str, max_age: float, now: float) -> int | None:
        """Sessions of the agent, or None when the data is missing or stale."""
        if self.error is not None or now - self.polled_at > max_age:
            return None
        return self.sessions[agent_name]


# Told which agent names' demand moved at an endpoint; None: every agent's (LiveKit became
# readable or unreadable).
DemandChanged = Callable[[set[str] | None], None]


class Collector:
    """Polls one LiveKit endpoint until stopped; `poke()` polls at once."""

    def __init__(
        self,
        endpoint: Endpoint,
        interval: float,
        changed: DemandChanged,
        rooms: RoomLookups | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.interval = interval
        self.changed = changed
        self.snapshot = Snapshot(error="not polled yet", pending=True)
        self.polls = 0
        self.rooms = rooms or RoomLookups()
        # Participants seen in webhooks, per room: ListRooms counts lag by seconds.
        self._joined: dict[str, tuple[set[str], float]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lk: api.LiveKitAPI | None = None
        self._redispatcher = Redispatcher()
        self._restoring: set[asyncio.Task[object]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"livekit-poll {self.endpoint.url}")

    async def stop(self) -> None:
        tasks = [*self._restoring, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def poke(self) -> None:
        self._wake.set()

    def observe(self, event: api.WebhookEvent) -> None:
        """Track who is in which room from a webhook, then poll at once."""
        room = event.room.name
        identities, _ = self._joined.get(room, (set(), 0.0))
        if event.event == "participant_joined":
            identities.add(event.participant.identity)
            self.rooms.recheck(room)
        elif event.event == "participant_left":
            identities.discard(event.participant.identity)
        if event.event == "room_finished":
            self._joined.pop(room, None)
            self._redispatcher.forget(room)
        elif room:
            self._joined[room] = (identities, time.monotonic())
        reason = lost_agent(event)
        if reason is not None and self._lk is not None:
            self._restore_in_background(self._redispatcher.restore(self._lk, room, reason))
        self.poke()

    def worker_lost(self, pod: str) -> None:
        """The worker container of `pod` died: put back the calls its agents were in."""
        if self._lk is not None:
            self._restore_in_background(self._put_back_pod(self._lk, pod))

    def _restore_in_background(self, work: Coroutine[object, object, object]) -> None:
        task = asyncio.create_task(work)
        self._restoring.add(task)
        task.add_done_callback(self._restoring.discard)

    async def _put_back_pod(self, lk: api.LiveKitAPI, pod: str) -> None:
        """Find the rooms whose agent ran in `pod` (every room with participants, or too
        young for ListRooms to count them), remove those agents and dispatch again."""
        try:
            listed = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
        except Exception:  # LiveKit unreadable: LiveKit's own timeout and webhook remain
            log.exception("could not list the rooms of worker %s", pod)
            REDISPATCHES.labels(WORKER_LOST, "failed").inc()
            return
        now = time.time()
        rooms = [
            r.name
            for r in listed
            if r.num_participants > 0 or now - r.creation_time < YOUNG_ROOM_SECONDS
        ]
        served = served_by(await self.rooms.listings(lk, rooms), pod)
        outcomes = await self.rooms.each(
            [partial(self._put_back, lk, room, agents) for room, agents in served.items()]
        )
        log.info("worker %s lost: rooms %s", pod, dict(zip(served, outcomes, strict=True)))

    async def _put_back(self, lk: api.LiveKitAPI, room: str, agents: set[str]) -> str:
        """Remove the dead agents (so the room has none, and LiveKit's later webhook says
        PARTICIPANT_REMOVED, which restores nothing), then restore the room."""
        removed = set()
        for identity in sorted(agents):
            try:
                await lk.room.remove_participant(
                    api.RoomParticipantIdentity(room=room, identity=identity)
                )
                removed.add(identity)
            except Exception:  # noqa: BLE001 - gone already, or LiveKit refused: restore decides
                log.warning("could not remove agent %s from room %s", identity, room)
        return await self._redispatcher.restore(lk, room, WORKER_LOST, removed)

    def verifier(self) -> api.TokenVerifier:
        return api.TokenVerifier(self.endpoint.api_key, self.endpoint.api_secret)

    async def _run(self) -> None:
        async with api.LiveKitAPI(
            self.endpoint.http_url, self.endpoint.api_key, self.endpoint.api_secret, timeout=TIMEOUT
        ) as lk:
            self._lk = lk
            while True:
                await self.poll(lk)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
                    # Poked by a webhook: poll now, and once more when the room has settled
                    # (a dispatch can land just after the participant_joined event).
                    await self.poll(lk)
                    await asyncio.sleep(SETTLE_SECONDS)

    async def poll(self, lk: api.LiveKitAPI) -> None:
        started = time.monotonic()
        self.polls += 1
        try:
            sessions = await self._sessions(lk)
        except Exception as error:  # noqa: BLE001 - any failure means LiveKit is unreadable
            reason = _reason(error)
            POLL_ERRORS.labels(self.endpoint.url, reason).inc()
            if self.snapshot.error is None or self.snapshot.pending:
                self.changed(None)  # every fleet of this endpoint holds now
            self.snapshot = Snapshot(error=brief(error), polled_at=time.time())
            return
        POLL_SECONDS.labels(self.endpoint.url).observe(time.monotonic() - started)
        previous = self.snapshot
        # Let the autoscaler act now on the agents whose demand moved, not at its next pass.
        if previous.error:
            self.changed(None)
        elif moved := _moved(previous.sessions, sessions):
            self.changed(moved)
        self.snapshot = Snapshot(sessions=sessions, polled_at=time.time())

    async def _sessions(self, lk: api.LiveKitAPI) -> Counter[str]:
        self.rooms.failed = 0
        rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
        polled = {room.name: room.num_participants for room in rooms}
        # A room's participant count in ListRooms lags by seconds; for rooms created moments
        # ago that still report none, ask for their participants instead.
        now = time.time()
        young = [
            r.name
            for r in rooms
            if r.num_participants == 0 and now - r.creation_time < YOUNG_ROOM_SECONDS
        ]
        polled.update(await self.rooms.participants(lk, young))
        live = {name for name, count in polled.items() if count > 0} | self._webhook_live(polled)
        new = {r.name for r in rooms if now - r.creation_time < NEW_ROOM_SECONDS}
        await self.rooms.dispatches(lk, live, new)
        if self.rooms.failed:
            ROOM_ERRORS.labels(self.endpoint.url).inc(self.rooms.failed)
        return self.rooms.sessions(live)

    def _webhook_live(self, polled: dict[str, int]) -> set[str]:
        """Rooms with participants according to recent webhooks; entries the poll has
        contradicted for WEBHOOK_TRUST_SECONDS are dropped (a lost participant_left)."""
        now = time.monotonic()
        for room, (_, updated) in list(self._joined.items()):
            if polled.get(room, 0) == 0 and now - updated > WEBHOOK_TRUST_SECONDS:
                del self._joined[room]
        return {room for room, (identities, _) in self._joined.items() if identities}


def _reason(error: Exception) -> str:
    status = getattr(error, "status", None)
    if status in (401, 403):
        return "Unauthorized"
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "Timeout"
    return "Unreachable"


def brief(error: Exception) -> str:
    """What went wrong in our own words: the reason, and the HTTP status or the error's kind.
    Never what the remote side answered: a VoiceAgent's author chooses the URL, and status is
    readable by more people than the operator's logs."""
    status = getattr(error, "status", None)
    detail = f"HTTP {status}" if isinstance(status, int) else type(error).__name__
    return f"{_reason(error)} ({detail})"


def _moved(before: Counter[str], after: Counter[str]) -> set[str]:
    """The agent names whose session count differs."""
    return {name for name in set(before) | set(after) if before[name] != after[name]}


# Who reads an endpoint: one VoiceAgent region, (namespace, VoiceAgent, region).
User = tuple[str, str, str]


class Collectors:
    """The shared collectors, keyed by endpoint: started by the first region that reads an
    endpoint, stopped when the last one stops reading it."""

    def __init__(self) -> None:
        self._by_endpoint: dict[Endpoint, Collector] = {}
        self._bound: dict[User, tuple[Endpoint, float]] = {}
        self._users: dict[Endpoint, set[User]] = {}
        self._regions: dict[tuple[str, str], set[str]] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def use(
        self, user: User, endpoint: Endpoint, interval: float, changed: DemandChanged
    ) -> Collector:
        """The endpoint's collector, polling as often as its most eager user asks; `user`
        stops reading the endpoint it read before, if another."""
        bound = self._bound.get(user)
        if bound != (endpoint, interval):  # each tick asks; only a change costs more
            if bound is not None and bound[0] != endpoint:
                self.release(user)
            self._bound[user] = (endpoint, interval)
            self._users.setdefault(endpoint, set()).add(user)
            self._regions.setdefault(user[:2], set()).add(user[2])
        collector = self._by_endpoint.get(endpoint)
        if collector is None:
            collector = self._by_endpoint[endpoint] = Collector(endpoint, interval, changed)
            collector.start()
            COLLECTORS.set(len(self._by_endpoint))
        if bound != (endpoint, interval):
            collector.interval = min(self._bound[u][1] for u in self._users[endpoint])
        return collector

    def release(self, user: User) -> None:
        """`user` reads no endpoint any more; a collector nobody reads is stopped."""
        bound = self._bound.pop(user, None)
        regions = self._regions.get(user[:2], set())
        regions.discard(user[2])
        if not regions:
            self._regions.pop(user[:2], None)
        if bound is None:
            return
        endpoint, _ = bound
        users = self._users.get(endpoint, set())
        users.discard(user)
        if users:
            collector = self._by_endpoint[endpoint]
            collector.interval = min(self._bound[u][1] for u in users)
            return
        self._users.pop(endpoint, None)
        collector = self._by_endpoint.pop(endpoint)
        COLLECTORS.set(len(self._by_endpoint))
        task = asyncio.get_running_loop().create_task(collector.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def release_agent(self, agent: tuple[str, str], keep: Iterable[str] = ()) -> None:
        """The VoiceAgent's regions other than `keep` read no endpoint any more."""
        for region in self._regions.get(agent, set()) - set(keep):
            self.release((*agent, region))

    def all(self) -> list[Collector]:
        return list(self._by_endpoint.values())

    def reading(self, user: User) -> Collector | None:
        """The collector `user` reads, if any."""
        bound = self._bound.get(user)
        return self._by_endpoint.get(bound[0]) if bound is not None else None

    async def stop(self) -> None:
        collectors = [*self._by_endpoint.values()]
        self._by_endpoint.clear()
        self._bound.clear()
        self._users.clear()
        self._regions.clear()
        COLLECTORS.set(0)
        await asyncio.gather(*(c.stop() for c in collectors), *self._stopping)


WEBHOOKS = MetricCounter(
    "voicefleet_operator_webhooks_received_total", "LiveKit webhooks accepted.", ["event"]
)


def receive_webhook(collectors: Collectors, body: str, authorization: str) -> str | None:
    """Verify a LiveKit webhook against the known endpoints' keys and make that endpoint's
    collector poll now. The event name, or None when no endpoint's key signed it."""
    for collector in collectors.all():
        try:
            event = api.WebhookReceiver(collector.verifier()).receive(body, authorization)
        except Exception:  # noqa: BLE001 - signed by another endpoint's key, or forged
            continue
        WEBHOOKS.labels(event.event or "unknown").inc()
        collector.observe(event)
        return event.event or "unknown"
    return None
