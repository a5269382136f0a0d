"""helm install, upgrade and uninstall against the local control plane; KWOK runs the pod."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_operator.chart import CHART, HelmError, helm

from ..helpers import eventually

RELEASE = "vf-helm"
NS = "vf-helm"
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"


def operator_pods(cluster: LocalCluster) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", NS, "-l", SELECTOR, "-o", "json")
    pods: list[dict[str, Any]] = json.loads(out)["items"]
    return pods


def ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return pod["status"].get("phase") == "Running" and conditions.get("Ready") == "True"


def running_pod(cluster: LocalCluster, replicas: int = 2) -> dict[str, Any] | None:
    """An operator pod once all `replicas` run and are ready (the standby too); None before,
    or while a rollout has more."""
    pods = operator_pods(cluster)
    return pods[0] if len(pods) == replicas and all(map(ready, pods)) else None


def exists(cluster: LocalCluster, *args: str) -> bool:
    return bool(cluster.kubectl("get", *args, "--ignore-not-found", "-o", "name").strip())


def test_install_upgrade_uninstall(cluster: LocalCluster, namespaces: Callable[..., None]) -> None:
    namespaces(NS, "vf-helm-team")
    # The restricted Pod Security Standard is enforced: a non-compliant pod would be refused.
    cluster.kubectl("label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted")
    kube = cluster.kubeconfig
    common = [str(CHART), f"--namespace={NS}", "--wait", "--timeout=120s"]

    notes = helm("install", RELEASE, *common, "--set=image.tag=test", kubeconfig=kube)
    assert f"rollout status deployment/{RELEASE}-operator" in notes
    pod = eventually(lambda: running_pod(cluster), timeout=60)
    assert pod["spec"]["containers"][0]["image"] == "ghcr.io/voicefleet/voicefleet-operator:test"
    assert exists(cluster, "clusterrole", f"{RELEASE}-operator")
    assert exists(cluster, "poddisruptionbudget", f"{RELEASE}-operator", "-n", NS)
    assert exists(cluster, "role", f"{RELEASE}-operator-leader", "-n", NS)

    # Changed values: namespaced RBAC for one team namespace, debug logs.
    changed = ["--set=rbac.namespaced=true", "--set=watchNamespaces={vf-helm-team}"]
    helm("upgrade", RELEASE, *common, *changed, "--set=logLevel=debug", kubeconfig=kube)
    pod = eventually(
        lambda: (
            (p := running_pod(cluster))
            and all("--namespace=vf-helm-team" in str(q["spec"]) for q in operator_pods(cluster))
            and p
        ),
        timeout=60,
    )
    container = pod["spec"]["containers"][0]
    assert {"name": "VOICEFLEET_LOG_LEVEL", "value": "debug"} in container["env"]
    assert container["image"] == "ghcr.io/voicefleet/voicefleet-operator:0.1.0"
    assert exists(cluster, "role", f"{RELEASE}-operator", "-n", "vf-helm-team")
    assert not exists(cluster, "clusterrole", f"{RELEASE}-operator")

    helm("uninstall", RELEASE, f"--namespace={NS}", "--wait", "--timeout=60s", kubeconfig=kube)
    for kind in ("deployment", "service", "serviceaccount"):
        assert not exists(cluster, kind, f"{RELEASE}-operator", "-n", NS)
    assert not exists(cluster, "role", f"{RELEASE}-operator", "-n", "vf-helm-team")
    eventually(lambda: operator_pods(cluster) == [], timeout=60)
    # Helm leaves CRDs in place, so VoiceAgents survive an uninstall.
    assert exists(cluster, "crd", "voiceagents.voicefleet.io")


def test_typo_in_values_fails_install(
    cluster: LocalCluster, namespaces: Callable[..., None]
) -> None:
    namespaces("vf-typo")
    args = ["install", "vf-typo", str(CHART), "--namespace=vf-typo"]
    with pytest.raises(HelmError) as error:
        helm(*args, "--set=monitoring.prometheusRule.enabeld=true", kubeconfig=cluster.kubeconfig)
    assert "additional properties 'enabeld' not allowed" in str(error.value)
    assert "/monitoring/prometheusRule" in str(error.value)
    releases = helm("list", "--namespace=vf-typo", "--short", kubeconfig=cluster.kubeconfig)
    assert releases.strip() == ""
