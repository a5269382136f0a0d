"""A worker's traces in a real OTLP backend: Jaeger v2 receives them over OTLP/HTTP and its query
API returns one call's session as one trace, rooted at the job's span, with the STT, LLM and TTS
spans of the turn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from voicefleet_agent.loadtest import utterance_pcm
from voicefleet_agent.tracing import SERVICE_NAME
from voicefleet_devstack.jaeger import Jaeger
from voicefleet_devstack.livekit import LiveKitServer

from .conftest import AgentWorker, answer, calling, eventually, pipeline_config

AGENT = "vf-jaeger"
# Distinct simulated delays, so each span's duration shows it timed its own stage.
DELAYS = {"stt": 0.3, "llm": 0.5, "tts": 0.7}
STAGE_SPANS = {"stt": "stt", "llm": "llm_request", "tts": "tts_request"}
# The job's root span and its shutdown span end after the job's shutdown callbacks, as the job
# process exits: they arrive only if the worker exports them before it is gone.
LAST_SPANS = {"job_entrypoint", "job_shutdown"}


def simulated(delay: float) -> list[dict[str, Any]]:
    return [{"provider": "simulated", "simulation": {"delaySeconds": delay}}]


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    # A Jaeger that cannot start fails the test with its log (ComponentError), never skips.
    server = Jaeger(tmp_path_factory.mktemp("jaeger"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def traced_worker(worker_factory: Callable[..., AgentWorker], jaeger: Jaeger) -> AgentWorker:
    config = pipeline_config(
        AGENT, *(simulated(DELAYS[stage]) for stage in ("stt", "llm", "tts")), region="test-1"
    )
    # The standard OTEL_* variables, as a cluster's collector settings would arrive.
    return worker_factory(
        config,
        OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_http_url,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )


def session_traces(jaeger: Jaeger) -> list[dict[str, Any]] | None:
    """The traces holding this agent's spans, once the session's are all in: the stage spans
    and the spans that end last (a bounded wait: a trace missing them fails the test)."""
    traces = [
        trace
        for trace in jaeger.traces(SERVICE_NAME)
        if any(s["attributes"].get("voicefleet.agent") == AGENT for s in trace["spans"])
    ]
    names = {s["name"] for trace in traces for s in trace["spans"]}
    return traces if {"agent_session", *LAST_SPANS, *STAGE_SPANS.values()} <= names else None


def seconds(span: dict[str, Any]) -> float:
    return float(span["endTimeUnixNano"] - span["startTimeUnixNano"]) / 1e9


def ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    names = []
    while span["parentSpanId"] in by_id:
        span = by_id[span["parentSpanId"]]
        names.append(span["name"])
    return names


async def test_one_call_is_one_trace_in_jaeger(
    livekit: LiveKitServer, traced_worker: AgentWorker, jaeger: Jaeger
) -> None:
    async with calling(livekit, AGENT, "room-jaeger") as caller:
        await answer(caller, utterance_pcm("What is the weather like today?"))

    traces = await eventually(
        lambda: session_traces(jaeger),
        within=30,
        what=f"the session's complete trace in Jaeger ({jaeger.workdir / 'jaeger.log'})",
    )
    assert len(traces) == 1, "a session must be one trace"
    spans = traces[0]["spans"]
    by_id = {s["spanId"]: s for s in spans}
    assert {s["resource"]["service.name"] for s in spans} == {SERVICE_NAME}
    assert all(s["attributes"].get("voicefleet.agent") == AGENT for s in spans)
    assert all(s["attributes"].get("voicefleet.region") == "test-1" for s in spans)
    assert [s["name"] for s in spans].count("user_turn") == 1

    roots = [s for s in spans if s["parentSpanId"] not in by_id]
    assert [r["name"] for r in roots] == ["job_entrypoint"], "one root: the job's span"
    for span in spans:
        if span is not roots[0]:
            assert ancestors(span, by_id)[-1] == "job_entrypoint", span["name"]

    turns = [s for s in spans if s["name"] == "agent_turn"]
    assert len(turns) == 1, "one user turn, one agent turn"
    for stage, name in STAGE_SPANS.items():
        named = [s for s in spans if s["name"] == name]
        assert len(named) == 1, f"one turn, one {name} span: {named}"
        span = named[0]
        assert {"agent_turn", "agent_session"} <= set(ancestors(span, by_id)), name
        assert span["attributes"]["gen_ai.provider.name"] == "simulated", span
        assert span["attributes"]["gen_ai.request.model"] == f"simulated-{stage}", span
        # Each span lasts at least its stage's simulated delay. The STT span is measured from
        # the session's own end-of-speech estimate, not the recognizer's: a little slack.
        assert DELAYS[stage] - 0.1 <= seconds(span) < DELAYS[stage] + 5, (name, seconds(span))
