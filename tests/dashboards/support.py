"""Paths and helpers shared by the dashboards and rules tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
GENERATED = DASHBOARDS / "generated"
RULE_TESTS = DASHBOARDS / "tests"
RUNBOOKS = ROOT / "docs" / "runbooks"
METRICS_DOC = ROOT / "docs" / "metrics.md"

Run = Callable[..., subprocess.CompletedProcess[str]]


def _documented_buckets() -> tuple[float, ...]:
    """The shared latency buckets as docs/metrics.md lists them."""
    line = next(line for line in METRICS_DOC.read_text().splitlines() if "0.05, 0.1" in line)
    listed = line.split("`")[1]
    return tuple(float(b) for b in listed.split(", "))


DOCS_METRICS_BUCKETS = _documented_buckets()
