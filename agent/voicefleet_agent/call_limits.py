"""Limits that end a call: its longest duration, and silence on both sides.

Every call costs provider usage and holds a worker session, so a caller who stays connected
(or a script that never hangs up) cannot keep either forever. When a limit is reached the agent
says its goodbye, then the room is deleted, which disconnects the caller; the session's outcome
names the limit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from livekit.agents import AgentSession, JobContext, UserStateChangedEvent

from voicefleet_models.agent_config import CallSpec

logger = logging.getLogger("voicefleet.agent")

LimitReached = Literal["max_duration", "silence_timeout"]
# A goodbye that cannot be spoken (the TTS chain failing) must not keep the call open.
GOODBYE_TIMEOUT_SECONDS = 15.0


class CallLimits:
    """Watches one session. The silence limit is the session's own user-away timer
    (`user_away_timeout`): the user turns "away" once both sides were silent that long."""

    def __init__(self, ctx: JobContext, session: AgentSession[Any], limits: CallSpec) -> None:
        self._ctx = ctx
        self._session = session
        self._limits = limits
        self._timer: asyncio.TimerHandle | None = None
        self._ending: asyncio.Task[None] | None = None
        self.reached: LimitReached | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._limits.max_duration_seconds, self.end, "max_duration")
        self._session.on("user_state_changed", self._on_user_state)
        self._session.on("close", self._stop)

    def _stop(self, _: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "away":
            self.end("silence_timeout")

    def end(self, limit: LimitReached) -> None:
        if self._ending is None:
            self.reached = limit
            self._ending = asyncio.get_running_loop().create_task(self._goodbye())

    async def _goodbye(self) -> None:
        logger.info("ending the call", extra={"limit": self.reached, "room": self._ctx.room.name})
        try:
            speech = self._session.say(self._limits.goodbye, allow_interruptions=False)
            await asyncio.wait_for(speech.wait_for_playout(), GOODBYE_TIMEOUT_SECONDS)
        except (RuntimeError, TimeoutError) as error:  # closing already, or the TTS is stuck
            logger.warning("goodbye not spoken", extra={"error": str(error)})
        # The session closes first, so its end is recorded with the limit as its outcome
        # before the room goes and the job with it.
        await self._session.aclose()
        await self._ctx.delete_room()
