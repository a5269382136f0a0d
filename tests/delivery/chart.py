"""The Helm chart from the tests' side: reading its renderings. Running helm and the kustomize
base generated from the chart are voicefleet_operator.chart's."""

from __future__ import annotations

from typing import Any

import yaml

MONITORING_APIS = (
    "monitoring.coreos.com/v1",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)


def objects(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and name in (None, doc["metadata"]["name"]):
            return doc
    raise AssertionError(f"no {kind} {name or ''} in the rendering")
