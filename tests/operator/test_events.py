"""Events against the real API server: a decision repeated is one Event that counts up, also
when a new operator process (a new leader) repeats it."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes import config as kube_config

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_operator.events import REPORTING_CONTROLLER, EventRecorder
from voicefleet_operator.kube import Kube

NS = "events"
BODY = {"metadata": {"name": "support", "namespace": NS, "uid": "0b5e5d36-uid"}}


def kube_of(cluster: LocalCluster) -> Kube:
    configuration = client.Configuration()
    kube_config.load_kube_config(str(cluster.kubeconfig), client_configuration=configuration)
    return Kube(configuration)


def events(cluster: LocalCluster) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "events.events.k8s.io", "-n", NS, "-o", "json")
    return list(json.loads(out)["items"])


async def test_a_repeated_decision_is_one_event_with_a_count(
    cluster: LocalCluster, crd: None
) -> None:
    cluster.kubectl("create", "namespace", NS)
    kube = kube_of(cluster)
    try:
        first = EventRecorder(kube, "operator-a")
        for _ in range(3):
            await first.post(BODY, "Normal", "ScaledUp", "region us: from 1 to 2", "Scale")
        # A successor process knows nothing of it, finds it and counts on.
        await EventRecorder(kube, "operator-b").post(
            BODY, "Normal", "ScaledUp", "region us: from 1 to 2", "Scale"
        )
        await first.post(BODY, "Normal", "ScaledUp", "region us: from 2 to 3", "Scale")
    finally:
        await kube.close()
    by_note = {e["note"]: e for e in events(cluster)}
    assert sorted(by_note) == ["region us: from 1 to 2", "region us: from 2 to 3"]
    repeated = by_note["region us: from 1 to 2"]
    assert repeated["series"]["count"] == 4
    assert repeated["reportingController"] == REPORTING_CONTROLLER
    assert repeated["reportingInstance"] == "operator-a"
    assert repeated["regarding"]["kind"] == "VoiceAgent"
    assert "series" not in by_note["region us: from 2 to 3"]
    # kubectl's core/v1 view, which `kubectl describe` reads, shows the same objects.
    core = cluster.kubectl("get", "events", "-n", NS, "--field-selector=reason=ScaledUp")
    assert "from 1 to 2" in core
