"""Rooms with several callers: one session listens to whoever has the floor.

The framework's RoomIO feeds the session the microphone of one linked participant and
publishes that participant's transcripts under their identity. `Floor` decides when another
caller takes the floor (pure, unit-tested with frames); `FloorSwitch` wires it to the room: it
gates the level of every other caller's microphone, relinks RoomIO when one of them talks
while the linked caller's turn is over, and relinks before the framework sees a linked caller
leave, so the session (and its conversation time) ends only with the last caller.

A room with one caller costs nothing extra: the other microphones are only read while there
are other callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, UserInputTranscribedEvent, UserStateChangedEvent, llm
from livekit.agents.job import DEFAULT_PARTICIPANT_KINDS
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF
from livekit.agents.voice.events import ConversationItemAddedEvent

from voicefleet_agent.providers._speech import SAMPLE_RATE, EnergyGate

logger = logging.getLogger("voicefleet.agent")

# The agent's attribute naming the caller it listens to, for pages that show who has the floor.
LISTENING_ATTRIBUTE = "voicefleet.listening_to"
# Speech a waiting caller needs before taking the floor: a cough or a click does not.
ONSET_SECONDS = 0.15
# Silence that ends a waiting caller's bid for the floor.
BID_SILENCE_SECONDS = 0.3
# A recognizer's final transcript can come this long after the voice stopped.
TRANSCRIPT_SECONDS = 2.0
MONITOR_FRAME_MS = 20


class Floor:
    """Who the session listens to, and when another caller may take over.

    The linked caller's turn holds the floor while they speak, for `grace` seconds after they
    stop (the earliest the framework may end a turn), and for up to `settle` seconds while
    something they said is transcribed but not yet committed to the conversation. Meanwhile
    other callers are not switched to, however loud; a caller who is still talking once the
    turn is over takes the floor then."""

    def __init__(self, *, grace: float, settle: float, onset: float = ONSET_SECONDS) -> None:
        self.linked: str | None = None
        self._grace = grace
        self._settle = max(settle, grace)
        self._onset = onset
        self._speaking = False
        self._pending = False
        self._quiet_since = float("-inf")
        self._gates: dict[str, EnergyGate] = {}
        self._last_voice: dict[str, float] = {}

    def link(self, identity: str | None) -> None:
        """The session now hears `identity`: a new turn state, and no bid of theirs pending."""
        self.linked = identity
        self._speaking = self._pending = False
        self._quiet_since = float("-inf")
        if identity is not None:
            self.forget(identity)

    def user_speaking(self, speaking: bool, now: float) -> None:
        if speaking:
            self._speaking = True
        elif self._speaking:
            self._speaking, self._quiet_since = False, now

    def heard_text(self) -> None:
        self._pending = True

    def turn_committed(self) -> None:
        self._pending = False

    def busy(self, now: float) -> bool:
        """Whether the linked caller's turn is still going."""
        quiet = now - self._quiet_since
        return self._speaking or quiet < self._grace or (self._pending and quiet < self._settle)

    def hear(self, identity: str, frame: rtc.AudioFrame, now: float) -> str | None:
        """One microphone frame of a caller who is not linked; the caller to link now, if any."""
        if identity == self.linked:
            return None
        gate = self._gates.get(identity)
        if gate is None:
            gate = self._gates[identity] = EnergyGate(min_silence=BID_SILENCE_SECONDS)
        gate.push(frame)
        if not gate.speaking:
            return None
        self._last_voice[identity] = now
        if gate.speech_seconds >= self._onset and not self.busy(now):
            return identity
        return None

    def forget(self, identity: str) -> None:
        self._gates.pop(identity, None)
        self._last_voice.pop(identity, None)

    def successor(self, callers: Iterable[str]) -> str | None:
        """Who to link when the linked caller left: the last to talk, else the first caller."""
        remaining = list(callers)
        heard = [c for c in remaining if c in self._last_voice]
        if heard:
            return max(heard, key=lambda c: self._last_voice[c])
        return remaining[0] if remaining else None


def is_caller(participant: rtc.RemoteParticipant, agent_identity: str) -> bool:
    """A participant the session may listen to, as the framework's RoomIO accepts them."""
    return (
        participant.kind in DEFAULT_PARTICIPANT_KINDS
        and participant.attributes.get(ATTRIBUTE_PUBLISH_ON_BEHALF) != agent_identity
    )


