"""Sessions each worker pod is serving, read from its own /metrics endpoint."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ACTIVE_SESSIONS = "voicefleet_agent_active_sessions"
TIMEOUT = aiohttp.ClientTimeout(total=2)
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


@dataclass(frozen=True)
class WorkerPod:
    namespace: str
    name: str
    ip: str
    deletion_cost: str | None


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
