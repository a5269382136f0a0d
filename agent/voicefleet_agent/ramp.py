"""Sizing a worker: `voicefleet loadtest --ramp-to N` raises the concurrent callers against one
worker step by step until p95 voice-to-voice passes the SLO threshold.

Each step is a full load test (voicefleet_agent.loadtest) and prints one row: latency of the
clean answers, turns the agent talked over or never answered, the worker's CPU and memory per
session (its process tree: read on this machine with --worker-pid, or from the worker's own
/metrics wherever it runs with --worker-metrics), and the load generator's own CPU. The
largest step that held the SLO is the recommended sessionsPerWorker, and what the worker used
there, with a margin, its resource requests. Callers that share a machine with the worker can
starve it, or themselves: a step where the callers or the machine ran out of CPU is flagged,
since its latency measures the load generator rather than the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

import psutil  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from voicefleet_agent.loadtest import (
    LoadTestOptions,
    LoadTestReport,
    RampOptions,
    ms,
    print_progress,
    run_loadtest,
)
from voicefleet_agent.process_tree import WorkerProcesses

MIB = 2**20
SAMPLE_SECONDS = 1.0
# Between steps: the last step's rooms close and its job processes finish or go back to idle.
SETTLE_SECONDS = 3.0
# The callers run one Python event loop: near a full core, their frames leave late and the
# agent's arrive unread, which reads as agent latency.
GENERATOR_BUSY_CORES = 0.8
# Above this share of every core busy, the worker waits for CPU behind the callers (or the
# callers behind the worker) and latency measures the machine.
MACHINE_BUSY_SHARE = 0.9
# Requests above what the worker used at the recommended size: calls vary in length and
# wording, and a worker short of CPU is late on every call it carries.
REQUEST_MARGIN = 1.2
CPU_GRAIN_MILLICORES = 50
MEMORY_GRAIN_MIB = 64
# A worker that runs out of memory is killed with all its calls: the limit leaves room to spike.
MEMORY_LIMIT_FACTOR = 2


WORKER_CPU = "voicefleet_agent_worker_cpu_seconds_total"
WORKER_MEMORY = "voicefleet_agent_worker_memory_bytes"
SCRAPE_TIMEOUT_SECONDS = 5.0


class WorkerUsage(Protocol):
    """The worker's process tree: CPU seconds so far and memory now."""

    def cpu_seconds(self) -> float: ...

    def memory_bytes(self) -> int: ...


class WorkerMetricsError(Exception):
    """The worker's /metrics could not be read or lacks its usage."""


class WorkerMetrics:
    """A worker's usage from its /metrics, wherever it runs (a pod): the worker samples its own
    process tree once a second, as WorkerProcesses would read it on its machine."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _read(self, name: str) -> float:
        try:
            with urllib.request.urlopen(self.url, timeout=SCRAPE_TIMEOUT_SECONDS) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError) as e:
            raise WorkerMetricsError(f"cannot read the worker's metrics at {self.url}: {e}") from e
        values = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        ]
        if not values:
            raise WorkerMetricsError(
                f"{self.url} has no {name}: is it the /metrics of a voicefleet agent worker?"
            )
        return float(sum(values))

    def cpu_seconds(self) -> float:
        return self._read(WORKER_CPU)

    def memory_bytes(self) -> int:
        return int(self._read(WORKER_MEMORY))


def worker_usage(ramp: RampOptions) -> WorkerUsage | None:
    """Where the ramp reads the worker's usage: its process tree here, or its /metrics."""
    if ramp.worker_pid is not None:
        return WorkerProcesses(ramp.worker_pid)
    if ramp.worker_metrics is not None:
        return WorkerMetrics(ramp.worker_metrics)
    return None


def own_cpu_seconds() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def machine_busy_seconds() -> tuple[float, float]:
    """CPU seconds of all cores: busy, total."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = float(sum(t))
    return total - idle, total


@dataclass(frozen=True)
class Usage:
    """What one step cost, averaged over its wall-clock time."""

    seconds: float
    generator_cores: float
    machine_busy: float
    """Share of all of the machine's cores that were busy."""
    worker_cores: float | None = None
    worker_peak_bytes: int | None = None


