"""voicefleet's observability as code: Grafana dashboards, Prometheus recording rules and
multi-window burn-rate SLO alerts, generated from this package (`python -m
voicefleet_dashboards`), and the per-VoiceAgent PrometheusRule the operator applies."""

from voicefleet_dashboards.slo import SLOInput, prometheus_rule

__all__ = ["SLOInput", "prometheus_rule"]
