"""Rendering of a region's objects as pure functions of the spec."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from voicefleet_models.agent_config import AgentConfig
from voicefleet_models.pricing import Pricing
from voicefleet_models.quantity import quantity
from voicefleet_models.voice_agent import VoiceAgentSpec
from voicefleet_operator.render import (
    Owner,
    config_in_use,
    labels,
    pricing_config_map,
    region_objects,
    selector,
)

from ..helpers import BASE_AGENT, voice_agent

OWNER = Owner("support", "voice", "uid-1")
BASE_REGION = BASE_AGENT["spec"]["regions"][0]


def spec(**fields: object) -> VoiceAgentSpec:
    return VoiceAgentSpec.model_validate(voice_agent(**fields)["spec"])


def objects(agent: VoiceAgentSpec, replicas: int = 2) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in region_objects(OWNER, agent, agent.regions[0], replicas)}


def test_worker_config_round_trips_through_the_agent_model() -> None:
    agent = spec(instructions="Be brief.", agentName="helpdesk")
    data = objects(agent)["ConfigMap"]["data"]["agent.json"]
    parsed = AgentConfig.model_validate_json(data)
    assert parsed.agent_name == "helpdesk"
    assert parsed.instructions == "Be brief."
    assert parsed.region == "us-east"
    assert parsed.sessions_per_worker == agent.scaling.sessions_per_worker
    assert parsed.remote_session is False
    opened = objects(spec(remoteSession=True))["ConfigMap"]["data"]["agent.json"]
    assert AgentConfig.model_validate_json(opened).remote_session is True


def test_grace_period_outlasts_the_drain_and_pods_are_restricted() -> None:
    deployment = objects(spec(drainTimeoutSeconds=1800))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 1800
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]["securityContext"]
    assert container == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_secrets_stay_references_and_config_changes_change_the_hash() -> None:
    env = [{"name": "DEEPGRAM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "d"}}}]
    pipeline = {"stt": [{"provider": "deepgram"}], "llm": [{"provider": "simulated"}],
                "tts": [{"provider": "simulated"}]}  # fmt: skip
    first = objects(spec(env=env, pipeline=pipeline))
    rendered = json.dumps(first["ConfigMap"])
    assert "secretKeyRef" not in rendered
    variables = {e["name"]: e for e in first["Deployment"]["spec"]["template"]["spec"]
                 ["containers"][0]["env"]}  # fmt: skip
    assert variables["DEEPGRAM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "k"
    assert "valueFrom" in variables["LIVEKIT_API_SECRET"]
    second = objects(spec(env=env, pipeline=pipeline, instructions="Other."))

    def mounted(objs: dict[str, dict[str, Any]]) -> str | None:
        return config_in_use(objs["Deployment"]["spec"]["template"])

    # A changed configuration is a new, immutable ConfigMap that only new pods mount.
    assert mounted(first) == first["ConfigMap"]["metadata"]["name"]
    assert mounted(second) == second["ConfigMap"]["metadata"]["name"]
    assert mounted(first) != mounted(second)
    assert first["ConfigMap"]["immutable"] is True
    assert mounted(first) == mounted(objects(spec(env=env, pipeline=pipeline)))


def test_probes_have_timeouts_and_a_loaded_worker_is_not_restarted_quickly() -> None:
    container = objects(spec())["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    probes = {kind: container[f"{kind}Probe"] for kind in ("startup", "readiness", "liveness")}
    assert all(probe["timeoutSeconds"] >= 1 for probe in probes.values())
    # Start: up to a minute, about thirty times the measured start.
    assert probes["startup"]["periodSeconds"] * probes["startup"]["failureThreshold"] >= 60
    # A worker answering slowly under load keeps its calls for at least a minute.
    liveness = probes["liveness"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
    assert probes["readiness"]["httpGet"]["path"] == "/readyz"


def pod_template(agent: VoiceAgentSpec) -> dict[str, Any]:
    template: dict[str, Any] = objects(agent)["Deployment"]["spec"]["template"]
    return template


def test_pod_options_reach_the_workers_and_a_region_adds_its_tolerations() -> None:
    spread = {
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule",
    }
    term = {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
    anti = {"preferredDuringSchedulingIgnoredDuringExecution": [term]}
    pool = {"key": "pool", "value": "voice", "effect": "NoSchedule"}
    region = {**BASE_REGION, "nodeSelector": {"pool": "voice"}, "tolerations": [pool]}
    agent = spec(
        regions=[region],
        serviceAccountName="voice-worker",
        imagePullSecrets=[{"name": "registry"}],
        priorityClassName="voice-critical",
        tolerations=[{"key": "spot", "operator": "Exists"}],
        affinity={"podAntiAffinity": anti},
        topologySpreadConstraints=[
            spread,
            {**spread, "labelSelector": {"matchLabels": {"team": "voice"}}},
        ],
        podLabels={"team": "voice"},
        podAnnotations={"sidecar.istio.io/inject": "false"},
    )
    template = pod_template(agent)
    pod = template["spec"]
    assert pod["serviceAccountName"] == "voice-worker"
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["priorityClassName"] == "voice-critical"
    assert pod["nodeSelector"] == {"pool": "voice"}
    # The VoiceAgent's tolerations first, then the region's own node pool's.
    assert pod["tolerations"] == [
        {"key": "spot", "operator": "Exists"},
        pool,
    ]
    assert pod["affinity"] == {"podAntiAffinity": anti}
    # A spread without a selector counts this region's workers; an explicit one is kept.
    assert pod["topologySpreadConstraints"] == [
        {**spread, "labelSelector": {"matchLabels": selector(OWNER, "us-east")}},
        {**spread, "labelSelector": {"matchLabels": {"team": "voice"}}},
    ]
    assert template["metadata"]["labels"]["team"] == "voice"
    assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}


def test_a_plain_voice_agent_sets_no_scheduling_options() -> None:
    template = pod_template(spec())
    for option in ("serviceAccountName", "imagePullSecrets", "priorityClassName", "tolerations",
                   "affinity", "topologySpreadConstraints", "nodeSelector"):  # fmt: skip
        assert option not in template["spec"]
    assert "annotations" not in template["metadata"]
    assert template["metadata"]["labels"] == labels(OWNER, "us-east")


def test_operator_labels_cannot_be_overridden() -> None:
    for key in labels(OWNER, "us-east"):
        with pytest.raises(ValidationError, match="podLabels may not set"):
            spec(podLabels={key: "other"})
    with pytest.raises(ValidationError, match="podAnnotations may not set"):
        spec(podAnnotations={"controller.kubernetes.io/pod-deletion-cost": "5"})
    # Even past validation, the operator's own labels win in the pod template.
    forced = spec().model_copy(update={"pod_labels": {"voicefleet.io/region": "eu", "team": "a"}})
    rendered = pod_template(forced)["metadata"]["labels"]
    assert rendered == {**labels(OWNER, "us-east"), "team": "a"}
    assert selector(OWNER, "us-east").items() <= rendered.items()


def resources_of(agent: VoiceAgentSpec) -> dict[str, dict[str, str]]:
    container = pod_template(agent)["spec"]["containers"][0]
    resources: dict[str, dict[str, str]] = container["resources"]
    return resources


def test_default_requests_are_sized_from_the_sessions_a_worker_serves() -> None:
    eight = resources_of(spec(scaling={"sessionsPerWorker": 8}))
    assert eight == {
        "requests": {"cpu": "1000m", "memory": "832Mi"},
        "limits": {"memory": "1664Mi"},
    }
    one, sixteen = (resources_of(spec(scaling={"sessionsPerWorker": n})) for n in (1, 16))
    # At least the measured cost (docs/production.md): 27 % of a core for a lone session,
    # 11 % each for many, 310 MiB idle plus 50 MiB per session.
    assert quantity(one["requests"]["cpu"]) >= Decimal("0.27")
    assert quantity(sixteen["requests"]["cpu"]) >= 16 * Decimal("0.11")
    assert quantity(sixteen["requests"]["memory"]) >= (310 + 16 * 50) * 2**20
    for sized in (one, eight, sixteen):
        assert quantity(sized["limits"]["memory"]) > quantity(sized["requests"]["memory"])


def test_set_resources_are_kept_and_a_sized_request_stays_under_its_limit() -> None:
    custom = resources_of(spec(resources={"requests": {"cpu": "2"}}))
    assert custom["requests"] == {"cpu": "2", "memory": "832Mi"}
    capped = resources_of(spec(resources={"limits": {"cpu": "500m", "memory": "512Mi"}}))
    assert capped == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }
    big = resources_of(spec(resources={"requests": {"memory": "4Gi"}}))
    assert big["limits"] == {"memory": "8192Mi"}
    with pytest.raises(ValidationError, match=r"less than or equal to its resources\.limits"):
        spec(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}})


def test_quantities_parse_as_kubernetes_reads_them() -> None:
    assert quantity("1500m") == Decimal("1.5")
    assert quantity("1Gi") == 2**30
    assert quantity("1G") == 10**9
    assert quantity("2e3") == 2000
    assert quantity("1Ei") == 2**60
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity("lots")


def test_workers_read_the_cluster_prices_from_a_config_map_that_never_rolls_them() -> None:
    pricing = Pricing.model_validate(
        {"currency": "EUR", "llm": [{"provider": "openai", "model": "gpt-4.1-mini",
                                     "promptPer1kTokens": 0.4, "completionPer1kTokens": 1.6}]}
    )  # fmt: skip
    config_map = pricing_config_map(OWNER, pricing)
    assert config_map["metadata"]["name"] == "support-pricing"
    assert config_map["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert Pricing.model_validate_json(config_map["data"]["pricing.json"]) == pricing
    pod = objects(spec())["Deployment"]["spec"]["template"]["spec"]
    # Mounted whole (the kubelet updates it in place) and optional (a worker may start first).
    (volume,) = [v for v in pod["volumes"] if v["name"] == "pricing"]
    assert volume["configMap"] == {"name": "support-pricing", "optional": True}
    container = pod["containers"][0]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "pricing"]
    assert "subPath" not in mount
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VOICEFLEET_PRICING_FILE"] == f"{mount['mountPath']}/pricing.json"
    # The prices are not in the pod template: new prices leave the Deployment as it is.
    assert "gpt-4.1-mini" not in json.dumps(objects(spec())["Deployment"])


def test_a_call_costs_its_minutes_and_its_priced_usage_and_names_the_rest() -> None:
    pricing = Pricing.model_validate(
        {"agentMinute": 0.6, "stt": [{"provider": "deepgram", "model": "nova-3", "perMinute": 1.2}]}
    )
    usage = {("stt_audio_seconds", "deepgram", "nova-3", ""): 30.0,
             ("llm_tokens", "openai", "gpt-4.1-mini", "prompt"): 900.0,
             ("llm_tokens", "openai", "gpt-4.1-mini", "completion"): 0.0}  # fmt: skip
    estimate = pricing.estimate(usage, seconds=120)
    assert estimate.cost == pytest.approx(2 * 0.6 + 0.5 * 1.2)
    assert estimate.currency == "USD"
    assert estimate.unpriced == ("llm_tokens/openai/gpt-4.1-mini/prompt",)
