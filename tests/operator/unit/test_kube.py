"""The Kubernetes client against a local HTTP server that answers as the API server would."""

from __future__ import annotations

import pytest

from voicefleet_operator.kube import Conflict, Kube, KubeError, NotFound, Throttled

from .conftest import Answer, FakeApiServer, status_object

DEPLOYMENT = "/apis/apps/v1/namespaces/ns/deployments/web"


async def test_a_missing_object_is_not_found_with_the_servers_message(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    fake.answers = [Answer(404, status_object(404, 'secrets "lk" not found'))]
    with pytest.raises(NotFound) as raised:
        await kube.secret("ns", "lk")
    assert raised.value.status == 404
    assert raised.value.message == 'secrets "lk" not found'
    assert len(fake.seen) == 1  # a 404 is an answer, not a failure: never asked again


async def test_deleting_what_is_gone_already_succeeds_and_a_missing_api_is_not_served(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    fake.answers = [Answer(404, status_object(404, "not found")), Answer(404, {})]
    await kube.delete("ConfigMap", "ns", "old")
    assert not await kube.serves("PrometheusRule")
    assert [r.method for r in fake.seen] == ["DELETE", "GET"]


async def test_throttling_waits_as_long_as_retry_after_says(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    fake.answers = [Answer(429, status_object(429, "slow down"), {"Retry-After": "1"})]
    fake.answers.append(Answer(200, {"data": {"api-key": "a2V5"}}))
    assert await kube.secret("ns", "lk") == {"api-key": "key"}
    first, second = fake.seen
    assert second.at - first.at >= 0.95  # Retry-After, not the 10 ms backoff


async def test_server_errors_are_retried_with_backoff_for_idempotent_writes(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    fake.answers = [Answer(503), Answer(500, status_object(500, "etcd timeout"))]
    manifest = {"kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"}}
    await kube.apply(manifest)
    assert [(r.method, r.path) for r in fake.seen] == [("PATCH", DEPLOYMENT)] * 3
    gaps = [b.at - a.at for a, b in zip(fake.seen, fake.seen[1:], strict=False)]
    assert gaps[1] > gaps[0] >= 0.01  # 10 ms, then doubled


async def test_a_failed_create_is_not_sent_twice(api: tuple[FakeApiServer, Kube]) -> None:
    fake, kube = api
    fake.answers = [Answer(500, status_object(500, "internal error"))]
    with pytest.raises(KubeError) as raised:
        await kube.create("/apis/events.k8s.io/v1/namespaces/ns/events", {"note": "up"})
    assert raised.value.status == 500
    assert len(fake.seen) == 1  # the Event may exist already: a second would be a duplicate


async def test_throttled_after_every_attempt_and_conflicts_are_final(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    fake.answers = [Answer(429, status_object(429, "too many requests"))] * 4
    with pytest.raises(Throttled):
        await kube.list("Pod", "ns", "app=x")
    assert len(fake.seen) == 4
    fake.answers = [Answer(409, status_object(409, "the object has been modified"))]
    with pytest.raises(Conflict, match="has been modified"):
        await kube.annotate("Pod", "ns", "p", {"a": "b"})
    assert len(fake.seen) == 5


async def test_a_non_status_error_body_becomes_the_message(
    api: tuple[FakeApiServer, Kube],
) -> None:
    fake, kube = api
    fake.answers = [Answer(403, "forbidden by proxy")]
    with pytest.raises(KubeError) as raised:
        await kube.patch_status("ns", "support", {"workers": "1/1"})
    assert (raised.value.status, raised.value.message) == (403, "forbidden by proxy")
    assert str(raised.value) == "HTTP 403: forbidden by proxy"
