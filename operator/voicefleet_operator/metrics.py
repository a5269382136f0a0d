"""The operator's own metrics: each region's fleet as gauges, scale decisions, reconciles."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

_LABELS = ["namespace", "agent", "region"]
DESIRED = Gauge("voicefleet_operator_desired_replicas", "Workers the autoscaler wants.", _LABELS)
REPLICAS = Gauge("voicefleet_operator_replicas", "Worker pods that exist.", _LABELS)
READY = Gauge("voicefleet_operator_ready_replicas", "Worker pods ready.", _LABELS)
MAX = Gauge("voicefleet_operator_max_replicas", "spec maxReplicas.", _LABELS)
DEMAND = Gauge("voicefleet_operator_demand_sessions", "Sessions LiveKit carries.", _LABELS)
CAPACITY = Gauge(
    "voicefleet_operator_capacity_sessions", "sessionsPerWorker × ready workers.", _LABELS
)
REACHABLE = Gauge(
    "voicefleet_operator_livekit_reachable",
    "1 when the region's LiveKit endpoint answered its last poll.",
    [*_LABELS, "endpoint"],
)
DECISIONS = Counter(
    "voicefleet_operator_scale_decisions_total", "Replica changes.", [*_LABELS, "direction"]
)
RECONCILE_SECONDS = Histogram(
    "voicefleet_operator_reconcile_duration_seconds",
    "Duration of one reconcile of a VoiceAgent's objects.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_REGION_GAUGES = (DESIRED, REPLICAS, READY, CAPACITY, MAX, DEMAND)

RegionKey = tuple[str, str, str]  # (namespace, VoiceAgent, region)


@dataclass(frozen=True)
class Exported:
    """A region's gauge values as last set, under the labels they were set with."""

    labels: tuple[str, str, str]  # (namespace, agent name, region)
    endpoint: str
    values: tuple[int | None, ...]

    @property
    def series(self) -> tuple[str, ...]:
        return (*self.labels, self.endpoint)


class RegionSeries:
    """The series exported per region, remembered so that an unchanged region costs no work
    and a region that is gone, or renamed, leaves no series behind."""

    def __init__(self) -> None:
        self._exported: dict[RegionKey, Exported] = {}

    def set(
        self,
        key: RegionKey,
        labels: tuple[str, str, str],
        entry: dict[str, Any],
        demand: int | None,
        endpoint: str,
        max_replicas: int,
    ) -> None:
        """Set the region's gauges from its status entry; most ticks of a large fleet change
        none, and skip the work."""
        values = (entry["desiredReplicas"], entry["replicas"], entry["readyReplicas"],
                  entry["capacity"], max_replicas, demand)  # fmt: skip
        exported = Exported(labels, endpoint, values)
        previous = self._exported.get(key)
        if previous == exported:
            return
        if previous is not None and previous.series != exported.series:
            self.remove(key)  # the agent name or endpoint changed: drop the old series
        self._exported[key] = exported
        for gauge, value in zip(_REGION_GAUGES, values, strict=True):
            if value is not None:  # unknown demand keeps its last known value
                gauge.labels(*labels).set(value)
        REACHABLE.labels(*labels, endpoint).set(demand is not None)

    def remove(self, key: RegionKey) -> None:
        """Remove the series of a region that is gone."""
        exported = self._exported.pop(key, None)
        if exported is None:
            return
        for gauge in _REGION_GAUGES:
            with contextlib.suppress(KeyError):
                gauge.remove(*exported.labels)
        with contextlib.suppress(KeyError):
            REACHABLE.remove(*exported.labels, exported.endpoint)

    def forget(self, agent: tuple[str, str]) -> None:
        """Remove the series of every region of a VoiceAgent that is gone."""
        for key in [k for k in self._exported if k[:2] == agent]:
            self.remove(key)
