"""The operator's RBAC: everything it needs, nothing more. `kubectl auth can-i` asks the API
server as the ServiceAccount; the last test runs the real operator with that account's token."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.process import Process, free_port, port_open
from voicefleet_operator.chart import CHART, helm

from ..helpers import eventually, voice_agent

Needs = list[tuple[str, ...]]
# Server-side apply (a PATCH that may create), listed to prune, deleted.
APPLIED = ("list", "create", "patch", "delete")
# What the operator does (handlers.py, autoscaler.py, kube.py, kopf), written down here
# independently of the chart: (verb, resource[, subresource]). test_least_privilege.py checks
# the chart against the requests the operator really makes.
NEEDS: Needs = [
    *((verb, "voiceagents.voicefleet.io") for verb in ("list", "watch", "patch")),
    ("patch", "voiceagents.voicefleet.io", "status"),
    *((verb, "deployments.apps") for verb in ("list", "watch", "create", "patch", "delete")),
    *((verb, kind) for verb in APPLIED for kind in ("configmaps", "services")),
    *((verb, "poddisruptionbudgets.policy") for verb in APPLIED),
    *((verb, "prometheusrules.monitoring.coreos.com") for verb in ("create", "patch")),
    *((verb, "pods") for verb in ("list", "watch", "patch")),
    ("get", "secrets"),
    *((verb, "events.events.k8s.io") for verb in ("create", "get", "patch")),
    *((verb, "networkpolicies.networking.k8s.io") for verb in APPLIED),
]


def lease_needs(release: str) -> Needs:
    """Leader election, in the release namespace: the Lease created, then read and renewed."""
    lease = f"leases.coordination.k8s.io/{release}-operator"
    return [("create", "leases.coordination.k8s.io"), ("get", lease), ("update", lease)]


def lease_never(release: str) -> Needs:
    """Another Lease, or the Lease by other verbs: never."""
    return [
        ("get", "leases.coordination.k8s.io/kube-controller-manager"),
        ("update", "leases.coordination.k8s.io/someone-else"),
        ("list", "leases.coordination.k8s.io"),
        ("watch", "leases.coordination.k8s.io"),
        ("delete", f"leases.coordination.k8s.io/{release}-operator"),
        ("patch", f"leases.coordination.k8s.io/{release}-operator"),
    ]


# Namespaced things it must never do.
NEVER: Needs = [
    # One LIST would return every Secret in scope: the operator reads the one it is named.
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "secrets"),
    ("patch", "secrets"),
    ("delete", "secrets"),
    ("create", "pods"),
    ("delete", "pods"),
    ("create", "pods", "exec"),
    ("update", "deployments.apps"),
    ("create", "voiceagents.voicefleet.io"),
    ("delete", "voiceagents.voicefleet.io"),
    ("patch", "voiceagents.voicefleet.io", "scale"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("create", "serviceaccounts", "token"),
    # Leases belong to the release namespace alone.
    ("create", "leases.coordination.k8s.io"),
    ("update", "leases.coordination.k8s.io"),
    ("*", "*"),
]
# Cluster-scoped things it must never do, whatever the mode.
NEVER_CLUSTER: Needs = [
    ("delete", "namespaces"),
    ("create", "namespaces"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("patch", "nodes"),
    ("impersonate", "users"),
    ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
]


def can(cluster: LocalCluster, account: str, need: tuple[str, ...], *where: str) -> bool:
    verb, resource, *sub = need
    args = ["auth", "can-i", verb, resource, f"--as={account}", *where]
    args += [f"--subresource={sub[0]}"] if sub else []
    answer = cluster.kubectl(*args, check=False).strip().splitlines()
    return bool(answer) and answer[-1] == "yes"


def denied(cluster: LocalCluster, account: str, needs: Needs, *where: str) -> Needs:
    return [need for need in needs if not can(cluster, account, need, *where)]


def allowed(cluster: LocalCluster, account: str, needs: Needs, *where: str) -> Needs:
    return [need for need in needs if can(cluster, account, need, *where)]


def install(cluster: LocalCluster, release: str, *values: str) -> str:
    """Install a release into a namespace of its own name; the operator's user name."""
    helm("install", release, str(CHART), f"--namespace={release}", *values,
         kubeconfig=cluster.kubeconfig)  # fmt: skip
    return f"system:serviceaccount:{release}:{release}-operator"


def uninstall(cluster: LocalCluster, release: str) -> None:
    helm("uninstall", release, f"--namespace={release}", "--wait", kubeconfig=cluster.kubeconfig)


def test_cluster_wide_mode(
    cluster: LocalCluster, monitoring_api: None, namespaces: Callable[..., None]
) -> None:
    namespaces("vf-rbac-cw", "vf-rbac-cw-team")
    account = install(cluster, "vf-rbac-cw")
    try:
        assert denied(cluster, account, NEEDS, "-n", "vf-rbac-cw-team") == []
        assert denied(cluster, account, NEEDS, "--all-namespaces") == []
        assert allowed(cluster, account, NEVER, "-n", "vf-rbac-cw-team") == []
        assert allowed(cluster, account, NEVER_CLUSTER) == []
        assert denied(cluster, account, lease_needs("vf-rbac-cw"), "-n", "vf-rbac-cw") == []
        assert allowed(cluster, account, lease_never("vf-rbac-cw"), "-n", "vf-rbac-cw") == []
    finally:
        uninstall(cluster, "vf-rbac-cw")


