"""The autoscaling loop: one task that sizes VoiceAgent regions' fleets as their inputs change.

VoiceAgents, Deployments and worker pods come from kopf's watches (an event handler and two
indexes), demand from the shared LiveKit collectors, so a tick makes no API call unless
something changed: a new replica count, a status field or an Event. A collector that sees new
demand wakes the loop at once. Replicas change only through the policy; when LiveKit cannot be
read the fleet holds and a condition and a Warning Event say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import kopf
import pydantic
from prometheus_client import Counter, Gauge

from voicefleet_operator import conditions as cond
from voicefleet_operator.handlers import (
    RESOURCE,
    applied_generations,
    current_replicas,
    deployed_regions,
    kube,
    remembered_specs,
    retiring_configs,
)
from voicefleet_operator.livekit_load import Collectors, DemandChanged, Endpoint
from voicefleet_operator.policy import Decision, Stabilizer
from voicefleet_operator.render import Owner, config_in_use, region_objects
from voicefleet_operator.spec import RegionSpec, VoiceAgentSpec
from voicefleet_operator.worker_load import WorkerPod, marks_of, needs_marks, read_sessions

# Inputs wake the loop for the VoiceAgents they concern; a pass over all of them this often
# catches what time alone changes: stabilization windows ending, demand data going stale.
FULL_PASS_SECONDS = 5.0
TICK_CONCURRENCY = 8
log = logging.getLogger("voicefleet.autoscaler")
collectors = Collectors()
stabilizers: dict[tuple[str, str, str], Stabilizer] = {}

_LABELS = ["namespace", "agent", "region"]
DESIRED = Gauge("voicefleet_operator_desired_replicas", "Workers the autoscaler wants.", _LABELS)
REPLICAS = Gauge("voicefleet_operator_replicas", "Worker pods that exist.", _LABELS)
READY = Gauge("voicefleet_operator_ready_replicas", "Worker pods ready.", _LABELS)
MAX = Gauge("voicefleet_operator_max_replicas", "spec maxReplicas.", _LABELS)
DEMAND = Gauge("voicefleet_operator_demand_sessions", "Sessions LiveKit carries.", _LABELS)
CAPACITY = Gauge(
    "voicefleet_operator_capacity_sessions", "sessionsPerWorker × ready workers.", _LABELS
)
REACHABLE = Gauge(
    "voicefleet_operator_livekit_reachable",
    "1 when the region's LiveKit endpoint answered its last poll.",
    [*_LABELS, "endpoint"],
)
DECISIONS = Counter(
    "voicefleet_operator_scale_decisions_total", "Replica changes.", [*_LABELS, "direction"]
)


# The watch handlers below are coroutines, though they never await: kopf runs plain functions
# in a thread pool, a hand-off that costs more than the handler itself on every watch event,
# and asyncio's wake-up event is not safe to set from another thread.
@kopf.index("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": "voicefleet"})
async def fleet_deployments(
    *, namespace: str | None, labels: kopf.Labels, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Worker Deployments' status, and the replicas they ask for (SPEC_REPLICAS), by
    (namespace, VoiceAgent, region)."""
    key = _fleet_key(namespace, labels)
    deployed_regions.setdefault(key[:2], set()).add(key[2])
    autoscaler.changed(key[:2])  # e.g. a worker became ready, or someone scaled it by hand
    return {key: {**dict(status), SPEC_REPLICAS: spec.get("replicas")}}


SPEC_REPLICAS = "specReplicas"
DRIFT_GRACE_SECONDS = 5.0


def _fleet_key(namespace: str | None, labels: kopf.Labels) -> tuple[str, str, str]:
    agent, region = labels.get("voicefleet.io/agent", ""), labels.get("voicefleet.io/region", "")
    return namespace or "", agent, region


