"""The API server itself rejects bad VoiceAgents, each with a message a person understands."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from voicefleet_devstack.cluster import KubectlError, LocalCluster
from voicefleet_models.voice_agent import VoiceAgentSpec
from voicefleet_operator.crd import openapi_schema

from ..helpers import voice_agent

US = {"url": "ws://127.0.0.1:7880", "credentialsSecret": "livekit-us"}
SIM = [{"provider": "simulated"}]
DEEPGRAM_KEY = {
    "name": "DEEPGRAM_API_KEY",
    "valueFrom": {"secretKeyRef": {"name": "k", "key": "d"}},
}
GOOGLE_KEY = {"name": "GOOGLE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "g"}}}


SPREAD = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
          "whenUnsatisfiable": "ScheduleAnyway"}  # fmt: skip


TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Today's weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "http": {"url": "https://tools.example.com/weather", "timeoutSeconds": 3},
}
WEATHER_HEADER = {"name": "Authorization", "fromEnv": "WEATHER_TOKEN"}
WEATHER_TOKEN = {
    "name": "WEATHER_TOKEN",
    "valueFrom": {"secretKeyRef": {"name": "weather", "key": "token"}},
}


def region(**fields: Any) -> dict[str, Any]:
    return {"name": "us-east", "livekit": US, **fields}


def pipeline(**stages: Any) -> dict[str, Any]:
    return {"stt": SIM, "llm": SIM, "tts": SIM, **stages}


INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "min above max",
        {"regions": [region(minReplicas=5, maxReplicas=2)]},
        "minReplicas must be less than or equal to maxReplicas",
    ),
    ("max zero", {"regions": [region(minReplicas=0, maxReplicas=0)]}, "maxReplicas"),
    ("no regions", {"regions": []}, "spec.regions"),
    ("duplicate regions", {"regions": [region(), region()]}, "region names must be unique"),
    ("region not a DNS label", {"regions": [region(name="US_East")]}, "spec.regions[0].name"),
    (
        "unknown stt provider",
        {"pipeline": pipeline(stt=[{"provider": "whisper"}])},
        'Unsupported value: "whisper"',
    ),
    (
        "unknown llm provider",
        {"pipeline": pipeline(llm=[{"provider": "claude"}])},
        'Unsupported value: "claude"',
    ),
    (
        "unknown tts provider",
        {"pipeline": pipeline(tts=[{"provider": "polly"}])},
        'Unsupported value: "polly"',
    ),
    (
        "unknown vad",
        {"pipeline": pipeline(vad={"provider": "webrtc"})},
        'Unsupported value: "webrtc"',
    ),
    ("empty stt list", {"pipeline": pipeline(stt=[])}, "spec.pipeline.stt"),
    ("empty llm list", {"pipeline": pipeline(llm=[])}, "spec.pipeline.llm"),
    ("empty tts list", {"pipeline": pipeline(tts=[])}, "spec.pipeline.tts"),
    (
        "zero sessions per worker",
        {"scaling": {"sessionsPerWorker": 0}},
        "spec.scaling.sessionsPerWorker",
    ),
    (
        "bad livekit scheme",
        {"regions": [region(livekit={**US, "url": "ftp://lk"})]},
        "spec.regions[0].livekit.url",
    ),
    (
        "temperature above 2",
        {"pipeline": pipeline(llm=[{"provider": "simulated", "temperature": 2.5}])},
        "spec.pipeline.llm[0].temperature",
    ),
    (
        "sample ratio zero",
        {"observability": {"traceSampleRatio": 0}},
        "spec.observability.traceSampleRatio",
    ),
    (
        "objective above 1",
        {"slo": {"voiceToVoiceObjective": 1.5}},
        "spec.slo.voiceToVoiceObjective",
    ),
    (
        "port out of range",
        {"observability": {"metricsPort": 70000}},
        "spec.observability.metricsPort",
    ),
    (
        "stabilization too long",
        {"scaling": {"scaleDownStabilizationSeconds": 4000}},
        "spec.scaling.scaleDownStabilizationSeconds",
    ),
    (
        "deepgram without key",
        {"pipeline": pipeline(stt=[{"provider": "deepgram"}])},
        "provider deepgram needs DEEPGRAM_API_KEY in env",
    ),
    (
        "google without key",
        {"pipeline": pipeline(llm=[{"provider": "google"}])},
        "provider google needs GOOGLE_API_KEY in env",
    ),
    (
        "openai without key",
        {"pipeline": pipeline(llm=[{"provider": "openai", "model": "gpt-4o-mini"}])},
        "provider openai needs OPENAI_API_KEY in env",
    ),
    (
        "selector label in podLabels",
        {"podLabels": {"voicefleet.io/region": "eu-west"}},
        "podLabels may not set voicefleet.io/*",
    ),
    (
        "managed-by label in podLabels",
        {"podLabels": {"app.kubernetes.io/managed-by": "helm"}},
        "podLabels may not set voicefleet.io/*",
    ),
    ("bad label value", {"podLabels": {"team": "voice team"}}, "spec.podLabels.team"),
    (
        "deletion cost in podAnnotations",
        {"podAnnotations": {"controller.kubernetes.io/pod-deletion-cost": "100"}},
        "podAnnotations may not set controller.kubernetes.io/pod-deletion-cost",
    ),
    (
        "toleration Exists with a value",
        {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]},
        "a toleration with operator Exists takes no value",
    ),
    (
        "region toleration without key",
        {"regions": [region(tolerations=[{"effect": "NoSchedule"}])]},
        "a toleration without a key must use operator Exists",
    ),
    (
        "tolerationSeconds without NoExecute",
        {"tolerations": [{"key": "k", "value": "v", "tolerationSeconds": 30}]},
        "tolerationSeconds needs effect NoExecute",
    ),
    (
        "minDomains with ScheduleAnyway",
        {"topologySpreadConstraints": [{**SPREAD, "minDomains": 2}]},
        "minDomains needs whenUnsatisfiable DoNotSchedule",
    ),
    (
        "selector expression In without values",
        {
            "topologySpreadConstraints": [
                {**SPREAD, "labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}
            ]
        },
        "operators In and NotIn need values",
    ),
    ("service account not a name", {"serviceAccountName": "Voice_SA"}, "spec.serviceAccountName"),
    ("not a quantity", {"resources": {"requests": {"cpu": "lots"}}}, "spec.resources.requests.cpu"),
    ("duplicate tool names", {"tools": [TOOL, TOOL]}, "tool names must be unique"),
    (
        "tool parameters not an object",
        {"tools": [{**TOOL, "parameters": {"type": "array"}}]},
        "tool parameters must be a JSON Schema object (type: object)",
    ),
    (
        "tool parameters without a type",
        {"tools": [{**TOOL, "parameters": {"properties": {}}}]},
        "spec.tools[0].parameters.type: Required value",
    ),
    (
        "tool url not http",
        {"tools": [{**TOOL, "http": {"url": "ftp://tools.example.com/weather"}}]},
        "tool url must be an http:// or https:// URL",
    ),
    (
        "tool timeout zero",
        {"tools": [{**TOOL, "http": {**TOOL["http"], "timeoutSeconds": 0}}]},
        "spec.tools[0].http.timeoutSeconds: Invalid value: 0: "
        "spec.tools[0].http.timeoutSeconds in body should be greater than 0",
    ),
    (
        "tool timeout too long",
        {"tools": [{**TOOL, "http": {**TOOL["http"], "timeoutSeconds": 120}}]},
        "spec.tools[0].http.timeoutSeconds in body should be less than or equal to 30",
    ),
    (
        "tool name not a function name",
        {"tools": [{**TOOL, "name": "get-weather"}]},
        "spec.tools[0].name in body should match",
    ),
    (
        "tool header with an inline value",
        {"tools": [{**TOOL, "http": {**TOOL["http"], "headers": [{"name": "X", "value": "v"}]}}]},
        'unknown field "spec.tools[0].http.headers[0].value"',
    ),
    ("unknown field", {"replicas": 3}, 'unknown field "spec.replicas"'),
    ("negative warm workers", {"scaling": {"warmWorkers": -1}}, "spec.scaling.warmWorkers"),
    ("missing image", {"image": ""}, "spec.image"),
]

VALID: list[tuple[str, dict[str, Any]]] = [
    ("minimal", {}),
    (
        "cloud providers with keys",
        {
            "pipeline": pipeline(
                stt=[{"provider": "deepgram"}, {"provider": "offline"}],
                llm=[{"provider": "google"}],
                tts=[{"provider": "deepgram"}],
            ),
            "env": [DEEPGRAM_KEY, GOOGLE_KEY],
        },
    ),
    (
        "two regions and full scaling",
        {
            "regions": [
                region(),
                region(
                    name="eu-west",
                    minReplicas=0,
                    maxReplicas=1,
                    nodeSelector={"topology.kubernetes.io/region": "eu"},
                ),
            ],
            "scaling": {
                "sessionsPerWorker": 4,
                "warmWorkers": 0,
                "headroomPercent": 50,
                "scaleUpStabilizationSeconds": 10,
                "scaleDownStabilizationSeconds": 60,
                "pollIntervalSeconds": 2,
            },
            "slo": {"voiceToVoiceSeconds": 1.0, "voiceToVoiceObjective": 0.99},
        },
    ),
    (
        "openai with its key",
        {
            "pipeline": pipeline(llm=[{"provider": "openai", "model": "gpt-4o-mini"}]),
            "env": [
                {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "o"}}}
            ],
        },
    ),
    (
        "every pod option",
        {
            "regions": [
                region(
                    nodeSelector={"pool": "voice"},
                    tolerations=[{"key": "pool", "value": "voice", "effect": "NoSchedule"}],
                )
            ],
            "serviceAccountName": "voice-worker",
            "imagePullSecrets": [{"name": "registry"}],
            "priorityClassName": "voice-critical",
            "tolerations": [
                {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
                {"key": "spot", "operator": "Exists"},
            ],
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": {"app": "x"}},
                            },
                        }
                    ]
                }
            },
            "topologySpreadConstraints": [
                {
                    **SPREAD,
                    "whenUnsatisfiable": "DoNotSchedule",
                    "minDomains": 2,
                    "matchLabelKeys": ["pod-template-hash"],
                },
            ],
            "podLabels": {"team": "voice", "app.kubernetes.io/part-of": "support"},
            "podAnnotations": {"sidecar.istio.io/inject": "false"},
            "resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": "2", "memory": "3Gi"}},
        },
    ),
    (
        "tools with a header from a Secret and the scripted LLM",
        {
            "tools": [
                {
                    **TOOL,
                    "http": {**TOOL["http"], "headers": [WEATHER_HEADER]},
                    "waitingLine": "One moment.",
                    "failureLine": "Sorry, no weather today.",
                },
                {
                    **TOOL,
                    "name": "check_order",
                    "http": {"url": "http://orders:8080/status", "method": "GET"},
                },
            ],
            "env": [WEATHER_TOKEN],
            "pipeline": pipeline(
                llm=[
                    {
                        "provider": "scripted",
                        "script": {
                            "rules": [
                                {
                                    "words": ["weather"],
                                    "tool": "get_weather",
                                    "arguments": {"city": "Paris", "days": 2},
                                    "reply": "It is {result}.",
                                }
                            ]
                        },
                    }
                ]
            ),
            "observability": {"traceToolContent": True},
        },
    ),
    (
        "openai compatible server",
        {
            "pipeline": pipeline(
                llm=[{"provider": "openai", "model": "llama3", "baseUrl": "http://vllm:8000/v1"}]
            ),
        },
    ),
]


@pytest.fixture(scope="module")
def namespace(cluster: LocalCluster, crd: None) -> str:
    cluster.kubectl("create", "namespace", "validation")
    return "validation"


def server_dry_run(cluster: LocalCluster, manifest: dict[str, Any]) -> str:
    return cluster.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=json.dumps(manifest)
    )


@pytest.mark.parametrize(("case", "spec", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_voice_agent_is_rejected(
    cluster: LocalCluster, namespace: str, case: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(KubectlError) as rejected:
        server_dry_run(cluster, voice_agent(f"bad-{len(case)}", namespace, **spec))
    assert message in str(rejected.value)


@pytest.mark.parametrize(("case", "spec"), VALID, ids=[c[0] for c in VALID])
def test_valid_voice_agent_is_accepted(
    cluster: LocalCluster, namespace: str, case: str, spec: dict[str, Any]
) -> None:
    out = server_dry_run(cluster, voice_agent("good", namespace, **spec))
    assert "voiceagent.voicefleet.io/good" in out


INVERTED: list[tuple[str, dict[str, Any], str]] = [
    (
        "replicas",
        {"regions": [region(minReplicas=5, maxReplicas=2)]},
        "minReplicas must be less than or equal to maxReplicas",
    ),
    (
        "endpointing delays",
        {
            "pipeline": pipeline(
                turn={"minEndpointingDelaySeconds": 2.0, "maxEndpointingDelaySeconds": 1.0}
            )
        },
        "minEndpointingDelaySeconds must be less than or equal to maxEndpointingDelaySeconds",
    ),
    (
        "cpu request and limit",
        {"resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": "1"}}},
        "each resources.requests value must be less than or equal to its resources.limits value",
    ),
    (
        "memory request and limit",
        {"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1024Mi"}}},
        "each resources.requests value must be less than or equal to its resources.limits value",
    ),
]


@pytest.mark.parametrize(("pair", "spec", "message"), INVERTED, ids=[c[0] for c in INVERTED])
def test_every_inverted_min_max_pair_gets_one_clear_message(
    cluster: LocalCluster, namespace: str, pair: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(KubectlError) as rejected:
        server_dry_run(cluster, voice_agent("inverted", namespace, **spec))
    error = str(rejected.value)
    assert error.count(message) == 1
    # One cause, not a cascade: the API server lists several as "* field: reason" lines.
    assert "\n* " not in error, error
    # The models agree, so a worker or the operator never sees what the API server let in.
    with pytest.raises(ValidationError, match=message):
        VoiceAgentSpec.model_validate(voice_agent(**spec)["spec"])


def test_a_config_map_reference_is_described_as_a_config_map() -> None:
    env = openapi_schema(VoiceAgentSpec)["properties"]["env"]["items"]
    ref = env["properties"]["valueFrom"]["properties"]["configMapKeyRef"]["properties"]
    assert ref["name"]["description"] == "ConfigMap name."
    assert "Secret" not in ref["key"]["description"]
