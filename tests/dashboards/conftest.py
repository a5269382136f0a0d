"""Fixtures of the dashboards and rules tests: paths and the real promtool binary."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.support import GENERATED, METRICS_DOC, Run
from voicefleet_dashboards import SLOInput, cost, prometheus_rule


@pytest.fixture(scope="session")
def promtool(tool: Any) -> str:
    """Path of Prometheus' promtool (Debian's `prometheus` package, via scripts/setup.sh)."""
    path: str = tool.path("promtool")
    return path


@pytest.fixture(scope="session")
def run_promtool(promtool: str) -> Run:
    """Runs promtool with a bounded wait; the result keeps stdout and stderr for messages."""

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [promtool, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=cwd,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def rule_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((GENERATED / "rules.yaml").read_text())
    return loaded


@pytest.fixture(scope="session")
def documented_metrics() -> set[str]:
    """Every series name docs/metrics.md allows: histograms with their _bucket/_count/_sum."""
    names: set[str] = set()
    for name, kind in re.findall(
        r"^\| `(voicefleet_\w+)` \| (\w+) \|", METRICS_DOC.read_text(), re.M
    ):
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    assert len(names) > 20, f"no metric table found in {METRICS_DOC}"
    return names


@pytest.fixture(scope="session")
def recorded_names(rule_file: dict[str, Any]) -> set[str]:
    """Names the fleet-wide rules and a VoiceAgent's own rules record."""
    agent_groups = prometheus_rule("ns", "agent", SLOInput())["spec"]["groups"]
    return {
        rule["record"]
        for group in [*rule_file["groups"], *agent_groups]
        for rule in group["rules"]
        if "record" in rule
    }


@pytest.fixture(scope="session")
def allowed_names(documented_metrics: set[str], recorded_names: set[str]) -> set[str]:
    """What a voicefleet expression may select: documented, recorded (by the generated rules,
    or from the chart's pricing values), up and ALERTS."""
    return documented_metrics | recorded_names | {cost.PRICE, "up", "ALERTS"}