@kopf.index("", "v1", "pods", labels={"app.kubernetes.io/managed-by": "voicefleet"})
async def fleet_pods(
    *, namespace: str | None, labels: kopf.Labels, meta: kopf.Meta, status: kopf.Status, **_: Any
) -> dict[tuple[str, str, str], WorkerPod] | None:
    """Live worker pods by (namespace, VoiceAgent, region)."""
    if meta.get("deletionTimestamp") or status.get("phase") != "Running":
        return None
    key = _fleet_key(namespace, labels)
    marks = marks_of(dict(meta.get("annotations", {})))
    pod = WorkerPod(namespace or "", meta.get("name", ""), status.get("podIP", ""), marks)
    return {key: pod}


@kopf.index("", "v1", "pods", labels={"app.kubernetes.io/managed-by": "voicefleet"})
async def fleet_configs(
    *, namespace: str | None, labels: kopf.Labels, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str] | None:
    """The worker configurations pods mount, draining pods included, by (namespace,
    VoiceAgent): a retired configuration is deleted once no pod is left here with it."""
    config = config_in_use({"spec": dict(spec)})
    return {_fleet_key(namespace, labels)[:2]: config} if config else None


@kopf.on.cleanup()
async def stop_autoscaler(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("autoscaler")
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await collectors.stop()
    await kube.close()


CREDENTIALS_TTL_SECONDS = 30.0
_credentials: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}


async def endpoint_for(namespace: str, region: RegionSpec) -> Endpoint:
    """The region's LiveKit endpoint; its Secret is read at most every 30 s, not every tick."""
    key = (namespace, region.livekit.credentials_secret)
    fetched, secret = _credentials.get(key, (0.0, {}))
    if time.monotonic() - fetched > CREDENTIALS_TTL_SECONDS:
        secret = await kube.secret(*key)
        _credentials[key] = (time.monotonic(), secret)
    return Endpoint(region.livekit.url, secret["api-key"], secret["api-secret"])


@dataclass
class RegionOutcome:
    """One region after a tick: its status entry and what the conditions should say."""

    entry: dict[str, Any]
    unreachable: str | None = None
    holding: str | None = None
    scaled: bool = False
    pending: bool = False  # the region's endpoint has not answered its first poll yet


