"""What an agent session costs the worker: CPU seconds per session-second and memory per added
session at 1/4/8/16 concurrent sessions, plus process start → ready-for-jobs time.

Simulated providers (no STT/LLM/TTS compute; VAD, audio I/O and the framework run for real),
so the figures are the worker's own cost, the floor under any provider's. The simulated STT
segments speech with an energy gate, as cheap for the worker as a remote STT's endpointing, so
Silero runs once per session as it does with Deepgram. Only the worker's process tree is
measured (main process, forkserver, job processes, and the CPU of job processes that have
exited); the simulated callers run in this process.

Two views of each figure:
    total     everything the worker spent during the run ÷ session-seconds, so the worker's
              own baseline (main process, warm idle job processes) is shared among the sessions
    marginal  what the sessions add over the idle worker (measured before the runs) ÷
              session-seconds, and the slope of a least-squares line through the sizes
A size whose sessions failed (e.g. a machine too small for the worker, the callers and
livekit-server together) is reported but left out of the slope.

Each size splits the worker's CPU by thread: the Python event loops (the pipeline, the
framework, the FFI's events), other Python threads (Silero's inference executor, exporters) and
the native threads of the WebRTC stack and its FFI runtime (Opus, resampling, network), which a
session pays before any Python runs. For scale, it also prints what the callers cost this
process per session-second: plain livekit.rtc participants that send and receive audio (48 kHz,
10 ms frames) with no pipeline, i.e. roughly what any Python participant pays for its media.

    python bench/agent_cost.py [--sessions 1 4 8 16] [--turns 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil  # type: ignore[import-untyped]
from agent_common import Worker, livekit_server, start_worker

from voicefleet_agent.loadtest import LoadTestOptions, print_progress, run_loadtest
from voicefleet_devstack.livekit import LiveKitServer

MIB = 1024 * 1024
IDLE_SECONDS = 10.0
TARGET_CPU = 0.05
TARGET_MIB = 60
EVENT_LOOPS, OTHER_PYTHON, NATIVE = "event loops", "other Python threads", "native media threads"
THREAD_KINDS = (EVENT_LOOPS, OTHER_PYTHON, NATIVE)
ThreadKey = tuple[int, int]


def config(max_sessions: int) -> dict[str, object]:
    fast = [{"provider": "simulated", "simulation": {"delaySeconds": 0.2}}]
    return {
        "agentName": "bench-cost",
        "instructions": "",
        "sessionsPerWorker": max_sessions,
        "pipeline": {"stt": fast, "llm": fast, "tts": fast},
    }


@dataclass(frozen=True)
class Run:
    sessions: int
    elapsed: float
    cpu: float
    idle_bytes: int
    peak_bytes: int
    turns: str
    errors: int
    caller_cpu: float
    threads: dict[str, float] = field(default_factory=dict)
    """CPU seconds by thread kind, as sampled (threads that exited between samples missing)."""

    @property
    def session_seconds(self) -> float:
        return self.sessions * self.elapsed

    @property
    def cpu_rate(self) -> float:
        """CPU seconds per wall-clock second of the whole worker during the run."""
        return self.cpu / self.elapsed


def thread_cpu(worker: Worker) -> dict[ThreadKey, tuple[str, float]]:
    """Each thread of the worker's tree: its kind and CPU seconds so far (Linux /proc).

    Python 3.11 names no thread, so a thread named like its process is Python's: the main one
    runs the event loop. Every other name is a native thread of WebRTC or the FFI runtime."""
    threads: dict[ThreadKey, tuple[str, float]] = {}
    for proc in worker.tree():
        with contextlib.suppress(psutil.Error, OSError):
            process_name = Path(f"/proc/{proc.pid}/comm").read_text()
            for thread in proc.threads():
                name = Path(f"/proc/{proc.pid}/task/{thread.id}/comm").read_text()
                python = EVENT_LOOPS if thread.id == proc.pid else OTHER_PYTHON
                kind = python if name == process_name else NATIVE
                threads[(proc.pid, thread.id)] = (kind, thread.user_time + thread.system_time)
    return threads


@dataclass
class Samples:
    """What the worker's tree looked like during a run, sampled once a second."""

    peak_bytes: int
    before: dict[ThreadKey, tuple[str, float]]
    latest: dict[ThreadKey, tuple[str, float]] = field(default_factory=dict)

    def thread_seconds(self) -> dict[str, float]:
        spent: defaultdict[str, float] = defaultdict(float)
        for key, (kind, seconds) in self.latest.items():
            spent[kind] += seconds - self.before.get(key, (kind, 0.0))[1]
        return dict(spent)


