"""A job process that dies mid-call is replaced at once by its own worker.

When a job process is killed (out of memory, a crash in native code), the worker lives on,
but livekit-server keeps the dead agent in the room until its connection times out (about
20 s) and never dispatches the job again. The worker sees the job vanish from its active jobs
at once: if the job's agent is still listed in the room and a caller is there, the stale
agent is removed and the agent dispatched into the room again, so a caller waits about a
second, not twenty. A job that ends normally has left the room before its process exits, so
it is never mistaken for a lost one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from livekit import api
from livekit.agents import AgentServer
from livekit.protocol.models import ParticipantInfo
from prometheus_client import Counter

from voicefleet_agent.metrics import COMMON, Labels
from voicefleet_models.room import resume_metadata

logger = logging.getLogger("voicefleet.recovery")
POLL_SECONDS = 0.25
CALLERS = {ParticipantInfo.Kind.STANDARD, ParticipantInfo.Kind.SIP}

REDISPATCHES = Counter(
    "voicefleet_agent_redispatches_total",
    "Jobs whose process died mid-call, sent back to their room by their worker (dispatched), "
    "or not (no_caller: nobody waits; failed: LiveKit refused).",
    (*COMMON, "outcome"),
)


@dataclass(frozen=True)
class RunningJob:
    room: str
    identity: str  # the job's agent participant


class LostJobWatch:
    """Watches a worker's active jobs and restores the calls of those that die."""

    def __init__(self, server: AgentServer, env: Mapping[str, str], labels: Labels) -> None:
        self._server = server
        self._labels = labels
        self._url = env["LIVEKIT_URL"]
        self._key = env["LIVEKIT_API_KEY"]
        self._secret = env["LIVEKIT_API_SECRET"]
        self._agent_name = ""
        self._checks: set[asyncio.Task[None]] = set()

    async def run(self, agent_name: str) -> None:
        self._agent_name = agent_name
        known: dict[str, RunningJob] = {}
        async with api.LiveKitAPI(self._url, self._key, self._secret) as lk:
            while True:
                current = self._running(known)
                for job_id in known.keys() - current.keys():
                    task = asyncio.create_task(self._check(lk, known[job_id]))
                    self._checks.add(task)
                    task.add_done_callback(self._checks.discard)
                known = current
                await asyncio.sleep(POLL_SECONDS)

    def _running(self, known: dict[str, RunningJob]) -> dict[str, RunningJob]:
        """The worker's jobs now; a new job's agent identity is read from its token once."""
        jobs = {}
        for info in self._server.active_jobs:
            if info.fake_job:
                continue
            job = known.get(info.job.id)
            if job is None:
                verifier = api.TokenVerifier(self._key, self._secret)
                claims = verifier.verify(info.token, verify_signature=False)
                job = RunningJob(info.job.room.name, claims.identity)
            jobs[info.job.id] = job
        return jobs

    async def _check(self, lk: api.LiveKitAPI, job: RunningJob) -> None:
        try:
            listing = await lk.room.list_participants(api.ListParticipantsRequest(room=job.room))
        except api.TwirpError:
            return  # the room is gone: the call ended
        present = {p.identity: p.kind for p in listing.participants}
        if job.identity not in present:
            return  # the agent left the room itself: the job ended normally
        outcome = "no_caller"
        if any(kind in CALLERS for kind in present.values()):
            outcome = await self._restore(lk, job)
        REDISPATCHES.labels(**self._labels.common(), outcome=outcome).inc()
        logger.warning("job process died mid-call", extra={"room": job.room, "outcome": outcome})

    async def _restore(self, lk: api.LiveKitAPI, job: RunningJob) -> str:
        try:
            # The dead agent goes first: a room with an agent listed gets no other.
            await lk.room.remove_participant(
                api.RoomParticipantIdentity(room=job.room, identity=job.identity)
            )
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=self._agent_name,
                    room=job.room,
                    metadata=resume_metadata("job_process_died"),
                )
            )
        except api.TwirpError:
            logger.exception("could not dispatch the agent into room %s again", job.room)
            return "failed"
        return "dispatched"
