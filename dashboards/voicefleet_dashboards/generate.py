"""Writes the committed artifacts, or with --check reports which ones differ.

python -m voicefleet_dashboards            rewrite dashboards/generated/
python -m voicefleet_dashboards --check    exit 1 when a committed artifact is stale
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from voicefleet_dashboards import render, rules
from voicefleet_dashboards.grafana import DASHBOARDS

GENERATED = Path(__file__).resolve().parents[1] / "generated"
RULES_FILE = "rules.yaml"


def artifacts() -> dict[str, str]:
    """File name under generated/ → its exact content."""
    files = {name: render.dashboard_json(build()) for name, build in DASHBOARDS.items()}
    files[RULES_FILE] = render.to_yaml(rules.rule_file(), render.HEADER)
    return files


def stale(directory: Path, files: dict[str, str]) -> list[str]:
    """Lines of a diff for every file that is missing or differs, and stray files."""
    report: list[str] = []
    for name, expected in files.items():
        path = directory / name
        current = path.read_text() if path.exists() else ""
        if current != expected:
            report += difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                f"committed/{name}",
                f"generated/{name}",
                n=1,
            )
    extra = sorted(p.name for p in directory.glob("*") if p.name not in files)
    report += [f"not generated, remove: {directory / name}\n" for name in extra]
    return report


def write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m voicefleet_dashboards", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="fail when artifacts are stale")
    parser.add_argument("--out", type=Path, default=GENERATED, help="artifact directory")
    args = parser.parse_args(argv)
    files = artifacts()
    if not args.check:
        write(args.out, files)
        print(f"wrote {len(files)} files to {args.out}")
        return 0
    report = stale(args.out, files)
    if report:
        sys.stdout.writelines(report)
        print(f"\n{args.out} is stale: run `python -m voicefleet_dashboards`", file=sys.stderr)
        return 1
    print(f"{len(files)} generated files in {args.out} are up to date")
    return 0
