"""The scaling policy as a pure function."""

from __future__ import annotations

import pytest

from voicefleet_models.voice_agent import LiveKitSpec, RegionSpec, ScalingSpec
from voicefleet_operator.policy import Stabilizer, recommended

LK = LiveKitSpec(url="wss://lk.example.com", credentials_secret="lk")


def region(min_replicas: int = 1, max_replicas: int = 20) -> RegionSpec:
    return RegionSpec(name="r", livekit=LK, min_replicas=min_replicas, max_replicas=max_replicas)


@pytest.mark.parametrize(
    ("demand", "expected"),
    [(0, 1), (1, 2), (8, 3), (20, 4), (33, 6), (1000, 20)],
)
def test_recommendation_follows_the_formula(demand: int, expected: int) -> None:
    # ceil(demand × 1.2 / 8) + 1 warm worker, clamped to [1, 20]
    scaling = ScalingSpec(sessions_per_worker=8, warm_workers=1, headroom_percent=20)
    assert recommended(demand, scaling, region()) == expected


def test_scale_up_is_immediate_and_step_limited() -> None:
    scaling = ScalingSpec(sessions_per_worker=1, warm_workers=0, headroom_percent=0,
                          max_scale_up_step=3)  # fmt: skip
    decision = Stabilizer().decide(0.0, 1, 10, scaling, region())
    assert decision.replicas == 4
    assert "scaling up from 1 to 4" in decision.reason


def test_scale_down_waits_for_the_window_and_is_step_limited() -> None:
    scaling = ScalingSpec(sessions_per_worker=1, warm_workers=0, headroom_percent=0,
                          scale_down_stabilization_seconds=60, max_scale_down_step=2)  # fmt: skip
    stabilizer = Stabilizer()
    assert stabilizer.decide(0.0, 6, 6, scaling, region()).replicas == 6
    # Demand drops, but a higher recommendation is still inside the window.
    assert stabilizer.decide(30.0, 6, 1, scaling, region()).replicas == 6
    # Window passed: down, at most two workers at a time.
    assert stabilizer.decide(61.0, 6, 1, scaling, region()).replicas == 4
    assert stabilizer.decide(62.0, 4, 1, scaling, region()).replicas == 2


def test_missing_data_holds_even_above_demand() -> None:
    scaling = ScalingSpec(scale_down_stabilization_seconds=0)
    decision = Stabilizer().decide(0.0, 7, None, scaling, region())
    assert decision.replicas == 7
    assert "holding" in decision.reason


def test_missing_data_still_respects_changed_bounds() -> None:
    decision = Stabilizer().decide(0.0, 7, None, ScalingSpec(), region(max_replicas=5))
    assert decision.replicas == 5
