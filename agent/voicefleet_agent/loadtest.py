"""Load test: N simulated callers talk to an agent through any LiveKit server.

Each caller joins its own room with a token that dispatches the agent by name, speaks prepared
utterances (espeak-ng, 48 kHz mono) in real time, and measures voice-to-voice latency as a
caller hears it: from the moment its last voiced sample leaves its microphone to the moment the
agent's first sample above a threshold plays. A turn counts as answered only if the agent was
silent while the caller spoke (voicefleet_agent.accounting); turns it talked over and turns it
never answered are counted apart and kept out of the latency figures.

With --ramp-to, it raises the callers step by step against one worker until p95 passes the
latency SLO, and recommends sessionsPerWorker and the worker's resources (voicefleet_agent.ramp).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np
from livekit import api, rtc

from voicefleet_agent.accounting import AgentText, Outcome, judge, reply_text
from voicefleet_agent.espeak import render_wav

logger = logging.getLogger("voicefleet.loadtest")

SAMPLE_RATE = 48000
FRAME_MS = 10
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
TRANSCRIPTION_TOPIC = "lk.transcription"
# The VoiceAgent's default slo.voiceToVoiceSeconds, which a ramp's steps must stay under.
DEFAULT_SLO_SECONDS = 1.5
DEFAULT_UTTERANCES = (
    "Hello, can you hear me?",
    "What is the weather like today?",
    "Please tell me a short story.",
    "Thank you, that is all.",
)


@dataclass
class LoadTestOptions:
    url: str
    api_key: str
    api_secret: str
    agent_name: str
    callers: int = 1
    turns: int = 3
    utterances: Sequence[str] = DEFAULT_UTTERANCES
    audible_threshold: float = 500.0
    """Sample magnitude (16-bit scale) from which agent audio counts as heard."""
    turn_timeout: float = 15.0
    """Longest wait for the agent to answer one utterance."""
    join_timeout: float = 20.0
    """Longest wait for the agent to join and publish its audio."""
    agent_silence: float = 0.8
    """Agent silence that ends its reply before the caller speaks again."""
    ramp_seconds: float = 0.0
    """Spread caller starts over this many seconds."""
    room_prefix: str = "loadtest"
    speech: Sequence[bytes] = ()
    """Prepared utterances (16-bit mono PCM at 48 kHz, trimmed) spoken instead of `utterances`,
    e.g. recorded speech with the pauses real callers make."""
    progress_seconds: float = 5.0
    """Time between progress reports while the callers run."""

    @property
    def planned_turns(self) -> int:
        return self.callers * self.turns


@dataclass(frozen=True)
class Turn:
    """One utterance and what the caller heard, in wall-clock seconds."""

    caller: int
    room_sid: str
    ended: float
    """The caller's last voiced sample left its microphone."""
    heard: float | None
    """The agent's first audible sample after `ended` played at the caller, if any."""
    started: float = 0.0
    """The caller's first voiced sample left its microphone."""
    outcome: Outcome = Outcome.ANSWERED
    reply: str = ""
    """The agent's final transcripts attributed to this utterance."""

    @property
    def latency(self) -> float | None:
        """Voice-to-voice latency: only a clean answer has one."""
        if self.outcome is not Outcome.ANSWERED or self.heard is None:
            return None
        return self.heard - self.ended


