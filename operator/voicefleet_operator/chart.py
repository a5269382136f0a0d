"""The Helm chart rendered by helm, and the kustomize base generated from it
(manifests/base/operator.yaml): the operator alone, exactly as the chart installs it, so Helm and
kustomize users run the same operator. `python -m voicefleet_operator.generate` writes the base
with the other generated files; it needs helm (scripts/setup.sh installs it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from voicefleet_devstack.process import binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "voicefleet"
BASE = ROOT / "manifests" / "base" / "operator.yaml"
KUBE_VERSION = "1.36.0"
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


def base_manifest() -> str:
    """manifests/base/operator.yaml as the chart renders it now, comments included."""
    lines = template(*BASE_VALUES).splitlines(keepends=True)
    kept = [line for line in lines if not line.strip().startswith(HELM_LABELS)]
    return HEADER + "".join(kept)
