"""The chart renders what it promises: lint, schema, security context, monitoring objects, and
the API server accepts every rendering (server-side dry run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_models.pricing import Pricing
from voicefleet_operator.chart import CHART, HelmError, helm, template

from .chart import MONITORING_APIS, find, objects
from .conftest import FIXTURES

ALL_OPTIONS = FIXTURES / "all-options.yaml"


SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())


def node(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return SCHEMA["definitions"][ref.rsplit("/", 1)[1]] if ref else schema


def leaves(values: dict[str, Any], schema: dict[str, Any] = SCHEMA, prefix: str = "") -> set[str]:
    """Dotted paths of the values down to the schema's leaves (free-form maps are leaves)."""
    found: set[str] = set()
    for key, value in values.items():
        assert key in schema["properties"], f"{prefix}{key} is not in values.schema.json"
        child = node(schema["properties"][key])
        if "properties" in child and isinstance(value, dict):
            found |= leaves(value, child, f"{prefix}{key}.")
        else:
            found.add(f"{prefix}{key}")
    return found


def test_lint_strict_with_defaults_and_every_option() -> None:
    helm("lint", "--strict", str(CHART))
    helm("lint", "--strict", str(CHART), "--values", str(ALL_OPTIONS))


def test_every_value_is_exercised_and_documented() -> None:
    defaults = leaves(yaml.safe_load((CHART / "values.yaml").read_text()))
    unset = defaults - leaves(yaml.safe_load(ALL_OPTIONS.read_text()))
    assert unset == set(), f"fixtures/all-options.yaml does not set {unset}"
    readme = (CHART / "README.md").read_text()
    undocumented = sorted(key for key in defaults if f"| `{key}` |" not in readme)
    assert undocumented == [], f"charts/voicefleet/README.md has no row for {undocumented}"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("imagee.tag=1", "at '': additional properties 'imagee' not allowed"),
        ("rbac.namspaced=true", "at '/rbac': additional properties 'namspaced' not allowed"),
        (
            "monitoring.serviceMonitor.intervall=1m",
            "at '/monitoring/serviceMonitor': additional properties 'intervall' not allowed",
        ),
        ("tolerations[0].efect=NoSchedule", "additional properties 'efect' not allowed"),
        ("logLevel=verbose", "at '/logLevel'"),
        ("pricing.agentMinute=-1", "at '/pricing/agentMinute'"),
        ("pricing.stt[0].provider=deepgram", "at '/pricing/stt/0': missing properties"),
    ],
)
def test_schema_names_the_wrong_value(setting: str, message: str) -> None:
    with pytest.raises(HelmError) as error:
        template(setting)
    assert message in str(error.value)


def test_namespaced_rbac_needs_namespaces() -> None:
    with pytest.raises(HelmError, match=r"rbac\.namespaced=true needs watchNamespaces"):
        template("rbac.namespaced=true")


