"""What a VoiceAgent's status says after a tick, decided without a cluster."""

from __future__ import annotations

from typing import Any

from voicefleet_operator.status import (
    RegionOutcome,
    StatusReport,
    current_replicas,
    status_changes,
    was_reachable,
)

REPORT = StatusReport(generation=2, applied=2, agent_name="support", region_count=1)


def entry(name: str = "us", ready: int = 2, desired: int = 2, **extra: Any) -> dict[str, Any]:
    return {"name": name, "replicas": ready, "readyReplicas": ready, "desiredReplicas": desired,
            "activeSessions": 3, "capacity": ready * 2, **extra}  # fmt: skip


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_a_serving_fleet_is_ready_and_not_degraded() -> None:
    changes = status_changes({}, [RegionOutcome(entry())], REPORT)
    assert (changes["workers"], changes["activeSessions"]) == ("2/2", 3)
    ready = condition(changes, "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "True",
        "Reconciled",
        2,
    )
    assert condition(changes, "Degraded")["status"] == "False"
    assert condition(changes, "Scaling")["reason"] == "Steady"


def test_an_unchanged_fleet_writes_nothing() -> None:
    first = status_changes({}, [RegionOutcome(entry())], REPORT)
    assert status_changes(first, [RegionOutcome(entry())], REPORT) == {}


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    stored = status_changes({}, [RegionOutcome(entry())], REPORT)
    stored["conditions"] = [{**c, "lastTransitionTime": "2020-01-01T00:00:00Z"}
                            for c in stored["conditions"]]  # fmt: skip
    short = status_changes(stored, [RegionOutcome(entry(ready=1))], REPORT)
    degraded = condition(short, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "WorkersNotReady")
    assert degraded["message"] == "us: 1/2 workers ready"
    assert degraded["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    assert condition(short, "Ready")["lastTransitionTime"] == "2020-01-01T00:00:00Z"


def test_an_unapplied_generation_is_reconciling_and_no_ready_worker_is_not_ready() -> None:
    behind = StatusReport(generation=3, applied=2, agent_name="support", region_count=1)
    ready = condition(status_changes({}, [RegionOutcome(entry())], behind), "Ready")
    assert (ready["status"], ready["message"]) == ("False", "applying generation 3")
    none_ready = status_changes({}, [RegionOutcome(entry(ready=0))], REPORT)
    assert condition(none_ready, "Ready")["reason"] == "NoReadyWorkers"
    assert none_ready["observedGeneration"] == 2


def test_unreachable_livekit_and_holding_say_why() -> None:
    outcome = RegionOutcome(entry(), unreachable="us: Timeout (TimeoutError)",
                            holding="demand unknown: holding replicas")  # fmt: skip
    changes = status_changes({}, [outcome], REPORT)
    reachable = condition(changes, "LiveKitReachable")
    assert (reachable["status"], reachable["reason"]) == ("False", "LiveKitUnreachable")
    assert condition(changes, "Degraded")["message"] == "us: Timeout (TimeoutError)"
    scaling = condition(changes, "Scaling")
    assert (scaling["reason"], scaling["message"]) == (
        "Holding",
        "us: demand unknown: holding replicas",
    )
    assert not was_reachable(changes)
    assert was_reachable({})


def test_region_entries_keep_earlier_fields_and_a_none_removes_one() -> None:
    stored = {"regions": [entry(lastScaleReason="up", scaleDownFloor=4)]}
    merged = status_changes(stored, [RegionOutcome(entry(scaleDownFloor=None))], REPORT)
    (region,) = merged["regions"]
    assert region["lastScaleReason"] == "up"
    assert "scaleDownFloor" not in region


def test_replicas_so_far_come_from_status_else_the_minimum() -> None:
    status = {"regions": [entry("us", desired=4), entry("eu", desired=2)]}
    assert current_replicas(status, "eu", 1) == 2
    assert current_replicas(status, "ap", 1) == 1
    assert current_replicas(None, "us", 3) == 3
