"""kopf handlers: thin shells around rendering (render.py) and the scaling policy (policy.py)."""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import kopf
import pydantic
from prometheus_client import Histogram

from voicefleet_agent.pricing import Pricing
from voicefleet_dashboards.slo import SLOInput, prometheus_rule
from voicefleet_operator.kube import OWNED_KINDS, Kube
from voicefleet_operator.render import Owner, config_in_use, pricing_config_map, region_objects
from voicefleet_operator.spec import GROUP, PLURAL, VERSION, RegionSpec, VoiceAgentSpec

RESOURCE = (GROUP, VERSION, PLURAL)
kube = Kube()


@dataclass
class Shared:
    """What the operator was started with that every VoiceAgent shares."""

    pricing: Pricing = field(default_factory=Pricing)
    """The cluster's unit prices, handed to every VoiceAgent's workers."""


shared = Shared()
# The generation of each VoiceAgent whose objects were last applied, by (namespace, name).
applied_generations: dict[tuple[str, str], int] = {}
# Regions whose Deployment the watch has shown, by (namespace, VoiceAgent): a superset of those
# that exist, so a reconcile lists objects to prune only when a dropped region may remain.
deployed_regions: dict[tuple[str, str], set[str]] = {}
# Worker configurations replaced but still mounted, by (namespace, VoiceAgent): the autoscaler
# deletes each once no pod mounts it (see retire_configs).
retiring_configs: dict[tuple[str, str], set[str]] = {}

# Reconciles in flight: enough to keep the API server busy, few enough that each VoiceAgent
# finishes soon instead of all of a large fleet finishing together at the end, and that the
# autoscaler's calls find a free connection.
RECONCILE_CONCURRENCY = 4
_reconciles = asyncio.Semaphore(RECONCILE_CONCURRENCY)


class RememberedSpecs(kopf.DiffBaseStorage):
    """The last handled spec of each VoiceAgent, kept in memory rather than written back to
    the object: one API write less per change, which a fleet of thousands notices. Nothing
    is lost on restart: every VoiceAgent is then reconciled once, as a new one."""

    def __init__(self) -> None:
        super().__init__()
        self._essences: dict[str, kopf.BodyEssence] = {}

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        if any(path[0] != "spec" for path in extra_fields or ()):
            return super().build(body=body, extra_fields=extra_fields)
        # The spec alone is what the handlers act on. kopf's default copies the whole object,
        # status and managed fields included, on every watch event, then drops most of it.
        return cast(kopf.BodyEssence, {"spec": copy.deepcopy(dict(body.spec))})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self._essences.get(body.metadata.uid or "")

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        self._essences[body.metadata.uid or ""] = essence

    def forget(self, uid: str) -> None:
        self._essences.pop(uid, None)


remembered_specs = RememberedSpecs()


class UnmarkedProgress(kopf.AnnotationsProgressStorage):
    """kopf's retry bookkeeping in annotations, written only while a handler retries. kopf
    would also brand every handled object with a marker annotation, once: a write per
    VoiceAgent that only matters to other kopf operators handling the same objects."""

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: kopf.Body) -> None:
        pass

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        # An essence without metadata has no bookkeeping annotations to strip: spare the copy
        # kopf makes of it on every watch event.
        return essence if "metadata" not in essence else super().clear(essence=essence)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # status is a typed schema, so kopf keeps its retry bookkeeping in annotations instead.
    settings.persistence.progress_storage = UnmarkedProgress(prefix=GROUP)
    settings.persistence.diffbase_storage = remembered_specs
    # Events for problems only: successes would double the API writes of a large fleet.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300


def parse_spec(spec: Any) -> VoiceAgentSpec:
    """The typed spec, or a permanent error with one line per problem."""
    try:
        return VoiceAgentSpec.model_validate(dict(spec))
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in error.errors()
        )
        raise kopf.PermanentError(f"invalid spec: {problems}") from None


def current_replicas(status: Any, region: str, minimum: int) -> int:
    """The replica count the fleet has been given so far (status), else the region minimum."""
    for entry in (status or {}).get("regions", []):
        if entry.get("name") == region:
            return int(entry.get("desiredReplicas", minimum))
    return minimum


