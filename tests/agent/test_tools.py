"""Declarative tools: their models, their HTTP calls against a real server on loopback, their
metrics and spans, and the scripted LLM that drives them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from livekit.agents import llm
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from pydantic import ValidationError

from tests.agent.tool_server import ToolServer
from voicefleet_agent import tracing
from voicefleet_agent.metrics import Labels
from voicefleet_agent.pipeline import build_llm
from voicefleet_agent.providers.scripted import scripted_reply
from voicefleet_agent.tools import TRUNCATED, HttpTool, ToolCallError, ToolClient, build_tools
from voicefleet_models.agent_config import AgentConfig, LLMSpec, ScriptSpec
from voicefleet_models.tool_spec import ToolSpec, missing_header_variables
from voicefleet_models.voice_agent import VoiceAgentSpec

LABELS = Labels("tools-test", "loop")
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def tool(url: str, **fields: Any) -> ToolSpec:
    http = {"url": url, **fields.pop("http", {})}
    return ToolSpec.model_validate(
        {"name": "get_weather", "description": "Weather of a city.", "parameters": CITY,
         "http": http, **fields}
    )  # fmt: skip


def spec_with(tools: list[dict[str, Any]], env: list[dict[str, Any]] | None = None) -> Any:
    sim = [{"provider": "simulated"}]
    return VoiceAgentSpec.model_validate(
        {
            "image": "agent:1",
            "pipeline": {"stt": sim, "llm": sim, "tts": sim},
            "regions": [{"name": "us", "livekit": {"url": "ws://lk", "credentialsSecret": "lk"}}],
            "tools": tools,
            "env": env or [],
        }
    )


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, {**LABELS.common(), **labels})
    return value or 0.0


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    assert span.name == "tool_call"
    return span


# Models


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"parameters": {"type": "string"}}, "tool parameters must be a JSON Schema object"),
        ({"parameters": {"properties": {}}}, "tool parameters must be a JSON Schema object"),
        ({"http": {"url": "ftp://files.example.com/x"}}, "must be an http:// or https:// URL"),
        ({"http": {"url": "file:///etc/passwd"}}, "must be an http:// or https:// URL"),
        ({"http": {"timeoutSeconds": 0}}, "greater than 0"),
        ({"http": {"timeoutSeconds": 31}}, "less than or equal to 30"),
        ({"name": "get weather"}, "should match pattern"),
        ({"name": "1st"}, "should match pattern"),
        ({"http": {"headers": [{"name": "Authorization", "value": "secret"}]}}, "fromEnv"),
    ],
)
def test_a_bad_tool_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        tool(fields.get("http", {}).pop("url", "https://api.example.com/w"), **fields)


def test_tool_names_are_unique_and_headers_come_from_env() -> None:
    good = tool("https://api.example.com/w").model_dump(by_alias=True)
    with pytest.raises(ValidationError, match="tool names must be unique"):
        spec_with([good, good])
    with pytest.raises(ValidationError, match="tool names must be unique"):
        AgentConfig.model_validate(
            {"agentName": "a", "instructions": "", "tools": [good, good],
             "pipeline": {"stt": [{"provider": "offline"}], "llm": [{"provider": "offline"}],
                          "tts": [{"provider": "offline"}]}}
        )  # fmt: skip
    headed = {**good, "http": {**good["http"], "headers": [{"name": "X-Key", "fromEnv": "KEY"}]}}
    with pytest.raises(ValidationError, match="fromEnv must name a variable in env"):
        spec_with([headed])
    key = {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    spec = spec_with([headed], env=[key])
    config = spec.agent_config("a", spec.regions[0])
    assert config.tools[0].http.headers[0].from_env == "KEY"
    assert missing_header_variables(config.tools, {}) == [("get_weather", "KEY")]
    assert missing_header_variables(config.tools, {"KEY": "v"}) == []


def test_function_tool_offers_the_specs_schema(client: ToolClient) -> None:
    spec = tool("https://api.example.com/w")
    (fn,) = build_tools([spec], {}, client, LABELS, trace_content=False)
    assert isinstance(fn, llm.RawFunctionTool)
    assert fn.info.raw_schema == {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": CITY,
    }


# Calls over real HTTP


async def test_post_sends_the_arguments_and_the_header_and_returns_the_body(
    server: ToolServer, client: ToolClient, spans: InMemorySpanExporter
) -> None:
    spec = tool(server.url("/weather"), http={"headers": [{"name": "X-Key", "fromEnv": "K"}]})
    before = sample("voicefleet_agent_tool_call_seconds_count", tool="get_weather")
    http_tool = HttpTool(spec, {"K": "s3cret-value"}, client, LABELS, trace_content=False)
    result = await http_tool.call({"city": "Paris"})
    assert json.loads(result.text) == {"city": "Paris", "forecast": "sunny in Paris"}
    (received,) = server.calls("/weather")
    assert (received.method, received.body) == ("POST", {"city": "Paris"})
    assert received.headers["X-Key"] == "s3cret-value"
    assert sample("voicefleet_agent_tool_call_seconds_count", tool="get_weather") == before + 1
    span = only_span(spans)
    assert span.attributes is not None
    assert span.attributes["gen_ai.tool.name"] == "get_weather"
    assert span.attributes["http.response.status_code"] == 200
    # Redacted by default: neither what was asked nor what came back.
    assert "voicefleet.tool.arguments" not in span.attributes
    assert "voicefleet.tool.result" not in span.attributes
    assert "Paris" not in json.dumps(dict(span.attributes))


async def test_get_sends_query_parameters_and_content_is_traced_when_allowed(
    server: ToolServer, client: ToolClient, spans: InMemorySpanExporter
) -> None:
    spec = tool(server.url("/weather?units=metric"), http={"method": "GET"})
    result = await HttpTool(spec, {}, client, LABELS, trace_content=True).call(
        {"city": "Oslo", "days": 2}
    )
    assert "sunny in Oslo" in result.text
    (received,) = server.calls("/weather")
    assert received.method == "GET"
    assert received.query == {"units": "metric", "city": "Oslo", "days": "2"}
    span = only_span(spans)
    assert span.attributes is not None
    assert json.loads(str(span.attributes["voicefleet.tool.arguments"])) == {
        "city": "Oslo",
        "days": 2,
    }
    assert "sunny in Oslo" in str(span.attributes["voicefleet.tool.result"])
    assert span.attributes["url.full"] == server.url("/weather")  # no query kept


async def test_a_long_result_is_truncated_for_the_llm(
    server: ToolServer, client: ToolClient
) -> None:
    spec = tool(server.url("/long"), maxResultChars=300)
    result = await HttpTool(spec, {}, client, LABELS, trace_content=False).call({})
    assert len(result.text) == 300
    assert result.text.endswith(TRUNCATED)
    assert result.text.startswith("word word")


@pytest.mark.parametrize(
    ("path", "fields", "reason", "within"),
    [
        ("/slow", {"timeoutSeconds": 0.5}, "timeout", 2.0),
        ("/broken", {}, "http_status", 2.0),
        ("/big", {"maxResponseBytes": 65536}, "too_large", 2.0),
    ],
)
async def test_a_failing_call_is_bounded_counted_and_traced(
    server: ToolServer,
    client: ToolClient,
    spans: InMemorySpanExporter,
    path: str,
    fields: dict[str, Any],
    reason: str,
    within: float,
) -> None:
    spec = tool(server.url(path), http=fields)
    errors = "voicefleet_agent_tool_errors_total"
    before = sample(errors, tool="get_weather", reason=reason)
    started = time.monotonic()
    with pytest.raises(ToolCallError) as failed:
        await HttpTool(spec, {}, client, LABELS, trace_content=False).call({"city": "Rome"})
    assert time.monotonic() - started < within
    assert failed.value.reason == reason
    assert server.calls(path), "the request never reached the server"
    assert sample(errors, tool="get_weather", reason=reason) == before + 1
    span = only_span(spans)
    assert span.attributes is not None
    assert span.attributes["error.type"] == reason
    assert not span.status.is_ok


async def test_an_unreachable_endpoint_is_a_connection_error(client: ToolClient) -> None:
    from voicefleet_devstack.process import free_port

    spec = tool(f"http://127.0.0.1:{free_port()}/nothing")
    before = sample("voicefleet_agent_tool_errors_total", tool="get_weather", reason="connection")
    with pytest.raises(ToolCallError) as failed:
        await HttpTool(spec, {}, client, LABELS, trace_content=False).call({})
    assert failed.value.reason == "connection"
    after = sample("voicefleet_agent_tool_errors_total", tool="get_weather", reason="connection")
    assert after == before + 1


# The scripted LLM

SCRIPT = ScriptSpec.model_validate(
    {
        "rules": [
            {"words": ["weather", "forecast"], "tool": "get_weather",
             "arguments": {"city": "Paris"}, "reply": "Here it is: {result}"},
            {"words": ["opening hours"], "reply": "We open at nine."},
        ],
        "fallbackReply": "Say that again?",
    }
)  # fmt: skip


def chat(*items: llm.ChatItem) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    ctx.items.extend(items)
    return ctx


def user(text: str) -> llm.ChatMessage:
    return llm.ChatMessage(role="user", content=[text])


def test_scripted_llm_calls_the_rules_tool_then_replies_with_its_result() -> None:
    first = scripted_reply(SCRIPT, chat(user("What is the Weather like?")))
    assert isinstance(first, llm.FunctionToolCall)
    assert (first.name, json.loads(first.arguments)) == ("get_weather", {"city": "Paris"})
    call = llm.FunctionCall(call_id=first.call_id, name=first.name, arguments=first.arguments)
    output = llm.FunctionCallOutput(
        call_id=first.call_id, name="get_weather", output="sunny", is_error=False
    )
    assert scripted_reply(SCRIPT, chat(user("weather?"), call, output)) == "Here it is: sunny"
    # A new turn starts over: the earlier result belongs to the earlier turn.
    again = scripted_reply(SCRIPT, chat(user("weather?"), call, output, user("forecast")))
    assert isinstance(again, llm.FunctionToolCall)


def test_scripted_llm_matches_whole_words_and_phrases_or_falls_back() -> None:
    assert scripted_reply(SCRIPT, chat(user("your opening hours please"))) == "We open at nine."
    assert scripted_reply(SCRIPT, chat(user("opening the hours"))) == "Say that again?"
    assert scripted_reply(SCRIPT, chat(user("weatherman"))) == "Say that again?"
    assert scripted_reply(SCRIPT, chat()) == "Say that again?"


async def test_scripted_provider_streams_a_tool_call_chunk() -> None:
    model = build_llm(
        LLMSpec.model_validate({"provider": "scripted", "script": SCRIPT.model_dump()}), {}
    )
    assert (model.provider, model.model) == ("scripted", "scripted-llm")
    chunks = [c async for c in model.chat(chat_ctx=chat(user("weather")))]
    calls = [t for c in chunks if c.delta for t in c.delta.tool_calls]
    assert [(t.name, t.arguments) for t in calls] == [("get_weather", '{"city": "Paris"}')]
    texts = [c async for c in model.chat(chat_ctx=chat(user("opening hours")))]
    assert "".join(c.delta.content or "" for c in texts if c.delta) == "We open at nine."
