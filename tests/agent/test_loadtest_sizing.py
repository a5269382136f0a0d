"""The load test's turn accounting and ramp mode through a real livekit-server and real workers
with simulated providers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.agent.conftest import AgentWorker, pipeline_config
from voicefleet_agent.accounting import Outcome
from voicefleet_agent.loadtest import (
    SAMPLE_RATE,
    LoadTestOptions,
    RampOptions,
    run_loadtest,
    utterance_pcm,
)
from voicefleet_agent.process_tree import WorkerProcesses
from voicefleet_agent.ramp import MIB, WorkerMetrics, run_ramp
from voicefleet_agent.worker import CPU_SAMPLE_SECONDS
from voicefleet_devstack.livekit import LiveKitServer

DELAY = 0.05
SIMULATED = [{"provider": "simulated", "simulation": {"delaySeconds": DELAY}}]
# Turn settings with which the agent ends the caller's turn at any short pause.
EAGER_TURN = {"minEndpointingDelaySeconds": 0.05, "maxEndpointingDelaySeconds": 0.1}
PAUSE_SECONDS = 1.2


def simulated_config(name: str, **pipeline: Any) -> dict[str, Any]:
    config = pipeline_config(name, SIMULATED, SIMULATED, SIMULATED)
    config["pipeline"].update(pipeline)
    return config


@pytest.fixture(scope="module")
def steady_worker(worker_factory: Callable[..., AgentWorker]) -> AgentWorker:
    return worker_factory(simulated_config("vf-steady"))


@pytest.fixture(scope="module")
def eager_worker(worker_factory: Callable[..., AgentWorker]) -> AgentWorker:
    vad = {"minSilenceSeconds": 0.15}
    return worker_factory(simulated_config("vf-eager", vad=vad, turn=EAGER_TURN))


def options(livekit: LiveKitServer, agent: str, **extra: Any) -> LoadTestOptions:
    return LoadTestOptions(
        url=livekit.url,
        api_key=livekit.api_key,
        api_secret=livekit.api_secret,
        agent_name=agent,
        utterances=("What is the weather like today", "Please tell me about the city"),
        **extra,
    )


async def test_an_agent_that_answers_a_pause_inside_an_utterance_overlaps_and_is_not_fast(
    livekit: LiveKitServer, eager_worker: AgentWorker
) -> None:
    pause = bytes(int(PAUSE_SECONDS * SAMPLE_RATE) * 2)
    speech = (
        utterance_pcm("Tell me about the weather")
        + pause
        + utterance_pcm("in Paris and in London tomorrow morning please")
    )
    report = await run_loadtest(options(livekit, "vf-eager", turns=2, speech=[speech]))
    assert not report.errors
    outcomes = [t.outcome for t in report.turns]
    assert Outcome.EARLY in outcomes, outcomes
    assert set(outcomes) <= {Outcome.EARLY, Outcome.OVERLAPPED}, outcomes
    assert report.latencies == []
    assert report.p50 is None
    assert report.turns_overlapped == report.turns_attempted == 2
    # The agent's first reply answers the words before the pause, while the caller still talks.
    first = report.turns[0]
    assert "Simulated reply 1" in first.reply
    assert first.started < first.ended


async def test_clean_turns_are_answered_and_each_reply_is_the_one_to_its_utterance(
    livekit: LiveKitServer, steady_worker: AgentWorker
) -> None:
    report = await run_loadtest(options(livekit, "vf-steady", turns=3))
    assert not report.errors
    assert [t.outcome for t in report.turns] == [Outcome.ANSWERED] * 3
    assert report.turns_overlapped == report.turns_failed == 0
    # Nothing is heard before the agent's turn ends and its three stages have run.
    assert min(report.latencies) > 0.5 + 3 * DELAY
    for number, turn in enumerate(report.turns, start=1):
        assert f"Simulated reply {number}" in turn.reply


async def test_a_call_the_agent_never_joins_fails_its_turns(livekit: LiveKitServer) -> None:
    report = await run_loadtest(options(livekit, "vf-nobody", turns=2, join_timeout=2.0))
    assert len(report.errors) == 1
    assert (report.turns_failed, report.turns_attempted, report.turns_completed) == (2, 2, 0)


async def test_the_ramp_measures_each_step_and_recommends_the_largest_that_held(
    livekit: LiveKitServer, steady_worker: AgentWorker
) -> None:
    assert steady_worker.process is not None
    assert steady_worker.process.popen is not None
    ramp = RampOptions(max_callers=2, threshold=10.0, worker_pid=steady_worker.process.popen.pid)
    steps = await run_ramp(options(livekit, "vf-steady", turns=2), ramp)
    assert [s.callers for s in steps] == [1, 2]
    for step in steps:
        assert step.report.turns_answered == 2 * step.callers
        assert step.usage.worker_cores is not None
        assert step.usage.worker_cores > 0
        assert step.usage.worker_peak_bytes is not None
        assert step.usage.worker_peak_bytes > 100 * 2**20
        assert step.usage.generator_cores > 0


async def test_a_worker_exposes_its_process_tree_as_the_ramp_reads_it_here(
    steady_worker: AgentWorker,
) -> None:
    """/metrics carries what the ramp would read of the worker on this machine: the tree's CPU
    time and proportional memory as of its last sample, taken within the last second. Job
    processes of earlier calls may still be exiting and warm ones loading: the exposed figures
    lie between what this machine reads before and after that sample."""
    assert steady_worker.process is not None
    assert steady_worker.process.popen is not None
    here = WorkerProcesses(steady_worker.process.popen.pid)
    exposed = WorkerMetrics(f"{steady_worker.url}/metrics")
    cpu_before, memory_before = here.cpu_seconds(), here.memory_bytes()
    await asyncio.sleep(2 * CPU_SAMPLE_SECONDS)
    cpu, memory = exposed.cpu_seconds(), exposed.memory_bytes()
    cpu_after, memory_after = here.cpu_seconds(), here.memory_bytes()
    assert cpu_before <= cpu <= cpu_after + 0.05
    low, high = sorted((memory_before, memory_after))
    assert 0.95 * low <= memory <= 1.05 * high


async def settled(worker: AgentWorker) -> None:
    """Wait (30 s at most) until the worker carries no call and its process tree has stopped
    changing: the job processes of earlier tests' calls have exited, the warm ones are up."""
    assert worker.process is not None
    assert worker.process.popen is not None
    tree = WorkerProcesses(worker.process.popen.pid)
    last: set[int] | None = None
    async with asyncio.timeout(30):
        while True:
            busy = worker.sample("voicefleet_agent_active_sessions") > 0
            pids = {p.pid for p in tree.tree()}
            if not busy and pids == last:
                return
            last = None if busy else pids
            await asyncio.sleep(2 * CPU_SAMPLE_SECONDS)


