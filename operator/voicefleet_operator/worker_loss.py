"""A worker container that dies without draining has its calls put back within seconds.

livekit-server notices a dead agent only when its connection times out (about 20 s); the
kubelet reports the worker's container terminated or restarted within a second. The operator
already watches the fleet's pods: when a worker container dies (its restart count went up, or
it is terminated with a failure) in a pod that is not being deleted, the rooms whose agent
participant names that pod (`voicefleet.io/pod`, set by each job) get the dead agent removed
and the room's agent dispatched again (livekit_load.Collector.worker_lost). A pod being
deleted is a drain or a rollout: its worker finishes its calls and exits by design.

Only deaths this process saw happen are acted on: the first sight of a pod (after an operator
start, a leader change or a new pod) is its baseline. A restart that happened while no
operator watched may be long past, its rooms already restored by LiveKit's webhook path or
ended; comparing the kubelet's finishedAt with the operator's clock would depend on both
clocks agreeing. Such calls still come back through the webhook, after LiveKit's timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livekit.protocol.models import ParticipantInfo

from voicefleet_models.room import POD_ATTRIBUTE

if TYPE_CHECKING:
    from voicefleet_operator.livekit_load import Collectors, User

log = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
# A terminated container with one of these reasons failed even if its exit code says 0.
FAILED_REASONS = frozenset({"OOMKilled", "Error"})


@dataclass(frozen=True)
class Termination:
    """A terminated container, as its status reports it."""

    container_id: str
    exit_code: int
    reason: str

    @property
    def failed(self) -> bool:
        return self.exit_code != 0 or self.reason in FAILED_REASONS


@dataclass(frozen=True)
class ContainerView:
    """What a container's status says about its deaths."""

    restart_count: int
    container_id: str
    terminated: Termination | None = None  # state.terminated
    last_terminated: Termination | None = None  # lastState.terminated


@dataclass(frozen=True)
class PodView:
    deleting: bool
    containers: Mapping[str, ContainerView]


def pod_view(meta: Mapping[str, Any], status: Mapping[str, Any]) -> PodView:
    """A pod's deletion mark and container statuses, from its metadata and status."""
    containers = {
        str(found.get("name", "")): _container(found)
        for found in status.get("containerStatuses") or ()
    }
    return PodView(deleting=bool(meta.get("deletionTimestamp")), containers=containers)


def _container(status: Mapping[str, Any]) -> ContainerView:
    container_id = str(status.get("containerID") or "")
    return ContainerView(
        restart_count=int(status.get("restartCount") or 0),
        container_id=container_id,
        terminated=_termination(status.get("state"), container_id),
        last_terminated=_termination(status.get("lastState"), ""),
    )


def _termination(state: Mapping[str, Any] | None, container_id: str) -> Termination | None:
    terminated = (state or {}).get("terminated")
    if not terminated:
        return None
    return Termination(
        container_id=str(terminated.get("containerID") or container_id),
        exit_code=int(terminated.get("exitCode") or 0),
        reason=str(terminated.get("reason") or ""),
    )


def dead_container(previous: ContainerView, current: ContainerView) -> str | None:
    """The ID of the container that died between two statuses of one container, or None."""
    if current.restart_count > previous.restart_count:
        # The kubelet names the container that ended in lastState; without it, the one that
        # ran before, and as a last resort the restart itself.
        last = current.last_terminated
        if last is not None and last.container_id:
            return last.container_id
        return previous.container_id or f"restart-{current.restart_count}"
    terminated = current.terminated
    if terminated is not None and terminated.failed and terminated != previous.terminated:
        return terminated.container_id or f"restart-{current.restart_count}"
    return None


def deaths(previous: PodView | None, current: PodView) -> list[str]:
    """The containers that died without draining between two sights of a pod: none at the
    first sight (see the module's docstring) or while the pod is being deleted."""
    if previous is None or current.deleting:
        return []
    found = []
    for name, container in sorted(current.containers.items()):
        before = previous.containers.get(name)
        dead = dead_container(before, container) if before is not None else None
        if dead is not None:
            found.append(dead)
    return found


def served_by(listing: Mapping[str, Sequence[ParticipantInfo]], pod: str) -> dict[str, set[str]]:
    """The rooms with an agent running in `pod`, and those agents' identities."""
    rooms: dict[str, set[str]] = {}
    for room, participants in listing.items():
        agents = {
            p.identity
            for p in participants
            if p.kind == ParticipantInfo.Kind.AGENT and p.attributes.get(POD_ATTRIBUTE) == pod
        }
        if agents:
            rooms[room] = agents
    return rooms


class WorkerLossWatch:
    """Remembers each worker pod's last status and the deaths already acted on, so that one
    death is acted on once however many status updates show it."""

    def __init__(self, collectors: Collectors) -> None:
        self._collectors = collectors
        self._seen: dict[str, PodView] = {}
        self._handled: dict[str, set[str]] = {}

    def observe(self, region: User, pod: str, uid: str, view: PodView | None) -> list[str]:
        """Take a pod's new status (None: the pod is gone); the containers found dead, whose
        calls are being put back."""
        if view is None:
            self._seen.pop(uid, None)
            self._handled.pop(uid, None)
            return []
        previous, self._seen[uid] = self._seen.get(uid), view
        handled = self._handled.setdefault(uid, set())
        dead = [container for container in deaths(previous, view) if container not in handled]
        handled.update(dead)
        if dead:
            self._put_back(region, pod, dead)
        return dead

    def _put_back(self, region: User, pod: str, dead: list[str]) -> None:
        collector = self._collectors.reading(region)
        if collector is None:  # a standby, or the region's LiveKit is not read yet
            log.info("worker %s died (%s); its LiveKit is not read here", pod, dead)
            return
        log.warning("worker %s died (%s): putting its calls back", pod, dead)
        collector.worker_lost(pod)
