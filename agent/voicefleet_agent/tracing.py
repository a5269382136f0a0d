"""OpenTelemetry traces of every session, exported over OTLP.

The framework already traces a job as one trace (job_entrypoint → agent_session → user_turn /
agent_turn → llm_request, tts_request) with `gen_ai.*` attributes. voicefleet adds the
provider, a per-turn `stt` span (end of speech → final transcript, which the framework only
records as an attribute) and the `voicefleet.agent` / `voicefleet.region` attributes on every
span. Exporter settings follow the standard OTEL_* variables; `observability.otlpEndpoint` and
`traceSampleRatio` from the config take precedence.

The framework ends a job's root span (`job_entrypoint`) after every shutdown callback, and the
job process exits right after it without running atexit handlers (forkserver children leave
through `os._exit`). A span still waiting for the batch exporter then is lost, so the whole
batch is exported as the root span ends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager

from livekit.agents import llm, telemetry
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.util.types import AttributeValue

from voicefleet_agent.logs import transcripts_allowed
from voicefleet_agent.pipeline import Pipeline
from voicefleet_models.agent_config import AgentConfig

logger = logging.getLogger("voicefleet.agent")

SERVICE_NAME = "voicefleet-agent"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# The framework's root span of a job's trace; it ends last, as the job process finishes.
JOB_ROOT_SPAN = "job_entrypoint"
# Asked of the export at job end; the OTLP exporter's own timeout also bounds it. A slow or
# absent collector holds up only a job process whose session is over.
FLUSH_TIMEOUT_MILLIS = 5000

_tracer = trace.get_tracer("voicefleet.agent")


def span_attributes(config: AgentConfig) -> dict[str, str]:
    return {"voicefleet.agent": config.agent_name, "voicefleet.region": config.region}


def export_enabled(config: AgentConfig, env: Mapping[str, str]) -> bool:
    if env.get("OTEL_TRACES_EXPORTER", "otlp") == "none":
        return False
    return bool(config.observability.otlp_endpoint) or any(env.get(v) for v in ENDPOINT_VARIABLES)


def make_exporter(config: AgentConfig, env: Mapping[str, str]) -> SpanExporter:
    """OTLP over HTTP/protobuf (the spec's default) or gRPC, as OTEL_EXPORTER_OTLP_PROTOCOL says."""
    protocol = next((env[v] for v in PROTOCOL_VARIABLES if env.get(v)), "http/protobuf")
    base = config.observability.otlp_endpoint
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=base) if base else GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if base:
        return OTLPSpanExporter(endpoint=base.rstrip("/") + "/v1/traces")
    return OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT


class FlushAtJobEnd(SpanProcessor):
    """Exports everything `batch` holds once the job's root span has ended (added after
    `batch`, so the root span is already queued there)."""

    def __init__(self, batch: BatchSpanProcessor) -> None:
        self._batch = batch

    def on_end(self, span: ReadableSpan) -> None:
        if span.name == JOB_ROOT_SPAN and span.parent is None:
            self._batch.force_flush(FLUSH_TIMEOUT_MILLIS)


class JobRootSpan(SpanProcessor):
    """Holds the job's root span while it runs: a job process serves one session, whose
    summary (outcome, duration, turns, usage) goes on that span before it ends."""

    def __init__(self) -> None:
        self.span: Span | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.name == JOB_ROOT_SPAN and span.parent is None:
            self.span = span


_job_root = JobRootSpan()


def annotate_job(attributes: Mapping[str, AttributeValue]) -> None:
    """Set `attributes` on the job's root span, if this job is traced and it still runs."""
    if _job_root.span is not None and _job_root.span.is_recording():
        _job_root.span.set_attributes(attributes)


def configure_tracing(config: AgentConfig, env: Mapping[str, str]) -> TracerProvider | None:
    """Install the tracer provider the framework's spans go to; None when nothing exports."""
    if not export_enabled(config, env):
        return None
    # An explicit OTEL_TRACES_SAMPLER wins; otherwise sample whole sessions at the config ratio.
    sampler = None
    if not env.get("OTEL_TRACES_SAMPLER"):
        sampler = ParentBased(TraceIdRatioBased(config.observability.trace_sample_ratio))
    resource = Resource.create(
        {"service.name": env.get("OTEL_SERVICE_NAME", SERVICE_NAME), **span_attributes(config)}
    )
    provider = TracerProvider(resource=resource, sampler=sampler)
    batch = BatchSpanProcessor(make_exporter(config, env))
    provider.add_span_processor(batch)
    provider.add_span_processor(FlushAtJobEnd(batch))
    provider.add_span_processor(_job_root)
    telemetry.set_tracer_provider(
        provider, metadata=dict(span_attributes(config)), allow_pii=transcripts_allowed(env)
    )
    global _tracer
    _tracer = provider.get_tracer("voicefleet.agent")
    return provider


def start_tool_span(name: str, method: str, url: str) -> AbstractContextManager[trace.Span]:
    """The span of one tool call, current while it runs (a child of the framework's
    `function_tool` span)."""
    return _tracer.start_as_current_span(
        "tool_call",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.type": "extension",
            "voicefleet.stage": "tool",
            "http.request.method": method,
            "url.full": url,
        },
    )


def record_stt_span(message: llm.ChatMessage, pipeline: Pipeline) -> None:
    """The `stt` span of a user turn: end of speech → final transcript, back-dated."""
    report = message.metrics
    end_of_speech = report.get("stopped_speaking_at")
    delay = report.get("transcription_delay")
    if end_of_speech is None or delay is None:
        return
    metadata = report.get("stt_metadata") or {}
    label = pipeline.label_of(
        "stt", metadata.get("model_provider") or "", metadata.get("model_name") or ""
    )
    start_ns = int(end_of_speech * 1e9)
    span = _tracer.start_span(
        "stt",
        start_time=start_ns,
        attributes={
            "gen_ai.provider.name": label.provider,
            "gen_ai.request.model": label.model,
            "voicefleet.stage": "stt",
            "voicefleet.stt.delay_seconds": delay,
        },
    )
    span.end(end_time=start_ns + int(delay * 1e9))