@dataclass
class LoadTestReport:
    callers: int
    errors: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    """Every turn a caller took or was due to take, whatever its outcome."""
    call_seconds: list[float] = field(default_factory=list)
    """Per call the agent joined: from dialling (joining the room) to hanging up."""

    def count(self, *outcomes: Outcome) -> int:
        return sum(1 for t in self.turns if t.outcome in outcomes)

    @property
    def turns_attempted(self) -> int:
        return len(self.turns)

    @property
    def turns_completed(self) -> int:
        """Turns the agent replied to, cleanly or not."""
        return sum(1 for t in self.turns if t.outcome.replied)

    @property
    def turns_answered(self) -> int:
        return self.count(Outcome.ANSWERED)

    @property
    def turns_overlapped(self) -> int:
        """Turns the agent talked over: it answered early or an earlier reply ran on."""
        return self.count(Outcome.EARLY, Outcome.OVERLAPPED)

    @property
    def turns_failed(self) -> int:
        return self.count(Outcome.FAILED)

    @property
    def answered(self) -> list[Turn]:
        return [t for t in self.turns if t.outcome is Outcome.ANSWERED]

    @property
    def latencies(self) -> list[float]:
        return [latency for t in self.turns if (latency := t.latency) is not None]

    @property
    def p50(self) -> float | None:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.latencies, 95)

    @property
    def max(self) -> float | None:
        return max(self.latencies) if self.latencies else None

    def summary(self) -> dict[str, object]:
        return {
            "callers": self.callers,
            "turns_attempted": self.turns_attempted,
            "turns_completed": self.turns_completed,
            "turns_answered": self.turns_answered,
            "turns_early": self.count(Outcome.EARLY),
            "turns_overlapped": self.count(Outcome.OVERLAPPED),
            "turns_failed": self.turns_failed,
            "errors": list(self.errors),
            "p50_seconds": self.p50,
            "p95_seconds": self.p95,
            "max_seconds": self.max,
            "conversation_seconds": round(sum(self.call_seconds), 1),
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure is a latency that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def utterance_pcm(text: str) -> bytes:
    """espeak-ng speech of `text` as 16-bit mono PCM at 48 kHz."""
    return caller_audio(*espeak_pcm(text))


def espeak_pcm(text: str) -> tuple[int, bytes]:
    """espeak-ng speech of `text`: its sample rate and 16-bit mono PCM."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "utterance.wav")
        render_wav(text, path)
        with wave.open(path) as wav:
            return wav.getframerate(), wav.readframes(wav.getnframes())


def caller_audio(rate: int, pcm: bytes) -> bytes:
    """Speech as a caller sends it: at 48 kHz, without leading or trailing silence."""
    return trim_silence(resample(pcm, rate, SAMPLE_RATE))


def trim_silence(pcm: bytes, threshold: int = 300) -> bytes:
    """Cut espeak-ng's leading and trailing silence: the utterance ends with its last sound,
    so latency counts from there."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return pcm
    return samples[loud[0] : loud[-1] + 1].tobytes()


def resample(pcm: bytes, rate: int, target: int) -> bytes:
    if rate == target:
        return pcm
    resampler = rtc.AudioResampler(rate, target, quality=rtc.AudioResamplerQuality.HIGH)
    frame = rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2)
    out = [*resampler.push(frame), *resampler.flush()]
    return b"".join(bytes(f.data) for f in out)


def wav_bytes(pcm: bytes, rate: int = SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def caller_token(
    options: LoadTestOptions, room: str, identity: str, *, dispatch: bool = True
) -> str:
    """A join token whose room configuration dispatches the agent by name; without `dispatch`,
    one that joins a call already going, as an invited caller's does."""
    token = (
        api.AccessToken(options.api_key, options.api_secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
    )
    if dispatch:
        token = token.with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=options.agent_name)])
        )
    return token.to_jwt()


@dataclass
class Transcript:
    """One lk.transcription text stream: an interim or final transcript of one speaker."""

    identity: str
    text: str
    final: bool
    segment: str
    chunks: int
    started_at: float


