"""Per-VoiceAgent SLO alerts: with the Prometheus Operator's API present, the operator renders
a PrometheusRule from spec.slo, and promtool accepts it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.process import binary

from ..conftest import RunningOperator
from ..helpers import eventually, voice_agent

NS = "slo"

# The part of the Prometheus Operator's CRD that matters here: the API is served.
PROMETHEUS_RULE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "PrometheusRule", "plural": "prometheusrules", "listKind":
                  "PrometheusRuleList", "singular": "prometheusrule"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        }}],
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def namespace(cluster: LocalCluster, operator: RunningOperator) -> str:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(PROMETHEUS_RULE_CRD))
    cluster.wait_established("prometheusrules.monitoring.coreos.com")
    cluster.kubectl("create", "namespace", NS)
    return NS


def test_slo_becomes_a_prometheus_rule(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    slo = {"voiceToVoiceSeconds": 1.0, "voiceToVoiceObjective": 0.99}
    agent = voice_agent("helpdesk", namespace, agentName="helpdesk-v2", slo=slo)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(agent))

    def rule() -> dict[str, Any] | None:
        out = cluster.kubectl("get", "prometheusrule", "helpdesk-slo", "-n", NS, "-o", "json",
                              "--ignore-not-found")  # fmt: skip
        return json.loads(out) if out.strip() else None

    rendered = eventually(rule)
    assert rendered["metadata"]["ownerReferences"][0]["name"] == "helpdesk"
    text = json.dumps(rendered["spec"])
    assert 'le=\\"1.0\\"' in text
    assert 'agent=\\"helpdesk-v2\\"' in text
    assert "0.99" in text
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump(rendered["spec"]))
    check = subprocess.run([binary("promtool"), "check", "rules", str(rule_file)],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_threshold_off_the_buckets_is_rejected(cluster: LocalCluster, namespace: str) -> None:
    agent = voice_agent("odd", namespace, slo={"voiceToVoiceSeconds": 1.2})
    out = cluster.kubectl("apply", "-f", "-", input=json.dumps(agent), check=False)
    assert "spec.slo.voiceToVoiceSeconds" in out
    assert "must be a latency bucket bound: 0.05, 0.1" in out
