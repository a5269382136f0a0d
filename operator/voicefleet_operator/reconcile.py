"""Bringing a VoiceAgent's objects in line with its spec: every region's Deployment, ConfigMap,
Service and PodDisruptionBudget, the shared pricing, the SLO rule; dropped regions pruned."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pydantic

from voicefleet_dashboards.slo import SLOInput, prometheus_rule
from voicefleet_models.voice_agent import RegionSpec, VoiceAgentSpec
from voicefleet_operator.kube import OWNED_KINDS, Kube
from voicefleet_operator.netpol import network_policy
from voicefleet_operator.render import Owner, config_in_use, pricing_config_map, region_objects
from voicefleet_operator.scaling import SPEC_REPLICAS
from voicefleet_operator.state import FleetState
from voicefleet_operator.status import current_replicas


def parse_spec(spec: Any) -> VoiceAgentSpec:
    """The typed spec, or a permanent error with one line per problem."""
    try:
        return VoiceAgentSpec.model_validate(dict(spec))
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in error.errors()
        )
        raise kopf.PermanentError(f"invalid spec: {problems}") from None


async def reconcile(
    state: FleetState, body: kopf.Body, status: kopf.Status, logger: kopf.Logger
) -> None:
    """Apply every region's objects; retire earlier configurations; prune dropped regions."""
    spec = parse_spec(body["spec"])
    owner = owner_of(body)
    manifests = [
        manifest
        for region in spec.regions
        for manifest in region_objects(owner, spec, region, _replicas(state, owner, status, region))
    ]
    if state.network_policies:
        manifests += [network_policy(owner, spec, region) for region in spec.regions]
    manifests.append(pricing_config_map(owner, state.pricing))
    key = (owner.namespace, owner.name)
    # What waited for retirement may be current again (a spec reverted): decided anew below.
    state.retiring_configs.pop(key, None)
    kube = state.kube
    # Independent objects: apply them side by side, the API server does the ordering.
    await asyncio.gather(*(kube.apply(manifest) for manifest in manifests))
    # A VoiceAgent whose spec never changed has no earlier configuration to retire.
    if int(body.metadata.get("generation", 1)) > 1:
        current = {m["metadata"]["name"] for m in manifests if m["kind"] == "ConfigMap"}
        if still_mounted := await retire_configs(kube, owner, current):
            state.retiring_configs[key] = still_mounted
    if await kube.serves("PrometheusRule"):
        await kube.apply(slo_rule(owner, spec))
    wanted = {r.name for r in spec.regions}
    if state.deployed_regions.get(key, set()) - wanted:
        kinds = (*OWNED_KINDS, "NetworkPolicy") if state.network_policies else OWNED_KINDS
        if removed := await prune_regions(kube, owner, wanted, kinds):
            logger.info(f"removed regions no longer in the spec: {', '.join(sorted(removed))}")
        state.deployed_regions[key] &= wanted
    # The status has one writer, the autoscaler: it reports this generation as observed
    # together with the conditions, in one write rather than two.
    state.applied_generations[key] = int(body.metadata.get("generation", 0))


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


def owner_of(body: kopf.Body) -> Owner:
    return Owner(body.metadata.name or "", body.metadata.namespace or "", body.metadata.uid or "")


def _replicas(state: FleetState, owner: Owner, status: Any, region: RegionSpec) -> int:
    """What the Deployment asks for now (the autoscaler's last write, which status may not
    show yet: its writer may have died in between), else what status says, within bounds."""
    key = (owner.namespace, owner.name, region.name)
    asked = next((d.get(SPEC_REPLICAS) for d in state.indexes.deployments.get(key, [])), None)
    replicas = current_replicas(status, region.name, region.min_replicas)
    replicas = replicas if asked is None else int(asked)
    return max(region.min_replicas, min(region.max_replicas, replicas))


async def retire_configs(kube: Kube, owner: Owner, current: set[str]) -> set[str]:
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


async def prune_regions(
    kube: Kube, owner: Owner, keep: set[str], kinds: tuple[str, ...] = OWNED_KINDS
) -> set[str]:
    """Delete the objects of regions that left the spec; return their names."""
    removed: set[str] = set()
    for kind in kinds:
        for item in await kube.list(kind, owner.namespace, f"voicefleet.io/agent={owner.name}"):
            region = item["metadata"].get("labels", {}).get("voicefleet.io/region")
            if region and region not in keep:
                await kube.delete(kind, owner.namespace, item["metadata"]["name"])
                removed.add(region)
    return removed
