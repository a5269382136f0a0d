"""A scale decision writes the Deployment's replicas, and nothing else of the region."""

from __future__ import annotations

import json

from voicefleet_models.voice_agent import VoiceAgentSpec
from voicefleet_operator.kube import Kube
from voicefleet_operator.render import Owner
from voicefleet_operator.scaling import Region, write_replicas
from voicefleet_operator.state import FleetState, Indexes

from ...helpers import voice_agent
from .conftest import Answer, FakeApiServer

DEPLOYMENTS = "/apis/apps/v1/namespaces/ns/deployments"


def region_of(kube: Kube) -> tuple[FleetState, Region]:
    body = voice_agent("support", "ns")
    spec = VoiceAgentSpec.model_validate(body["spec"])
    state = FleetState(kube, Indexes({}, {}, {}))  # kopf's indexes are mappings
    owner = Owner("support", "ns", "uid-1")
    return state, Region(body, owner, spec, spec.regions[0], "support")


async def test_only_the_replicas_are_patched(api: tuple[FakeApiServer, Kube]) -> None:
    fake, kube = api
    state, region = region_of(kube)
    await write_replicas(state, region, 3)
    (request,) = fake.seen
    assert (request.method, request.path) == ("PATCH", f"{DEPLOYMENTS}/support-us-east")
    assert request.content_type == "application/merge-patch+json"
    assert json.loads(request.body) == {"spec": {"replicas": 3}}
    assert region.key in state.written_at  # drift is not judged until the watch catches up


async def test_a_deployment_deleted_by_hand_is_put_back_whole(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    fake.answers = [Answer(404, {"kind": "Status", "message": "not found", "code": 404})]
    state, region = region_of(kube)
    await write_replicas(state, region, 2)
    applied = [json.loads(r.body) for r in fake.seen[1:]]
    assert {r.content_type for r in fake.seen[1:]} == {"application/apply-patch+yaml"}
    assert sorted(m["kind"] for m in applied) == [
        "ConfigMap", "Deployment", "PodDisruptionBudget", "Service",
    ]  # fmt: skip
    (deployment,) = [m for m in applied if m["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
