"""Agent worker process start → ready for jobs, over repeated cold starts.

Each start launches `voicefleet-agent start` against one livekit-server and times it until
/readyz answers 200: the worker is registered with LiveKit and its warm job processes have
loaded Silero and the pipeline. Prints every start, then the median, p95 and max.

    python bench/agent_start.py [--starts 7]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _stack import summary
from agent_common import livekit_server, start_worker

TARGET_SECONDS = 5.0


def config() -> dict[str, object]:
    fast = [{"provider": "simulated"}]
    return {
        "agentName": "bench-start",
        "instructions": "",
        "pipeline": {"stt": fast, "llm": fast, "tts": fast},
    }


def main(starts: int) -> None:
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, livekit_server(Path(tmp)) as livekit:
        for n in range(1, starts + 1):
            worker = start_worker(livekit, Path(tmp) / f"worker{n}", config())
            worker.process.stop()
            times.append(worker.ready_after)
            print(f"start {n}/{starts}: ready after {worker.ready_after:.2f} s", flush=True)
    print(f"{summary('process start → ready for jobs', times)} (target ≤ {TARGET_SECONDS:.0f}s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=7)
    main(parser.parse_args().starts)