async def sample(worker: Worker, samples: Samples, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        pss = await loop.run_in_executor(None, worker.pss_bytes)
        samples.peak_bytes = max(samples.peak_bytes, pss)
        samples.latest.update(await loop.run_in_executor(None, thread_cpu, worker))
        await asyncio.sleep(1.0)


async def measure(worker: Worker, livekit: LiveKitServer, sessions: int, turns: int) -> Run:
    options = LoadTestOptions(
        url=livekit.url,
        api_key=livekit.api_key,
        api_secret=livekit.api_secret,
        agent_name="bench-cost",
        callers=sessions,
        turns=turns,
        utterances=("Hello there, how are you?",),
        ramp_seconds=1.0,
        room_prefix=f"cost{sessions}",
    )
    idle = worker.pss_bytes()
    callers_before = own_cpu_seconds()
    cpu_before, started = worker.cpu_seconds(), time.monotonic()
    samples, stop = Samples(idle, thread_cpu(worker)), asyncio.Event()
    sampler = asyncio.create_task(sample(worker, samples, stop))
    report = await run_loadtest(options, on_progress=print_progress(options.planned_turns))
    stop.set()
    await sampler
    elapsed = time.monotonic() - started
    cpu = worker.cpu_seconds() - cpu_before
    caller_cpu = own_cpu_seconds() - callers_before
    await asyncio.sleep(3)  # let job processes exit before the next size
    return Run(
        sessions,
        elapsed,
        cpu,
        idle,
        samples.peak_bytes,
        f"{report.turns_completed}/{report.turns_attempted}",
        len(report.errors),
        caller_cpu,
        samples.thread_seconds(),
    )


def own_cpu_seconds() -> float:
    """CPU of this process, every thread: the callers' Python and their native WebRTC."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def idle_cpu_rate(worker: Worker) -> float:
    """CPU seconds per second of the worker with no session (main and warm job processes)."""
    before, started = worker.cpu_seconds(), time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    return (worker.cpu_seconds() - before) / (time.monotonic() - started)


def total_line(run: Run, idle_rate: float) -> str:
    marginal = (run.cpu_rate - idle_rate) / run.sessions
    return (
        f"{run.sessions:>3} sessions: total {run.cpu / run.session_seconds:.3f}, "
        f"marginal {marginal:.3f} CPU s per session-second; "
        f"{(run.peak_bytes - run.idle_bytes) / run.sessions / MIB:.0f} MiB "
        f"per added session (idle {run.idle_bytes / MIB:.0f} MiB, peak "
        f"{run.peak_bytes / MIB:.0f} MiB, worker {run.cpu_rate:.2f} CPU s/s), "
        f"turns {run.turns}, errors {run.errors}; the callers "
        f"{run.caller_cpu / run.session_seconds:.3f} CPU s per session-second"
    )


def threads_line(run: Run) -> str:
    """The total split by thread kind, in the sampled proportions."""
    sampled = sum(run.threads.values())
    if sampled <= 0:
        return "      by thread: no samples"
    rate = run.cpu / run.session_seconds
    parts = (f"{kind} {rate * run.threads.get(kind, 0.0) / sampled:.3f}" for kind in THREAD_KINDS)
    return f"      by thread: {', '.join(parts)} CPU s per session-second"


def marginal_lines(all_runs: list[Run]) -> list[str]:
    """Slopes across sizes: CPU per added session-second, MiB per added session. A size whose
    sessions failed did not carry its load, so it is left out of the fit."""
    runs = [r for r in all_runs if r.errors == 0]
    left_out = [str(r.sessions) for r in all_runs if r.errors]
    note = [f"left out of the fit (sessions failed): {', '.join(left_out)}"] if left_out else []
    if len({r.sessions for r in runs}) < 2:
        return [*note, "marginal: needs at least two sizes without errors"]
    sizes = np.array([r.sessions for r in runs], dtype=float)
    cpu_slope, cpu_base = np.polyfit(sizes, [r.cpu_rate for r in runs], 1)
    mem_slope, mem_base = np.polyfit(sizes, [r.peak_bytes / MIB for r in runs], 1)
    return [
        f"marginal (slope over {', '.join(str(r.sessions) for r in runs)} sessions): "
        f"{cpu_slope:.3f} CPU s per session-second (target ≤ {TARGET_CPU}), "
        f"{mem_slope:.0f} MiB per added session (target ≤ {TARGET_MIB})",
        f"intercept (the worker with no session): {cpu_base:.3f} CPU s/s, {mem_base:.0f} MiB",
        *note,
    ]


async def main(sizes: list[int], turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, livekit_server(Path(tmp)) as livekit:
        worker = start_worker(livekit, Path(tmp) / "worker", config(max(sizes)))
        print(f"process start → ready for jobs (/readyz 200): {worker.ready_after:.2f} s")
        runs = []
        try:
            await asyncio.sleep(3)  # warm job processes finish loading
            idle_rate = await idle_cpu_rate(worker)
            print(f"idle worker: {idle_rate:.3f} CPU s/s")
            for size in sizes:
                runs.append(await measure(worker, livekit, size, turns))
                print(total_line(runs[-1], idle_rate))
                print(threads_line(runs[-1]), flush=True)
        finally:
            worker.process.stop()
        for line in marginal_lines(runs):
            print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.turns))