@dataclass(frozen=True)
class Step:
    callers: int
    report: LoadTestReport
    usage: Usage
    worker_idle_bytes: int | None = None

    @property
    def p50(self) -> float | None:
        return self.report.p50

    @property
    def p95(self) -> float | None:
        return self.report.p95

    def holds(self, threshold: float) -> bool:
        """Every turn was answered cleanly enough to count and p95 stayed under the threshold."""
        r = self.report
        ok = not r.errors and not r.turns_failed and r.turns_answered > 0
        return ok and r.p95 is not None and r.p95 <= threshold

    @property
    def worker_cores_per_session(self) -> float | None:
        cores = self.usage.worker_cores
        return None if cores is None else cores / self.callers

    @property
    def worker_mib_per_session(self) -> float | None:
        """Memory the sessions added to the idle worker, per session."""
        peak, idle = self.usage.worker_peak_bytes, self.worker_idle_bytes
        if peak is None or idle is None:
            return None
        return max(0, peak - idle) / MIB / self.callers

    @property
    def bottleneck(self) -> str | None:
        """Why this step's latency may be the load generator's rather than the worker's."""
        u = self.usage
        if u.generator_cores >= GENERATOR_BUSY_CORES:
            return f"the callers used {u.generator_cores:.2f} cores (their event loop is one)"
        if u.machine_busy >= MACHINE_BUSY_SHARE:
            return f"the machine's cores were {u.machine_busy:.0%} busy"
        return None


@dataclass(frozen=True)
class Recommendation:
    sessions: int | None
    """sessionsPerWorker: the largest step that held the SLO; none if the first did not."""
    threshold: float
    limit_found: bool
    """A step passed the threshold; otherwise the worker may take more than was tried."""
    cpu_millicores: int | None = None
    memory_mib: int | None = None


def recommend(steps: list[Step], threshold: float) -> Recommendation:
    held = [s for s in steps if s.holds(threshold)]
    limit_found = len(held) < len(steps)
    if not held:
        return Recommendation(None, threshold, limit_found)
    best = held[-1]
    cpu = memory = None
    if best.usage.worker_cores is not None:
        cpu = round_up(best.usage.worker_cores * 1000 * REQUEST_MARGIN, CPU_GRAIN_MILLICORES)
    if best.usage.worker_peak_bytes is not None:
        mib = best.usage.worker_peak_bytes / MIB * REQUEST_MARGIN
        memory = round_up(mib, MEMORY_GRAIN_MIB)
    return Recommendation(best.callers, threshold, limit_found, cpu, memory)


def round_up(value: float, grain: int) -> int:
    return max(grain, math.ceil(value / grain) * grain)


Measure = Callable[[LoadTestOptions, WorkerUsage | None, int | None], Awaitable[Step]]


async def measure_step(
    options: LoadTestOptions, worker: WorkerUsage | None, idle_bytes: int | None
) -> Step:
    """One load test at `options.callers`, with the resources it used sampled meanwhile."""
    loop = asyncio.get_running_loop()
    peak: list[int] = []
    stop = asyncio.Event()

    async def sample_memory() -> None:
        while worker is not None and not stop.is_set():
            peak.append(await loop.run_in_executor(None, worker.memory_bytes))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)

    async def worker_cpu_seconds() -> float | None:
        # Reading a process tree or a scrape blocks: the callers' audio must not wait for it.
        return None if worker is None else await loop.run_in_executor(None, worker.cpu_seconds)

    started, own = time.monotonic(), own_cpu_seconds()
    busy, total = machine_busy_seconds()
    worker_cpu = await worker_cpu_seconds()
    sampler = asyncio.create_task(sample_memory())
    try:
        report = await run_loadtest(options, on_progress=print_progress(options.planned_turns))
    finally:
        stop.set()
        await sampler
    elapsed = time.monotonic() - started
    busy_after, total_after = machine_busy_seconds()
    generator = own_cpu_seconds() - own
    worker_after = await worker_cpu_seconds()
    worker_cores = None
    if worker_after is not None and worker_cpu is not None:
        worker_cores = (worker_after - worker_cpu) / elapsed
    usage = Usage(
        seconds=elapsed,
        generator_cores=generator / elapsed,
        machine_busy=(busy_after - busy) / max(1e-9, total_after - total),
        worker_cores=worker_cores,
        worker_peak_bytes=max(peak) if peak else None,
    )
    return Step(options.callers, report, usage, idle_bytes)


async def run_ramp(
    options: LoadTestOptions,
    ramp: RampOptions,
    on_step: Callable[[Step], None] = lambda step: None,
    measure: Measure = measure_step,
) -> list[Step]:
    """Load tests at each of `ramp.steps` callers in turn, up to and including the first whose
    p95 passes `ramp.threshold` (or that lost turns)."""
    worker = worker_usage(ramp)
    idle = None
    if worker is not None:  # read in a thread, as every step's samples are
        idle = await asyncio.get_running_loop().run_in_executor(None, worker.memory_bytes)
    steps: list[Step] = []
    for index, callers in enumerate(ramp.steps):
        if index:
            await asyncio.sleep(SETTLE_SECONDS)
        prefix = f"{options.room_prefix}-ramp{callers}"
        step = await measure(replace(options, callers=callers, room_prefix=prefix), worker, idle)
        steps.append(step)
        on_step(step)
        if not step.holds(ramp.threshold):
            break
    return steps