class Autoscaler:
    """The VoiceAgents kopf has seen, and the loop that sizes their fleets."""

    def __init__(self) -> None:
        self.agents: dict[tuple[str, str], Tracked] = {}
        self.indexes: Indexes | None = None
        self.applied: dict[tuple[str, str, str], int] = {}
        # When replicas were last written per region: the Deployment watch trails a write, so
        # a difference seen sooner than DRIFT_GRACE_SECONDS after one is not drift.
        self.written_at: dict[tuple[str, str, str], float] = {}
        self.wake = asyncio.Event()
        # VoiceAgents changed since the last pass; all of them when demand changed.
        self.dirty: set[tuple[str, str]] = set()
        self.everything_dirty = False
        self._failures: dict[tuple[str, str], str] = {}

    def changed(self, key: tuple[str, str]) -> None:
        self.dirty.add(key)
        self.wake.set()

    def demand_changed(self, agent_names: set[str] | None) -> None:
        """LiveKit's demand moved for these agent names (None: for every agent)."""
        if agent_names is None:
            self.everything_dirty = True
        else:
            self.dirty.update(k for k, a in self.agents.items() if a.agent_name in agent_names)
        self.wake.set()

    async def run(self) -> None:
        """A pass over the VoiceAgents whose inputs changed as soon as they do, and over all
        of them every few seconds: a large fleet costs CPU by its changes, not by its size."""
        next_full = 0.0
        while True:
            self.wake.clear()
            if self.everything_dirty or time.monotonic() >= next_full:
                self.everything_dirty, self.dirty = False, set()
                next_full = time.monotonic() + FULL_PASS_SECONDS
                await self.tick_all(list(self.agents))
            elif self.dirty:
                keys, self.dirty = self.dirty, set()
                await self.tick_all(keys)
            with contextlib.suppress(TimeoutError):
                timeout = max(0.0, next_full - time.monotonic())
                await asyncio.wait_for(self.wake.wait(), timeout=timeout)

    async def tick_all(self, keys: Iterable[tuple[str, str]]) -> None:
        if self.indexes is None:
            return  # no watch event yet
        indexes = self.indexes
        pending = iter([(key, self.agents[key]) for key in keys if key in self.agents])

        async def lane() -> None:
            for key, agent in pending:
                if key not in self.agents:
                    continue  # deleted since this pass began
                try:
                    await self.tick(agent, indexes)
                    self._failures.pop(key, None)
                except Exception as error:  # noqa: BLE001 - one agent must not stop others
                    message = f"autoscaling {key[0]}/{key[1]} failed: {error}"
                    if self._failures.get(key) != message:
                        log.warning(message)
                    self._failures[key] = message

        # A few lanes side by side: a pass is bound by API round trips, not by the policy's
        # arithmetic; lanes, not a task per VoiceAgent, as most ticks make no call at all.
        await asyncio.gather(*(lane() for _ in range(TICK_CONCURRENCY)))

    def forget(self, key: tuple[str, str]) -> None:
        self.agents.pop(key, None)
        retiring_configs.pop(key, None)
        applied_generations.pop(key, None)
        deployed_regions.pop(key, None)
        for region_key in [k for k in _exported if k[:2] == key]:
            _unexport(region_key)
        for region_key in [k for k in self.applied if k[:2] == key]:
            self.applied.pop(region_key)
            self.written_at.pop(region_key, None)
            stabilizers.pop(region_key, None)

    def tracks(self, owner: Owner) -> bool:
        return (owner.namespace, owner.name) in self.agents

    async def tick(self, agent: Tracked, indexes: Indexes) -> None:
        body, spec = agent.body, agent.spec
        if spec is None:
            return  # the reconcile handler reports an invalid spec
        meta, status = body["metadata"], body.get("status", {})
        applied = applied_generations.get((meta["namespace"], meta["name"]))
        applied = applied or status.get("observedGeneration")
        if applied is None:
            return  # nothing applied yet: no fleet to size, no status to report
        owner = Owner(meta["name"], meta["namespace"], meta["uid"])
        await self._retire_unused_configs(owner, indexes)
        agent_name = agent.agent_name
        outcomes = [
            await self._scale_region(body, owner, spec, region, agent_name, indexes)
            for region in spec.regions
        ]
        if not self.tracks(owner):
            return  # deleted while this tick awaited: report nothing about it
        if any(o.pending for o in outcomes):
            # Nothing to report before LiveKit first answers (or fails to): reporting it as
            # unreachable would be a false alarm, and the first poll wakes this VoiceAgent.
            return
        unreachable = [o.unreachable for o in outcomes if o.unreachable]
        if unreachable and _was_reachable(status):
            await kube.post_event(body, "Warning", "LiveKitUnreachable",
                                    f"holding replicas: {'; '.join(unreachable)}")  # fmt: skip
        report = StatusReport(
            generation=int(meta.get("generation", 0)),
            applied=int(applied),
            agent_name=agent_name,
            region_count=len(spec.regions),
        )
        changes = _status_changes(status, outcomes, report)
        if changes:
            await kube.patch_status(owner.namespace, owner.name, changes)
            body["status"] = {**status, **changes}  # until the watch delivers it

    async def _retire_unused_configs(self, owner: Owner, indexes: Indexes) -> None:
        key = (owner.namespace, owner.name)
        retiring = retiring_configs.get(key)
        if not retiring:
            return
        unused = retiring - set(indexes.configs.get(key, []))
        await asyncio.gather(*(kube.delete("ConfigMap", owner.namespace, n) for n in unused))
        retiring -= unused
        if not retiring:
            retiring_configs.pop(key, None)

    async def _write(
        self,
        key: tuple[str, str, str],
        owner: Owner,
        spec: VoiceAgentSpec,
        region: RegionSpec,
        decision: Decision,
    ) -> None:
        self.written_at[key] = time.monotonic()
        await _apply(owner, spec, region, decision)

    async def _scale_region(
        self,
        body: dict[str, Any],
        owner: Owner,
        spec: VoiceAgentSpec,
        region: RegionSpec,
        agent_name: str,
        indexes: Indexes,
    ) -> RegionOutcome:
        key = (owner.namespace, owner.name, region.name)
        # Metrics name the agent as workers do: by its LiveKit dispatch name.
        labels = (owner.namespace, agent_name, region.name)
        current = self.applied.get(key) or current_replicas(
            body.get("status"), region.name, region.min_replicas
        )
        demand, why, pending = await _demand(owner, spec, region, agent_name, self.demand_changed)
        stabilizer = stabilizers.get(key) or Stabilizer()
        decision = stabilizer.decide(time.time(), current, demand, spec.scaling, region)
        observed = _observed(indexes.deployments, owner, region)
        # What the Deployment asks for now: a `kubectl scale` or a stale write may have moved it.
        actual = observed.get(SPEC_REPLICAS)
        settled = time.monotonic() - self.written_at.get(key, 0.0) > DRIFT_GRACE_SECONDS
        actual = current if actual is None or not settled else int(actual)
        pods = list(indexes.pods.get(key, []))
        port = spec.observability.metrics_port
        scaling_down = decision.replicas < max(current, actual)
        if scaling_down:  # idle workers first, and none whose load is unknown
            decision = await mark_load(decision, max(current, actual), pods, port, holds=True)
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
        if actual != current:  # drifted: put the decision back, unless holding at what is there
            if decision.replicas != actual:
                await self._write(key, owner, spec, region, decision)
                await kube.post_event(body, "Normal", "ReplicasRestored",
                                      f"region {region.name}: the Deployment asked for {actual} "
                                      f"workers, set back to {decision.replicas}")  # fmt: skip
        elif decision.changed_from(current):
            await self._write(key, owner, spec, region, decision)
            direction = "up" if decision.replicas > current else "down"
            DECISIONS.labels(*labels, direction).inc()
            await kube.post_event(body, "Normal", f"Scaled{direction.title()}",
                                    f"region {region.name}: {decision.reason}")  # fmt: skip
            outcome.entry.update(lastScaleTime=cond.now_rfc3339(), lastScaleReason=decision.reason)
            outcome.scaled = True
        if not scaling_down and (demand or any(pod.marked_busy() for pod in pods)):
            # Busy marks follow the load; read after a scale-up is written, which a slow
            # worker must not delay.
            await mark_load(decision, current, pods, port, holds=False)
        if self.tracks(owner):  # one deleted while this tick awaited is forgotten already
            stabilizers[key] = stabilizer
            self.applied[key] = decision.replicas
            _export(key, labels, outcome.entry, demand, region)
        return outcome


