"""The API server itself rejects bad VoiceAgents, each with a message a person understands."""

from __future__ import annotations

import json
from typing import Any

import pytest

from voicefleet_devstack.cluster import KubectlError, LocalCluster

from ..helpers import voice_agent

US = {"url": "ws://127.0.0.1:7880", "credentialsSecret": "livekit-us"}
SIM = [{"provider": "simulated"}]
DEEPGRAM_KEY = {
    "name": "DEEPGRAM_API_KEY",
    "valueFrom": {"secretKeyRef": {"name": "k", "key": "d"}},
}
GOOGLE_KEY = {"name": "GOOGLE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "g"}}}


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
