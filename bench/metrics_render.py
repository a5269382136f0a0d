"""A worker's /metrics after many finished sessions: every job process leaves its counter and
histogram files behind, and prometheus-client's multiprocess collector reads every file on
every scrape. The worker folds finished processes' files into one per type
(voicefleet_agent.metrics.fold_finished_processes); this compares rendering with and without
that fold, in the same process, over the same files. Target: ≤ 50 ms after 5,000 sessions.

    python bench/metrics_render.py [--sessions 5000] [--renders 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from _stack import percentile

TARGET_SECONDS = 0.050


def serve_one_session(n: int) -> None:
    """What one job process records for a session of a few turns (voicefleet_agent.metrics)."""
    from voicefleet_agent import metrics

    common = {"agent": "bench", "region": "local"}
    provider = {**common, "provider": "deepgram", "model": "nova-3"}
    llm = {**common, "provider": "google", "model": "gemini-3-flash"}
    for turn in range(4):
        seconds = 0.4 + 0.1 * ((n + turn) % 9)
        metrics.VOICE_TO_VOICE.labels(**common).observe(seconds)
        metrics.END_OF_TURN.labels(**common).observe(seconds / 3)
        metrics.STT_DELAY.labels(**provider).observe(seconds / 4)
        metrics.LLM_TTFT.labels(**llm).observe(seconds / 2)
        metrics.TTS_TTFB.labels(**provider).observe(seconds / 5)
        metrics.VAD_INFERENCE.labels(**common).observe(0.002)
        metrics.TURNS.labels(**common).inc()
        metrics.LLM_TOKENS.labels(**llm, kind="input").inc(120)
        metrics.TTS_CHARACTERS.labels(**provider).inc(60)
        metrics.STT_AUDIO.labels(**provider).inc(3.0)
    metrics.SESSIONS.labels(**common, outcome="completed").inc()


def finish_sessions(count: int) -> None:
    for n in range(count):
        pid = os.fork()
        if pid == 0:
            serve_one_session(n)
            os._exit(0)
        os.waitpid(pid, 0)
        if (n + 1) % 1000 == 0:
            print(f"  {n + 1}/{count} sessions finished", flush=True)


def timed(render: object, renders: int) -> list[float]:
    times = []
    for _ in range(renders):
        start = time.perf_counter()
        render()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def line(label: str, times: list[float]) -> str:
    return (
        f"{label}: median={statistics.median(times) * 1000:.1f} ms "
        f"p95={percentile(times, 0.95) * 1000:.1f} ms"
    )


def main(sessions: int, renders: int) -> None:
    directory = tempfile.mkdtemp(prefix="voicefleet-bench-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        from voicefleet_agent import metrics

        print(f"finishing {sessions} sessions, one job process each ...", flush=True)
        finish_sessions(sessions)
        files = len(os.listdir(directory))

        def unfolded() -> bytes:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)

        before = timed(unfolded, max(3, renders // 4))
        expected = unfolded()
        start = time.perf_counter()
        folded = metrics.fold_finished_processes(directory)
        fold = time.perf_counter() - start
        after = timed(metrics.render_latest, renders)
        # The same series and values; only the order of the families may differ.
        same = sorted(metrics.render_latest().splitlines()) == sorted(expected.splitlines())
        assert same, "the fold changed a series"
        print(f"{files} metrics files from {sessions} finished sessions; {folded} folded "
              f"once in {fold * 1000:.0f} ms, {len(os.listdir(directory))} left")  # fmt: skip
        print(line("/metrics without the fold", before))
        print(line("/metrics with the fold", after) + f" (target ≤ {TARGET_SECONDS * 1000:.0f} ms)")
        ratio = statistics.median(before) / statistics.median(after)
        print(f"ratio (without ÷ with, medians): {ratio:.0f}×")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--renders", type=int, default=20)
    arguments = parser.parse_args()
    sys.exit(main(arguments.sessions, arguments.renders))