class Caller:
    """One participant that speaks into a room and listens to the agent, in real time."""

    def __init__(self, *, audible_threshold: float = 500.0, agents_only: bool = True) -> None:
        self.room = rtc.Room()
        self.audible_threshold = audible_threshold
        self.agents_only = agents_only  # False: listen to any participant's audio
        self.transcripts: list[Transcript] = []
        # Wall-clock times at which agent frames holding audible samples start to be heard.
        self.audible: list[float] = []
        self.agent_identity: str | None = None
        # A short queue: a frame leaves about when `speak` says it did.
        self._source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=20)
        self._speech: asyncio.Queue[tuple[bytes, asyncio.Future[float]]] = asyncio.Queue()
        self._agent_track = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def join(self, url: str, token: str) -> None:
        self.room.on("track_subscribed", self._on_track)
        self.room.register_text_stream_handler(TRANSCRIPTION_TOPIC, self._on_transcript)
        await self.room.connect(url, token)
        track = rtc.LocalAudioTrack.create_audio_track("caller-mic", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._tasks.append(asyncio.create_task(self._pump()))

    async def wait_for_agent(self, within: float) -> None:
        await asyncio.wait_for(self._agent_track.wait(), within)

    async def speak(self, pcm: bytes) -> float:
        """Send `pcm` in real time; returns the wall-clock time its last sample leaves the
        microphone (trimmed speech ends with a voiced sample, so that is the end of speech)."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        await self._speech.put((pcm, done))
        return await done

    @property
    def agent_present(self) -> bool:
        return self.agent_identity in self.room.remote_participants

    def agent_texts(self) -> list[AgentText]:
        """The agent's final transcripts so far, each with when its stream began."""
        return [
            AgentText(t.text, t.started_at)
            for t in self.transcripts
            if t.final and t.identity == self.agent_identity
        ]

    def first_audible_after(self, t: float) -> float | None:
        return next((a for a in self.audible if a > t), None)

    async def wait_audible_after(self, t: float, within: float) -> float:
        deadline = time.monotonic() + within
        while (heard := self.first_audible_after(t)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no agent audio within {within:.0f}s")
            await asyncio.sleep(0.01)
        return heard

    async def wait_agent_silent(self, silence: float, within: float) -> float:
        """Wait until the agent has been inaudible for `silence` seconds; returns its last sound."""
        deadline = time.monotonic() + within
        while True:
            last = self.audible[-1] if self.audible else 0.0
            if time.time() - last >= silence:
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"agent still speaking after {within:.0f}s")
            await asyncio.sleep(0.05)

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()
        await self._source.aclose()

    async def _pump(self) -> None:
        """Microphone: queued speech, else silence, one 10 ms frame per 10 ms of wall time."""
        silence = bytes(FRAME_SAMPLES * 2)
        next_at = time.monotonic()
        current: tuple[bytes, asyncio.Future[float]] | None = None
        offset = 0
        while True:
            if current is None and not self._speech.empty():
                current, offset = self._speech.get_nowait(), 0
            chunk = silence
            if current is not None:
                pcm = current[0]
                chunk = pcm[offset : offset + FRAME_SAMPLES * 2].ljust(FRAME_SAMPLES * 2, b"\0")
                offset += FRAME_SAMPLES * 2
            await self._source.capture_frame(rtc.AudioFrame(chunk, SAMPLE_RATE, 1, FRAME_SAMPLES))
            if current is not None and offset >= len(current[0]):
                if not current[1].done():
                    padding = (offset - len(current[0])) // 2 / SAMPLE_RATE
                    current[1].set_result(self._departure() - padding)
                current = None
            next_at += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def _departure(self) -> float:
        """When the end of the frame just captured leaves: the source's queue drains in real
        time, and that frame is its last."""
        return time.time() + self._source.queued_duration

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        agent = participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        if self.agents_only and not agent:
            return
        self.agent_identity = participant.identity
        self._tasks.append(asyncio.create_task(self._listen(track)))
        self._agent_track.set()

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                if (onset := self._onset(event.frame)) is not None:
                    self.audible.append(time.time() + onset)
        finally:
            await stream.aclose()

    def _onset(self, frame: rtc.AudioFrame) -> float | None:
        """Seconds into `frame` of its first audible sample: a frame plays from its arrival,
        so a sound that starts late in it is heard that much later."""
        samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.int32)
        loud = np.flatnonzero(np.abs(samples) >= self.audible_threshold)
        return float(loud[0]) / frame.sample_rate / frame.num_channels if loud.size else None

    def _on_transcript(self, reader: rtc.TextStreamReader, identity: str) -> None:
        async def read() -> None:
            started = time.time()
            try:
                chunks = [chunk async for chunk in reader]
            except rtc.StreamError:
                return  # the room closed mid-stream: nothing complete to record
            attributes = reader.info.attributes or {}  # the trailer's are merged in at the end
            self.transcripts.append(
                Transcript(
                    identity=identity,
                    text="".join(chunks),
                    final=attributes.get("lk.transcription_final") == "true",
                    segment=attributes.get("lk.segment_id", ""),
                    chunks=len(chunks),
                    started_at=started,
                )
            )

        self._tasks.append(asyncio.create_task(read()))


async def _run_caller(
    index: int, options: LoadTestOptions, speech: list[bytes], report: LoadTestReport
) -> None:
    await asyncio.sleep(options.ramp_seconds * index / max(1, options.callers))
    room = f"{options.room_prefix}-{os.getpid()}-{index}-{int(time.time() * 1000)}"
    caller = Caller(audible_threshold=options.audible_threshold)
    dialled, answered = time.monotonic(), False
    taken = 0
    try:
        await caller.join(options.url, caller_token(options, room, f"caller-{index}"))
        await caller.wait_for_agent(options.join_timeout)
        answered = True
        room_sid = await caller.room.sid
        for turn in range(options.turns):
            if not caller.agent_present:
                raise ConnectionError("the agent left the room")
            pcm = speech[turn % len(speech)]
            report.turns.append(await _take_turn(caller, index, room_sid, pcm, options))
            taken += 1
    except Exception as e:  # noqa: BLE001 - a caller's failure is reported, not raised
        report.errors.append(f"caller {index}: {type(e).__name__}: {e}")
        # The turns it could not take had no reply: failures, not turns that never were.
        now = time.time()
        missed = Turn(index, "", now, None, now, Outcome.FAILED)
        report.turns.extend([missed] * (options.turns - taken))
    finally:
        with contextlib.suppress(Exception):
            await caller.leave()
        if answered:
            report.call_seconds.append(time.monotonic() - dialled)


