"""kopf handlers: thin shells around rendering (render.py) and the scaling policy (policy.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import pydantic
from prometheus_client import Histogram

from voicefleet_dashboards.slo import SLOInput, prometheus_rule
from voicefleet_operator.kube import OWNED_KINDS, Kube
from voicefleet_operator.render import Owner, region_objects
from voicefleet_operator.spec import GROUP, PLURAL, VERSION, RegionSpec, VoiceAgentSpec

RESOURCE = (GROUP, VERSION, PLURAL)
kube = Kube()
# The generation of each VoiceAgent whose objects were last applied, by (namespace, name).
applied_generations: dict[tuple[str, str], int] = {}

# Reconciles in flight: enough to keep the API server busy, few enough that each VoiceAgent
# finishes soon instead of all of a large fleet finishing together at the end, and that the
# autoscaler's calls find a free connection.
RECONCILE_CONCURRENCY = 4
_reconciles = asyncio.Semaphore(RECONCILE_CONCURRENCY)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # status is a typed schema, so kopf keeps its bookkeeping in annotations instead.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
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
            await _reconcile(body, status, logger, kwargs.get("fleet_deployments"))


async def _reconcile(body: kopf.Body, status: kopf.Status, logger: kopf.Logger, index: Any) -> None:
    spec = parse_spec(body["spec"])
    owner = Owner(body.metadata.name or "", body.metadata.namespace or "", body.metadata.uid or "")
    manifests = [
        manifest
        for region in spec.regions
        for manifest in region_objects(owner, spec, region, _replicas(status, region))
    ]
    # Independent objects: apply them side by side, the API server does the ordering.
    await asyncio.gather(*(kube.apply(manifest) for manifest in manifests))
    if await kube.serves("PrometheusRule"):
        await kube.apply(slo_rule(owner, spec))
    removed: set[str] = set()
    if _may_have_stale_regions(owner, spec, index):
        removed = await prune_regions(owner, {r.name for r in spec.regions})
    if removed:
        logger.info(f"removed regions no longer in the spec: {', '.join(sorted(removed))}")
    # The status has one writer, the autoscaler: it reports this generation as observed
    # together with the conditions, in one write rather than two.
    applied_generations[(owner.namespace, owner.name)] = int(body.metadata.get("generation", 0))


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


def _may_have_stale_regions(owner: Owner, spec: VoiceAgentSpec, deployments: Any) -> bool:
    """Whether a Deployment exists for a region the spec no longer has (from the index kopf
    keeps by (namespace, VoiceAgent, region); without it, assume so and list)."""
    if deployments is None:
        return True
    wanted = {r.name for r in spec.regions}
    return any(
        key[:2] == (owner.namespace, owner.name) and key[2] not in wanted for key in deployments
    )


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
