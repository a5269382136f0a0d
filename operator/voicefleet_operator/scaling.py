"""One region's turn in a tick of the autoscaling loop: read its demand and its workers' load,
let the policy decide, write the replicas and the workers' deletion costs, and say what
happened (status entry, Events, gauges)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voicefleet_models.voice_agent import RegionSpec, VoiceAgentSpec
from voicefleet_operator import conditions as cond
from voicefleet_operator.kube import Kube, NotFound
from voicefleet_operator.livekit_load import DemandChanged
from voicefleet_operator.metrics import DECISIONS
from voicefleet_operator.policy import Decision, Stabilizer
from voicefleet_operator.render import Owner, fleet_name, region_objects
from voicefleet_operator.state import FleetState, RegionKey
from voicefleet_operator.status import (
    RegionOutcome,
    current_replicas,
    floor_fields,
    region_entry,
    stored_floor,
)
from voicefleet_operator.worker_load import WorkerPod, needs_marks, read_sessions

SPEC_REPLICAS = "specReplicas"  # the replicas a Deployment asks for, in the index
DRIFT_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Region:
    """One region of one VoiceAgent, as a tick sees it."""

    body: dict[str, Any]
    owner: Owner
    spec: VoiceAgentSpec
    region: RegionSpec
    agent_name: str  # the LiveKit dispatch name demand is counted by

    @property
    def key(self) -> RegionKey:
        return (self.owner.namespace, self.owner.name, self.region.name)

    @property
    def labels(self) -> tuple[str, str, str]:
        """Metrics name the agent as workers do: by its LiveKit dispatch name."""
        return (self.owner.namespace, self.agent_name, self.region.name)


async def scale_region(
    state: FleetState, target: Region, changed: DemandChanged, live: Callable[[], bool]
) -> RegionOutcome:
    """Size the region's fleet; `live` says whether its VoiceAgent still exists once done."""
    key, region, spec = target.key, target.region, target.spec
    observed = _observed(state, key)
    current = state.applied.get(key) or inherited_replicas(target, observed)
    demand, why, pending = await read_demand(state, target, changed)
    stored = region_entry(target.body.get("status"), region.name)
    # A region this process has no history of yet inherits the window its predecessor left.
    stabilizer = state.stabilizers.get(key) or Stabilizer(inherited=stored_floor(stored))
    now = time.time()
    decision = stabilizer.decide(now, current, demand, spec.scaling, region)
    # What the Deployment asks for now: a `kubectl scale` or a stale write may have moved it.
    actual = observed.get(SPEC_REPLICAS)
    settled = time.monotonic() - state.written_at.get(key, 0.0) > DRIFT_GRACE_SECONDS
    actual = current if actual is None or not settled else int(actual)
    pods = list(state.indexes.pods.get(key, []))
    port = spec.observability.metrics_port
    scaling_down = decision.replicas < max(current, actual)
    if scaling_down:  # idle workers first, and none whose load is unknown
        decision = await mark_load(state.kube, decision, max(current, actual), pods, port,
                                   holds=True)  # fmt: skip
    ready = observed.get("readyReplicas", 0)
    outcome = RegionOutcome(
        entry={
            "name": region.name,
            "replicas": observed.get("replicas", 0),
            "readyReplicas": ready,
            "desiredReplicas": decision.replicas,
            "activeSessions": demand or 0,
            "capacity": ready * spec.scaling.sessions_per_worker,
        },
        unreachable=None if demand is not None else f"{region.name}: {why}",
        holding=decision.reason if decision.holding else None,
        pending=pending,
    )
    floor = stabilizer.floor(now, spec.scaling, region.min_replicas)
    slack = spec.scaling.scale_down_stabilization_seconds / 2
    outcome.entry.update(floor_fields(stored, floor, slack))
    await _act(state, target, decision, current, actual, outcome)
    if not scaling_down and (demand or any(pod.marked_busy() for pod in pods)):
        # Busy marks follow the load; read after a scale-up is written, which a slow
        # worker must not delay.
        await mark_load(state.kube, decision, current, pods, port, holds=False)
    if live():  # one deleted while this tick awaited is forgotten already
        state.stabilizers[key] = stabilizer
        state.applied[key] = decision.replicas
        state.series.set(key, target.labels, outcome.entry, demand, region.livekit.url,
                         region.max_replicas)  # fmt: skip
    return outcome