def test_namespaced_mode(
    cluster: LocalCluster, monitoring_api: None, namespaces: Callable[..., None]
) -> None:
    namespaces("vf-rbac-ns", "vf-rbac-team-a", "vf-rbac-team-b", "vf-rbac-other")
    watched = "--set=watchNamespaces={vf-rbac-team-a,vf-rbac-team-b}"
    account = install(cluster, "vf-rbac-ns", "--set=rbac.namespaced=true", watched)
    try:
        for team in ("vf-rbac-team-a", "vf-rbac-team-b"):
            assert denied(cluster, account, NEEDS, "-n", team) == []
            assert allowed(cluster, account, NEVER, "-n", team) == []
        # Outside the watched namespaces, nothing at all: no Secrets, no VoiceAgents.
        for where in (("-n", "vf-rbac-other"), ("-n", "vf-rbac-ns"), ("--all-namespaces",)):
            assert allowed(cluster, account, NEEDS, *where) == []
        assert allowed(cluster, account, NEVER_CLUSTER) == []
        assert denied(cluster, account, lease_needs("vf-rbac-ns"), "-n", "vf-rbac-ns") == []
        assert allowed(cluster, account, lease_never("vf-rbac-ns"), "-n", "vf-rbac-ns") == []
        assert allowed(cluster, account, lease_needs("vf-rbac-ns"), "-n", "vf-rbac-other") == []
    finally:
        uninstall(cluster, "vf-rbac-ns")


def service_account_kubeconfig(
    cluster: LocalCluster, namespace: str, name: str, path: Path
) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, as the pod's token would."""
    token = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=1h").strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": cluster.server,
            "certificate-authority": str(cluster.workdir / "pki" / "apiserver.crt")}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": name}}],
        "current-context": "sa",
    }  # fmt: skip
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def namespaced_install(cluster: LocalCluster, namespaces: Callable[..., None]) -> Iterator[str]:
    namespaces("vf-live", "vf-live-team")
    install(
        cluster, "vf-live", "--set=rbac.namespaced=true", "--set=watchNamespaces={vf-live-team}"
    )
    try:
        yield "vf-live-team"
    finally:
        uninstall(cluster, "vf-live")


def test_operator_runs_with_namespaced_rbac(
    cluster: LocalCluster, crd: None, namespaced_install: str, tmp_path: Path
) -> None:
    team = namespaced_install
    kubeconfig = service_account_kubeconfig(cluster, "vf-live", "vf-live-operator", tmp_path / "sa")
    cluster.kubectl("create", "secret", "generic", "livekit-us", "-n", team,
                    "--from-literal=api-key=key", "--from-literal=api-secret=secret")  # fmt: skip
    # Nothing listens on this LiveKit URL: the operator reads the Secret, fails to reach
    # LiveKit and records that, all within the account's rights.
    livekit = {"url": f"ws://127.0.0.1:{free_port()}", "credentialsSecret": "livekit-us"}
    region = {"name": "us-east", "minReplicas": 1, "maxReplicas": 3, "livekit": livekit}
    agent = voice_agent("live", team, regions=[region])
    cluster.kubectl("apply", "-f", "-", input=json.dumps(agent))
    port = free_port()
    # The Lease lives in the release's namespace, as the pod's own namespace in-cluster.
    command = [sys.executable, "-m", "voicefleet_operator.main", f"--metrics-port={port}",
               "--metrics-host=127.0.0.1", f"--namespace={team}",
               f"--webhook-port={free_port()}", "--webhook-host=127.0.0.1",
               "--leader-election-namespace=vf-live",
               "--leader-election-name=vf-live-operator"]  # fmt: skip
    log = tmp_path / "operator.log"
    operator = Process("voicefleet-operator (ServiceAccount)", command, log,
                       env={"KUBECONFIG": str(kubeconfig)}).start()  # fmt: skip
    try:
        operator.wait_until(lambda: port_open(port), 30, "serving /healthz")
        eventually(lambda: "Handler 'reconcile' succeeded" in log.read_text(), timeout=30)
        for kind in ("deployment", "service", "poddisruptionbudget"):
            cluster.kubectl("get", kind, "live-us-east", "-n", team)
        # The worker configuration is named by its content.
        selector = "voicefleet.io/agent=live,voicefleet.io/region=us-east"
        assert cluster.kubectl("get", "configmap", "-n", team, "-l", selector, "-o", "name")
        eventually(lambda: livekit_condition(cluster, team), timeout=60)
        cluster.kubectl("delete", "voiceagent", "live", "-n", team, "--timeout=60s")
    finally:
        operator.stop()
    refused = [line for line in log.read_text().splitlines() if forbidden(line)]
    assert refused == [], "\n".join(refused[:5])


def forbidden(line: str) -> bool:
    return "forbidden" in line.lower() or " 403" in line


def livekit_condition(cluster: LocalCluster, namespace: str) -> dict[str, str] | None:
    """The VoiceAgent's LiveKitReachable condition, once written; it must not say Forbidden."""
    out = cluster.kubectl("get", "voiceagent", "live", "-n", namespace, "-o", "json")
    for condition in json.loads(out).get("status", {}).get("conditions", []):
        if condition["type"] == "LiveKitReachable":
            assert "forbidden" not in condition.get("message", "").lower(), condition
            return dict(condition)
    return None
