"""The committed dashboards and rule file are exactly what the generator writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.dashboards.support import DASHBOARDS, GENERATED
from voicefleet_dashboards import generate


def run_generator(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m voicefleet_dashboards`, as a developer runs it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(DASHBOARDS), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "voicefleet_dashboards", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_committed_artifacts_match_the_generator() -> None:
    result = run_generator("--check")
    assert result.returncode == 0, (
        f"dashboards/generated is stale; run `python -m voicefleet_dashboards`:\n{result.stdout}"
    )


def test_generator_writes_every_artifact(tmp_path: Path) -> None:
    result = run_generator("--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["fleet.json", "rules.yaml", "slo.json", "usage.json", "voice-pipeline.json"]
    for path in tmp_path.iterdir():
        assert path.read_text() == (GENERATED / path.name).read_text()


def test_check_reports_an_edited_a_missing_and_a_stray_file(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    shutil.copytree(GENERATED, out)
    (out / "fleet.json").write_text((out / "fleet.json").read_text().replace("Fleet", "Flet", 1))
    (out / "usage.json").unlink()
    (out / "old.json").write_text("{}")
    result = run_generator("--check", "--out", str(out))
    assert result.returncode == 1
    assert "committed/fleet.json" in result.stdout
    assert "generated/usage.json" in result.stdout
    assert "old.json" in result.stdout


def test_generation_is_deterministic() -> None:
    assert generate.artifacts() == generate.artifacts()