COLUMNS = (
    ("callers", 7),
    ("answered", 8),
    ("overlap", 7),
    ("failed", 6),
    ("p50", 8),
    ("p95", 8),
    ("worker cpu/sess", 15),
    ("worker MiB/sess", 15),
    ("worker MiB", 10),
    ("callers cpu", 11),
)


def table_header() -> str:
    return "  ".join(name.rjust(width) for name, width in COLUMNS)


def table_row(step: Step) -> str:
    r = step.report
    cpu = step.worker_cores_per_session
    mib = step.worker_mib_per_session
    peak = step.usage.worker_peak_bytes
    cells = (
        str(step.callers),
        str(r.turns_answered),
        str(r.turns_overlapped),
        str(r.turns_failed),
        ms(r.p50),
        ms(r.p95),
        "-" if cpu is None else f"{cpu * 1000:.0f}m",
        "-" if mib is None else f"{mib:.0f}",
        "-" if peak is None else f"{peak / MIB:.0f}",
        f"{step.usage.generator_cores * 1000:.0f}m",
    )
    row = "  ".join(cell.rjust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True))
    return row if step.bottleneck is None else f"{row}  ! load generator: {step.bottleneck}"


def format_recommendation(steps: list[Step], rec: Recommendation) -> str:
    limit = f"p95 ≤ {rec.threshold * 1000:.0f} ms"
    if rec.sessions is None:
        lines = [f"no step held {limit}: not even one session per worker meets the SLO here"]
    else:
        lines = [f"sessionsPerWorker: {rec.sessions} (the largest step that held {limit})"]
        if rec.limit_found:
            over = steps[-1]
            lines.append(
                f"  at {over.callers} callers: p95 {ms(over.p95)}, "
                f"{over.report.turns_overlapped} overlapped/early, "
                f"{over.report.turns_failed} failed"
            )
        else:
            lines.append("  every step held: the worker may take more; raise --ramp-to")
        lines.append(
            "  headroom: that is the knee, with none to spare; scaling.headroomPercent "
            "(default 20) keeps capacity above demand so calls arriving while a worker starts "
            "do not push a worker past it"
        )
    if rec.cpu_millicores is not None and rec.memory_mib is not None:
        lines.append(
            f"resources: requests cpu {rec.cpu_millicores}m, memory {rec.memory_mib}Mi; "
            f"limits memory {rec.memory_mib * MEMORY_LIMIT_FACTOR}Mi "
            f"(the worker's use at {rec.sessions} sessions + {REQUEST_MARGIN - 1:.0%})"
        )
    elif rec.sessions is not None:
        lines.append("resources: not measured (pass --worker-pid or --worker-metrics)")
    lines.extend(generator_warnings(steps))
    return "\n".join(lines)


def generator_warnings(steps: list[Step]) -> list[str]:
    flagged = [s for s in steps if s.bottleneck is not None]
    if not flagged:
        return []
    sizes = ", ".join(str(s.callers) for s in flagged)
    return [
        f"warning: the load generator may be the bottleneck at {sizes} callers "
        f"({flagged[0].bottleneck}); run the callers on another machine than the worker "
        "before sizing a fleet from these figures"
    ]


def step_summary(step: Step) -> dict[str, object]:
    return {
        **step.report.summary(),
        "worker_cores": step.usage.worker_cores,
        "worker_peak_bytes": step.usage.worker_peak_bytes,
        "worker_idle_bytes": step.worker_idle_bytes,
        "generator_cores": step.usage.generator_cores,
        "machine_busy": step.usage.machine_busy,
        "bottleneck": step.bottleneck,
    }


def main(options: LoadTestOptions, ramp: RampOptions) -> int:
    """Run the ramp, printing the table as it grows; a summary per step on stderr as JSON."""
    print(table_header(), flush=True)

    def show(step: Step) -> None:
        print(table_row(step), flush=True)

    try:
        steps = asyncio.run(run_ramp(options, ramp, on_step=show))
    except WorkerMetricsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rec = recommend(steps, ramp.threshold)
    print(format_recommendation(steps, rec))
    summary = {"steps": [step_summary(s) for s in steps], "sessions_per_worker": rec.sessions}
    print(json.dumps(summary), file=sys.stderr)
    return 0 if rec.sessions is not None else 1
