"""The kustomize install and the example VoiceAgents, and the copies the chart and the base keep
of generated files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_operator.chart import BASE, CHART, ROOT, base_manifest

from ..helpers import eventually
from .chart import objects

MANIFESTS = ROOT / "manifests"
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))
# The VoiceAgent of the custom-code example (examples/clinic) is checked the same way.
APPLIED = [*EXAMPLES, ROOT / "examples" / "clinic" / "voiceagent.yaml"]
GENERATED = ROOT / "dashboards" / "generated"


def test_kustomize_base_is_the_chart_rendering() -> None:
    assert BASE.read_text() == base_manifest(), (
        "manifests/base/operator.yaml is stale: run `make generate`"
    )


def test_chart_copies_of_generated_files_are_current() -> None:
    crd = (MANIFESTS / "base" / "crd.yaml").read_text()
    assert [p.name for p in (CHART / "crds").iterdir()] == ["voiceagents.voicefleet.io.yaml"]
    assert (CHART / "crds" / "voiceagents.voicefleet.io.yaml").read_text() == crd
    copies = {
        GENERATED / "rules.yaml": CHART / "files" / "rules.yaml",
        **{path: CHART / "files" / "dashboards" / path.name for path in GENERATED.glob("*.json")},
    }
    stale = [
        str(c.relative_to(ROOT)) for g, c in copies.items() if c.read_bytes() != g.read_bytes()
    ]
    assert stale == [], f"run `make generate`: stale chart copies {stale}"
    extra = {p.name for p in (CHART / "files" / "dashboards").iterdir()} - {
        p.name for p in GENERATED.glob("*.json")
    }
    assert extra == set(), f"chart dashboards without a generated source: {extra}"


def kustomize(cluster: LocalCluster) -> list[dict[str, Any]]:
    return objects(cluster.kubectl("kustomize", str(MANIFESTS)))


@pytest.fixture
def kustomize_install(cluster: LocalCluster) -> Iterator[None]:
    """`kubectl apply -k manifests/`; removed afterwards except the CRD, which other tests use."""
    cluster.kubectl("apply", "-k", str(MANIFESTS))
    try:
        yield
    finally:
        cluster.kubectl("delete", "namespace", "voicefleet-system", "--wait=false")
        for kind in ("clusterrolebinding", "clusterrole"):
            cluster.kubectl("delete", kind, "voicefleet-operator", "--ignore-not-found")


def test_apply_k_installs_a_running_operator(
    cluster: LocalCluster, kustomize_install: None
) -> None:
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in kustomize(cluster))
    assert kinds == [
        ("ClusterRole", "voicefleet-operator"),
        ("ClusterRoleBinding", "voicefleet-operator"),
        ("ConfigMap", "voicefleet-pricing"),
        ("CustomResourceDefinition", "voiceagents.voicefleet.io"),
        ("Deployment", "voicefleet-operator"),
        ("Namespace", "voicefleet-system"),
        ("NetworkPolicy", "voicefleet-operator"),
        ("PodDisruptionBudget", "voicefleet-operator"),
        ("Role", "voicefleet-operator-leader"),
        ("RoleBinding", "voicefleet-operator-leader"),
        ("Service", "voicefleet-operator"),
        ("ServiceAccount", "voicefleet-operator"),
    ]

    def running() -> bool:
        out = cluster.kubectl("get", "pods", "-n", "voicefleet-system", "-o", "json")
        phases = [pod["status"].get("phase") for pod in json.loads(out)["items"]]
        return phases == ["Running", "Running"]  # the leader and its standby

    # The namespace enforces the restricted Pod Security Standard; KWOK plays the kubelet.
    eventually(running, timeout=60)
    account = "system:serviceaccount:voicefleet-system:voicefleet-operator"
    can = cluster.kubectl("auth", "can-i", "patch", "voiceagents.voicefleet.io", f"--as={account}")
    assert can.strip() == "yes"


def example_namespaces() -> set[str]:
    return {
        doc["metadata"]["namespace"]
        for path in EXAMPLES
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }


@pytest.mark.parametrize(
    "example", APPLIED, ids=lambda path: Path(path).parent.name + "/" + Path(path).stem
)
def test_example_is_accepted_by_the_api_server(
    cluster: LocalCluster, crd: None, namespaces: Callable[..., None], example: Path
) -> None:
    docs = [doc for doc in yaml.safe_load_all(example.read_text()) if doc]
    assert [doc["kind"] for doc in docs] == ["VoiceAgent"]
    namespaces(docs[0]["metadata"]["namespace"])
    out = cluster.kubectl("apply", "--dry-run=server", "-f", str(example))
    assert f"voiceagent.voicefleet.io/{docs[0]['metadata']['name']} created" in out


def test_the_examples_are_all_there() -> None:
    names = [path.name for path in EXAMPLES]
    assert names == [
        "multi-region-production.yaml",
        "offline-demo.yaml",
        "single-region-dev.yaml",
    ]
    assert len(example_namespaces()) == len(names), "each example has a namespace of its own"
    production = yaml.safe_load(
        (MANIFESTS / "examples" / "multi-region-production.yaml").read_text()
    )
    assert len(production["spec"]["regions"]) == 2
    keys = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in production["spec"]["env"]}
    assert set(keys) == {"DEEPGRAM_API_KEY", "GOOGLE_API_KEY"}
