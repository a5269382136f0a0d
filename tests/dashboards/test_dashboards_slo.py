"""The per-VoiceAgent PrometheusRule: thresholds, objectives, validation, and how it replaces
the fleet-wide defaults for its agent."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import utils

from tests.dashboards.support import DOCS_METRICS_BUCKETS, GENERATED, Run
from voicefleet_dashboards import SLOInput, prometheus_rule
from voicefleet_dashboards.metrics import BUCKETS, le
from voicefleet_dashboards.promql import metric_names
from voicefleet_dashboards.slo import LATENCY_ALERT, OVERRIDE

# How prometheus-client writes a bucket bound into `le` (the function is untyped).
client_le: Callable[[float], str] = utils.floatToGoString
SPEC = SLOInput(
    voice_to_voice_seconds=1, voice_to_voice_objective=0.99, session_success_objective=0.9995
)


def rules_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in manifest["spec"]["groups"] for rule in group["rules"]]


def test_manifest_is_a_prometheus_rule_for_the_agent() -> None:
    manifest = prometheus_rule("voice", "support", SPEC, labels={"release": "monitoring"})
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["name"] == "support-slo"
    assert manifest["metadata"]["namespace"] == "voice"
    assert manifest["metadata"]["labels"]["release"] == "monitoring"
    assert manifest["metadata"]["labels"]["voicefleet.io/agent"] == "support"


def test_threshold_and_objectives_appear_in_the_rules() -> None:
    rules = rules_of(prometheus_rule("voice", "support", SPEC))
    exprs = "\n".join(r["expr"] for r in rules)
    assert 'le="1.0"' in exprs
    assert 'le="1.5"' not in exprs
    assert "/ 0.01\n" in exprs + "\n"  # latency budget: 1 - 0.99
    assert "/ 0.0005" in exprs  # session budget: 1 - 0.9995
    objectives = {
        r["labels"]["slo"]: r["expr"]
        for r in rules
        if r.get("record", "").endswith("slo_objective:ratio")
    }
    assert objectives["voice-to-voice-latency"].startswith("0.99 * ")
    assert objectives["session-success"].startswith("0.9995 * ")
    descriptions = [r["annotations"]["description"] for r in rules if "alert" in r]
    assert any("99% of turns within 1 s" in d for d in descriptions)
    assert any("99.95% of sessions" in d for d in descriptions)
    assert {
        r["labels"]["threshold"]
        for r in rules
        if r.get("labels", {}).get("slo") == "voice-to-voice-latency"
    } == {"1.0"}


def test_every_selector_is_scoped_to_the_agent() -> None:
    rules = rules_of(prometheus_rule("voice", "support", SPEC, agent_label="support-line"))
    for rule in rules[1:]:
        selectors = re.findall(r"([a-z_:]+)\{([^}]*)\}", rule["expr"])
        assert selectors, rule
        for _, matchers in selectors:
            assert 'namespace="voice"' in matchers, rule
            assert 'agent="support-line"' in matchers, rule
        assert "unless" not in rule["expr"]
    assert rules[0] == {
        "record": OVERRIDE,
        "expr": "vector(1)",
        "labels": {"namespace": "voice", "agent": "support-line"},
    }


@pytest.mark.parametrize("seconds", [1.2, 0, 0.25, 11, 15])
def test_a_threshold_between_buckets_is_refused(seconds: float) -> None:
    with pytest.raises(
        ValueError, match=r"voiceToVoiceSeconds must be one of .*0\.05, 0\.1, .*1\.5, 2, 3, 5, 10"
    ):
        SLOInput(voice_to_voice_seconds=seconds)


@pytest.mark.parametrize("field", ["voice_to_voice_objective", "session_success_objective"])
@pytest.mark.parametrize("value", [0, -0.5, 1.01])
def test_an_objective_outside_zero_one_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match="must be in \\(0, 1\\]"):
        SLOInput(**{field: value})


def test_every_bucket_bound_is_accepted_and_written_as_the_client_does() -> None:
    assert tuple(BUCKETS) == DOCS_METRICS_BUCKETS
    for bound in BUCKETS:
        manifest = prometheus_rule("voice", "support", SLOInput(voice_to_voice_seconds=bound))
        assert f'le="{client_le(bound)}"' in rules_of(manifest)[1]["expr"]
        assert le(bound) == client_le(bound)


def test_promtool_accepts_the_rendered_rules(
    run_promtool: Run, tmp_path: Path, allowed_names: set[str]
) -> None:
    manifest = prometheus_rule("voice", "support", SPEC)
    path = tmp_path / "support-slo.yaml"
    path.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    for rule in rules_of(manifest):
        assert metric_names(rule["expr"]) <= allowed_names, rule


def sample(metric: str, agent: str, threshold: str, value: float) -> dict[str, Any]:
    labels = f'namespace="voice", agent="{agent}", slo="voice-to-voice-latency"'
    if metric == "ALERTS":
        labels = f'alertname="{LATENCY_ALERT}", alertstate="firing", severity="page", {labels}'
    return {"labels": f'{metric}{{{labels}, threshold="{threshold}"}}', "value": value}


def test_agent_rules_replace_the_fleet_defaults(run_promtool: Run, tmp_path: Path) -> None:
    """support has its own SLO (1 s, 99%), sales has none: each pages exactly once, with its
    own threshold, although both have every turn slower than 1.5 s."""
    groups = prometheus_rule("voice", "support", SPEC)["spec"]["groups"]
    agent_rules = tmp_path / "support-slo.yaml"
    agent_rules.write_text(yaml.safe_dump({"groups": groups}))
    series = []
    for agent in ("support", "sales"):
        labels = f'namespace="voice", agent="{agent}", region="eu"'
        histogram = f"voicefleet_agent_voice_to_voice_seconds_{{kind}}{{{{{labels}{{le}}}}}}"
        series += [
            {"series": histogram.format(kind="count", le=""), "values": "0+60x120"},
            {"series": histogram.format(kind="bucket", le=', le="1.0"'), "values": "0x120"},
            {"series": histogram.format(kind="bucket", le=', le="1.5"'), "values": "0x120"},
        ]
    burn = "namespace_agent:voicefleet_slo_error_budget:burnrate1h"
    checks = [
        {
            "expr": f'ALERTS{{alertname="{LATENCY_ALERT}", alertstate="firing", severity="page"}}',
            "eval_time": "2h",
            "exp_samples": [
                sample("ALERTS", "support", "1.0", 1),
                sample("ALERTS", "sales", "1.5", 1),
            ],
        },
        {
            "expr": f'{burn}{{slo="voice-to-voice-latency"}}',
            "eval_time": "2h",
            # Every turn is slow: 1 / (1 - 0.99) for support, 1 / (1 - 0.95) for sales.
            "exp_samples": [sample(burn, "support", "1.0", 100), sample(burn, "sales", "1.5", 20)],
        },
    ]
    unit = {
        "rule_files": [str(GENERATED / "rules.yaml"), str(agent_rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    path = tmp_path / "override_test.yaml"
    path.write_text(yaml.safe_dump(unit, sort_keys=False))
    result = run_promtool("test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
