"""Grafana dashboards, built with grafana-foundation-sdk (Grafana 11 schema)."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.models.dashboard import Dashboard

from voicefleet_dashboards.grafana import fleet, pipeline, slo, usage

# File name under generated/ → the function that builds the dashboard.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "fleet.json": fleet.dashboard,
    "voice-pipeline.json": pipeline.dashboard,
    "slo.json": slo.dashboard,
    "usage.json": usage.dashboard,
}
