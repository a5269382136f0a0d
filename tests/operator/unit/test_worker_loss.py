"""A worker container that dies in its pod is noticed from the pod's status: once per death,
never for a pod being deleted (a drain) nor for restarts that happened before the operator
saw the pod; the rooms to put back are those whose agent names the dead pod."""

from __future__ import annotations

from typing import Any

from livekit import api
from livekit.protocol.models import DisconnectReason, ParticipantInfo

from voicefleet_agent.placement import pod_attributes
from voicefleet_models.room import POD_ATTRIBUTE
from voicefleet_operator.livekit_load import Collectors
from voicefleet_operator.redispatch import lost_agent
from voicefleet_operator.worker_loss import (
    PodView,
    WorkerLossWatch,
    deaths,
    pod_view,
    served_by,
)

REGION = ("ns", "agent", "node")
POD = "agent-node-7d9f-abcde"
FIRST = "containerd://aaa"
SECOND = "containerd://bbb"


def running(container_id: str, restarts: int = 0, last: dict[str, Any] | None = None) -> PodView:
    status: dict[str, Any] = {
        "name": "agent",
        "restartCount": restarts,
        "containerID": container_id,
        "state": {"running": {"startedAt": "2026-12-03T18:00:00Z"}},
        "lastState": {"terminated": last} if last else {},
    }
    return pod_view({"name": POD}, {"phase": "Running", "containerStatuses": [status]})


def terminated(
    container_id: str, exit_code: int, reason: str, restarts: int = 0, deleting: bool = False
) -> PodView:
    status = {
        "name": "agent",
        "restartCount": restarts,
        "containerID": container_id,
        "state": {"terminated": ended(container_id, exit_code, reason)},
    }
    meta = {"name": POD, **({"deletionTimestamp": "2026-12-03T18:01:00Z"} if deleting else {})}
    return pod_view(meta, {"phase": "Running", "containerStatuses": [status]})


def ended(container_id: str, exit_code: int, reason: str) -> dict[str, Any]:
    return {"containerID": container_id, "exitCode": exit_code, "reason": reason}


def watch() -> WorkerLossWatch:
    # No region reads a LiveKit here: a death is only noticed and logged.
    return WorkerLossWatch(Collectors())


def observe(seen: WorkerLossWatch, view: PodView | None, uid: str = "uid-1") -> list[str]:
    return seen.observe(REGION, POD, uid, view)


def test_a_killed_container_is_one_death_however_many_updates_show_it() -> None:
    seen = watch()
    assert observe(seen, running(FIRST)) == []
    # The kubelet reports the container ended, then restarted with the old one as lastState.
    assert observe(seen, terminated(FIRST, 137, "Error")) == [FIRST]
    assert observe(seen, running(SECOND, 1, last=ended(FIRST, 137, "Error"))) == []
    assert observe(seen, running(SECOND, 1, last=ended(FIRST, 137, "Error"))) == []
    # The restarted container dies too: another death.
    third = running("containerd://ccc", 2, last=ended(SECOND, 137, "OOMKilled"))
    assert observe(seen, third) == [SECOND]


def test_a_restart_seen_only_as_its_count_going_up_is_a_death() -> None:
    seen = watch()
    observe(seen, running(FIRST))
    assert observe(seen, running(SECOND, 1, last=ended(FIRST, 0, "Completed"))) == [FIRST]


def test_a_failure_without_a_restart_yet_is_a_death() -> None:
    assert deaths(running(FIRST), terminated(FIRST, 0, "OOMKilled")) == [FIRST]
    assert deaths(running(FIRST), terminated(FIRST, 1, "Error")) == [FIRST]
    # A clean exit is not a death until the kubelet restarts the container.
    assert deaths(running(FIRST), terminated(FIRST, 0, "Completed")) == []
    # Nothing changed: nothing died.
    assert deaths(running(FIRST), running(FIRST)) == []
    assert deaths(terminated(FIRST, 137, "Error"), terminated(FIRST, 137, "Error")) == []


def test_a_pod_being_deleted_is_a_drain_never_a_death() -> None:
    seen = watch()
    observe(seen, running(FIRST))
    assert observe(seen, terminated(FIRST, 137, "Error", deleting=True)) == []
    assert deaths(running(FIRST), terminated(FIRST, 0, "Completed", 1, deleting=True)) == []


def test_restarts_before_the_operator_saw_the_pod_are_not_acted_on() -> None:
    seen = watch()
    # An operator (re)starting finds a worker that already restarted three times.
    assert observe(seen, running(SECOND, 3, last=ended(FIRST, 137, "OOMKilled"))) == []
    assert observe(seen, running(SECOND, 3, last=ended(FIRST, 137, "OOMKilled"))) == []
    # A death after that first sight is acted on.
    assert observe(seen, terminated(SECOND, 137, "Error", 3)) == [SECOND]


def test_a_deleted_pod_is_forgotten() -> None:
    seen = watch()
    observe(seen, running(FIRST))
    assert observe(seen, None) == []
    # Seen again (a new watch after the deletion was missed): a first sight, no action.
    assert observe(seen, terminated(FIRST, 137, "Error")) == []


def participant(identity: str, kind: ParticipantInfo.Kind.ValueType, pod: str | None) -> Any:
    attributes = {"lk.agent.state": "listening"} | ({POD_ATTRIBUTE: pod} if pod else {})
    return ParticipantInfo(identity=identity, kind=kind, attributes=attributes)


def test_the_rooms_put_back_are_those_whose_agent_ran_in_the_dead_pod() -> None:
    agent, caller = ParticipantInfo.Kind.AGENT, ParticipantInfo.Kind.STANDARD
    listing = {
        "on-dead-pod": [participant("caller-1", caller, None), participant("a1", agent, POD)],
        "on-other-pod": [participant("caller-2", caller, None), participant("a2", agent, "x")],
        # A caller cannot pass for an agent by naming the pod in its own attributes.
        "caller-claims-pod": [participant("caller-3", caller, POD)],
        # A local worker (no pod) or an agent of another application: no attribute.
        "unlabelled": [participant("a3", agent, None)],
        "two-agents": [participant("a4", agent, POD), participant("a5", agent, POD)],
        "empty": [],
    }
    assert served_by(listing, POD) == {"on-dead-pod": {"a1"}, "two-agents": {"a4", "a5"}}


def test_the_removed_agent_s_webhook_dispatches_nothing_more() -> None:
    """The operator removes the dead agent itself: LiveKit's later participant_left says
    PARTICIPANT_REMOVED, which is not a lost agent (the room was restored already)."""
    left = api.WebhookEvent(
        event="participant_left",
        participant=ParticipantInfo(
            identity="a1",
            kind=ParticipantInfo.Kind.AGENT,
            disconnect_reason=DisconnectReason.PARTICIPANT_REMOVED,
        ),
    )
    assert lost_agent(left) is None
    left.participant.disconnect_reason = DisconnectReason.CONNECTION_TIMEOUT
    assert lost_agent(left) == "connection_timeout"


def test_a_worker_names_its_pod_only_in_a_pod() -> None:
    assert pod_attributes({"POD_NAME": POD}) == {POD_ATTRIBUTE: POD}
    assert pod_attributes({}) == {}
    assert pod_attributes({"POD_NAME": ""}) == {}
