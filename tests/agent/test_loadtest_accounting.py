"""Turn accounting and the ramp's decisions, on synthetic timelines of what a caller heard."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from voicefleet_agent import ramp as ramp_module
from voicefleet_agent.accounting import AgentText, Outcome, judge, reply_text
from voicefleet_agent.loadtest import (
    DEFAULT_SLO_SECONDS,
    LoadTestOptions,
    LoadTestReport,
    RampOptions,
    Turn,
    format_report,
    parse_command,
    progress_line,
)
from voicefleet_agent.process_tree import WorkerProcesses
from voicefleet_agent.ramp import (
    MIB,
    Step,
    Usage,
    WorkerMetrics,
    WorkerMetricsError,
    format_recommendation,
    recommend,
    run_ramp,
    table_row,
)
from voicefleet_models.voice_agent import SLOSpec

CONNECTION = ["--url", "ws://127.0.0.1:7880", "--api-key", "k", "--api-secret", "s"]


def sounds(start: float, end: float, every: float = 0.01) -> list[float]:
    """Agent audio heard from `start` to `end`, one audible frame per `every` seconds."""
    return [float(t) for t in np.arange(start, end, every)]


def test_a_reply_after_the_caller_finished_is_answered_with_its_latency() -> None:
    verdict = judge(10.0, 12.0, 20.0, sounds(5.0, 6.0) + sounds(12.8, 14.0))
    assert verdict.outcome is Outcome.ANSWERED
    assert verdict.heard == pytest.approx(12.8)


def test_a_reply_that_starts_in_a_pause_of_the_utterance_is_early_not_fast() -> None:
    # The agent answered a pause at 11 s and was still talking when the caller finished:
    # the first sound after the end of speech comes 10 ms later, which is no latency at all.
    verdict = judge(10.0, 12.0, 20.0, sounds(11.3, 13.0))
    assert verdict.outcome is Outcome.EARLY
    assert verdict.heard is not None
    assert verdict.heard - 12.0 < 0.02


def test_an_earlier_reply_running_into_the_utterance_is_an_overlap() -> None:
    verdict = judge(10.0, 12.0, 20.0, sounds(8.0, 10.4) + sounds(12.9, 14.0))
    assert verdict.outcome is Outcome.OVERLAPPED


def test_pauses_inside_one_reply_do_not_split_it() -> None:
    # A reply with 0.3 s pauses between words that began before the caller did is one reply.
    audible = sounds(8.0, 9.0) + sounds(9.3, 9.8) + sounds(10.1, 10.3)
    assert judge(9.95, 12.0, 20.0, audible).outcome is Outcome.OVERLAPPED


def test_no_reply_is_a_failure() -> None:
    verdict = judge(10.0, 12.0, 27.0, sounds(5.0, 6.0))
    assert verdict == judge(10.0, 12.0, 27.0, [])
    assert verdict.outcome is Outcome.FAILED
    assert verdict.heard is None


def test_a_reply_begun_while_the_caller_spoke_is_early_even_if_cut_before_it_was_heard() -> None:
    texts = [AgentText("Simulated reply 2.", 11.2)]
    assert judge(10.0, 12.0, 20.0, sounds(12.7, 13.5), texts).outcome is Outcome.EARLY
    silent = [AgentText("", 11.2)]  # a transcript without words is no reply
    assert judge(10.0, 12.0, 20.0, sounds(12.7, 13.5), silent).outcome is Outcome.ANSWERED


def test_replies_are_attributed_to_the_utterance_they_follow() -> None:
    texts = [AgentText("first", 3.0), AgentText("second", 12.5), AgentText("third", 21.0)]
    assert reply_text(texts, 10.0, 20.0) == "second"
    assert reply_text(texts, 0.0, 10.0) == "first"


def report_of(*outcomes: tuple[Outcome, float]) -> LoadTestReport:
    report = LoadTestReport(callers=1)
    for i, (outcome, latency) in enumerate(outcomes):
        ended = 10.0 * i
        heard = None if outcome is Outcome.FAILED else ended + latency
        report.turns.append(Turn(0, "RM", ended, heard, ended - 1, outcome))
    return report


def test_only_clean_answers_count_towards_latency() -> None:
    report = report_of(
        (Outcome.ANSWERED, 1.0),
        (Outcome.ANSWERED, 2.0),
        (Outcome.EARLY, 0.01),
        (Outcome.OVERLAPPED, 0.01),
        (Outcome.FAILED, 0.0),
    )
    assert report.latencies == [1.0, 2.0]
    assert report.p50 == 1.0
    assert (report.turns_answered, report.turns_overlapped, report.turns_failed) == (2, 2, 1)
    assert (report.turns_attempted, report.turns_completed) == (5, 4)
    summary = report.summary()
    assert summary["turns_early"] == summary["turns_overlapped"] == 1
    assert summary["turns_failed"] == 1
    line = progress_line(report, planned_turns=6)
    assert line.startswith("loadtest: 2/6 turns answered, 0 errors, 2 overlapped/early, 1 failed")
    text = format_report(report).splitlines()
    assert text[0] == "callers 1, turns 2/5"
    assert text[2].startswith("turns answered 2, overlapped/early 2 (not in the latency figures)")


def step(callers: int, p95: float, *, failed: int = 0, generator: float = 0.2) -> Step:
    outcomes = [(Outcome.ANSWERED, p95)] * 3 + [(Outcome.FAILED, 0.0)] * failed
    worker_bytes = (300 + 50 * callers) * MIB
    usage = Usage(
        30.0, generator, 0.4, worker_cores=0.1 * callers + 0.2, worker_peak_bytes=worker_bytes
    )
    return Step(callers, report_of(*outcomes), usage, worker_idle_bytes=300 * MIB)


def test_the_ramp_stops_at_the_first_step_over_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ramp_module, "SETTLE_SECONDS", 0.0)  # no rooms to settle here
    p95s = {1: 0.9, 2: 1.1, 3: 1.7, 4: 1.2}
    measured: list[int] = []

    async def measure(options: LoadTestOptions, *_: object) -> Step:
        measured.append(options.callers)
        return step(options.callers, p95s[options.callers])

    options = LoadTestOptions("ws://x", "k", "s", "agent")
    ramp = RampOptions(max_callers=4, threshold=1.5)
    steps = asyncio.run(run_ramp(options, ramp, measure=measure))
    assert measured == [1, 2, 3]
    rec = recommend(steps, ramp.threshold)
    assert rec.sessions == 2
    assert rec.limit_found
    # 0.4 cores and 400 MiB at 2 sessions, plus the margin, rounded up.
    assert (rec.cpu_millicores, rec.memory_mib) == (500, 512)
    text = format_recommendation(steps, rec)
    assert "sessionsPerWorker: 2" in text
    assert "requests cpu 500m, memory 512Mi" in text


def test_lost_turns_fail_a_step_whatever_its_latency() -> None:
    steps = [step(1, 0.5), step(2, 0.5, failed=1)]
    assert recommend(steps, 1.5).sessions == 1


def test_a_ramp_that_never_crosses_says_so_and_none_that_starts_over_recommends_nothing() -> None:
    assert "raise --ramp-to" in format_recommendation([step(1, 0.5)], recommend([step(1, 0.5)], 1))
    over = recommend([step(1, 2.0)], 1.5)
    assert over.sessions is None
    assert "no step held" in format_recommendation([step(1, 2.0)], over)


def test_a_saturated_load_generator_is_flagged() -> None:
    busy = step(4, 0.8, generator=0.95)
    assert busy.bottleneck is not None
    assert "load generator" in table_row(busy)
    assert "warning: the load generator" in format_recommendation([busy], recommend([busy], 1.5))
    assert step(4, 0.8).bottleneck is None


def test_per_session_figures_share_the_worker_among_its_sessions() -> None:
    s = step(4, 0.8)
    assert s.worker_cores_per_session == pytest.approx(0.6 / 4)
    assert s.worker_mib_per_session == pytest.approx(50)


def test_ramp_arguments_and_the_slo_default() -> None:
    assert SLOSpec().voice_to_voice_seconds == DEFAULT_SLO_SECONDS
    ramp_args = ["--ramp-to", "7", "--ramp-step", "3", "--worker-pid", "42"]
    ramp = parse_command([*CONNECTION, "--agent", "a", *ramp_args])[1]
    assert ramp is not None
    assert ramp.steps == [3, 6, 7]
    assert (ramp.threshold, ramp.worker_pid) == (DEFAULT_SLO_SECONDS, 42)
    assert parse_command([*CONNECTION, "--agent", "a"])[1] is None
    with pytest.raises(SystemExit):
        parse_command([*CONNECTION, "--agent", "a", "--ramp-to", "0", "--worker-pid", "42"])
    url = "http://10.0.0.7:9100/metrics"
    remote = parse_command([*CONNECTION, "--agent", "a", "--ramp-to", "2", "--worker-metrics", url])
    assert remote[1] is not None
    assert (remote[1].worker_metrics, remote[1].worker_pid) == (url, None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ramp-to", "3"], "--ramp-to needs the worker's CPU and memory"),
        (
            ["--ramp-to", "3", "--worker-pid", "42", "--worker-metrics", "http://w/metrics"],
            "not allowed with argument --worker-pid",
        ),
        (["--ramp-to", "3", "--worker-metrics", "w:9100/metrics"], "http:// or https:// URL"),
        (["--worker-metrics", "http://w/metrics"], "add --ramp-to"),
    ],
)
def test_a_ramp_measures_exactly_one_worker_source(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_command([*CONNECTION, "--agent", "a", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_worker_processes_read_this_process_tree() -> None:
    tree = WorkerProcesses(os.getpid())
    assert tree.memory_bytes() > 10 * MIB
    before = tree.cpu_seconds()
    sum(i * i for i in range(2_000_000))
    assert tree.cpu_seconds() > before


def test_worker_metrics_reads_the_usage_a_worker_exposes_and_names_what_is_missing() -> None:
    registry = CollectorRegistry()
    cpu = Counter("voicefleet_agent_worker_cpu_seconds", "", ["agent"], registry=registry)
    memory = Gauge("voicefleet_agent_worker_memory_bytes", "", ["agent"], registry=registry)
    cpu.labels("a").inc(12.5)
    memory.labels("a").set(300 * MIB)
    server, thread = start_http_server(0, "127.0.0.1", registry)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        worker = WorkerMetrics(url)
        assert (worker.cpu_seconds(), worker.memory_bytes()) == (12.5, 300 * MIB)
        cpu.labels("a").inc(0.5)
        assert worker.cpu_seconds() == 13.0
        registry.unregister(memory)
        with pytest.raises(WorkerMetricsError, match="has no voicefleet_agent_worker_memory"):
            worker.memory_bytes()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    with pytest.raises(WorkerMetricsError, match="cannot read the worker's metrics"):
        WorkerMetrics(url).cpu_seconds()