async def _take_turn(
    caller: Caller, index: int, room_sid: str, pcm: bytes, options: LoadTestOptions
) -> Turn:
    """Speak one utterance, listen until the agent has been silent for a while, then judge
    what was heard during and after it."""
    ended = await caller.speak(pcm)
    started = ended - len(pcm) / 2 / SAMPLE_RATE
    with contextlib.suppress(TimeoutError):  # no reply: judged a failure below
        await caller.wait_audible_after(ended, options.turn_timeout)
    await caller.wait_agent_silent(options.agent_silence, options.turn_timeout * 4)
    until = time.time()
    texts = caller.agent_texts()
    verdict = judge(started, ended, until, caller.audible, texts)
    reply = reply_text(texts, started, until)
    return Turn(index, room_sid, ended, verdict.heard, started, verdict.outcome, reply)


async def run_loadtest(
    options: LoadTestOptions, on_progress: Callable[[LoadTestReport], None] | None = None
) -> LoadTestReport:
    """Drive `options.callers` concurrent callers for `options.turns` turns each, showing the
    report so far to `on_progress` every `options.progress_seconds` while they run."""
    speech = list(options.speech) or await render_utterances(options.utterances)
    report = LoadTestReport(callers=options.callers)
    progress = None
    if on_progress is not None:
        progress = asyncio.create_task(
            _every(options.progress_seconds, lambda: on_progress(report))
        )
    try:
        await asyncio.gather(
            *(_run_caller(i, options, speech, report) for i in range(options.callers))
        )
    finally:
        if progress is not None:
            progress.cancel()
    return report


async def render_utterances(texts: Sequence[str]) -> list[bytes]:
    loop = asyncio.get_running_loop()
    rendered = [await loop.run_in_executor(None, espeak_pcm, t) for t in texts]
    # Resampled on this thread: livekit.rtc creates its native client lazily, and two threads
    # doing so at once (two load tests in one process) crash it.
    return [caller_audio(rate, pcm) for rate, pcm in rendered]


async def _every(seconds: float, action: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(seconds)
        action()


def progress_line(report: LoadTestReport, planned_turns: int) -> str:
    """One line on a running load test: clean answers of the turns planned, errors, turns the
    agent talked over, turns without a reply, and the median of the clean answers so far."""
    p50 = "" if report.p50 is None else f", p50 so far {report.p50 * 1000:.0f} ms"
    return (
        f"loadtest: {report.turns_answered}/{planned_turns} turns answered, "
        f"{len(report.errors)} errors, {report.turns_overlapped} overlapped/early, "
        f"{report.turns_failed} failed{p50}"
    )


def print_progress(planned_turns: int) -> Callable[[LoadTestReport], None]:
    """An `on_progress` for `run_loadtest` that prints a progress line on stderr."""

    def show(report: LoadTestReport) -> None:
        print(progress_line(report, planned_turns), file=sys.stderr, flush=True)

    return show


@dataclass(frozen=True)
class RampOptions:
    """Ramp mode: callers from `step` up to `max_callers` in steps of `step`."""

    max_callers: int
    step: int = 1
    threshold: float = DEFAULT_SLO_SECONDS
    """p95 voice-to-voice, in seconds, that a step must stay under."""
    worker_pid: int | None = None
    """Main process of the worker under test, when it runs on this machine."""
    worker_metrics: str | None = None
    """URL of the /metrics of the worker under test, wherever it runs."""

    @property
    def steps(self) -> list[int]:
        sizes = list(range(self.step, self.max_callers + 1, self.step))
        return sizes if sizes and sizes[-1] == self.max_callers else [*sizes, self.max_callers]


def parse_args(argv: Sequence[str] | None) -> LoadTestOptions:
    return parse_command(argv)[0]


def parse_command(argv: Sequence[str] | None) -> tuple[LoadTestOptions, RampOptions | None]:
    """The load test's options, and the ramp's when --ramp-to asks for one."""
    parser = argparse.ArgumentParser(
        prog="voicefleet loadtest",
        description="Measure an agent's voice-to-voice latency with simulated callers.",
    )
    env = os.environ
    parser.add_argument("--url", default=env.get("LIVEKIT_URL"), help="LiveKit URL ($LIVEKIT_URL)")
    parser.add_argument("--api-key", default=env.get("LIVEKIT_API_KEY"))
    parser.add_argument("--api-secret", default=env.get("LIVEKIT_API_SECRET"))
    parser.add_argument("--agent", required=True, help="agent name to dispatch")
    parser.add_argument("--callers", type=int, default=1)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--utterance", action="append", help="what callers say (repeatable)")
    parser.add_argument("--turn-timeout", type=float, default=15.0)
    parser.add_argument("--ramp", type=float, default=0.0, help="seconds to spread starts over")
    parser.add_argument(
        "--progress", type=float, default=5.0, help="seconds between progress lines on stderr"
    )
    ramp = parser.add_argument_group("sizing (ramp mode)")
    ramp.add_argument(
        "--ramp-to", type=int, metavar="CALLERS", help="raise callers step by step up to this"
    )
    ramp.add_argument("--ramp-step", type=int, default=1, help="callers added per step")
    ramp.add_argument(
        "--slo",
        type=float,
        default=DEFAULT_SLO_SECONDS,
        metavar="SECONDS",
        help="p95 voice-to-voice a step must stay under (slo.voiceToVoiceSeconds, default 1.5)",
    )
    worker = ramp.add_mutually_exclusive_group()
    worker.add_argument(
        "--worker-pid", type=int, help="PID of the worker under test, when it runs on this machine"
    )
    worker.add_argument(
        "--worker-metrics",
        metavar="URL",
        help="the /metrics of the worker under test, wherever it runs (http://POD:9100/metrics)",
    )
    args = parser.parse_args(argv)
    if args.progress <= 0:
        parser.error("--progress must be a positive number of seconds")
    for name in ("url", "api_key", "api_secret"):
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} or ${'LIVEKIT_' + name.upper()} is required")
    options = LoadTestOptions(
        url=args.url,
        api_key=args.api_key,
        api_secret=args.api_secret,
        agent_name=args.agent,
        callers=args.callers,
        turns=args.turns,
        utterances=args.utterance or DEFAULT_UTTERANCES,
        turn_timeout=args.turn_timeout,
        ramp_seconds=args.ramp,
        progress_seconds=args.progress,
    )
    return options, ramp_options(parser, args)


