"""Agent worker fixtures: real worker subprocesses, a real OTLP/HTTP trace receiver, callers.

Workers run `python -m voicefleet_agent start` (the container runs `voicefleet-agent start`,
the same entry point) against the session's livekit-server; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.agent.tool_server import ToolServer
from voicefleet_agent.loadtest import Caller, LoadTestOptions, caller_token
from voicefleet_agent.tools import ToolClient
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.otlp import OTLPReceiver
from voicefleet_devstack.process import Process, free_port

READY_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver()
    yield receiver
    receiver.close()


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def pipeline_config(
    name: str, stt: list[Any], llm: list[Any], tts: list[Any], **extra: Any
) -> dict[str, Any]:
    return {
        "agentName": name,
        "instructions": "You are a test agent.",
        "pipeline": {"stt": stt, "llm": llm, "tts": tts},
        **extra,
    }


@dataclass
class AgentWorker:
    """One `voicefleet-agent start` subprocess."""

    config: dict[str, Any]
    livekit: LiveKitServer
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = 0
    process: Process | None = None
    ready_after: float = 0.0

    def start(self) -> AgentWorker:
        self.metrics_port = free_port()
        self.config.setdefault("observability", {})["metricsPort"] = self.metrics_port
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "config.json"
        config_path.write_text(json.dumps(self.config))
        env = {
            "VOICEFLEET_CONFIG": str(config_path),
            "LIVEKIT_URL": self.livekit.url,
            "LIVEKIT_API_KEY": self.livekit.api_key,
            "LIVEKIT_API_SECRET": self.livekit.api_secret,
            "VOICEFLEET_WORKER_HTTP_PORT": str(free_port()),
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            **self.env,
        }
        started = time.monotonic()
        self.process = Process(
            f"agent worker {self.config['agentName']}",
            [sys.executable, "-m", "voicefleet_agent", "start"],
            self.workdir / "worker.log",
            env=env,
        ).start()
        self.process.wait_until(self.ready, READY_TIMEOUT, "ready (/readyz 200)")
        self.ready_after = time.monotonic() - started
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def ready(self) -> bool:
        return http_get(f"{self.url}/readyz")[0] == 200

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, keyed by (name, sorted labels)."""
        status, text = http_get(f"{self.url}/metrics")
        assert status == 200, text
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples

    def sample(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        return sum(
            v
            for (n, ls), v in self.metrics().items()
            if n == name and set(labels.items()) <= set(ls)
        )

    def log(self) -> str:
        return (self.workdir / "worker.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=15)


@pytest.fixture(scope="module")
def worker_factory(
    livekit: LiveKitServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., AgentWorker]]:
    workers: list[AgentWorker] = []

    def start(config: dict[str, Any], **env: str) -> AgentWorker:
        workdir = tmp_path_factory.mktemp(f"worker-{config['agentName']}")
        worker = AgentWorker(config, livekit, workdir, env=dict(env))
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
async def server() -> AsyncIterator[ToolServer]:
    """An HTTP server on loopback for the agent's tools, one per test."""
    server = await ToolServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[ToolClient]:
    """The tools' HTTP client, closed after the test."""
    client = ToolClient()
    yield client
    await client.aclose()


@asynccontextmanager
async def calling(
    livekit: LiveKitServer,
    agent_name: str,
    room: str,
    identity: str | None = None,
    *,
    dispatch: bool = True,
) -> AsyncIterator[Caller]:
    """A caller in `room` whose token dispatches `agent_name` (without `dispatch`: joins the
    agent already there), agent audio subscribed."""
    options = LoadTestOptions(
        url=livekit.url,
        api_key=livekit.api_key,
        api_secret=livekit.api_secret,
        agent_name=agent_name,
    )
    caller = Caller()
    token = caller_token(options, room, identity or f"caller-{room}", dispatch=dispatch)
    try:
        await caller.join(livekit.url, token)
        await caller.wait_for_agent(20)
        yield caller
    finally:
        await caller.leave()


async def answer(caller: Caller, pcm: bytes, within: float = 20) -> tuple[float, float, float]:
    """Speak and wait for the whole reply: (end of speech, first heard, last heard)."""
    ended = await caller.speak(pcm)
    heard = await caller.wait_audible_after(ended, within)
    last = await caller.wait_agent_silent(1.0, within * 2)
    return ended, heard, last


def agent_finals(caller: Caller) -> list[str]:
    me = caller.room.local_participant.identity
    return [t.text for t in caller.transcripts if t.final and t.identity != me]


async def eventually(check: Callable[[], Any], within: float = 15, what: str = "") -> Any:
    """The first truthy result of `check` (sync or async), or fail after `within` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what or 'condition'} not met within {within}s; last: {last!r}")
