"""The scaling policy: how many workers a region needs. Pure functions, no I/O.

desired = clamp(ceil(demand × (1 + headroom) / sessionsPerWorker) + warmWorkers, min, max),
then smoothed like the HPA: scale up to the lowest recommendation of the up-window, down to
the highest of the down-window, at most maxScaleUpStep / maxScaleDownStep per decision.
Without fresh demand data the fleet holds: missing data never scales down.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from voicefleet_models.voice_agent import RegionSpec, ScalingSpec


@dataclass(frozen=True)
class Decision:
    """What the policy chose and why, for the Event and status."""

    replicas: int
    reason: str
    holding: bool = False
    """True when the policy kept replicas because data was missing."""

    def changed_from(self, current: int) -> bool:
        return self.replicas != current


def recommended(demand: int, scaling: ScalingSpec, region: RegionSpec) -> int:
    """Workers for `demand` sessions, before smoothing."""
    needed = math.ceil(demand * (1 + scaling.headroom_percent / 100) / scaling.sessions_per_worker)
    return clamp(needed + scaling.warm_workers, region)


def clamp(replicas: int, region: RegionSpec) -> int:
    return max(region.min_replicas, min(region.max_replicas, replicas))


@dataclass(frozen=True)
class Floor:
    """The scale-down window's floor: no fewer than `replicas` workers before `until` (wall
    clock seconds, comparable between operator processes)."""

    replicas: int
    until: float


@dataclass
class Stabilizer:
    """Recent recommendations of one region, for the HPA-style windows."""

    history: deque[tuple[float, int]] = field(default_factory=deque)
    inherited: Floor | None = None
    """The floor an earlier operator process left in status: its window, which this process
    has no history of, holds until it expires."""

    def decide(
        self,
        now: float,
        current: int,
        demand: int | None,
        scaling: ScalingSpec,
        region: RegionSpec,
    ) -> Decision:
        if demand is None:
            held = clamp(current, region)
            return Decision(held, "demand unknown: holding replicas", holding=held == current)
        target = recommended(demand, scaling, region)
        self._remember(now, target, scaling)
        if target > current:
            window = self._window(now, scaling.scale_up_stabilization_seconds)
            target = min(current + scaling.max_scale_up_step, min(window, default=target))
        elif target < current:
            window = self._window(now, scaling.scale_down_stabilization_seconds)
            if self.inherited is not None and now < self.inherited.until:
                window.append(self.inherited.replicas)
            target = max(current - scaling.max_scale_down_step, max(window, default=target))
        target = clamp(target, region)
        return Decision(target, _reason(demand, target, current, scaling))

    def _remember(self, now: float, target: int, scaling: ScalingSpec) -> None:
        self.history.append((now, target))
        horizon = max(
            scaling.scale_up_stabilization_seconds, scaling.scale_down_stabilization_seconds
        )
        while self.history and self.history[0][0] < now - horizon:
            self.history.popleft()

    def floor(self, now: float, scaling: ScalingSpec, minimum: int) -> Floor | None:
        """What a successor process must not scale down below, and until when: the highest
        recommendation of the scale-down window, held until the last recommendation above
        `minimum` leaves the window (never shorter than the window would hold: one floor
        stands in for the window's steps). None when the window holds nothing above it."""
        seconds = scaling.scale_down_stabilization_seconds
        above = [(at, r) for at, r in self.history if at >= now - seconds and r > minimum]
        inherited = self.inherited
        floors = [inherited] if inherited and now < inherited.until else []
        if above:
            floors.append(Floor(max(r for _, r in above), max(at for at, _ in above) + seconds))
        floors = [f for f in floors if f.replicas > minimum]
        if not floors:
            return None
        return Floor(max(f.replicas for f in floors), max(f.until for f in floors))

    def _window(self, now: float, seconds: int) -> list[int]:
        return [replicas for at, replicas in self.history if at >= now - seconds]


def _reason(demand: int, target: int, current: int, scaling: ScalingSpec) -> str:
    capacity = current * scaling.sessions_per_worker
    if target == current:
        return f"demand {demand} sessions, capacity {capacity}: steady at {current}"
    direction = "up" if target > current else "down"
    return (
        f"demand {demand} sessions, capacity {capacity}: scaling {direction} "
        f"from {current} to {target} workers"
    )
