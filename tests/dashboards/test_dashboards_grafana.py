"""The Grafana dashboards: valid PromQL on documented metrics, complete panels, SDK round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.dashboards.support import GENERATED, Run
from voicefleet_dashboards.promql import metric_names

FILES = sorted(GENERATED.glob("*.json"))
# What Grafana puts in place of its built-in variables, as durations Prometheus accepts.
BUILTINS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d"}
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable's selector."""
    found = [(f"panel {p['title']!r}", t["expr"]) for p in panels(board) for t in p["targets"]]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["query"])
            assert match, f"variable {variable['name']}: unexpected query {variable['query']}"
            found.append((f"variable {variable['name']!r}", match["selector"]))
    return found


def substitute(expr: str) -> str:
    """The query as Prometheus receives it: built-ins as durations, variables as values."""
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    expr = expr.replace("$threshold", "1.5")
    expr = re.sub(r"\$\{?\w+\}?", "value", expr)
    return expr


@pytest.fixture(params=FILES, ids=lambda p: p.name)
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_four_dashboards_are_generated() -> None:
    assert [p.name for p in FILES] == [
        "fleet.json",
        "slo.json",
        "usage.json",
        "voice-pipeline.json",
    ]


def test_promtool_parses_every_query(
    board: dict[str, Any], run_promtool: Run, tmp_path: Path
) -> None:
    found = queries(board)
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": substitute(expr)}
        for i, (_, expr) in enumerate(found)
    ]
    path = tmp_path / "dashboard_queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": board["uid"], "rules": rules}]}))
    result = run_promtool("check", "rules", path)
    where = "\n".join(f"query_{i}: {w}" for i, (w, _) in enumerate(found))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{where}"


def test_queries_select_only_documented_metrics(
    board: dict[str, Any], allowed_names: set[str]
) -> None:
    for where, expr in queries(board):
        selected = metric_names(substitute(expr))
        assert selected, f"{where} selects no metric: {expr}"
        assert selected <= allowed_names, f"{where} selects unknown {selected - allowed_names}"


def test_no_template_variable_is_left_unknown(board: dict[str, Any]) -> None:
    defined = {v["name"] for v in board["templating"]["list"]}
    used: set[str] = set()
    for _, expr in queries(board):
        used |= set(re.findall(r"\$\{?(\w+)\}?", expr))
    builtins = {b[1:] for b in BUILTINS}
    assert used - builtins <= defined


def test_variables_are_datasource_namespace_agent_region(board: dict[str, Any]) -> None:
    variables = [v["name"] for v in board["templating"]["list"]]
    assert variables[:4] == ["datasource", "namespace", "agent", "region"]
    assert board["templating"]["list"][0]["query"] == "prometheus"


def test_every_panel_has_unit_description_and_the_datasource_variable(
    board: dict[str, Any],
) -> None:
    for panel in panels(board):
        title = panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        assert len(panel.get("description", "")) > 20, f"{title}: no description"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], f"{title}: no query"
        assert all(t["refId"] for t in panel["targets"]), f"{title}: target without refId"


def test_panels_have_unique_ids_and_fit_the_grid(board: dict[str, Any]) -> None:
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_round_trips_through_the_sdk_model(path: Path) -> None:
    register_default_plugins()
    text = path.read_text()
    model = Dashboard.from_json(json.loads(text))
    again = json.dumps(model, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
    assert again == text


def test_the_required_panels_exist() -> None:
    titles = {
        name: {p["title"] for p in panels(load(GENERATED / name))}
        for name in ("fleet.json", "voice-pipeline.json", "slo.json", "usage.json")
    }
    assert {
        "Demand and capacity",
        "Desired, existing and ready workers",
        "Scale decisions",
        "LiveKit poll errors",
        "Workers at capacity",
    } <= titles["fleet.json"]
    assert {
        "Voice-to-voice latency",
        "Stage latency p95",
        "Voice-to-voice distribution",
        "Interruptions per turn",
        "Provider errors",
        "Provider fallbacks",
        "Tool call latency",
        "Tool errors",
        "Tool errors per call",
    } <= titles["voice-pipeline.json"]
    assert {
        "Voice-to-voice latency: budget left",
        "Voice-to-voice latency: burn rate",
        "Session success: burn rate",
        "SLO alerts firing",
    } <= titles["slo.json"]
    assert {
        "LLM tokens per second",
        "TTS characters per second",
        "STT audio transcribed",
    } <= titles["usage.json"]
    heatmaps = [
        p for p in panels(load(GENERATED / "voice-pipeline.json")) if p["type"] == "heatmap"
    ]
    assert len(heatmaps) == 5


def test_metric_name_extraction_sees_through_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, provider) (rate(a_bucket{le="1.0", x=~"$y"}[5m])))'
        ' / on (namespace) group_left () b offset 15m > 1e-07 and c unless ALERTS{a="d e"}'
    )
    assert metric_names(substitute(expr)) == {"a_bucket", "b", "c", "ALERTS"}
    assert metric_names("sum(rate(voicefleet_agent_turn_total[5m]))") == {
        "voicefleet_agent_turn_total"
    }
