"""Leader election's rules and its liveness, without a server."""

from __future__ import annotations

import asyncio

from voicefleet_operator.health import Liveness
from voicefleet_operator.kube import Kube
from voicefleet_operator.leadership import (
    Leadership,
    LeaseConfig,
    lease_record,
    may_take,
    while_leading,
)

from .conftest import Answer, FakeApiServer

CONFIG = LeaseConfig("ops", "voicefleet-operator", "pod-b_1", retry_seconds=0.01)


def test_a_lease_is_taken_only_when_free_ours_or_unrenewed_for_its_duration() -> None:
    assert may_take(None, "b", 0.0, 15)
    assert may_take("b", "b", 0.0, 15)
    assert not may_take("a", "b", 14.9, 15)
    assert may_take("a", "b", 15.0, 15)


def test_taking_over_counts_a_transition_and_renewing_does_not() -> None:
    theirs = {"holderIdentity": "pod-a_0", "leaseTransitions": 3, "acquireTime": "then"}
    taken = lease_record(CONFIG, theirs, holding=True)
    assert (taken["holderIdentity"], taken["leaseTransitions"]) == ("pod-b_1", 4)
    assert taken["acquireTime"] != "then"
    renewed = lease_record(CONFIG, taken, holding=True)
    assert renewed["leaseTransitions"] == 4
    assert renewed["acquireTime"] == taken["acquireTime"]
    released = lease_record(CONFIG, renewed, holding=False)
    assert "holderIdentity" not in released
    assert released["leaseDurationSeconds"] == 1


async def test_a_held_lease_is_waited_for_then_taken_with_a_conditional_write(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    spec = {"holderIdentity": "pod-a_0", "renewTime": "t", "leaseDurationSeconds": 0}
    held = {"metadata": {"resourceVersion": "7"}, "spec": spec}
    fake.answers = [Answer(200, held), Answer(200, {})]
    leadership = Leadership(kube, CONFIG)
    assert await leadership._attempt(CONFIG)  # unchanged for its 0 s: taken
    get, put = fake.seen
    assert (get.method, put.method) == ("GET", "PUT")
    assert '"resourceVersion": "7"' in put.body  # conditional: a faster standby wins alone
    assert '"holderIdentity": "pod-b_1"' in put.body


async def test_a_leader_that_cannot_renew_gives_up_and_its_work_stops(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    config = LeaseConfig("ops", "l", "me", renew_deadline_seconds=0.05, retry_seconds=0.01)
    fake.answers = [Answer(404, {"code": 404}), Answer(201, {})]  # no lease yet: created
    fake.answers += [Answer(500, {"code": 500})] * 200  # then the API server fails
    leadership = Leadership(kube, config)
    worked = asyncio.Event()

    async def work() -> None:
        worked.set()
        await asyncio.sleep(3600)

    running = asyncio.create_task(while_leading(leadership, work))
    await asyncio.wait_for(leadership.run(), 5)
    assert leadership.lost.is_set()
    assert worked.is_set()
    await asyncio.wait_for(running, 1)  # cancelled with the lease, not left writing


async def test_liveness_fails_when_the_loop_task_dies_or_stalls() -> None:
    class Beat:
        beat = 0.0

    async def crash() -> None:
        raise RuntimeError("bug")

    liveness = Liveness(loop=asyncio.create_task(crash()), autoscaler=Beat())
    await asyncio.sleep(0)
    assert liveness.problems(leading=False) == []  # a standby runs no loop
    assert liveness.problems(leading=True) == ["autoscaling loop stopped"]
    stalled = asyncio.create_task(asyncio.sleep(3600))
    liveness.loop = stalled
    assert liveness.problems(leading=True)[0].startswith("autoscaling loop made no progress")
    stalled.cancel()


async def test_liveness_fails_when_a_watch_ends() -> None:
    watcher = asyncio.create_task(asyncio.sleep(3600), name="watcher for pods@None")
    liveness = Liveness()
    assert liveness.problems(leading=False) == []
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert liveness.problems(leading=False) == ["watcher for pods@None has ended"]
