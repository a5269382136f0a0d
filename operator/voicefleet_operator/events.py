"""Events about VoiceAgents, as events.k8s.io/v1 objects that count their repeats.

An Event is named by what it says (the VoiceAgent, type, reason and message), so the same
decision repeated, by this process or by a leader before it, is one object whose
`series.count` grows instead of a new object per occurrence. Every Event names its reporting
controller and the operator replica that wrote it.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from voicefleet_models.voice_agent import GROUP, KIND, VERSION
from voicefleet_operator.kube import Conflict, Kube, NotFound

REPORTING_CONTROLLER = "voicefleet.io/operator"
# The API server drops Events an hour after their last write (kube-apiserver --event-ttl);
# a count older than that may belong to an object that is gone, and is asked for again.
REMEMBER_SECONDS = 3600.0
REMEMBERED = 4096


def events_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    return f"{base}/{name}" if name else base


def event_name(meta: dict[str, Any], type_: str, reason: str, message: str) -> str:
    """The Event's name: the same for the same VoiceAgent, type, reason and message."""
    said = "\0".join((str(meta["uid"]), type_, reason, message)).encode()
    return f"{str(meta['name'])[:200]}.{hashlib.sha256(said).hexdigest()[:16]}"


def micro_time(seconds: float) -> str:
    """RFC 3339 with microseconds, the MicroTime the Event API asks for."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_event(
    body: dict[str, Any], type_: str, reason: str, message: str, action: str, instance: str
) -> dict[str, Any]:
    """The first occurrence: no series yet (the API refuses a series on create)."""
    meta = body["metadata"]
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": event_name(meta, type_, reason, message),
            "namespace": meta["namespace"],
        },
        "eventTime": micro_time(time.time()),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": action,
        "reason": reason,
        "type": type_,
        "note": message[:1024],
        "regarding": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
    }


def repeated(count: int) -> dict[str, Any]:
    """The change that records occurrence number `count`."""
    return {"series": {"count": count, "lastObservedTime": micro_time(time.time())}}


class EventRecorder:
    """Posts Events, counting repeats: each Event's count is remembered for an hour, and an
    Event found to exist already (written by an earlier process) continues from its count."""

    def __init__(self, kube: Kube, instance: str) -> None:
        self.kube = kube
        self.instance = instance
        self._counts: dict[str, tuple[int, float]] = {}  # name → (count, monotonic time)

    async def post(
        self, body: dict[str, Any], type_: str, reason: str, message: str, action: str
    ) -> None:
        event = new_event(body, type_, reason, message, action, self.instance)
        namespace, name = event["metadata"]["namespace"], event["metadata"]["name"]
        count = self._remembered(name)
        if count is None:
            try:
                await self.kube.create(events_path(namespace), event)
                self._remember(name, 1)
                return
            except Conflict:
                count = await self._stored_count(namespace, name)
        try:
            await self.kube.merge_patch(events_path(namespace, name), repeated(count + 1))
        except NotFound:  # expired since: this occurrence starts a new Event
            self._counts.pop(name, None)
            await self.kube.create(events_path(namespace), event)
            count = 0
        self._remember(name, count + 1)

    async def _stored_count(self, namespace: str, name: str) -> int:
        stored = await self.kube.read(events_path(namespace, name))
        return int((stored.get("series") or {}).get("count", 1))

    def _remembered(self, name: str) -> int | None:
        count, at = self._counts.get(name, (0, 0.0))
        return count if count and time.monotonic() - at < REMEMBER_SECONDS else None

    def _remember(self, name: str, count: int) -> None:
        if len(self._counts) >= REMEMBERED and name not in self._counts:
            # The oldest half goes: an Event of theirs that recurs is read back once.
            by_age = sorted(self._counts, key=lambda n: self._counts[n][1])
            for stale in by_age[: REMEMBERED // 2]:
                del self._counts[stale]
        self._counts[name] = (count, time.monotonic())
