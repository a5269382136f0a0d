"""An agent lost mid-call is sent back into its room.

Self-hosted LiveKit does not dispatch a job again when the worker running it dies (OOM, node
loss, SIGKILL): the caller is left alone with a room that no agent will join. LiveKit tells
the operator through its webhook when the agent participant is finally dropped, and why; a
participant that did not leave on its own (its connection timed out, its signal or media
failed) while a caller is still in the room gets its agent dispatched again, once no other
agent is there. The dispatch carries `RESUMED` metadata so the new agent greets the caller
back instead of starting as for a new call.
"""

from __future__ import annotations

import logging
from collections.abc import Set as AbstractSet

from livekit import api
from livekit.protocol.models import DisconnectReason, ParticipantInfo
from prometheus_client import Counter

from voicefleet_models.room import resume_metadata

log = logging.getLogger(__name__)

# An agent that leaves by itself (its session ended), is removed, or whose room closes says
# so; these are the ways a participant goes without choosing to. An agent the operator removed
# because its worker died (worker_loss.py) leaves as PARTICIPANT_REMOVED: already restored.
LOST = {
    DisconnectReason.CONNECTION_TIMEOUT,
    DisconnectReason.SIGNAL_CLOSE,
    DisconnectReason.MEDIA_FAILURE,
    DisconnectReason.STATE_MISMATCH,
}
CALLERS = {ParticipantInfo.Kind.STANDARD, ParticipantInfo.Kind.SIP}
# A room whose agents keep getting lost (a call that crashes every worker it reaches) is
# given up after this many dispatches rather than taking down the fleet one worker at a time.
MAX_PER_ROOM = 3

REDISPATCHES = Counter(
    "voicefleet_operator_redispatches_total",
    "Agents dispatched again into a room whose agent was lost mid-call, by why it was lost "
    "and what was done (dispatched, or skipped: agent_present, no_caller, no_dispatch, "
    "given_up, failed); reason worker_lost: its worker's container died in its pod.",
    ["reason", "outcome"],
)


def lost_agent(event: api.WebhookEvent) -> str | None:
    """Why the agent that left in `event` was lost (a lowercase DisconnectReason name), or
    None when the event is not an agent leaving without choosing to."""
    participant = event.participant
    if event.event != "participant_left" or participant.kind != ParticipantInfo.Kind.AGENT:
        return None
    if participant.disconnect_reason not in LOST:
        return None
    return str(DisconnectReason.Name(participant.disconnect_reason)).lower()


class Redispatcher:
    """Sends agents back into rooms, counting how often each room needed it."""

    def __init__(self) -> None:
        self._dispatched: dict[str, int] = {}

    def forget(self, room: str) -> None:
        self._dispatched.pop(room, None)

    async def restore(
        self, lk: api.LiveKitAPI, room: str, reason: str, removed: AbstractSet[str] = frozenset()
    ) -> str:
        """Dispatch the room's agents again if a caller waits there without one; what was
        done (the metric's outcome). `removed`: agents just removed from the room, not counted
        should the listing still show them."""
        outcome = await self._restore(lk, room, reason, removed)
        REDISPATCHES.labels(reason, outcome).inc()
        log.info("agent lost in room %s (%s): %s", room, reason, outcome)
        return outcome

    async def _restore(
        self, lk: api.LiveKitAPI, room: str, reason: str, removed: AbstractSet[str]
    ) -> str:
        if self._dispatched.get(room, 0) >= MAX_PER_ROOM:
            return "given_up"
        try:
            listing = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            kinds = [p.kind for p in listing.participants if p.identity not in removed]
            if ParticipantInfo.Kind.AGENT in kinds:
                return "agent_present"
            if not any(kind in CALLERS for kind in kinds):
                return "no_caller"
            # The agents the room was given (by the caller's token or the dispatch API); a
            # room without a named dispatch is listed with an empty name: nothing to restore.
            dispatches = await lk.agent_dispatch.list_dispatch(room)
            names = {d.agent_name for d in dispatches if d.agent_name}
            if not names:
                return "no_dispatch"
            for name in sorted(names):
                await lk.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(
                        agent_name=name, room=room, metadata=resume_metadata(reason)
                    )
                )
        except Exception:  # LiveKit unreadable or refusing: logged and counted as failed
            log.exception("could not dispatch the agent into room %s again", room)
            return "failed"
        self._dispatched[room] = self._dispatched.get(room, 0) + 1
        return "dispatched"
