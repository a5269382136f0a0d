"""Demand as LiveKit sees it: one collector per LiveKit endpoint, shared by every VoiceAgent.

A room counts as one session of agent X when it has an agent dispatch for X (from the caller's
token RoomConfiguration or the dispatch API) and at least one participant. Each poll costs one
ListRooms call per endpoint plus one ListDispatch call per room not seen before, so LiveKit
calls grow with regions and new rooms, never with the number of VoiceAgents. A LiveKit webhook
makes the matching collector poll at once, so changes are seen well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from livekit import api
from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge, Histogram

log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=5)

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
REACHABLE = Gauge(
    "voicefleet_operator_livekit_reachable",
    "1 when the last LiveKit poll succeeded.",
    ["endpoint"],
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

    def demand(self, agent_name: str, max_age: float, now: float) -> int | None:
        """Sessions of the agent, or None when the data is missing or stale."""
        if self.error is not None or now - self.polled_at > max_age:
            return None
        return self.sessions[agent_name]


class Collector:
    """Polls one LiveKit endpoint until stopped; `poke()` polls at once."""

    def __init__(self, endpoint: Endpoint, interval: float) -> None:
        self.endpoint = endpoint
        self.interval = interval
        self.snapshot = Snapshot(error="not polled yet")
        self.polls = 0
        self._dispatches: dict[str, frozenset[str]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"livekit-poll {self.endpoint.url}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def poke(self) -> None:
        self._wake.set()

    def verifier(self) -> api.TokenVerifier:
        return api.TokenVerifier(self.endpoint.api_key, self.endpoint.api_secret)

    async def _run(self) -> None:
        async with api.LiveKitAPI(
            self.endpoint.http_url, self.endpoint.api_key, self.endpoint.api_secret, timeout=TIMEOUT
        ) as lk:
            while True:
                await self.poll(lk)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval)

    async def poll(self, lk: api.LiveKitAPI) -> None:
        started = time.monotonic()
        self.polls += 1
        try:
            sessions = await self._sessions(lk)
        except Exception as error:
            reason = _reason(error)
            POLL_ERRORS.labels(self.endpoint.url, reason).inc()
            REACHABLE.labels(self.endpoint.url).set(0)
            self.snapshot = Snapshot(error=f"{reason}: {error}"[:300], polled_at=time.time())
            return
        POLL_SECONDS.labels(self.endpoint.url).observe(time.monotonic() - started)
        REACHABLE.labels(self.endpoint.url).set(1)
        self.snapshot = Snapshot(sessions=sessions, polled_at=time.time())

    async def _sessions(self, lk: api.LiveKitAPI) -> Counter[str]:
        rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
        live = {room.name for room in rooms if room.num_participants > 0}
        for name in live - self._dispatches.keys():
            dispatches = await lk.agent_dispatch.list_dispatch(name)
            self._dispatches[name] = frozenset(d.agent_name for d in dispatches)
        for gone in self._dispatches.keys() - live:
            del self._dispatches[gone]
        return Counter(agent for room in live for agent in self._dispatches[room])


def _reason(error: Exception) -> str:
    status = getattr(error, "status", None)
    if status in (401, 403):
        return "Unauthorized"
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "Timeout"
    return "Unreachable"


class Collectors:
    """The shared collectors, keyed by endpoint; created on first use."""

    def __init__(self) -> None:
        self._by_endpoint: dict[Endpoint, Collector] = {}

    def get(self, endpoint: Endpoint, interval: float) -> Collector:
        collector = self._by_endpoint.get(endpoint)
        if collector is None:
            collector = Collector(endpoint, interval)
            collector.start()
            self._by_endpoint[endpoint] = collector
        collector.interval = min(collector.interval, interval)
        return collector

    def all(self) -> list[Collector]:
        return list(self._by_endpoint.values())

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self._by_endpoint.values()))
        self._by_endpoint.clear()
