"""Demand as LiveKit sees it: one collector per LiveKit endpoint, shared by every VoiceAgent.

A room counts as one session of agent X when it has an agent dispatch for X (from the caller's
token RoomConfiguration or the dispatch API) and at least one participant. Each poll costs one
ListRooms call per endpoint, plus one ListDispatch call per room not seen before (rooms
without any dispatch are asked again) and one ListParticipants call per room younger than 15 s
that reports no participants yet; so LiveKit calls grow with regions and new rooms, never with
the number of VoiceAgents. A LiveKit webhook
makes the matching collector poll at once and is trusted for who joined and left, because
ListRooms' participant counts lag by a few seconds; so changes are seen well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from livekit import api
from prometheus_client import Counter as MetricCounter
from prometheus_client import Histogram

from voicefleet_operator.redispatch import Redispatcher, lost_agent

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

    def __init__(self, endpoint: Endpoint, interval: float, changed: DemandChanged) -> None:
        self.endpoint = endpoint
        self.interval = interval
        self.changed = changed
        self.snapshot = Snapshot(error="not polled yet", pending=True)
        self.polls = 0
        self._dispatches: dict[str, frozenset[str]] = {}
        # Participants seen in webhooks, per room: ListRooms counts lag by seconds.
        self._joined: dict[str, tuple[set[str], float]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lk: api.LiveKitAPI | None = None
        self._redispatcher = Redispatcher()
        self._restoring: set[asyncio.Task[str]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"livekit-poll {self.endpoint.url}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def poke(self) -> None:
        self._wake.set()

    def observe(self, event: api.WebhookEvent) -> None:
        """Track who is in which room from a webhook, then poll at once."""
        room = event.room.name
        identities, _ = self._joined.get(room, (set(), 0.0))
        if event.event == "participant_joined":
            identities.add(event.participant.identity)
        elif event.event == "participant_left":
            identities.discard(event.participant.identity)
        if event.event == "room_finished":
            self._joined.pop(room, None)
            self._redispatcher.forget(room)
        elif room:
            self._joined[room] = (identities, time.monotonic())
        reason = lost_agent(event)
        if reason is not None and self._lk is not None:
            task = asyncio.create_task(self._redispatcher.restore(self._lk, room, reason))
            self._restoring.add(task)
            task.add_done_callback(self._restoring.discard)
        self.poke()

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
        rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
        polled = {room.name: room.num_participants for room in rooms}
        # A room's participant count in ListRooms lags by seconds; for rooms created moments
        # ago that still report none, ask for their participants instead.
        now = time.time()
        for room in rooms:
            if room.num_participants == 0 and now - room.creation_time < YOUNG_ROOM_SECONDS:
                listing = await lk.room.list_participants(
                    api.ListParticipantsRequest(room=room.name)
                )
                polled[room.name] = len(listing.participants)
        live = {name for name, count in polled.items() if count > 0} | self._webhook_live(polled)
        # Dispatches of a room are fixed once found; a room without any is asked again.
        unknown = {name for name in live if not self._dispatches.get(name)}
        for name in unknown:
            dispatches = await lk.agent_dispatch.list_dispatch(name)
            self._dispatches[name] = frozenset(d.agent_name for d in dispatches)
        for gone in self._dispatches.keys() - live:
            del self._dispatches[gone]
        return Counter(agent for room in live for agent in self._dispatches[room])

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


class Collectors:
    """The shared collectors, keyed by endpoint; created on first use."""

    def __init__(self) -> None:
        self._by_endpoint: dict[Endpoint, Collector] = {}

    def get(self, endpoint: Endpoint, interval: float, changed: DemandChanged) -> Collector:
        collector = self._by_endpoint.get(endpoint)
        if collector is None:
            collector = Collector(endpoint, interval, changed)
            collector.start()
            self._by_endpoint[endpoint] = collector
        collector.interval = min(collector.interval, interval)
        return collector

    def all(self) -> list[Collector]:
        return list(self._by_endpoint.values())

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self._by_endpoint.values()))
        self._by_endpoint.clear()


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
