"""The operator against the real control plane: children appear, follow the spec, go away."""

from __future__ import annotations

import json
from typing import Any

import pytest

from voicefleet_devstack.cluster import LocalCluster

from ..conftest import RunningOperator
from ..helpers import eventually, voice_agent

NS = "reconcile"


@pytest.fixture(scope="module")
def namespace(cluster: LocalCluster, operator: RunningOperator) -> str:
    cluster.kubectl("create", "namespace", NS)
    return NS


def get(cluster: LocalCluster, kind: str, name: str) -> dict[str, Any] | None:
    out = cluster.kubectl("get", kind, name, "-n", NS, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def apply(cluster: LocalCluster, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def test_children_follow_the_spec(cluster: LocalCluster, namespace: str) -> None:
    agent = voice_agent("support", namespace, drainTimeoutSeconds=900)
    apply(cluster, agent)
    deployment = eventually(lambda: get(cluster, "deployment", "support-us-east"))
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["terminationGracePeriodSeconds"] > 900
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("VoiceAgent", "support", True)
    config = eventually(lambda: get(cluster, "configmap", "support-us-east"))
    rendered = json.loads(config["data"]["agent.json"])
    assert rendered["agentName"] == "support"
    assert rendered["region"] == "us-east"
    for kind in ("service", "poddisruptionbudget"):
        assert eventually(lambda kind=kind: get(cluster, kind, "support-us-east"))
    status = eventually(lambda: ready_status(cluster, "support"))
    assert status["agentName"] == "support"
    assert status["observedGeneration"] == 1

    # Worker pods run (KWOK plays the kubelet).
    eventually(lambda: get(cluster, "deployment", "support-us-east")["status"].get("readyReplicas"))


def ready_status(cluster: LocalCluster, name: str) -> dict[str, Any] | None:
    agent = get(cluster, "voiceagent", name) or {}
    status: dict[str, Any] = agent.get("status", {})
    ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
    return status if ready and ready[0]["status"] == "True" else None


def test_config_change_rolls_workers_and_region_removal_deletes(
    cluster: LocalCluster, namespace: str
) -> None:
    two_regions = [
        {"name": "us-east", "livekit": {"url": "ws://lk-us:7880", "credentialsSecret": "lk"}},
        {"name": "eu-west", "livekit": {"url": "ws://lk-eu:7880", "credentialsSecret": "lk"}},
    ]
    apply(cluster, voice_agent("multi", namespace, regions=two_regions))
    first = eventually(lambda: get(cluster, "deployment", "multi-eu-west"))
    annotation = "voicefleet.io/config-hash"
    old_hash = first["spec"]["template"]["metadata"]["annotations"][annotation]

    apply(cluster, voice_agent("multi", namespace, regions=two_regions, instructions="Be brief."))

    def rolled() -> bool:
        current = get(cluster, "deployment", "multi-eu-west") or {}
        meta = current.get("spec", {}).get("template", {}).get("metadata", {})
        return bool(meta.get("annotations", {}).get(annotation) not in (None, old_hash))

    eventually(rolled)
    apply(cluster, voice_agent("multi", namespace, regions=two_regions[:1]))
    for kind in ("deployment", "configmap", "service", "poddisruptionbudget"):
        eventually(lambda kind=kind: get(cluster, kind, "multi-eu-west") is None)
    assert get(cluster, "deployment", "multi-us-east") is not None


def test_deleting_the_voice_agent_removes_its_fleet(cluster: LocalCluster, namespace: str) -> None:
    apply(cluster, voice_agent("shortlived", namespace))
    eventually(lambda: get(cluster, "deployment", "shortlived-us-east"))
    cluster.kubectl("delete", "voiceagent", "shortlived", "-n", NS)

    def gone() -> bool:
        return all(
            get(cluster, kind, "shortlived-us-east") is None
            for kind in ("deployment", "configmap", "service", "poddisruptionbudget")
        )

    eventually(gone, timeout=60)


def test_operator_restart_converges_without_duplicates(
    cluster: LocalCluster, namespace: str, operator: RunningOperator
) -> None:
    apply(cluster, voice_agent("steady", namespace))
    eventually(lambda: ready_status(cluster, "steady"))
    before = owned(cluster, "steady")
    operator.process.stop()
    # While the operator is down the user changes the spec; on resume it must catch up.
    apply(cluster, voice_agent("steady", namespace, instructions="Changed while down."))
    operator.process.start()
    status = eventually(
        lambda: (s := ready_status(cluster, "steady")) and s["observedGeneration"] == 2 and s, 60
    )
    assert status["agentName"] == "steady"
    config = get(cluster, "configmap", "steady-us-east") or {}
    assert "Changed while down." in config["data"]["agent.json"]
    assert owned(cluster, "steady") == before


def owned(cluster: LocalCluster, agent: str) -> list[str]:
    """Kinds and names of everything labelled as the VoiceAgent's (pods excluded)."""
    out = cluster.kubectl(
        "get", "deployments,replicasets,configmaps,services,poddisruptionbudgets", "-n", NS,
        "-l", f"voicefleet.io/agent={agent}", "-o", "name",
    )  # fmt: skip
    return sorted(name for name in out.split() if not name.startswith("replicaset"))
