"""The agent worker's Prometheus metrics, exactly as docs/metrics.md (Agent worker) lists them.

Each session runs in its own job process, so metrics use prometheus-client's multiprocess
mode: the worker points PROMETHEUS_MULTIPROC_DIR at a fresh directory before anything imports
prometheus_client, and /metrics merges every process's files. Gauges are written by the main
process only (hence `max`); counters and histograms by the job processes, except the worker's
CPU counter, which the main process adds to as it samples its process tree.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, llm, metrics, stt, tts, vad
from livekit.agents.llm.chat_context import MetricsMetadata
from livekit.agents.voice.events import (
    CloseEvent,
    ConversationItemAddedEvent,
    SessionUsageUpdatedEvent,
)
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.registry import Collector

from voicefleet_agent.pipeline import STAGES, Pipeline, ProviderLabel, Stage
from voicefleet_agent.pricing import cluster_pricing
from voicefleet_agent.tracing import annotate_job
from voicefleet_models.agent_config import LATENCY_BUCKETS

logger = logging.getLogger("voicefleet.agent")

# Every SLO threshold (0.3, 0.5, 0.8, 1, 1.5, 2, 3, 5 s) is a bucket boundary.
COMMON = ("agent", "region")
PROVIDER = (*COMMON, "provider", "model")


def _histogram(name: str, doc: str, labels: tuple[str, ...] = COMMON) -> Histogram:
    return Histogram(name, doc, labels, buckets=LATENCY_BUCKETS)


VOICE_TO_VOICE = _histogram(
    "voicefleet_agent_voice_to_voice_seconds", "User stopped speaking to agent audio starts."
)
END_OF_TURN = _histogram(
    "voicefleet_agent_end_of_turn_delay_seconds", "End of speech to turn confirmed."
)
STT_DELAY = _histogram(
    "voicefleet_agent_stt_delay_seconds", "End of speech to final transcript.", PROVIDER
)
LLM_TTFT = _histogram("voicefleet_agent_llm_ttft_seconds", "LLM request to first token.", PROVIDER)
TTS_TTFB = _histogram("voicefleet_agent_tts_ttfb_seconds", "TTS request to first audio.", PROVIDER)
VAD_INFERENCE = _histogram("voicefleet_agent_vad_inference_seconds", "One VAD inference.")
TURNS = Counter("voicefleet_agent_turns_total", "Agent turns answered.", COMMON)
INTERRUPTIONS = Counter(
    "voicefleet_agent_interruptions_total", "User spoke over the agent and stopped it.", COMMON
)
SESSIONS = Counter("voicefleet_agent_sessions_total", "Sessions ended.", (*COMMON, "outcome"))
# From a short hang-up to the hour a long call may last.
DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
SESSION_DURATION = Histogram(
    "voicefleet_agent_session_duration_seconds",
    "Session start to end.",
    (*COMMON, "outcome"),
    buckets=DURATION_BUCKETS,
)
CONVERSATION_SECONDS = Counter(
    "voicefleet_agent_conversation_seconds_total",
    "Time in sessions, added when each ends: the unit conversation time is billed in.",
    (*COMMON, "outcome"),
)
PROVIDER_ERRORS = Counter(
    "voicefleet_agent_provider_errors_total",
    "Provider requests that failed.",
    (*COMMON, "stage", "provider"),
)
PROVIDER_FALLBACKS = Counter(
    "voicefleet_agent_provider_fallbacks_total",
    "Switches away from provider.",
    (*COMMON, "stage", "provider"),
)
TOOL_CALL = _histogram(
    "voicefleet_agent_tool_call_seconds",
    "Tool call start to its result or failure.",
    (*COMMON, "tool"),
)
TOOL_ERRORS = Counter(
    "voicefleet_agent_tool_errors_total",
    "Tool calls that failed: timeout, http_status, too_large or connection.",
    (*COMMON, "tool", "reason"),
)
LLM_TOKENS = Counter("voicefleet_agent_llm_tokens_total", "LLM tokens.", (*PROVIDER, "kind"))
TTS_CHARACTERS = Counter(
    "voicefleet_agent_tts_characters_total", "Characters synthesized.", PROVIDER
)
STT_AUDIO = Counter("voicefleet_agent_stt_audio_seconds_total", "Audio transcribed.", PROVIDER)
ACTIVE_SESSIONS = Gauge(
    "voicefleet_agent_active_sessions", "Sessions in progress.", COMMON, multiprocess_mode="max"
)
DRAINING = Gauge(
    "voicefleet_agent_draining", "1 while the worker drains.", COMMON, multiprocess_mode="max"
)
# The worker's whole process tree (main process, forkserver, job processes), sampled by the
# main process: what a worker costs at a given number of sessions, wherever it runs.
WORKER_CPU = Counter(
    "voicefleet_agent_worker_cpu_seconds_total",
    "CPU time of the worker's processes, job processes that have exited included.",
    COMMON,
)
CONVERSATION_CARRYOVER = Counter(
    "voicefleet_agent_conversation_carryover_total",
    "Conversations sealed into the room after an agent turn (operation save: saved, failed, "
    "skipped) and read back by an agent sent into a call it lost (operation restore: "
    "restored, missing, unreadable, failed).",
    (*COMMON, "operation", "outcome"),
)
WORKER_MEMORY = Gauge(
    "voicefleet_agent_worker_memory_bytes",
    "Proportional set size of the worker's processes.",
    COMMON,
    multiprocess_mode="max",
)


FALLBACK_ADAPTERS = (stt.FallbackAdapter, llm.FallbackAdapter, tts.FallbackAdapter)


@dataclass(frozen=True)
class Labels:
    agent: str
    region: str

    def common(self) -> dict[str, str]:
        return {"agent": self.agent, "region": self.region}

    def of(self, label: ProviderLabel) -> dict[str, str]:
        return {**self.common(), "provider": label.provider, "model": label.model}


def render_latest() -> bytes:
    """The exposition of every process's metrics (or this process's, outside multiprocess)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory is None:
        return generate_latest(REGISTRY)
    with _render_lock:  # a fold deletes files that a concurrent collection may have listed
        fold_finished_processes(directory)
        registry = CollectorRegistry()
        registry.register(SizedFiles(directory))
        return generate_latest(registry)


