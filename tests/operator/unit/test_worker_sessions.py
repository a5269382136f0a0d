"""The sessions each worker reports on its /metrics, as the operator reads them: a count where
the page has the gauge, None (hold, never scale down) wherever a worker cannot be read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from voicefleet_operator.worker_load import ACTIVE_SESSIONS, WorkerPod, read_sessions, sessions_in


def exposition(sessions: float | None, *, turns: float = 7) -> str:
    """A worker's page as prometheus-client writes it: its labels, other series around it."""
    registry = CollectorRegistry()
    Counter("voicefleet_agent_turns", "", ["agent", "region"], registry=registry).labels(
        "support", "eu"
    ).inc(turns)
    if sessions is not None:
        gauge = Gauge(ACTIVE_SESSIONS, "", ["agent", "region"], registry=registry)
        gauge.labels("support", "eu").set(sessions)
    return generate_latest(registry).decode()


def test_the_active_sessions_gauge_is_the_workers_load() -> None:
    assert sessions_in(exposition(3)) == 3
    # An idle worker is known to be idle: 0, not missing.
    assert sessions_in(exposition(0)) == 0


def test_a_page_without_the_gauge_is_no_reading() -> None:
    assert sessions_in(exposition(None, turns=3)) is None
    assert sessions_in("") is None


# What each worker pod's address answers on its metrics port.
PAGES = {
    "127.0.0.2": (200, exposition(2)),
    "127.0.0.3": (200, exposition(0)),
    "127.0.0.4": (503, exposition(5)),  # its page, but not served as healthy
    "127.0.0.5": (200, 'voicefleet_agent_active_sessions{agent="support" 1\n'),  # torn
    "127.0.0.6": (200, exposition(None)),  # something else listens there
}


async def page(request: web.Request) -> web.Response:
    address = request.transport.get_extra_info("sockname")[0] if request.transport else ""
    status, text = PAGES[address]
    return web.Response(status=status, text=text)


@pytest.fixture
async def metrics_port() -> AsyncIterator[int]:
    """One port on several loopback addresses, each playing one worker pod."""
    app = web.Application()
    app.router.add_get("/metrics", page)
    runner = web.AppRunner(app)
    await runner.setup()
    hosts = iter(PAGES)
    first = web.TCPSite(runner, next(hosts), 0)
    await first.start()
    port: int = first._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    for host in hosts:
        await web.TCPSite(runner, host, port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_each_pod_is_read_on_its_own_and_any_failure_is_none(metrics_port: int) -> None:
    pods = [WorkerPod("ns", f"worker-{ip}", ip, {}) for ip in PAGES]
    pods.append(WorkerPod("ns", "worker-pending", "", {}))  # scheduled, no address yet
    pods.append(WorkerPod("ns", "worker-gone", "127.0.0.7", {}))  # nothing listens
    sessions = await read_sessions(pods, metrics_port)
    assert sessions == {
        "worker-127.0.0.2": 2,
        "worker-127.0.0.3": 0,
        "worker-127.0.0.4": None,
        "worker-127.0.0.5": None,
        "worker-127.0.0.6": None,
        "worker-pending": None,
        "worker-gone": None,
    }