def test_operator_pod_is_restricted_and_replicated() -> None:
    deployment = find(objects(template()), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    # A new replica starts (and stands by) before an old one stops and hands the lease over.
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["image"] == "ghcr.io/voicefleet/voicefleet-operator:0.1.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["memory"]


def test_options_reach_the_pod(tmp_path: Path) -> None:
    docs = objects(template(values_file=ALL_OPTIONS))
    container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == (
        "registry.example.com/voicefleet-operator@sha256:" + "0123456789abcdef" * 4
    )
    assert container["args"] == [
        "--metrics-port=9090",
        "--webhook-port=9091",
        "--leader-election-name=voicefleet-operator",
        "--no-network-policies",
        "--pricing-file=/etc/voicefleet/pricing.json",
        "--namespace=vf-team-a",
        "--namespace=vf-team-b",
    ]
    # The prices reach the operator as given, and a change of price restarts it.
    options = yaml.safe_load(ALL_OPTIONS.read_text())
    pricing = find(docs, "ConfigMap", "voicefleet-pricing")
    assert json.loads(pricing["data"]["pricing.json"]) == options["pricing"]
    assert Pricing.model_validate_json(pricing["data"]["pricing.json"]).currency == "EUR"
    annotations = find(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    cheaper = {**options["pricing"], "agentMinute": 0.001}
    values = tmp_path / "cheaper.yaml"
    values.write_text(yaml.safe_dump({**options, "pricing": cheaper}))
    changed = find(objects(template(values_file=values)), "Deployment")
    checksum = "voicefleet.io/pricing-checksum"
    assert changed["spec"]["template"]["metadata"]["annotations"][checksum] != annotations[checksum]
    assert annotations["example.com/owner"] == "voice-platform"
    assert {"name": "VOICEFLEET_LOG_LEVEL", "value": "debug"} in container["env"]
    # Namespaced RBAC: a Role in each watched namespace and nothing cluster-wide.
    kinds = {(doc["kind"], doc["metadata"].get("namespace")) for doc in docs}
    assert {("Role", "vf-team-a"), ("Role", "vf-team-b")} <= kinds
    assert not {kind for kind, _ in kinds} & {"ClusterRole", "ClusterRoleBinding"}


def kinds_of(rendered: str) -> list[str]:
    """Kinds of the objects, but for the pricing ConfigMap every release has."""
    docs = objects(rendered)
    return sorted(d["kind"] for d in docs if not d["metadata"]["name"].endswith("-pricing"))


MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_monitoring_follows_the_api_unless_told() -> None:
    monitoring = [kind for kind in kinds_of(template()) if kind in MONITORING_KINDS]
    assert monitoring == []
    with_api = kinds_of(template(api_versions=MONITORING_APIS))
    assert with_api.count("ServiceMonitor") == 2
    assert with_api.count("PrometheusRule") == 1
    assert with_api.count("ConfigMap") == 4
    off = ("serviceMonitor", "prometheusRule", "dashboards")
    forced_off = template(
        *(f"monitoring.{o}.enabled=false" for o in off), api_versions=MONITORING_APIS
    )
    assert MONITORING_KINDS.isdisjoint(kinds_of(forced_off))
    forced_on = kinds_of(template(*(f"monitoring.{o}.enabled=true" for o in off)))
    assert with_api == forced_on


def test_prometheus_rule_and_dashboards_carry_the_generated_files() -> None:
    docs = objects(template(api_versions=MONITORING_APIS, release="vf"))
    rules = yaml.safe_load((CHART / "files" / "rules.yaml").read_text())
    assert find(docs, "PrometheusRule")["spec"] == rules
    for path in sorted((CHART / "files" / "dashboards").glob("*.json")):
        config_map = find(docs, "ConfigMap", f"vf-dashboard-{path.stem}")
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(config_map["data"][path.name]) == json.loads(path.read_text())
    # The generated alerts select job="voicefleet-operator", whatever the release is called.
    monitor = find(docs, "ServiceMonitor", "vf-operator")
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    service = find(docs, "Service", "vf-operator")
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "voicefleet-operator"
    assert 'job="voicefleet-operator"' in (CHART / "files" / "rules.yaml").read_text()


def dry_run(cluster: LocalCluster, rendered: str) -> str:
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)


def test_server_accepts_the_default_rendering(
    cluster: LocalCluster, namespaces: Callable[..., None]
) -> None:
    namespaces("vf-render-default")
    out = dry_run(cluster, template(namespace="vf-render-default", release="vf-default"))
    assert "deployment.apps/vf-default-operator created (server dry run)" in out
    assert "clusterrole.rbac.authorization.k8s.io/vf-default-operator created" in out


def test_server_accepts_every_option(
    cluster: LocalCluster, monitoring_api: None, namespaces: Callable[..., None]
) -> None:
    namespaces("vf-render-all", "vf-team-a", "vf-team-b", "vf-grafana")
    rendered = template(namespace="vf-render-all", release="vf-all", values_file=ALL_OPTIONS)
    out = dry_run(cluster, rendered)
    for created in (
        "servicemonitor.monitoring.coreos.com/vf-all-workers",
        "prometheusrule.monitoring.coreos.com/vf-all-rules",
        "configmap/vf-all-dashboard-slo",
        "role.rbac.authorization.k8s.io/vf-all-operator",
        "deployment.apps/vf-all-operator",
    ):
        assert f"{created} created (server dry run)" in out


PRICE = "voicefleet:unit_price:configured"
COST_TEST = CHART.parents[1] / "dashboards" / "tests" / "cost_test.yaml"


def price_inputs() -> dict[frozenset[tuple[str, str]], float]:
    """The price series the cost rules' unit tests are given, as labels → price per unit."""
    first = yaml.safe_load(COST_TEST.read_text())["tests"][0]
    prices = {}
    for series in first["input_series"]:
        name, _, labels = series["series"].partition("{")
        if name == PRICE:
            pairs = (pair.split("=") for pair in labels.rstrip("}").split(", "))
            prices[frozenset((k, v.strip('"')) for k, v in pairs)] = float(
                series["values"].split("x")[0]
            )
    return prices


def rendered_prices(docs: list[dict[str, Any]]) -> dict[frozenset[tuple[str, str]], float]:
    groups = find(docs, "PrometheusRule")["spec"]["groups"]
    (group,) = [g for g in groups if g["name"] == "voicefleet-prices"]
    prices = {}
    for rule in group["rules"]:
        assert rule["record"] == PRICE
        numerator, denominator = rule["expr"].removeprefix("vector(").rstrip(")").split(" / ")
        prices[frozenset(rule["labels"].items())] = float(numerator) / float(denominator)
    return prices


def test_pricing_values_become_the_price_series_the_cost_rules_read() -> None:
    """Per provider, model and unit, one series whose value is the price of a single unit:
    exactly the series the cost rules' promtool tests are given for the same values."""
    docs = objects(template(values_file=FIXTURES / "pricing.yaml"))
    rendered, expected = rendered_prices(docs), price_inputs()
    assert rendered.keys() == expected.keys()
    for labels, price in expected.items():
        assert rendered[labels] == pytest.approx(price, rel=1e-9), dict(labels)


def test_no_prices_no_price_group() -> None:
    docs = objects(template("monitoring.prometheusRule.enabled=true"))
    groups = find(docs, "PrometheusRule")["spec"]["groups"]
    assert "voicefleet-prices" not in {g["name"] for g in groups}


def test_a_model_priced_twice_is_refused() -> None:
    twice = [f"pricing.tts[{i}].{key}" for i in (0, 1) for key in ("provider", "model")]
    values = [f"{key}={'cartesia' if key.endswith('provider') else 'sonic-2'}" for key in twice]
    values += ["pricing.tts[0].per1MCharacters=38", "pricing.tts[1].per1MCharacters=40"]
    with pytest.raises(HelmError, match=r"pricing\.tts prices cartesia/sonic-2 twice"):
        template("monitoring.prometheusRule.enabled=true", *values)


def test_replicas_elect_a_leader_with_a_lease_of_their_own() -> None:
    docs = objects(template())
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    env = {
        e["name"]: e.get("valueFrom", {}).get("fieldRef", {}) for e in pod["containers"][0]["env"]
    }
    assert env["POD_NAME"] == {"fieldPath": "metadata.name"}
    assert env["POD_NAMESPACE"] == {"fieldPath": "metadata.namespace"}
    spread = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert spread[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert find(docs, "PodDisruptionBudget", "voicefleet-operator")["spec"]["maxUnavailable"] == 1
    role = find(docs, "Role", "voicefleet-operator-leader")
    assert role["metadata"]["namespace"] == "voicefleet-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": ["voicefleet-operator"], "verbs": ["get", "update"]},
    ]  # fmt: skip
    # One replica: nothing to keep running during a drain, nothing to spread.
    single = objects(template("replicas=1"))
    assert "PodDisruptionBudget" not in kinds_of(template("replicas=1"))
    assert "affinity" not in find(single, "Deployment")["spec"]["template"]["spec"]


