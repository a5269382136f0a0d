"""Pipeline overhead of the agent worker, as a caller hears it, and where it goes.

Simulated providers make every stage's latency known, so what the caller measures beyond them
is voicefleet's and the framework's own cost plus the audio path through livekit-server:

    overhead = voice-to-voice − (turn end + LLM first token + TTS first audio)
    turn end = max(VAD silence, STT delay, min endpointing delay)

The three turn-end delays all count from the end of speech and run concurrently, so the
longest of them decides when the turn ends. Target: p95 overhead ≤ 30 ms over ≥ 50 turns.
The simulated STT, like a remote one, counts its delay from the last voiced audio it receives,
whereas the worker's end of speech (below) is Silero's estimate, which trails it by about
100–130 ms: with the STT delay the longest, as here, the worker's own voice-to-voice is shorter
than the configured stages and its overhead row below is negative by about that much.

Each turn is then split with the worker's own trace of it (same host, same wall clock):

    uplink    the caller's last voiced sample → the worker's end of speech (audio path in,
              plus the time the VAD takes to see the speech has ended)
    worker    the worker's end of speech → its first reply frame leaves for the room
              (its own voice-to-voice, lk.e2e_latency), itself split into the stages
    downlink  that frame leaves → its first audible sample plays at the caller

A probe of the bare audio path (one participant's tone heard by another through the same
livekit-server, no agent) says how much of uplink and downlink the WebRTC path costs.

    python bench/agent_latency.py [--callers 2] [--turns 25]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from agent_common import livekit_server, start_worker

from voicefleet_agent.loadtest import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Caller,
    LoadTestOptions,
    LoadTestReport,
    Turn,
    caller_token,
    percentile,
    print_progress,
    run_loadtest,
)
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.otlp import OTLPReceiver, ReceivedSpan

VAD_SILENCE = 0.3
STT_DELAY = 0.4
MIN_ENDPOINTING = 0.3
LLM_DELAY = 0.3
TTS_DELAY = 0.2
TURN_END = max(VAD_SILENCE, STT_DELAY, MIN_ENDPOINTING)
EXPECTED = TURN_END + LLM_DELAY + TTS_DELAY
AGENT = "bench-latency"
PROBES = 12
TRACE_WAIT = 20.0


def config(otlp_url: str) -> dict[str, object]:
    def simulated(delay: float) -> list[dict[str, object]]:
        return [{"provider": "simulated", "simulation": {"delaySeconds": delay}}]

    return {
        "agentName": AGENT,
        "instructions": "",
        "sessionsPerWorker": 16,
        "pipeline": {
            "vad": {"minSilenceSeconds": VAD_SILENCE},
            "stt": simulated(STT_DELAY),
            "llm": simulated(LLM_DELAY),
            "tts": simulated(TTS_DELAY),
            "turn": {"minEndpointingDelaySeconds": MIN_ENDPOINTING},
        },
        "observability": {"otlpEndpoint": otlp_url},
    }


@dataclass(frozen=True)
class Split:
    """One turn split at the worker's end of speech and first reply frame (seconds)."""

    heard: float
    uplink: float
    worker: float
    downlink: float
    end_of_turn: float
    llm_ttft: float
    tts_ttfb: float


def _descendant(trace: list[ReceivedSpan], root: ReceivedSpan, name: str) -> ReceivedSpan | None:
    by_id = {s.span_id: s for s in trace}
    for span in trace:
        if span.name != name:
            continue
        parent = by_id.get(span.parent_id)
        while parent is not None and parent is not root:
            parent = by_id.get(parent.parent_id)
        if parent is root:
            return span
    return None


def split_turn(turn: Turn, trace: list[ReceivedSpan]) -> Split | None:
    """The worker's view of `turn`: the reply whose end of speech is nearest the caller's."""
    ends = sorted(s.start for s in trace if s.name == "stt")
    best: tuple[float, ReceivedSpan, float] | None = None
    for reply in (s for s in trace if s.name == "agent_turn" and "lk.e2e_latency" in s.attributes):
        eos = max((e for e in ends if e <= reply.start), default=None)
        if eos is not None and (best is None or abs(eos - turn.ended) < abs(best[0] - turn.ended)):
            best = (eos, reply, float(reply.attributes["lk.e2e_latency"]))
    if best is None:
        return None
    eos, reply, e2e = best
    llm, tts = _descendant(trace, reply, "llm_node"), _descendant(trace, reply, "tts_node")
    return Split(
        heard=turn.heard - turn.ended,
        uplink=eos - turn.ended,
        worker=e2e,
        downlink=turn.heard - (eos + e2e),
        end_of_turn=float(reply.attributes.get("lk.end_of_turn_delay", float("nan"))),
        llm_ttft=float(llm.attributes.get("lk.response.ttft", float("nan"))) if llm else np.nan,
        tts_ttfb=float(tts.attributes.get("lk.response.ttfb", float("nan"))) if tts else np.nan,
    )