@dataclass
class Tracked:
    """A VoiceAgent as last seen by the watch, its spec parsed once per change, not per tick."""

    body: dict[str, Any]
    spec: VoiceAgentSpec | None  # None when the spec is invalid

    @property
    def agent_name(self) -> str:
        """The LiveKit dispatch name demand is counted by."""
        name = self.spec.agent_name if self.spec else None
        return name or str(self.body["metadata"]["name"])

    @classmethod
    def of(cls, body: kopf.Body) -> Tracked:
        # Shallow: nothing below the top level is changed here, and each watch event brings
        # new objects. managedFields is large and never read.
        snapshot = dict(body)
        snapshot["metadata"] = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
        try:
            spec: VoiceAgentSpec | None = VoiceAgentSpec.model_validate(snapshot["spec"])
        except pydantic.ValidationError:
            spec = None
        return cls(snapshot, spec)


autoscaler = Autoscaler()


@kopf.on.event(*RESOURCE)
async def track(*, event: kopf.RawEvent, body: kopf.Body, **kwargs: Any) -> None:
    """Keep the loop's view of VoiceAgents current; kopf hands over its live indexes here."""
    autoscaler.indexes = Indexes(
        kwargs["fleet_deployments"], kwargs["fleet_pods"], kwargs["fleet_configs"]
    )
    key = (body.metadata.namespace or "", body.metadata.name or "")
    if event["type"] == "DELETED":
        autoscaler.forget(key)
        remembered_specs.forget(body.metadata.uid or "")
    else:
        autoscaler.agents[key] = Tracked.of(body)
        autoscaler.changed(key)


