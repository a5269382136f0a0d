"""The Prometheus rule file: valid for promtool, unit-tested, named and annotated by convention."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.support import GENERATED, RULE_TESTS, RUNBOOKS, Run
from voicefleet_dashboards import config, slo
from voicefleet_dashboards.promql import metric_names

UNIT_TESTS = sorted(RULE_TESTS.glob("*_test.yaml"))
RECORD_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")


def alerts(rule_file: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for group in rule_file["groups"] for r in group["rules"] if "alert" in r]


def test_promtool_accepts_the_rule_file(run_promtool: Run) -> None:
    result = run_promtool("check", "rules", GENERATED / "rules.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.slow  # promtool evaluates the SLO windows over hours of samples: up to a minute
@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(run_promtool: Run, unit_test: Path) -> None:
    result = run_promtool("test", "rules", unit_test.name, cwd=RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_exist() -> None:
    assert {p.name for p in UNIT_TESTS} >= {
        "slo_latency_test.yaml",
        "slo_sessions_test.yaml",
        "operational_test.yaml",
        "recording_test.yaml",
        "cost_test.yaml",
    }


def alert_cases() -> list[dict[str, Any]]:
    cases = []
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            cases += test.get("alert_rule_test", [])
    return cases


def test_every_alert_is_tested_firing_and_quiet(rule_file: dict[str, Any]) -> None:
    cases = alert_cases()
    for alert in {a["alert"] for a in alerts(rule_file)}:
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"no unit test makes {alert} fire"
        assert any(not c["exp_alerts"] for c in mine), f"no unit test keeps {alert} quiet"


@pytest.mark.parametrize("alert", [slo.LATENCY_ALERT, slo.SESSION_ALERT])
def test_both_burn_rate_pairs_of_both_tiers_are_tested(alert: str) -> None:
    """Each SLO has a firing case per severity and per window pair (test names say which)."""
    fired: set[tuple[str, str]] = set()
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for expected in case["exp_alerts"] if case["alertname"] == alert else []:
                    fired.add((expected["exp_labels"]["severity"], test["name"]))
    pairs = {
        (tier.severity, f"{tier.severity} on {w.long}/{w.short}")
        for tier in slo.TIERS
        for w in tier.windows
    }
    assert pairs <= fired, f"missing firing cases for {alert}: {sorted(pairs - fired)}"


def test_every_alert_has_severity_and_annotations(rule_file: dict[str, Any]) -> None:
    for alert in alerts(rule_file):
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"page", "ticket"}, name
        annotations = alert["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == f"{config.RUNBOOK_BASE_URL}/{name}.md"
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name


def test_every_alert_has_a_runbook(rule_file: dict[str, Any]) -> None:
    names = {a["alert"] for a in alerts(rule_file)}
    for name in names:
        page = RUNBOOKS / f"{name}.md"
        assert page.exists(), f"missing runbook {page}"
        text = page.read_text()
        assert text.startswith(f"# {name}\n"), page
        for section in RUNBOOK_SECTIONS:
            assert section in text, f"{page} has no '{section}' section"
        assert "kubectl" in text, f"{page} has no kubectl step"
        assert "```promql" in text, f"{page} has no PromQL step"
    orphans = {p.stem for p in RUNBOOKS.glob("*.md")} - names - {"README"}
    assert not orphans, f"runbooks without an alert: {orphans}"
    index = (RUNBOOKS / "README.md").read_text()
    assert all(f"[{name}.md]" in index for name in names)


def test_recording_rules_follow_the_naming_convention(recorded_names: set[str]) -> None:
    for name in recorded_names:
        assert RECORD_NAME.match(name), f"{name} is not level:metric:operations"


def test_rules_select_only_documented_metrics(
    rule_file: dict[str, Any], allowed_names: set[str]
) -> None:
    for group in rule_file["groups"]:
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - allowed_names
            assert not unknown, f"{rule.get('record') or rule['alert']} selects {unknown}"


def test_slo_thresholds_are_written_as_the_client_exposes_them(rule_file: dict[str, Any]) -> None:
    exprs = "\n".join(r["expr"] for g in rule_file["groups"] for r in g["rules"])
    assert 'voicefleet_agent_voice_to_voice_seconds_bucket{le="1.5"}' in exprs
    for bound in re.findall(r'le="([^"]+)"', exprs):
        assert bound in {
            "0.05",
            "0.1",
            "0.2",
            "0.3",
            "0.5",
            "0.8",
            "1.0",
            "1.5",
            "2.0",
            "3.0",
            "5.0",
            "10.0",
        }


def test_operator_job_selector_is_configurable() -> None:
    from voicefleet_dashboards.rules import rule_file

    custom = rule_file('job="platform/voicefleet"')
    exprs = [
        r["expr"]
        for g in custom["groups"]
        for r in g["rules"]
        if r.get("alert") == "VoiceFleetOperatorDown"
    ]
    assert exprs == ['absent(up{job="platform/voicefleet"} == 1)']
