"""The scale-down window outlives the process: its floor and expiry, kept in status, hold a
successor's scale-down until the window its predecessor started has passed."""

from __future__ import annotations

from voicefleet_models.voice_agent import LiveKitSpec, RegionSpec, ScalingSpec
from voicefleet_operator.policy import Floor, Stabilizer
from voicefleet_operator.status import FLOOR, FLOOR_EXPIRY, floor_fields, rfc3339, stored_floor

REGION = RegionSpec(name="r", livekit=LiveKitSpec(url="ws://lk", credentials_secret="lk"),
                    min_replicas=1, max_replicas=20)  # fmt: skip
SCALING = ScalingSpec(sessions_per_worker=1, warm_workers=0, headroom_percent=0,
                      scale_down_stabilization_seconds=60, max_scale_down_step=10)  # fmt: skip


def test_an_inherited_floor_holds_a_scale_down_until_it_expires() -> None:
    successor = Stabilizer(inherited=Floor(replicas=4, until=1000.0))
    held = successor.decide(990.0, current=4, demand=0, scaling=SCALING, region=REGION)
    assert held.replicas == 4
    free = successor.decide(1001.0, current=4, demand=0, scaling=SCALING, region=REGION)
    assert free.replicas == 1
    # A fresh process without the inherited floor would have gone down at once.
    assert Stabilizer().decide(990.0, 4, 0, SCALING, REGION).replicas == 1


def test_the_floor_is_the_windows_highest_recommendation_until_the_last_above_the_minimum() -> None:
    stabilizer = Stabilizer()
    for at, demand in ((0.0, 5), (10.0, 3), (20.0, 0)):
        stabilizer.decide(at, current=5, demand=demand, scaling=SCALING, region=REGION)
    assert stabilizer.floor(20.0, SCALING, minimum=1) == Floor(5, 10.0 + 60)
    assert stabilizer.floor(71.0, SCALING, minimum=1) is None  # all above 1 left the window
    idle = Stabilizer()
    idle.decide(0.0, current=1, demand=0, scaling=SCALING, region=REGION)
    assert idle.floor(0.0, SCALING, minimum=1) is None  # nothing to hold above the minimum


def test_an_inherited_floor_is_passed_on_while_it_holds() -> None:
    successor = Stabilizer(inherited=Floor(6, until=500.0))
    successor.decide(400.0, current=6, demand=2, scaling=SCALING, region=REGION)
    # Its own recommendation of 2 leaves the window at 460, before the inherited 6 expires.
    assert successor.floor(400.0, SCALING, minimum=1) == Floor(6, 500.0)
    assert successor.floor(501.0, SCALING, minimum=1) is None


def test_status_fields_round_trip_and_are_rewritten_only_when_they_fall_short() -> None:
    written = floor_fields({}, Floor(3, 100.0), slack=30)
    assert written == {FLOOR: 3, FLOOR_EXPIRY: rfc3339(130)}
    entry = {"name": "r", **written}
    assert stored_floor(entry) == Floor(3, 130.0)
    assert floor_fields(entry, Floor(3, 129.5), slack=30) == {}  # still covered: no write
    assert floor_fields(entry, Floor(3, 131.0), slack=30) == {FLOOR: 3, FLOOR_EXPIRY: rfc3339(161)}
    assert floor_fields(entry, Floor(2, 100.0), slack=30)[FLOOR] == 2
    assert floor_fields(entry, None, slack=30) == {FLOOR: None, FLOOR_EXPIRY: None}
    assert floor_fields({"name": "r"}, None, slack=30) == {}
    assert stored_floor({FLOOR: 3, FLOOR_EXPIRY: "soon"}) is None