class SizedFiles(Collector):
    """The multiprocess collector, over the files their processes have finished creating. A
    job process starting creates its file empty and sizes it a moment later: read in between,
    the empty file would fail the whole scrape. It holds no values yet, so it is left out."""

    def __init__(self, directory: str) -> None:
        self._directory = directory

    def collect(self) -> Iterable[Metric]:
        paths = glob.glob(os.path.join(self._directory, "*.db"))
        sized = [path for path in paths if os.path.getsize(path) > 0]
        merged: Iterable[Metric] = multiprocess.MultiProcessCollector.merge(sized)  # type: ignore[no-untyped-call]
        return merged


# The stand-in for a process id in the file names of the finished processes' totals.
FINISHED = "finished"
_render_lock = threading.Lock()


def fold_finished_processes(directory: str) -> int:
    """Add the counters and histograms of job processes that have exited into one file per
    type, and delete theirs: /metrics then reads a few files, not one per session ever served.
    Their values are sums, so adding keeps every series exact. Returns the files folded."""
    finished: dict[str, list[str]] = {}
    for path in glob.glob(os.path.join(directory, "*.db")):
        kind, _, pid = os.path.basename(path).removesuffix(".db").partition("_")
        if kind in ("counter", "histogram") and pid != FINISHED and not _alive(int(pid)):
            finished.setdefault(kind, []).append(path)
    for kind, paths in finished.items():
        totals = MmapedDict(os.path.join(directory, f"{kind}_{FINISHED}.db"))  # type: ignore[no-untyped-call]
        try:
            for path in paths:
                if os.path.getsize(path) == 0:  # died before it sized its file: no values
                    os.unlink(path)
                    continue
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(path):  # type: ignore[no-untyped-call]
                    total, _ = totals.read_value(key)  # type: ignore[no-untyped-call]
                    totals.write_value(key, total + value, timestamp)  # type: ignore[no-untyped-call]
                os.unlink(path)
        finally:
            totals.close()  # type: ignore[no-untyped-call]
    return sum(len(paths) for paths in finished.values())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


CONTENT_TYPE = CONTENT_TYPE_LATEST
AGENT_KIND = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
OUTCOMES = ("completed", "failed", "max_duration", "silence_timeout")


def observe_tool_call(labels: Labels, tool: str, seconds: float, failure: str | None) -> None:
    """One tool call: its latency, and its failure reason when it failed."""
    TOOL_CALL.labels(**labels.common(), tool=tool).observe(seconds)
    if failure is not None:
        TOOL_ERRORS.labels(**labels.common(), tool=tool, reason=failure).inc()


def set_worker_state(labels: Labels, *, active_sessions: int, draining: bool) -> None:
    """Worker-level gauges; called by the main process, which owns them."""
    ACTIVE_SESSIONS.labels(**labels.common()).set(active_sessions)
    DRAINING.labels(**labels.common()).set(1 if draining else 0)