async def test_the_ramp_reads_a_worker_from_its_metrics_and_its_usage_grows_with_load(
    livekit: LiveKitServer, steady_worker: AgentWorker
) -> None:
    """As for a worker in a pod: nothing but its /metrics tells the ramp what it used."""
    await settled(steady_worker)
    ramp = RampOptions(max_callers=3, threshold=10.0, worker_metrics=f"{steady_worker.url}/metrics")
    steps = await run_ramp(options(livekit, "vf-steady", turns=2), ramp)
    assert [s.callers for s in steps] == [1, 2, 3]
    for step in steps:
        assert step.report.turns_answered == 2 * step.callers
        assert step.worker_cores_per_session is not None
        assert step.worker_cores_per_session > 0
        assert step.worker_mib_per_session is not None
        assert step.worker_mib_per_session > 0
    one, three = steps[0].usage, steps[-1].usage
    assert one.worker_cores is not None
    assert three.worker_cores is not None
    assert three.worker_cores > 1.3 * one.worker_cores
    assert one.worker_peak_bytes is not None
    assert three.worker_peak_bytes is not None
    # Two more job processes, each with its own VAD and session state.
    assert three.worker_peak_bytes > one.worker_peak_bytes + 2 * 10 * MIB


def test_the_ramp_command_stops_at_the_first_step_over_the_threshold(
    livekit: LiveKitServer, steady_worker: AgentWorker
) -> None:
    """With a threshold under any turn the agent can take, the first step is over it."""
    assert steady_worker.process is not None
    assert steady_worker.process.popen is not None
    result = subprocess.run(
        [
            *(sys.executable, "-m", "voicefleet_operator.cli", "loadtest"),
            *("--url", livekit.url, "--api-key", livekit.api_key),
            *("--api-secret", livekit.api_secret, "--agent", "vf-steady", "--turns", "1"),
            *("--ramp-to", "3", "--slo", "0.3"),
            *("--worker-pid", str(steady_worker.process.popen.pid)),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1"], result.stdout
    assert "no step held p95 ≤ 300 ms" in result.stdout
    summary = json.loads(result.stderr.splitlines()[-1])
    assert summary["sessions_per_worker"] is None
    assert summary["steps"][0]["p95_seconds"] > 0.3