def inherited_replicas(target: Region, observed: dict[str, Any]) -> int:
    """The replicas a process that has decided nothing for the region yet starts from: what
    the Deployment asks for, which a predecessor may have written without living to record it
    in status (a leader killed in between); else status; else the region's minimum."""
    asked = observed.get(SPEC_REPLICAS)
    if asked is not None:
        return int(asked)
    region = target.region
    return current_replicas(target.body.get("status"), region.name, region.min_replicas)


async def _act(
    state: FleetState,
    target: Region,
    decision: Decision,
    current: int,
    actual: int,
    outcome: RegionOutcome,
) -> None:
    """Write the decision where it differs from what the Deployment asks for, and say so."""
    events, body, name = state.events, target.body, target.region.name
    if actual != current:  # drifted: put the decision back, unless holding at what is there
        if decision.replicas != actual:
            await write_replicas(state, target, decision.replicas)
            await events.post(body, "Normal", "ReplicasRestored",
                              f"region {name}: the Deployment asked for {actual} "
                              f"workers, set back to {decision.replicas}", "Scale")  # fmt: skip
    elif decision.changed_from(current):
        await write_replicas(state, target, decision.replicas)
        direction = "up" if decision.replicas > current else "down"
        DECISIONS.labels(*target.labels, direction).inc()
        await events.post(body, "Normal", f"Scaled{direction.title()}",
                          f"region {name}: {decision.reason}", "Scale")  # fmt: skip
        outcome.entry.update(lastScaleTime=cond.now_rfc3339(), lastScaleReason=decision.reason)
        outcome.scaled = True


async def write_replicas(state: FleetState, target: Region, replicas: int) -> None:
    """Set the Deployment's replicas, and nothing else of the region: its other objects
    follow the spec, and the reconcile applies those."""
    state.written_at[target.key] = time.monotonic()
    name = fleet_name(target.owner, target.region.name)
    try:
        await state.kube.scale("Deployment", target.owner.namespace, name, replicas)
    except NotFound:  # deleted by hand: the region is put back whole, as the spec says
        for manifest in region_objects(target.owner, target.spec, target.region, replicas):
            await state.kube.apply(manifest)


async def read_demand(
    state: FleetState, target: Region, changed: DemandChanged
) -> tuple[int | None, str, bool]:
    """The agent's sessions at the region's endpoint (None: unknown, and why), and whether
    the endpoint is yet to answer its first poll."""
    try:
        endpoint = await state.credentials.endpoint(target.owner.namespace, target.region)
    except Exception as error:  # noqa: BLE001 - reported in the condition; the fleet holds
        state.collectors.release(target.key)  # its credentials are unknown: it reads nothing
        secret = target.region.livekit.credentials_secret
        why = f"cannot read Secret {secret} (keys api-key, api-secret): {secret_problem(error)}"
        return None, why, False
    interval = target.spec.scaling.poll_interval_seconds
    snapshot = state.collectors.use(target.key, endpoint, interval, changed).snapshot
    demand = snapshot.demand(target.agent_name, max_age=3 * interval + 5, now=time.time())
    return demand, snapshot.error or "LiveKit data is stale", snapshot.pending


def secret_problem(error: Exception) -> str:
    """Why a Secret could not be used, in the operator's words: the missing key, or the HTTP
    status, never what the server answered."""
    if isinstance(error, KeyError):
        return f"no key {error.args[0]}"
    status = getattr(error, "status", None)
    return f"HTTP {status}" if isinstance(status, int) else type(error).__name__


async def mark_load(
    kube: Kube, decision: Decision, current: int, pods: list[WorkerPod], port: int, *, holds: bool
) -> Decision:
    """Annotate each worker with its sessions (see load_marks): its deletion cost, so the
    ReplicaSet removes idle workers first, and do-not-disrupt marks while it has calls. Read
    while the region has calls or busy marks to clear, and before every scale-down. A worker
    whose load can't be read holds a scale-down: removing it might cut a call."""
    loads = await read_sessions(pods, port)
    patches = [
        (pod, needs_marks(pod, load)) for pod in pods if (load := loads[pod.name]) is not None
    ]
    await asyncio.gather(
        *(kube.annotate("Pod", pod.namespace, pod.name, patch) for pod, patch in patches if patch)
    )
    unknown = sorted(name for name, load in loads.items() if load is None)
    if holds and unknown:
        reason = f"cannot read the load of worker {', '.join(unknown)}: holding replicas"
        return Decision(current, reason, holding=True)
    return decision


def _observed(state: FleetState, key: RegionKey) -> dict[str, Any]:
    for observed in state.indexes.deployments.get(key, []):
        return observed
    return {}
