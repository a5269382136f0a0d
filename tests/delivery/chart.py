"""The Helm chart from the tests' side: run helm, render the chart, and keep the kustomize base
(manifests/base/operator.yaml) equal to the chart's rendering.

`make generate` (which runs `python -m tests.delivery.chart --write`) rewrites the base; `--check`
exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from voicefleet_devstack.process import binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "voicefleet"
BASE = ROOT / "manifests" / "base" / "operator.yaml"
KUBE_VERSION = "1.36.0"
MONITORING_APIS = (
    "monitoring.coreos.com/v1",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)
# The kustomize base: the operator alone, as `helm install voicefleet` in voicefleet-system.
BASE_VALUES = (
    "monitoring.serviceMonitor.enabled=false",
    "monitoring.prometheusRule.enabled=false",
    "monitoring.dashboards.enabled=false",
)
HEADER = (
    "# Generated from charts/voicefleet by `make generate`. Do not edit:\n"
    "# change the chart and regenerate, so Helm and kustomize install the same operator.\n"
)
# Label lines that describe a Helm release; a kustomize install is not one.
HELM_LABELS = ("helm.sh/chart: ", "app.kubernetes.io/managed-by: Helm")


class HelmError(RuntimeError):
    """helm failed; the message carries its output."""


def helm(*args: str, kubeconfig: Path | None = None, timeout: float = 180) -> str:
    """Run helm; its stdout, or HelmError with stderr."""
    config = [f"--kubeconfig={kubeconfig}"] if kubeconfig else []
    result = subprocess.run(
        [binary("helm"), *args, *config], capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise HelmError(f"helm {' '.join(args)}:\n{result.stdout}{result.stderr}")
    return result.stdout


def set_args(values: tuple[str, ...] | list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


def template(
    *values: str,
    release: str = "voicefleet",
    namespace: str = "voicefleet-system",
    api_versions: tuple[str, ...] = (),
    values_file: Path | None = None,
) -> str:
    """`helm template` without a cluster: the rendered YAML."""
    args = ["template", release, str(CHART), f"--namespace={namespace}"]
    args += [arg for api in api_versions for arg in ("--api-versions", api)]
    args += ["--values", str(values_file)] if values_file else []
    return helm(*args, f"--kube-version={KUBE_VERSION}", *set_args(list(values)))


def objects(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and name in (None, doc["metadata"]["name"]):
            return doc
    raise AssertionError(f"no {kind} {name or ''} in the rendering")


def base_manifest() -> str:
    """manifests/base/operator.yaml as the chart renders it now, comments included."""
    lines = template(*BASE_VALUES).splitlines(keepends=True)
    kept = [line for line in lines if not line.strip().startswith(HELM_LABELS)]
    return HEADER + "".join(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the base is stale")
    parser.add_argument("--write", action="store_true", help="rewrite the base")
    args = parser.parse_args(argv)
    current = base_manifest()
    if args.write:
        BASE.write_text(current)
        return 0
    if not BASE.exists() or BASE.read_text() != current:
        print(f"{BASE.relative_to(ROOT)} is stale: run `make generate`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
