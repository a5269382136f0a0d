"""Pipeline overhead of the agent worker, as a caller hears it.

Simulated providers make every stage's latency known, so what the caller measures beyond them
is voicefleet's and the framework's own cost (plus the audio path through livekit-server):

    overhead = voice-to-voice − (turn end + LLM first token + TTS first audio)
    turn end = max(VAD silence, STT delay, min endpointing delay)

The three turn-end delays all count from the end of speech and run concurrently, so the
longest of them decides when the turn ends. Target: p95 overhead ≤ 30 ms over ≥ 50 turns.

    python bench/agent_latency.py [--callers 2] [--turns 25]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from agent_common import histogram_mean, livekit_server, start_worker

from voicefleet_agent.loadtest import LoadTestOptions, percentile, run_loadtest

VAD_SILENCE = 0.3
STT_DELAY = 0.4
MIN_ENDPOINTING = 0.3
LLM_DELAY = 0.3
TTS_DELAY = 0.2
EXPECTED = max(VAD_SILENCE, STT_DELAY, MIN_ENDPOINTING) + LLM_DELAY + TTS_DELAY


def config() -> dict[str, object]:
    def simulated(delay: float) -> list[dict[str, object]]:
        return [{"provider": "simulated", "simulation": {"delaySeconds": delay}}]

    return {
        "agentName": "bench-latency",
        "instructions": "",
        "sessionsPerWorker": 16,
        "pipeline": {
            "vad": {"minSilenceSeconds": VAD_SILENCE},
            "stt": simulated(STT_DELAY),
            "llm": simulated(LLM_DELAY),
            "tts": simulated(TTS_DELAY),
            "turn": {"minEndpointingDelaySeconds": MIN_ENDPOINTING},
        },
    }


async def main(callers: int, turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, livekit_server(Path(tmp)) as livekit:
        worker = start_worker(livekit, Path(tmp) / "worker", config())
        try:
            report = await run_loadtest(
                LoadTestOptions(
                    url=livekit.url,
                    api_key=livekit.api_key,
                    api_secret=livekit.api_secret,
                    agent_name="bench-latency",
                    callers=callers,
                    turns=turns,
                    utterances=("Hello there, how are you?", "What time is it now?"),
                    ramp_seconds=2.0,
                )
            )
            server_side = histogram_mean(
                worker.metrics_text(), "voicefleet_agent_voice_to_voice_seconds"
            )
        finally:
            worker.process.stop()
    overhead = [v - EXPECTED for v in report.latencies]
    print(
        f"turns completed {report.turns_completed}/{report.turns_attempted}, "
        f"errors {len(report.errors)}"
    )
    for error in report.errors:
        print(f"  {error}")
    print(
        f"configured stage latency {EXPECTED * 1000:.0f} ms "
        f"(max({VAD_SILENCE}, {STT_DELAY}, {MIN_ENDPOINTING}) + {LLM_DELAY} + {TTS_DELAY} s)"
    )
    for name, values in (
        ("caller-heard voice-to-voice", report.latencies),
        ("pipeline overhead", overhead),
    ):
        p50, p95 = percentile(values, 50), percentile(values, 95)
        if p50 is not None and p95 is not None:
            print(
                f"{name}: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                f"max {max(values) * 1000:.0f} ms"
            )
    if server_side is not None:
        print(
            f"worker-measured voice-to-voice mean {server_side * 1000:.0f} ms "
            f"(overhead {(server_side - EXPECTED) * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=2)
    parser.add_argument("--turns", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(main(args.callers, args.turns))
