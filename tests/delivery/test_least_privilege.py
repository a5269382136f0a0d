"""The operator's RBAC is exactly what it uses, proven from the API server's audit log: the real
operator runs with the chart's ServiceAccount through every path that needs a grant, and each
granted (verb, group, resource, subresource) must appear among its requests, none refused."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from livekit import rtc

from voicefleet_devstack.cluster import AuditedRequest, LocalCluster
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import Process, free_port, port_open
from voicefleet_operator.chart import helm

from ..conftest import ROOT
from ..helpers import WorkerMetrics, eventually, livekit_secret, voice_agent
from ..operator.test_autoscaling import join_call
from .chart import objects
from .conftest import FIXTURES
from .test_rbac import install, service_account_kubeconfig


class Permission(NamedTuple):
    verb: str
    group: str
    resource: str
    subresource: str = ""

    def __str__(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {resource}.{self.group}" if self.group else f"{self.verb} {resource}"


# Grants no scenario below can exercise, each with why. Keep it tiny: a rarer path is driven,
# not excused.
NEVER_EXERCISED: dict[Permission, str] = {}


def granted(manifest: str) -> set[Permission]:
    """Every permission the release's Roles and ClusterRoles grant (resourceNames aside)."""
    rules = [
        rule
        for doc in objects(manifest)
        if doc["kind"] in ("Role", "ClusterRole")
        for rule in doc.get("rules", [])
    ]
    return {
        Permission(verb, group, *resource.partition("/")[::2])
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def permission(request: AuditedRequest, verb: str | None = None) -> Permission:
    return Permission(verb or request.verb, request.api_group, request.resource,
                      request.subresource)  # fmt: skip


def used(requests: list[AuditedRequest]) -> set[Permission]:
    """What the requests the authorizer allowed needed. A server-side apply that created its
    object (201) is a PATCH checked against `create` too."""
    allowed = [r for r in requests if r.resource and not r.refused]
    created = {permission(r, "create") for r in allowed if r.verb == "patch" and r.code == 201}
    return {permission(r) for r in allowed} | created


def verdict(grants: set[Permission], requests: list[AuditedRequest]) -> list[str]:
    """One line per problem: a grant never used, or a request refused."""
    unused = sorted(str(p) for p in grants - used(requests) - NEVER_EXERCISED.keys())
    refused = sorted({
        f"{permission(r) if r.resource else r.verb} {'/'.join(filter(None, (r.namespace, r.name)))}"
        for r in requests if r.refused
    })  # fmt: skip
    return [f"granted, never used: {p}" for p in unused] + [f"refused: {r}" for r in refused]


# -- the cluster and the operator ------------------------------------------------------------


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A control plane of its own that logs every request, with the VoiceAgent and
    PrometheusRule CRDs served."""
    local = LocalCluster(tmp_path_factory.mktemp("audited") / "cluster", audit=True)
    try:
        local.start()
        local.kubectl("apply", "-f", str(ROOT / "manifests" / "base" / "crd.yaml"))
        local.kubectl("apply", "-f", str(FIXTURES / "monitoring-crds.yaml"))
        for crd in ("voiceagents.voicefleet.io", "prometheusrules.monitoring.coreos.com"):
            local.wait_established(crd)
        yield local
    finally:
        local.stop()


class Release(NamedTuple):
    name: str
    team: str  # where the VoiceAgents live
    namespaced: bool

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.name}:{self.name}-operator"


def start_operator(cluster: LocalCluster, release: Release, kubeconfig: Path, log: Path) -> Process:
    """The real operator with the ServiceAccount's token: leader election, the webhook port
    and NetworkPolicies on, as the chart runs it."""
    port = free_port()
    scope = [f"--namespace={release.team}"] if release.namespaced else []
    command = [sys.executable, "-m", "voicefleet_operator.main", f"--metrics-port={port}",
               "--metrics-host=127.0.0.1", f"--webhook-port={free_port()}",
               "--webhook-host=127.0.0.1", f"--leader-election-namespace={release.name}",
               f"--leader-election-name={release.name}-operator", *scope]  # fmt: skip
    operator = Process(f"voicefleet-operator ({release.user})", command, log,
                       env={"KUBECONFIG": str(kubeconfig)}).start()  # fmt: skip
    operator.wait_until(lambda: port_open(port), 30, "serving /healthz")
    eventually(lambda: "leading: holding lease" in log.read_text(), timeout=30)
    return operator


# -- what the scenarios look at --------------------------------------------------------------


def get(cluster: LocalCluster, namespace: str, *args: str) -> dict[str, Any]:
    out = cluster.kubectl("get", *args, "-n", namespace, "-o", "json", "--ignore-not-found")
    found: dict[str, Any] = json.loads(out) if out.strip() else {}
    return found


def replicas(cluster: LocalCluster, namespace: str, deployment: str) -> int:
    return int(
        get(cluster, namespace, "deployment", deployment).get("spec", {}).get("replicas", -1)
    )


def serve_idle(cluster: LocalCluster, namespace: str, workers: WorkerMetrics) -> None:
    """Every running worker reports no sessions, so a scale-down may remove any of them."""
    for pod in get(cluster, namespace, "pods", "-l", "voicefleet.io/agent").get("items", []):
        if pod["status"].get("phase") == "Running" and pod["status"].get("podIP"):
            workers.serve(pod["status"]["podIP"], 0)


def scaled_to(
    cluster: LocalCluster, namespace: str, deployment: str, count: int, workers: WorkerMetrics
) -> Callable[[], bool]:
    def check() -> bool:
        serve_idle(cluster, namespace, workers)
        return replicas(cluster, namespace, deployment) == count

    return check


def repeats(cluster: LocalCluster, namespace: str, reason: str) -> int:
    """The highest series count of the operator's Events with `reason`."""
    items = get(cluster, namespace, "events.events.k8s.io").get("items", [])
    counts = [(e.get("series") or {}).get("count", 1) for e in items if e["reason"] == reason]
    return max(counts, default=0)


def fleet_agent(release: Release, server: LiveKitServer, port: int) -> dict[str, Any]:
    """Two regions on one LiveKit; one caller means two workers in each (a warm one)."""
    livekit = {"url": server.url, "credentialsSecret": "livekit"}
    regions = [{"name": name, "livekit": livekit, "minReplicas": 1, "maxReplicas": 3}
               for name in ("us", "eu")]  # fmt: skip
    scaling = {"sessionsPerWorker": 1, "warmWorkers": 1, "headroomPercent": 0,
               "scaleDownStabilizationSeconds": 3, "pollIntervalSeconds": 1}  # fmt: skip
    agent = voice_agent("fleet", release.team, agentName=f"lp-{release.name}", regions=regions,
                        scaling=scaling, observability={"metricsPort": port})  # fmt: skip
    return agent


def apply(cluster: LocalCluster, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


async def until(check: Callable[[], Any], seconds: float = 30) -> Any:
    """`eventually` off the event loop, which keeps the callers' connections alive."""
    return await asyncio.to_thread(eventually, check, seconds)


# -- the scenarios ---------------------------------------------------------------------------


async def first_leader(
    cluster: LocalCluster, release: Release, livekit: LiveKitServer, workers: WorkerMetrics
) -> rtc.Room:
    """Create, scale up, down and up again (the Event repeated), edit, drop a region.
    Returns the caller, still in its call."""
    team, agent = release.team, fleet_agent(release, livekit, workers.port)
    apply(cluster, agent)
    for region in ("us", "eu"):
        await until(scaled_to(cluster, team, f"fleet-{region}", 1, workers))
        for kind in ("service", "poddisruptionbudget", "networkpolicy"):
            cluster.kubectl("get", kind, f"fleet-{region}", "-n", team)
    await until(lambda: get(cluster, team, "prometheusrule", "fleet-slo"))
    caller = await join_call(livekit, f"{release.name}-1", agent["spec"]["agentName"])
    await until(scaled_to(cluster, team, "fleet-us", 2, workers))
    await caller.disconnect()
    # Idle workers marked with their deletion cost, then the fleet shrinks.
    await until(scaled_to(cluster, team, "fleet-us", 1, workers))
    caller = await join_call(livekit, f"{release.name}-2", agent["spec"]["agentName"])
    await until(lambda: repeats(cluster, team, "ScaledUp") >= 2)
    # A spec edit: a new worker configuration, the earlier one retired; the rule patched.
    agent["spec"]["instructions"] = "Answer in one sentence."
    agent["spec"]["slo"] = {"voiceToVoiceObjective": 0.9}
    agent["spec"]["regions"] = agent["spec"]["regions"][:1]
    apply(cluster, agent)
    await until(lambda: not get(cluster, team, "deployment", "fleet-eu"))
    for kind in ("service", "poddisruptionbudget", "networkpolicy"):
        await until(lambda: not get(cluster, team, kind, "fleet-eu"))  # noqa: B023
    return caller


async def next_leader(
    cluster: LocalCluster, release: Release, caller: rtc.Room, workers: WorkerMetrics
) -> None:
    """A new process repeats a decision the last one posted: it reads the Event back."""
    team = release.team
    await until(scaled_to(cluster, team, "fleet-us", 2, workers))
    await caller.disconnect()
    await until(scaled_to(cluster, team, "fleet-us", 1, workers))
    await until(lambda: repeats(cluster, team, "ScaledDown") >= 2)


def failing_reconcile(cluster: LocalCluster, release: Release, livekit: LiveKitServer) -> None:
    """A quota refuses a VoiceAgent's Service: kopf records its retry on the VoiceAgent."""
    team = release.team
    cluster.kubectl("create", "quota", "no-more-services", "--hard=services=0", "-n", team)
    blocked = voice_agent("blocked", team)
    blocked["spec"]["regions"][0]["livekit"] = {"url": livekit.url, "credentialsSecret": "livekit"}
    apply(cluster, blocked)

    def retrying() -> bool:
        annotations = get(cluster, team, "voiceagent", "blocked")["metadata"].get("annotations")
        return any(key.startswith("voicefleet.io/") for key in annotations or {})

    eventually(retrying)
    cluster.kubectl("delete", "voiceagent", "blocked", "-n", team)
    cluster.kubectl("delete", "quota", "no-more-services", "-n", team)


@pytest.fixture
def release(request: pytest.FixtureRequest, audited: LocalCluster) -> Release:
    namespaced: bool = request.param
    name = "lp-ns" if namespaced else "lp-cw"
    found = Release(name, f"{name}-team", namespaced)
    for namespace in (found.name, found.team):
        audited.kubectl("create", "namespace", namespace)
    watched = ["--set=rbac.namespaced=true", f"--set=watchNamespaces={{{found.team}}}"]
    install(audited, found.name, *(watched if namespaced else []))
    return found


@pytest.mark.parametrize(
    "release", [True, False], ids=["namespaced", "cluster-wide"], indirect=True
)
async def test_grants_are_what_the_operator_uses(
    audited: LocalCluster, release: Release, livekit: LiveKitServer, tmp_path: Path
) -> None:
    try:
        await run_scenarios(audited, release, livekit, tmp_path)
    except Exception as error:
        # A refused request is the likely reason a scenario stalled: say so beside it.
        if problems := audit_problems(audited, release):
            raise AssertionError(f"{error}\nthe audit log says:\n" + "\n".join(problems)) from error
        raise
    problems = audit_problems(audited, release)
    assert problems == [], "the chart's RBAC differs from what the operator uses:\n" + "\n".join(
        problems
    )


async def run_scenarios(
    cluster: LocalCluster, release: Release, livekit: LiveKitServer, tmp_path: Path
) -> None:
    """Every path that needs a grant, by two operator processes, one after the other."""
    livekit_secret(cluster, release.team, "livekit", livekit)
    kubeconfig = service_account_kubeconfig(
        cluster, release.name, f"{release.name}-operator", tmp_path / "sa"
    )
    workers = WorkerMetrics(free_port())
    caller: rtc.Room | None = None
    try:
        first = start_operator(cluster, release, kubeconfig, tmp_path / "first.log")
        try:
            caller = await first_leader(cluster, release, livekit, workers)
        finally:
            await asyncio.to_thread(first.stop)  # cleanly: the Lease is handed back
        second = await asyncio.to_thread(
            start_operator, cluster, release, kubeconfig, tmp_path / "second.log"
        )
        try:
            await next_leader(cluster, release, caller, workers)
            await asyncio.to_thread(failing_reconcile, cluster, release, livekit)
            cluster.kubectl("delete", "voiceagent", "fleet", "-n", release.team)
            await until(lambda: not get(cluster, release.team, "deployment", "fleet-us"))
        finally:
            await asyncio.to_thread(second.stop)
    finally:
        if caller is not None:
            await caller.disconnect()
        workers.close()


def audit_problems(cluster: LocalCluster, release: Release) -> list[str]:
    """The verdict on what the release's chart granted against what the operator asked."""
    manifest = helm("get", "manifest", release.name, f"--namespace={release.name}",
                    kubeconfig=cluster.kubeconfig)  # fmt: skip
    return verdict(granted(manifest), cluster.audited_requests(release.user))


def test_the_verdict_names_unused_grants_and_refusals() -> None:
    """The comparison itself, on a made-up log: what it must report, and what it must not."""
    role = {"kind": "Role", "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
    ]}  # fmt: skip

    def request(verb: str, resource: str, code: int, decision: str = "allow") -> AuditedRequest:
        return AuditedRequest(verb, "", resource, "", "team", "x", code, decision)

    applied = [request("patch", "configmaps", 201), request("list", "configmaps", 200)]
    refused = request("get", "secrets", 403, "forbid")
    # Admission's refusal (a quota) is no authorization problem.
    quota = request("patch", "configmaps", 403)
    assert verdict(granted(json.dumps(role)), [*applied, refused, quota]) == [
        "granted, never used: patch deployments/scale.apps",
        "refused: get secrets team/x",
    ]