@kopf.on.startup()
async def start_autoscaler(memo: kopf.Memo, **_: Any) -> None:
    memo["autoscaler"] = asyncio.create_task(autoscaler.run(), name="voicefleet autoscaler")


def _was_reachable(status: dict[str, Any]) -> bool:
    for condition in status.get("conditions", []):
        if condition.get("type") == cond.LIVEKIT_REACHABLE:
            return bool(condition.get("status") != "False")
    return True


async def _demand(
    owner: Owner,
    spec: VoiceAgentSpec,
    region: RegionSpec,
    agent_name: str,
    changed: DemandChanged,
) -> tuple[int | None, str, bool]:
    """The agent's sessions at the region's endpoint (None: unknown, and why), and whether
    the endpoint is yet to answer its first poll."""
    try:
        endpoint = await endpoint_for(owner.namespace, region)
    except Exception as error:  # noqa: BLE001 - reported in the condition; the fleet holds
        secret = region.livekit.credentials_secret
        why = f"cannot read Secret {secret} (keys api-key, api-secret): {secret_problem(error)}"
        return None, why, False
    interval = spec.scaling.poll_interval_seconds
    collector = collectors.get(endpoint, interval, changed)
    snapshot = collector.snapshot
    demand = snapshot.demand(agent_name, max_age=3 * interval + 5, now=time.time())
    return demand, snapshot.error or "LiveKit data is stale", snapshot.pending


@dataclass(frozen=True)
class Indexes:
    deployments: kopf.Index[tuple[str, str, str], dict[str, Any]]
    pods: kopf.Index[tuple[str, str, str], WorkerPod]
    configs: kopf.Index[tuple[str, str], str]