def test_the_webhook_has_a_port_and_a_service_port_of_its_own() -> None:
    docs = objects(template("webhookPort=9443"))
    container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--webhook-port=9443" in container["args"]
    assert {"name": "webhook", "containerPort": 9443} in container["ports"]
    ports = find(docs, "Service", "voicefleet-operator")["spec"]["ports"]
    assert {"name": "webhook", "port": 9443, "targetPort": "webhook"} in ports
    assert {"name": "metrics", "port": 8080, "targetPort": "metrics"} in ports


def test_the_operators_network_policy_admits_prometheus_and_webhooks_only() -> None:
    values = [
        "networkPolicy.prometheus.podSelector.matchLabels.app=prometheus",
        "networkPolicy.webhookFrom[0].ipBlock.cidr=203.0.113.0/24",
        "networkPolicy.apiServer.cidrs={10.0.0.1/32}",
        "networkPolicy.apiServer.ports={6443}",
    ]
    policy = find(objects(template(*values)), "NetworkPolicy", "voicefleet-operator")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    metrics, webhook = policy["ingress"]
    assert metrics["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert metrics["from"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "prometheus"}}}
    ]
    assert webhook == {"ports": [{"protocol": "TCP", "port": 8081}],
                       "from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}  # fmt: skip
    dns, api, livekit, workers = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert api == {
        "ports": [{"protocol": "TCP", "port": 6443}],
        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
    }
    assert livekit == {
        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 7880}]
    }
    assert workers["to"][0]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "voicefleet"}
    }


def test_network_policies_off_means_none_and_no_right_to_write_them() -> None:
    rendered = objects(template())
    rules = find(rendered, "ClusterRole")["rules"]
    assert any("networkpolicies" in r["resources"] for r in rules)
    off = objects(template("networkPolicy.enabled=false"))
    assert "NetworkPolicy" not in {doc["kind"] for doc in off}
    container = find(off, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--no-network-policies" in container["args"]
    assert not any("networkpolicies" in r["resources"] for r in find(off, "ClusterRole")["rules"])
