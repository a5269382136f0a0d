"""What an agent session costs the worker: CPU seconds per session-second and memory per added
session at 1/4/8/16 concurrent sessions, plus process start → ready-for-jobs time.

Simulated providers (no STT/LLM/TTS compute; VAD, audio I/O and the framework run for real),
so the figures are the worker's own cost, the floor under any provider's.

    python bench/agent_cost.py [--sessions 1 4 8 16] [--turns 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from agent_common import Worker, livekit_server, start_worker

from voicefleet_agent.loadtest import LoadTestOptions, run_loadtest

MIB = 1024 * 1024


def config(max_sessions: int) -> dict[str, object]:
    fast = [{"provider": "simulated", "simulation": {"delaySeconds": 0.2}}]
    return {
        "agentName": "bench-cost",
        "instructions": "",
        "sessionsPerWorker": max_sessions,
        "pipeline": {"stt": fast, "llm": fast, "tts": fast},
    }


async def sample_memory(worker: Worker, peak: list[int], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        peak[0] = max(peak[0], await loop.run_in_executor(None, worker.pss_bytes))
        await asyncio.sleep(1.0)


async def measure(worker: Worker, livekit: object, sessions: int, turns: int) -> str:
    options = LoadTestOptions(
        url=livekit.url,  # type: ignore[attr-defined]
        api_key=livekit.api_key,  # type: ignore[attr-defined]
        api_secret=livekit.api_secret,  # type: ignore[attr-defined]
        agent_name="bench-cost",
        callers=sessions,
        turns=turns,
        utterances=("Hello there, how are you?",),
        ramp_seconds=1.0,
        room_prefix=f"cost{sessions}",
    )
    idle = worker.pss_bytes()
    cpu_before, started = worker.cpu_seconds(), time.monotonic()
    peak, stop = [idle], asyncio.Event()
    sampler = asyncio.create_task(sample_memory(worker, peak, stop))
    report = await run_loadtest(options)
    stop.set()
    await sampler
    elapsed = time.monotonic() - started
    cpu = worker.cpu_seconds() - cpu_before
    session_seconds = sessions * elapsed
    await asyncio.sleep(3)  # let job processes exit before the next size
    return (
        f"{sessions:>3} sessions: {cpu / session_seconds:.3f} CPU s per session-second, "
        f"{(peak[0] - idle) / sessions / MIB:.0f} MiB per added session "
        f"(idle {idle / MIB:.0f} MiB, peak {peak[0] / MIB:.0f} MiB), "
        f"turns {report.turns_completed}/{report.turns_attempted}, errors {len(report.errors)}"
    )


async def main(sizes: list[int], turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, livekit_server(Path(tmp)) as livekit:
        worker = start_worker(livekit, Path(tmp) / "worker", config(max(sizes)))
        print(f"process start → ready for jobs (/readyz 200): {worker.ready_after:.2f} s")
        try:
            await asyncio.sleep(3)  # warm job processes finish loading
            for size in sizes:
                print(await measure(worker, livekit, size, turns), flush=True)
        finally:
            worker.process.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.turns))