def traces_by_room(spans: Sequence[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    """Each session's spans by its room's SID, read off the job's root span."""
    by_trace: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    return {
        str(s.attributes["lk.room_sid"]): by_trace[s.trace_id]
        for s in spans
        if s.name == "job_entrypoint" and not s.parent_id and "lk.room_sid" in s.attributes
    }


async def wait_for_traces(receiver: OTLPReceiver, rooms: set[str]) -> dict[str, list[ReceivedSpan]]:
    """Every session's trace (sent when its job ends), or what arrived within TRACE_WAIT."""
    deadline = time.monotonic() + TRACE_WAIT
    while True:
        traces = traces_by_room(receiver.snapshot())
        if rooms <= traces.keys() or time.monotonic() > deadline:
            return traces
        await asyncio.sleep(0.2)


async def probe_audio_path(livekit: LiveKitServer) -> list[float]:
    """One-way latency of the bare audio path: a tone burst's first sample leaving one
    participant's microphone → first audible sample at another, measured as the load test
    measures the agent (same source queue, same onset detection)."""
    options = LoadTestOptions(livekit.url, livekit.api_key, livekit.api_secret, AGENT)
    room = f"probe-{int(time.time() * 1000)}"
    speaker, listener = Caller(), Caller(agents_only=False)
    await listener.join(livekit.url, caller_token(options, room, "listener"))
    await speaker.join(livekit.url, caller_token(options, room, "speaker"))
    await listener.wait_for_agent(10)  # here: the speaker's track
    t = np.arange(FRAME_SAMPLES * 20) / SAMPLE_RATE
    burst = (np.sin(2 * np.pi * 440 * t) * 9000).astype(np.int16).tobytes()
    latencies = []
    try:
        for _ in range(PROBES):
            await asyncio.sleep(1.0)
            started = await speaker.speak(burst) - len(burst) / 2 / SAMPLE_RATE
            heard = await listener.wait_audible_after(started - 0.005, 5)
            latencies.append(heard - started)
    finally:
        await speaker.leave()
        await listener.leave()
    return latencies


def line(name: str, values: Sequence[float]) -> str:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    if p50 is None or p95 is None:
        return f"{name}: no samples"
    return (
        f"{name}: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms (n={len(values)})"
    )


def report_splits(splits: list[Split], path: list[float]) -> None:
    def of(field: Callable[[Split], float]) -> list[float]:
        return [field(s) for s in splits if not np.isnan(field(s))]

    print(f"per-turn split from the worker's traces ({len(splits)} turns):")
    for name, values in (
        ("  uplink (caller end of speech → worker end of speech)", of(lambda s: s.uplink)),
        ("  worker voice-to-voice (end of speech → first reply frame)", of(lambda s: s.worker)),
        ("    end of turn", of(lambda s: s.end_of_turn)),
        ("    LLM first token", of(lambda s: s.llm_ttft)),
        ("    TTS first audio", of(lambda s: s.tts_ttfb)),
        (
            "    worker overhead (voice-to-voice − configured stages)",
            of(lambda s: s.worker - EXPECTED),
        ),
        ("  downlink (first reply frame → caller hears it)", of(lambda s: s.downlink)),
        ("  caller-heard overhead outside the worker", of(lambda s: s.uplink + s.downlink)),
    ):
        print(line(name, values))
    print(line("bare audio path, one way (probe, no agent)", path))
    p50 = percentile(path, 50)
    if p50 is not None:
        print(
            line(
                "caller-heard overhead less the bare audio path both ways (2 × probe p50)",
                [s.heard - EXPECTED - 2 * p50 for s in splits],
            )
        )


async def run(livekit: LiveKitServer, otlp: OTLPReceiver, callers: int, turns: int) -> None:
    options = LoadTestOptions(
        url=livekit.url,
        api_key=livekit.api_key,
        api_secret=livekit.api_secret,
        agent_name=AGENT,
        callers=callers,
        turns=turns,
        utterances=("Hello there, how are you?", "What time is it now?"),
        ramp_seconds=2.0,
    )
    report = await run_loadtest(options, on_progress=print_progress(options.planned_turns))
    traces = await wait_for_traces(otlp, {t.room_sid for t in report.answered})
    path = await probe_audio_path(livekit)
    print_report(report, traces, path)


def print_report(
    report: LoadTestReport, traces: dict[str, list[ReceivedSpan]], path: list[float]
) -> None:
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
    print(line("caller-heard voice-to-voice", report.latencies))
    print(
        line(
            "pipeline overhead (caller-heard − configured)",
            [v - EXPECTED for v in report.latencies],
        )
    )
    splits = [
        split
        for turn in report.answered
        if (split := split_turn(turn, traces.get(turn.room_sid, []))) is not None
    ]
    report_splits(splits, path)


async def main(callers: int, turns: int) -> None:
    otlp = OTLPReceiver()
    with tempfile.TemporaryDirectory() as tmp, livekit_server(Path(tmp)) as livekit:
        worker = start_worker(livekit, Path(tmp) / "worker", config(otlp.url))
        try:
            await run(livekit, otlp, callers, turns)
        finally:
            worker.process.stop()
            otlp.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=2)
    parser.add_argument("--turns", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(main(args.callers, args.turns))
