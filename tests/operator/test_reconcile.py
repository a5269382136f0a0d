"""The operator against the real control plane: children appear, follow the spec, go away."""

from __future__ import annotations

import json
from typing import Any

import pytest

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_operator.render import config_in_use

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
    config = eventually(lambda: get(cluster, "configmap", mounted_config(deployment)))
    assert config["immutable"] is True
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
    old_config = mounted_config(first)

    apply(cluster, voice_agent("multi", namespace, regions=two_regions, instructions="Be brief."))

    def rolled() -> str | None:
        config = mounted_config(get(cluster, "deployment", "multi-eu-west") or {})
        return config if config not in (None, old_config) else None

    new_config = eventually(rolled)
    # The old configuration stays as it was for the workers that still run it.
    assert (
        json.loads(get(cluster, "configmap", old_config)["data"]["agent.json"])["instructions"]
        != "Be brief."
    )
    assert "Be brief." in get(cluster, "configmap", new_config)["data"]["agent.json"]
    apply(cluster, voice_agent("multi", namespace, regions=two_regions[:1]))
    for kind in ("deployment", "service", "poddisruptionbudget"):
        eventually(lambda kind=kind: get(cluster, kind, "multi-eu-west") is None)
    eventually(lambda: not region_configs(cluster, "multi", "eu-west"))
    assert get(cluster, "deployment", "multi-us-east") is not None


def test_deleting_the_voice_agent_removes_its_fleet(cluster: LocalCluster, namespace: str) -> None:
    apply(cluster, voice_agent("shortlived", namespace))
    eventually(lambda: get(cluster, "deployment", "shortlived-us-east"))
    cluster.kubectl("delete", "voiceagent", "shortlived", "-n", NS)

    def gone() -> bool:
        return not region_configs(cluster, "shortlived", "us-east") and all(
            get(cluster, kind, "shortlived-us-east") is None
            for kind in ("deployment", "service", "poddisruptionbudget")
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
    deployment = eventually(lambda: get(cluster, "deployment", "steady-us-east"))
    config = get(cluster, "configmap", mounted_config(deployment)) or {}
    assert "Changed while down." in config["data"]["agent.json"]
    # The same objects, but for the worker configuration: a new one, the old one retired once
    # no pod mounts it.
    eventually(lambda: owned(cluster, "steady") == before)
    eventually(
        lambda: (
            region_configs(cluster, "steady", "us-east")
            == [mounted_config(get(cluster, "deployment", "steady-us-east") or {})]
        ),
        timeout=60,
    )


def owned(cluster: LocalCluster, agent: str) -> list[str]:
    """Kinds and names of what is labelled as the VoiceAgent's, but for pods and the worker
    configurations (named by content: see region_configs)."""
    kinds = "deployments,replicasets,services,poddisruptionbudgets"
    out = cluster.kubectl(
        "get", kinds, "-n", NS, "-l", f"voicefleet.io/agent={agent}", "-o", "name"
    )
    return sorted(name for name in out.split() if not name.startswith("replicaset"))


def mounted_config(deployment: dict[str, Any]) -> str | None:
    return config_in_use(deployment.get("spec", {}).get("template", {}))


def region_configs(cluster: LocalCluster, agent: str, region: str) -> list[str]:
    """Names of the region's worker configurations."""
    selector = f"voicefleet.io/agent={agent},voicefleet.io/region={region}"
    out = cluster.kubectl("get", "configmaps", "-n", NS, "-l", selector, "-o", "name")
    return sorted(name.removeprefix("configmap/") for name in out.split())