RECONCILE_SECONDS = Histogram(
    "voicefleet_operator_reconcile_duration_seconds",
    "Duration of one reconcile of a VoiceAgent's objects.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def reconcile(
    body: kopf.Body, status: kopf.Status, logger: kopf.Logger, **kwargs: Any
) -> None:
    """Bring every region's objects in line with the spec; remove those of dropped regions."""
    async with _reconciles:
        with RECONCILE_SECONDS.time():
            # A VoiceAgent whose spec never changed has no earlier configuration to retire.
            retire = int(body.metadata.get("generation", 1)) > 1
            await _reconcile(body, status, logger, retire=retire)


async def _reconcile(
    body: kopf.Body, status: kopf.Status, logger: kopf.Logger, retire: bool
) -> None:
    spec = parse_spec(body["spec"])
    owner = Owner(body.metadata.name or "", body.metadata.namespace or "", body.metadata.uid or "")
    manifests = [
        manifest
        for region in spec.regions
        for manifest in region_objects(owner, spec, region, _replicas(status, region))
    ]
    manifests.append(pricing_config_map(owner, shared.pricing))
    key = (owner.namespace, owner.name)
    # What waited for retirement may be current again (a spec reverted): decided anew below.
    retiring_configs.pop(key, None)
    # Independent objects: apply them side by side, the API server does the ordering.
    await asyncio.gather(*(kube.apply(manifest) for manifest in manifests))
    if retire:
        current = {m["metadata"]["name"] for m in manifests if m["kind"] == "ConfigMap"}
        if still_mounted := await retire_configs(owner, current):
            retiring_configs[key] = still_mounted
    if await kube.serves("PrometheusRule"):
        await kube.apply(slo_rule(owner, spec))
    wanted = {r.name for r in spec.regions}
    if deployed_regions.get(key, set()) - wanted:
        if removed := await prune_regions(owner, wanted):
            logger.info(f"removed regions no longer in the spec: {', '.join(sorted(removed))}")
        deployed_regions[key] &= wanted
    # The status has one writer, the autoscaler: it reports this generation as observed
    # together with the conditions, in one write rather than two.
    applied_generations[key] = int(body.metadata.get("generation", 0))


def slo_rule(owner: Owner, spec: VoiceAgentSpec) -> dict[str, Any]:
    """The VoiceAgent's SLO recording rules and burn-rate alerts as a PrometheusRule."""
    slo = SLOInput(
        voice_to_voice_seconds=spec.slo.voice_to_voice_seconds,
        voice_to_voice_objective=spec.slo.voice_to_voice_objective,
        session_success_objective=spec.slo.session_success_objective,
    )
    rule = prometheus_rule(
        owner.namespace, owner.name, slo, agent_label=spec.agent_name or owner.name
    )
    rule["metadata"]["ownerReferences"] = [owner.reference()]
    return rule


def _replicas(status: Any, region: RegionSpec) -> int:
    replicas = current_replicas(status, region.name, region.min_replicas)
    return max(region.min_replicas, min(region.max_replicas, replicas))


async def retire_configs(owner: Owner, current: set[str]) -> set[str]:
    """Delete the VoiceAgent's earlier worker configurations that no pod mounts any more, a
    draining one included; return those still mounted (the autoscaler deletes each once its
    last pod is gone, and all go with the VoiceAgent)."""
    selector = f"voicefleet.io/agent={owner.name}"
    configs, pods = await asyncio.gather(
        kube.list("ConfigMap", owner.namespace, selector),
        kube.list("Pod", owner.namespace, selector),
    )
    mounted = {config_in_use(pod) for pod in pods}
    earlier = {c["metadata"]["name"] for c in configs} - current
    await asyncio.gather(
        *(kube.delete("ConfigMap", owner.namespace, name) for name in earlier - mounted)
    )
    return {name for name in earlier if name in mounted}


async def prune_regions(owner: Owner, keep: set[str]) -> set[str]:
    """Delete the objects of regions that left the spec; return their names."""
    removed: set[str] = set()
    for kind in OWNED_KINDS:
        for item in await kube.list(kind, owner.namespace, f"voicefleet.io/agent={owner.name}"):
            region = item["metadata"].get("labels", {}).get("voicefleet.io/region")
            if region and region not in keep:
                await kube.delete(kind, owner.namespace, item["metadata"]["name"])
                removed.add(region)
    return removed
