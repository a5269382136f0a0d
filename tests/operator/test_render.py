"""Rendering of a region's objects as pure functions of the spec."""

from __future__ import annotations

import json
from typing import Any

from voicefleet_agent.config import AgentConfig
from voicefleet_operator.render import Owner, config_in_use, region_objects
from voicefleet_operator.spec import VoiceAgentSpec

from ..helpers import voice_agent

OWNER = Owner("support", "voice", "uid-1")


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
