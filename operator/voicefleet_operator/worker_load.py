"""Sessions each worker pod is serving, read from its own /metrics endpoint."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from voicefleet_models.voice_agent import DELETION_COST, DO_NOT_DISRUPT, SAFE_TO_EVICT

ACTIVE_SESSIONS = "voicefleet_agent_active_sessions"
TIMEOUT = aiohttp.ClientTimeout(total=2)


@dataclass(frozen=True)
class WorkerPod:
    namespace: str
    name: str
    ip: str
    marks: dict[str, str]  # the annotations load_marks sets, as the pod has them now

    def marked_busy(self) -> bool:
        return self.marks.get(SAFE_TO_EVICT) == "false"


def load_marks(sessions: int) -> dict[str, str | None]:
    """A worker's annotations for its load: its sessions as its deletion cost, so the
    ReplicaSet removes idle workers first, and while it has calls, do-not-disrupt marks for
    node autoscalers (None removes a mark once the worker is idle again)."""
    busy = sessions > 0
    return {
        DELETION_COST: str(sessions),
        SAFE_TO_EVICT: "false" if busy else None,
        DO_NOT_DISRUPT: "true" if busy else None,
    }


def marks_of(annotations: dict[str, str]) -> dict[str, str]:
    return {key: annotations[key] for key in load_marks(0) if key in annotations}


def needs_marks(pod: WorkerPod, sessions: int) -> dict[str, str | None] | None:
    """The annotation patch that brings `pod` in line with its load, or None if it is."""
    wanted = load_marks(sessions)
    current = {key: pod.marks.get(key) for key in wanted}
    return wanted if current != wanted else None


def sessions_in(exposition: str) -> int | None:
    """The active-sessions gauge of a worker's metrics page, or None if it is absent."""
    for family in text_string_to_metric_families(exposition):
        if family.name == ACTIVE_SESSIONS:
            return int(sum(sample.value for sample in family.samples))
    return None


async def read_sessions(pods: list[WorkerPod], port: int) -> dict[str, int | None]:
    """Active sessions per pod name; None where the worker could not be read."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        loads = await asyncio.gather(*(_read_one(session, pod, port) for pod in pods))
    return {pod.name: load for pod, load in zip(pods, loads, strict=True)}


async def _read_one(session: aiohttp.ClientSession, pod: WorkerPod, port: int) -> int | None:
    if not pod.ip:
        return None
    try:
        async with session.get(f"http://{pod.ip}:{port}/metrics") as response:
            if response.status != 200:
                return None
            return sessions_in(await response.text())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
