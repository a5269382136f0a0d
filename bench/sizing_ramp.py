"""Sizing ramp on this machine: a livekit-server and one agent worker on loopback, then
`voicefleet loadtest --ramp-to N` against that worker, measuring its process tree.

Simulated providers with fixed delays stand in for the remote STT/LLM/TTS, so the table shows
what the worker itself (VAD, WebRTC audio, the framework) can carry and where its latency
bends. Everything shares this machine's cores: the callers' CPU column and the load-generator
warnings say how far to trust the upper rows.

    python bench/sizing_ramp.py [--ramp-to 6] [--ramp-step 1] [--turns 3] [--slo 1.5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from agent_common import livekit_server, start_worker

from voicefleet_agent.loadtest import DEFAULT_SLO_SECONDS, LoadTestOptions, RampOptions
from voicefleet_agent.ramp import (
    format_recommendation,
    recommend,
    run_ramp,
    table_header,
    table_row,
)

AGENT = "bench-sizing"
DELAY_SECONDS = 0.2


def config(sessions: int) -> dict[str, object]:
    simulated = [{"provider": "simulated", "simulation": {"delaySeconds": DELAY_SECONDS}}]
    return {
        "agentName": AGENT,
        "instructions": "",
        "sessionsPerWorker": sessions,
        "pipeline": {"stt": simulated, "llm": simulated, "tts": simulated},
    }


async def main(ramp_to: int, step: int, turns: int, slo: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, livekit_server(Path(tmp)) as livekit:
        worker = start_worker(livekit, Path(tmp) / "worker", config(ramp_to))
        try:
            assert worker.process.popen is not None
            options = LoadTestOptions(
                livekit.url, livekit.api_key, livekit.api_secret, AGENT, turns=turns
            )
            ramp = RampOptions(ramp_to, step, slo, worker.process.popen.pid)
            print(table_header(), flush=True)
            steps = await run_ramp(options, ramp, on_step=lambda s: print(table_row(s)))
            print(format_recommendation(steps, recommend(steps, slo)))
        finally:
            worker.process.stop(grace=15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ramp-to", type=int, default=6)
    parser.add_argument("--ramp-step", type=int, default=1)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--slo", type=float, default=DEFAULT_SLO_SECONDS)
    args = parser.parse_args()
    asyncio.run(main(args.ramp_to, args.ramp_step, args.turns, args.slo))
