"""Each region's gauges: set from its status entry, gone with the region or its old name."""

from __future__ import annotations

import prometheus_client

from voicefleet_operator.metrics import RegionSeries

ENTRY = {"desiredReplicas": 3, "replicas": 3, "readyReplicas": 2, "capacity": 4}
KEY = ("ns", "support", "us")


def exposition() -> str:
    return prometheus_client.generate_latest().decode()


def test_a_renamed_agent_leaves_no_series_under_its_old_name() -> None:
    series = RegionSeries()
    series.set(KEY, ("ns", "unit-old", "us"), ENTRY, 5, "ws://lk", max_replicas=6)
    assert (
        'voicefleet_operator_ready_replicas{agent="unit-old",namespace="ns",region="us"} 2.0'
        in (exposition())
    )
    series.set(KEY, ("ns", "unit-new", "us"), ENTRY, None, "ws://lk", max_replicas=6)
    text = exposition()
    assert 'agent="unit-old"' not in text
    assert 'voicefleet_operator_livekit_reachable{agent="unit-new",endpoint="ws://lk"' in text
    # Unknown demand is not exported as 0.
    assert 'voicefleet_operator_demand_sessions{agent="unit-new"' not in text
    series.forget(("ns", "support"))
    assert 'agent="unit-new"' not in exposition()