def ramp_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RampOptions | None:
    if args.ramp_to is None:
        if args.worker_pid is not None or args.worker_metrics is not None:
            parser.error("--worker-pid and --worker-metrics measure a ramp: add --ramp-to")
        return None
    if args.ramp_to < 1 or args.ramp_step < 1:
        parser.error("--ramp-to and --ramp-step must be at least 1")
    if args.slo <= 0:
        parser.error("--slo must be a positive number of seconds")
    check_measured_worker(parser, args)
    return RampOptions(args.ramp_to, args.ramp_step, args.slo, args.worker_pid, args.worker_metrics)


def check_measured_worker(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A ramp measures its worker either by PID on this machine or by its /metrics anywhere
    (argparse itself refuses both)."""
    if args.worker_pid is None and args.worker_metrics is None:
        parser.error(
            "--ramp-to needs the worker's CPU and memory: --worker-pid PID of a worker on this "
            "machine, or --worker-metrics URL of its /metrics"
        )
    url = args.worker_metrics
    if url is not None and not url.startswith(("http://", "https://")):
        parser.error(
            "--worker-metrics must be the http:// or https:// URL of the worker's /metrics"
        )


def format_report(report: LoadTestReport) -> str:
    """The turns answered cleanly of those taken and their latency, then the other outcomes."""
    lines = [
        f"callers {report.callers}, turns {report.turns_answered}/{report.turns_attempted}",
        f"voice-to-voice p50 {ms(report.p50)}, p95 {ms(report.p95)}, max {ms(report.max)}",
        f"turns answered {report.turns_answered}, overlapped/early {report.turns_overlapped} "
        f"(not in the latency figures), failed {report.turns_failed}",
        *(f"error: {e}" for e in report.errors),
    ]
    return "\n".join(lines)


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    options, ramp = parse_command(argv)
    if ramp is not None:
        from voicefleet_agent.ramp import main as ramp_main  # it builds on this module

        return ramp_main(options, ramp)
    report = asyncio.run(run_loadtest(options, on_progress=print_progress(options.planned_turns)))
    print(format_report(report))
    print(json.dumps(report.summary()), file=sys.stderr)
    return 1 if report.errors or report.turns_failed or not report.turns_answered else 0


def run_cli(argv: Sequence[str] | None = None) -> NoReturn:
    """`voicefleet loadtest`: `main`, then exit without finalizing the interpreter. livekit.rtc's
    native threads may still call into Python while it finalizes, and the process then aborts
    after the report is out (exit -6), which would read as a failed load test."""
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run_cli()