class FloorSwitch:
    """Keeps one session's RoomIO linked to the caller who has the floor.

    `attach` before `AgentSession.start`: its handler of a caller leaving must run before
    RoomIO's, which closes the session when its linked participant leaves."""

    def __init__(self, room: rtc.Room, session: AgentSession[Any], floor: Floor) -> None:
        self._room = room
        self._session = session
        self._floor = floor
        self._monitors: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def attach(self) -> None:
        self._room.on("participant_disconnected", self._on_left)
        self._room.on("participant_connected", lambda *_: self._refresh())
        self._room.on("track_subscribed", lambda *_: self._refresh())
        self._room.on("track_unsubscribed", lambda *_: self._refresh())
        self._session.on("user_state_changed", self._on_user_state)
        self._session.on("user_input_transcribed", self._on_transcribed)
        self._session.on("conversation_item_added", self._on_item)
        self._session.on("close", lambda _: self._close())

    def start(self) -> None:
        """After `AgentSession.start`: follow RoomIO's first link once it has made it (callers
        already in the room when the agent joined announce nothing more)."""
        self._spawn(self._follow_first_link())

    async def _follow_first_link(self) -> None:
        await self._session.room_io.wait_for_ready()
        self._refresh()

    def _room_io_linked(self) -> str | None:
        """The identity RoomIO listens to, or None before it has linked anyone."""
        try:
            linked = self._session.room_io.linked_participant
        except RuntimeError:  # the session has not started with the room yet
            return None
        return linked.identity if linked is not None else None

    def _callers(self) -> list[rtc.RemoteParticipant]:
        agent = self._room.local_participant.identity
        return [p for p in self._room.remote_participants.values() if is_caller(p, agent)]

    def _refresh(self) -> None:
        """Follow RoomIO's own first link, and read exactly the microphones of waiting callers."""
        if self._closed:
            return
        linked = self._room_io_linked()
        if linked is not None and linked != self._floor.linked:
            self._linked(linked)
        wanted: dict[str, rtc.RemoteTrack] = {}
        if linked is not None:
            for caller in self._callers():
                track = microphone(caller)
                if caller.identity != linked and track is not None:
                    wanted[caller.identity] = track
        for identity, (sid, task) in list(self._monitors.items()):
            track = wanted.get(identity)
            if track is None or track.sid != sid:
                task.cancel()
                del self._monitors[identity]
                self._floor.forget(identity)
        for identity, track in wanted.items():
            if identity not in self._monitors:
                task = asyncio.get_running_loop().create_task(self._monitor(identity, track))
                self._monitors[identity] = (track.sid, task)

    async def _monitor(self, identity: str, track: rtc.RemoteTrack) -> None:
        stream = rtc.AudioStream.from_track(
            track=track, sample_rate=SAMPLE_RATE, num_channels=1, frame_size_ms=MONITOR_FRAME_MS
        )
        try:
            async for event in stream:
                speaker = self._floor.hear(identity, event.frame, time.monotonic())
                if speaker is not None:
                    self._switch(speaker, reason="took the floor")
                    break
        finally:
            await stream.aclose()

    def _switch(self, identity: str, *, reason: str) -> None:
        try:
            room_io = self._session.room_io
        except RuntimeError:
            return
        room_io.set_participant(identity)
        logger.info("listening to another caller", extra={"reason": reason})
        self._linked(identity)
        # Not from inside the monitor that asked for it: it is about to end on its own.
        asyncio.get_running_loop().call_soon(self._refresh)

    def _linked(self, identity: str) -> None:
        self._floor.link(identity)
        monitor = self._monitors.pop(identity, None)
        # The monitor that asked for the switch ends by itself, closing its stream.
        if monitor is not None and monitor[1] is not asyncio.current_task():
            monitor[1].cancel()
        if self._room.isconnected():
            self._spawn(
                self._room.local_participant.set_attributes({LISTENING_ATTRIBUTE: identity})
            )

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        self._floor.forget(participant.identity)
        if participant.identity == self._room_io_linked():
            callers = [p.identity for p in self._callers()]
            if (successor := self._floor.successor(callers)) is not None:
                self._switch(successor, reason="the caller listened to left")
                return
        self._refresh()

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        self._floor.user_speaking(ev.new_state == "speaking", time.monotonic())

    def _on_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        if ev.transcript.strip():
            self._floor.heard_text()

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "user":
            self._floor.turn_committed()

    def _close(self) -> None:
        self._closed = True
        for _, task in self._monitors.values():
            task.cancel()
        self._monitors.clear()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(_quietly(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _quietly(work: Coroutine[Any, Any, Any]) -> None:
    """Side work that fails because the room is closing is not worth an error."""
    with contextlib.suppress(Exception):
        await work


def microphone(participant: rtc.RemoteParticipant) -> rtc.RemoteTrack | None:
    """The participant's subscribed microphone track, if any."""
    for publication in participant.track_publications.values():
        if publication.source == rtc.TrackSource.SOURCE_MICROPHONE and publication.track:
            return publication.track
    return None