def record_worker_usage(labels: Labels, *, cpu_seconds_added: float, memory_bytes: int) -> None:
    """The process tree's CPU time since the last sample, and its memory now; called by the
    main process, which samples them."""
    if cpu_seconds_added > 0:
        WORKER_CPU.labels(**labels.common()).inc(cpu_seconds_added)
    WORKER_MEMORY.labels(**labels.common()).set(memory_bytes)


class SessionMetrics:
    """Records one session's turns, usage and provider health into the metrics above."""

    def __init__(
        self,
        session: AgentSession[Any],
        pipeline: Pipeline,
        labels: Labels,
        limit_reached: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._pipeline = pipeline
        self._labels = labels
        self._limit_reached = limit_reached
        self._started = time.monotonic()
        self._ended: float | None = None
        # Every outcome's series exists at 0 from the first call on: a counter first seen
        # with the value of several calls that ended together has no rate in Prometheus.
        for outcome in OUTCOMES:
            for counter in (SESSIONS, CONVERSATION_SECONDS):
                counter.labels(**labels.common(), outcome=outcome).inc(0)
        self._turns = 0
        self._usage_seen: dict[tuple[str, str, str, str], float] = {}
        session.on("conversation_item_added", self.on_item_added)
        session.on("session_usage_updated", self.on_usage)
        session.on("close", self.on_close)
        pipeline.vad.on("metrics_collected", self.on_vad_metrics)
        for stage in STAGES:
            for instance, label in pipeline.members[stage]:
                _on(instance, "error", self._error_counter(label))
        adapters: tuple[tuple[Stage, object], ...] = (
            ("stt", pipeline.stt),
            ("llm", pipeline.llm),
            ("tts", pipeline.tts),
        )
        for stage, adapter in adapters:
            if isinstance(adapter, FALLBACK_ADAPTERS):
                _on(adapter, f"{stage}_availability_changed", self._fallback_counter(stage))

    def on_item_added(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage):
            return
        report = item.metrics
        if item.role == "user":
            self._observe_user(report)
        elif item.role == "assistant":
            self._observe_assistant(report, interrupted=item.interrupted)

    def _observe_user(self, report: llm.MetricsReport) -> None:
        common = self._labels.common()
        if (delay := report.get("end_of_turn_delay")) is not None:
            END_OF_TURN.labels(**common).observe(delay)
        if (delay := report.get("transcription_delay")) is not None:
            label = self._label("stt", report.get("stt_metadata"))
            STT_DELAY.labels(**self._labels.of(label)).observe(delay)

    def _observe_assistant(self, report: llm.MetricsReport, *, interrupted: bool) -> None:
        common = self._labels.common()
        self._turns += 1
        TURNS.labels(**common).inc()
        if interrupted:
            INTERRUPTIONS.labels(**common).inc()
        if (latency := report.get("e2e_latency")) is not None:
            VOICE_TO_VOICE.labels(**common).observe(latency)
        if (ttft := report.get("llm_node_ttft")) is not None:
            label = self._label("llm", report.get("llm_metadata"))
            LLM_TTFT.labels(**self._labels.of(label)).observe(ttft)
        if (ttfb := report.get("tts_node_ttfb")) is not None:
            label = self._label("tts", report.get("tts_metadata"))
            TTS_TTFB.labels(**self._labels.of(label)).observe(ttfb)

    def _label(self, stage: Stage, metadata: MetricsMetadata | None) -> ProviderLabel:
        metadata = metadata or {}
        return self._pipeline.label_of(
            stage, metadata.get("model_provider") or "", metadata.get("model_name") or ""
        )

    def on_usage(self, ev: SessionUsageUpdatedEvent) -> None:
        """Usage arrives as running totals per model; counters take the increase."""
        for usage in ev.usage.model_usage:
            if isinstance(usage, metrics.LLMModelUsage):
                label = self._pipeline.label_of("llm", usage.provider, usage.model)
                self._add(LLM_TOKENS, label, usage.input_tokens, kind="prompt")
                self._add(LLM_TOKENS, label, usage.output_tokens, kind="completion")
            elif isinstance(usage, metrics.TTSModelUsage):
                label = self._pipeline.label_of("tts", usage.provider, usage.model)
                self._add(TTS_CHARACTERS, label, usage.characters_count)
            elif isinstance(usage, metrics.STTModelUsage):
                label = self._pipeline.label_of("stt", usage.provider, usage.model)
                self._add(STT_AUDIO, label, usage.audio_duration)

    def _add(self, counter: Counter, label: ProviderLabel, total: float, **extra: str) -> None:
        key = (counter._name, label.provider, label.model, extra.get("kind", ""))
        increase = total - self._usage_seen.get(key, 0.0)
        self._usage_seen[key] = total
        if increase > 0:
            counter.labels(**self._labels.of(label), **extra).inc(increase)

    def on_vad_metrics(self, ev: metrics.VADMetrics) -> None:
        # The VAD reports in batches; each inference of a batch is observed at its mean.
        if ev.inference_count <= 0:
            return
        mean = ev.inference_duration_total / ev.inference_count
        child = VAD_INFERENCE.labels(**self._labels.common())
        for _ in range(ev.inference_count):
            child.observe(mean)

    def watch_callers(self, room: rtc.Room) -> None:
        """End the call's time when its last caller leaves or the room goes, not when the
        session has finished closing (seconds later): that time is not conversation."""

        def on_left(_: rtc.RemoteParticipant) -> None:
            if not any(p.kind != AGENT_KIND for p in room.remote_participants.values()):
                self.call_ended()

        room.on("participant_disconnected", on_left)
        room.on("disconnected", lambda *_: self.call_ended())

    def call_ended(self) -> None:
        if self._ended is None:
            self._ended = time.monotonic()

    def on_close(self, ev: CloseEvent) -> None:
        # A call ended by a limit (max_duration, silence_timeout) is counted as such.
        outcome = self._limit_reached() or ("failed" if ev.error is not None else "completed")
        self.call_ended()
        duration = (self._ended or time.monotonic()) - self._started
        labels = {**self._labels.common(), "outcome": outcome}
        SESSIONS.labels(**labels).inc()
        SESSION_DURATION.labels(**labels).observe(duration)
        CONVERSATION_SECONDS.labels(**labels).inc(duration)
        self._summarize(outcome, duration)

    def _summarize(self, outcome: str, duration: float) -> None:
        """One log line per call, and the same on its trace's root span: what it lasted, used
        and cost at the cluster's prices, never what was said."""
        used = {
            (name.removeprefix("voicefleet_agent_"), provider, model, kind): total
            for (name, provider, model, kind), total in self._usage_seen.items()
        }
        usage = {"/".join(filter(None, key)): round(total, 3) for key, total in used.items()}
        summary: dict[str, Any] = {
            "outcome": outcome,
            "duration_seconds": round(duration, 3),
            "turns": self._turns,
        }
        if (pricing := cluster_pricing()) is not None:
            estimate = pricing.estimate(used, duration)
            summary |= {"cost": estimate.cost, "currency": estimate.currency}
            if estimate.unpriced:
                summary["unpriced"] = list(estimate.unpriced)
        logger.info("session ended", extra={**summary, "usage": usage})
        annotate_job(
            {
                **{f"voicefleet.session.{key}": value for key, value in summary.items()},
                **{f"voicefleet.usage.{unit}": total for unit, total in usage.items()},
            }
        )

    def _error_counter(self, label: ProviderLabel) -> Callable[[Any], None]:
        def count(_: stt.STTError | llm.LLMError | tts.TTSError) -> None:
            PROVIDER_ERRORS.labels(
                **self._labels.common(), stage=label.stage, provider=label.provider
            ).inc()

        return count

    def _fallback_counter(self, stage: Stage) -> Callable[[Any], None]:
        def count(ev: Any) -> None:
            if ev.available:
                logger.info("provider recovered", extra={"stage": stage})
                return
            label = self._member_label(stage, getattr(ev, stage))
            logger.warning(
                "provider failed, switching to the next in the chain",
                extra={"stage": stage, "provider": label.provider, "model": label.model},
            )
            PROVIDER_FALLBACKS.labels(
                **self._labels.common(), stage=stage, provider=label.provider
            ).inc()

        return count

    def _member_label(self, stage: Stage, instance: object) -> ProviderLabel:
        for member, label in self._pipeline.members[stage]:
            if member is instance or getattr(instance, "wrapped_stt", None) is member:
                return label
        return self._pipeline.label_of(
            stage, str(getattr(instance, "provider", "")), str(getattr(instance, "model", ""))
        )


def _on(emitter: object, event: str, callback: Callable[[Any], None]) -> None:
    """Subscribe when the object emits events (plugins and adapters all do)."""
    if isinstance(emitter, (stt.STT, llm.LLM, tts.TTS, vad.VAD)):
        emitter.on(event, callback)  # type: ignore[arg-type]