async def mark_load(
    decision: Decision, current: int, pods: list[WorkerPod], port: int, *, holds: bool
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


def secret_problem(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no key {error.args[0]}"
    status = getattr(error, "status", None)
    return f"HTTP {status}" if isinstance(status, int) else type(error).__name__


def _observed(
    deployments: kopf.Index[tuple[str, str, str], dict[str, Any]],
    owner: Owner,
    region: RegionSpec,
) -> dict[str, Any]:
    for observed in deployments.get((owner.namespace, owner.name, region.name), []):
        return observed
    return {}


async def _apply(
    owner: Owner, spec: VoiceAgentSpec, region: RegionSpec, decision: Decision
) -> None:
    for manifest in region_objects(owner, spec, region, decision.replicas):
        await kube.apply(manifest)


@dataclass(frozen=True)
class Exported:
    """A region's gauge values as last set, under the labels they were set with."""

    labels: tuple[str, str, str]
    endpoint: str
    values: tuple[int | None, ...]

    @property
    def series(self) -> tuple[str, ...]:
        return (*self.labels, self.endpoint)


# By (namespace, VoiceAgent, region).
_exported: dict[tuple[str, str, str], Exported] = {}
_REGION_GAUGES = (DESIRED, REPLICAS, READY, CAPACITY, MAX, DEMAND)


def _export(
    key: tuple[str, str, str],
    labels: tuple[str, str, str],
    entry: dict[str, Any],
    demand: int | None,
    region: RegionSpec,
) -> None:
    """Set the region's gauges; most ticks of a large fleet change none, and skip the work."""
    values = (entry["desiredReplicas"], entry["replicas"], entry["readyReplicas"],
              entry["capacity"], region.max_replicas, demand)  # fmt: skip
    exported = Exported(labels, region.livekit.url, values)
    previous = _exported.get(key)
    if previous == exported:
        return
    if previous is not None and previous.series != exported.series:
        _unexport(key)  # the agent name or endpoint changed: drop the old series
    _exported[key] = exported
    for gauge, value in zip(_REGION_GAUGES, values, strict=True):
        if value is not None:  # unknown demand keeps its last known value
            gauge.labels(*labels).set(value)
    REACHABLE.labels(*labels, exported.endpoint).set(demand is not None)


def _unexport(key: tuple[str, str, str]) -> None:
    """Remove the series of a region that is gone."""
    exported = _exported.pop(key, None)
    if exported is None:
        return
    for gauge in _REGION_GAUGES:
        with contextlib.suppress(KeyError):
            gauge.remove(*exported.labels)
    with contextlib.suppress(KeyError):
        REACHABLE.remove(*exported.labels, exported.endpoint)


@dataclass(frozen=True)
class StatusReport:
    """What a VoiceAgent's status says beside its regions and conditions."""

    generation: int  # metadata.generation, which conditions are about
    applied: int  # the generation whose objects were applied: status.observedGeneration
    agent_name: str
    region_count: int


def _readiness(
    conditions: list[dict[str, Any]],
    regions: list[dict[str, Any]],
    unreachable: list[str],
    report: StatusReport,
) -> list[dict[str, Any]]:
    """Ready: the current spec is applied and every region can take calls.
    Degraded: some region has fewer ready workers than wanted, or LiveKit is unreadable."""
    generation = report.generation
    applied = report.applied == generation
    short = [
        f"{r['name']}: {r['readyReplicas']}/{r['desiredReplicas']} workers ready"
        for r in regions
        if r["readyReplicas"] < r["desiredReplicas"]
    ]
    unable = [r["name"] for r in regions if r["desiredReplicas"] > 0 and r["readyReplicas"] == 0]
    if not applied:
        ready, reason, message = False, "Reconciling", f"applying generation {generation}"
    elif unable:
        ready, reason, message = False, "NoReadyWorkers", f"no ready worker in {', '.join(unable)}"
    else:
        ready, reason, message = True, "Reconciled", f"{len(regions)} region(s) serving"
    conditions = cond.set_condition(conditions, cond.READY, ready, reason, message, generation)
    problems = short + unreachable
    return cond.set_condition(
        conditions,
        cond.DEGRADED,
        bool(problems),
        ("WorkersNotReady" if short else "LiveKitUnreachable") if problems else "AsDesired",
        "; ".join(problems) or "every region has the workers it wants",
        generation,
    )


def _status_changes(
    status: dict[str, Any], outcomes: list[RegionOutcome], report: StatusReport
) -> dict[str, Any]:
    """The status fields that differ from what is stored, so an idle fleet costs no writes."""
    generation = report.generation
    previous = {r["name"]: r for r in status.get("regions", [])}
    merged = [{**previous.get(o.entry["name"], {}), **o.entry} for o in outcomes]
    unreachable = [o.unreachable for o in outcomes if o.unreachable]
    holding = [f"{o.entry['name']}: {o.holding}" for o in outcomes if o.holding]
    conditions = cond.set_condition(
        list(status.get("conditions", [])),
        cond.LIVEKIT_REACHABLE,
        not unreachable,
        "LiveKitUnreachable" if unreachable else "Polling",
        "; ".join(unreachable) or "LiveKit answers; demand is current",
        generation,
    )
    conditions = _readiness(conditions, merged, unreachable, report)
    scaled = any(o.scaled for o in outcomes)
    conditions = cond.set_condition(
        conditions,
        cond.SCALING,
        scaled,
        "Scaled" if scaled else ("Holding" if holding else "Steady"),
        "; ".join(holding) or "replicas match demand",
        generation,
    )
    new = {
        "observedGeneration": report.applied,
        "agentName": report.agent_name,
        "regionCount": report.region_count,
        "regions": merged,
        "activeSessions": sum(r["activeSessions"] for r in merged),
        "workers": f"{sum(r['readyReplicas'] for r in merged)}/"
        f"{sum(r['desiredReplicas'] for r in merged)}",
        "conditions": conditions,
    }
    return {key: value for key, value in new.items() if status.get(key) != value}
