"""Every kopf registration of the operator, each a thin function that delegates: to the
autoscaling loop (autoscaler.py), which owns the operator's state (state.py), and to the
reconcile of a VoiceAgent's objects (reconcile.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from voicefleet_models.voice_agent import GROUP, PLURAL, VERSION
from voicefleet_operator import reconcile as reconciling
from voicefleet_operator.autoscaler import Autoscaler
from voicefleet_operator.kube import Kube
from voicefleet_operator.leadership import Leadership, while_leading
from voicefleet_operator.metrics import RECONCILE_SECONDS
from voicefleet_operator.render import config_in_use
from voicefleet_operator.scaling import SPEC_REPLICAS
from voicefleet_operator.state import AgentKey, FleetState, Indexes, Launch, RegionKey
from voicefleet_operator.storage import UnmarkedProgress
from voicefleet_operator.worker_load import WorkerPod, marks_of
from voicefleet_operator.worker_loss import WorkerLossWatch, pod_view

RESOURCE = (GROUP, VERSION, PLURAL)
MANAGED = {"app.kubernetes.io/managed-by": "voicefleet"}
# The indexes' resources, watched with MANAGED as a server-side label selector (see configure).
FLEET_RESOURCES = (("", "v1", "pods"), ("apps", "v1", "deployments"))


def autoscaler(memo: kopf.Memo) -> Autoscaler:
    """The loop and its state, put in the operator's memo at startup (kopf copies that memo
    into each object's, so every handler finds it there)."""
    found: Autoscaler = memo["autoscaler"]
    return found


@kopf.on.startup()
async def start(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """Create the operator's state around kopf's indexes (live, though still filling now:
    kopf hands every handler each index by its function's name), and start the loop, which
    waits until this process leads."""
    launch: Launch = memo["launch"]
    indexes = (kwargs[name] for name in ("fleet_deployments", "fleet_pods", "fleet_configs"))
    state = FleetState(
        kube=Kube(launch.configuration),
        indexes=Indexes(*indexes),
        pricing=launch.pricing,
        collectors=launch.collectors,
        instance=launch.leadership.identity,
        network_policies=launch.network_policies,
    )
    configure(settings, state)
    memo["worker_loss"] = WorkerLossWatch(state.collectors)
    memo["autoscaler"] = loop = Autoscaler(state)
    task = asyncio.create_task(
        while_leading(launch.leadership, loop.run), name="voicefleet autoscaler"
    )
    memo["autoscaler_task"] = launch.liveness.loop = task
    launch.liveness.autoscaler = loop


def configure(settings: kopf.OperatorSettings, state: FleetState) -> None:
    # status is a typed schema, so kopf keeps its retry bookkeeping in annotations instead.
    settings.persistence.progress_storage = UnmarkedProgress(prefix=GROUP)
    settings.persistence.diffbase_storage = state.remembered_specs
    # The operator's Events are its own, aggregated (events.py); kopf posts none, so it
    # needs no grant on core events.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    # The indexes' labels= filters run in the operator, after the API server sent every pod
    # and Deployment in scope; selected on the server, the watches grow with the fleet only.
    for resource in FLEET_RESOURCES:
        settings.watching.label_selectors[resource] = ",".join(
            f"{k}={v}" for k, v in MANAGED.items()
        )
    logging.getLogger("kopf.objects").addFilter(_quiet_pod_events)


def _quiet_pod_events(record: logging.LogRecord) -> bool:
    """Every worker pod's status change passes through worker_loss: a line for each would
    drown the useful ones (a death it finds is logged by worker_loss.py)."""
    return not record.getMessage().startswith("Handler 'worker_loss' succeeded")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("autoscaler_task")
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if "autoscaler" in memo:
        await autoscaler(memo).state.close()


# The watch handlers below are coroutines, though they never await: kopf runs plain functions
# in a thread pool, a hand-off that costs more than the handler itself on every watch event,
# and asyncio's wake-up event is not safe to set from another thread.
@kopf.index("apps", "v1", "deployments", labels=MANAGED)
async def fleet_deployments(
    *,
    namespace: str | None,
    labels: kopf.Labels,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    **_: Any,
) -> dict[RegionKey, dict[str, Any]]:
    """Worker Deployments' status, and the replicas they ask for (SPEC_REPLICAS), by
    (namespace, VoiceAgent, region)."""
    key = fleet_key(namespace, labels)
    loop = autoscaler(memo)
    loop.state.deployed_regions.setdefault(key[:2], set()).add(key[2])
    loop.changed(key[:2])  # e.g. a worker became ready, or someone scaled it by hand
    return {key: {**dict(status), SPEC_REPLICAS: spec.get("replicas")}}


@kopf.index("", "v1", "pods", labels=MANAGED)
async def fleet_pods(
    *, namespace: str | None, labels: kopf.Labels, meta: kopf.Meta, status: kopf.Status, **_: Any
) -> dict[RegionKey, WorkerPod] | None:
    """Live worker pods by (namespace, VoiceAgent, region)."""
    if meta.get("deletionTimestamp") or status.get("phase") != "Running":
        return None
    marks = marks_of(dict(meta.get("annotations", {})))
    pod = WorkerPod(namespace or "", meta.get("name", ""), status.get("podIP", ""), marks)
    return {fleet_key(namespace, labels): pod}


@kopf.index("", "v1", "pods", labels=MANAGED)
async def fleet_configs(
    *, namespace: str | None, labels: kopf.Labels, spec: kopf.Spec, **_: Any
) -> dict[AgentKey, str] | None:
    """The worker configurations pods mount, draining pods included, by (namespace,
    VoiceAgent): a retired configuration is deleted once no pod is left here with it."""
    config = config_in_use({"spec": dict(spec)})
    return {fleet_key(namespace, labels)[:2]: config} if config else None


@kopf.on.event("", "v1", "pods", labels=MANAGED)
async def worker_loss(
    *,
    event: kopf.RawEvent,
    namespace: str | None,
    labels: kopf.Labels,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A worker container that died without draining: its calls get an agent again
    (worker_loss.py)."""
    watch: WorkerLossWatch = memo["worker_loss"]
    view = None if event["type"] == "DELETED" else pod_view(meta, status)
    watch.observe(fleet_key(namespace, labels), meta.get("name", ""), meta.get("uid", ""), view)


def fleet_key(namespace: str | None, labels: kopf.Labels) -> RegionKey:
    agent, region = labels.get("voicefleet.io/agent", ""), labels.get("voicefleet.io/region", "")
    return namespace or "", agent, region


@kopf.on.event(*RESOURCE)
async def track(*, event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Keep the loop's view of VoiceAgents current."""
    loop = autoscaler(memo)
    if event["type"] == "DELETED":
        loop.forget((body.metadata.namespace or "", body.metadata.name or ""))
        loop.state.remembered_specs.forget(body.metadata.uid or "")
    else:
        loop.track(body)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def reconcile(
    body: kopf.Body, status: kopf.Status, logger: kopf.Logger, memo: kopf.Memo, **_: Any
) -> None:
    """Bring every region's objects in line with the spec; remove those of dropped regions."""
    loop = autoscaler(memo)
    leadership: Leadership = memo["launch"].leadership
    if not leadership.leading.is_set():  # a standby: only the leader writes
        await leadership.leading.wait()
        if not loop.tracks(reconciling.owner_of(body)):
            return  # deleted while this process waited
    state = loop.state
    async with state.reconciles:
        with RECONCILE_SECONDS.time():
            await reconciling.reconcile(state, body, status, logger)
