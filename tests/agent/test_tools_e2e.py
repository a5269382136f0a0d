"""Declarative tools over real LiveKit: a caller's turn makes the worker call a real HTTP
server on loopback, and the caller hears the result; failing tools get their failure line,
are counted, and the call goes on. Offline STT and TTS, the scripted LLM: no network beyond
loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.agent.conftest import (
    AgentWorker,
    agent_finals,
    answer,
    calling,
    eventually,
    pipeline_config,
)
from tests.agent.test_worker import OFFLINE, spans_of
from tests.agent.tool_server import ToolServer
from voicefleet_agent.loadtest import Caller, utterance_pcm
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.otlp import OTLPReceiver

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
# The offline STT hears "weather" (or "whether") in this sentence reliably, so every worker
# below is asked it.
QUESTION = "What is the weather like today?"
FALLBACK = "I only know about the weather."
ERRORS = "voicefleet_agent_tool_errors_total"
SECONDS = "voicefleet_agent_tool_call_seconds"


def weather_agent(name: str, url: str, otlp: OTLPReceiver, **tool: Any) -> dict[str, Any]:
    """An agent whose scripted LLM answers "weather" by calling `url` for Paris."""
    rule = {
        # PocketSphinx writes the homophone about as often as the word.
        "words": ["weather", "whether"],
        "tool": "get_weather",
        "arguments": {"city": "Paris"},
        "reply": "Here is the weather: {result}",
    }
    script = {"rules": [rule], "fallbackReply": FALLBACK}
    http = {"url": url, **tool.pop("http", {})}
    return pipeline_config(
        name,
        OFFLINE,
        [{"provider": "scripted", "script": script}],
        OFFLINE,
        tools=[
            {
                "name": "get_weather",
                "description": "Today's weather in a city.",
                "parameters": CITY,
                "http": http,
                **tool,
            }
        ],
        observability={"otlpEndpoint": otlp.url},
    )


@pytest.fixture(scope="module")
async def tool_server() -> AsyncIterator[ToolServer]:
    server = await ToolServer().start()
    yield server
    await server.stop()


async def warm_up(caller: Caller) -> None:
    """A first turn the script does not match: a call's first audio is often misheard while
    the caller's echo cancellation settles, and the turns under test come after it."""
    await answer(caller, utterance_pcm("Hello there."))


def finals(caller: Caller) -> list[tuple[str, str]]:
    """Both sides' final transcripts, for failure messages."""
    return [(t.identity, t.text) for t in caller.transcripts if t.final]


def said(finals: list[str], text: str) -> bool:
    return any(text.lower() in f.lower() for f in finals)


async def test_a_turn_calls_the_tool_and_the_caller_hears_its_result(
    livekit: LiveKitServer,
    worker_factory: Callable[..., AgentWorker],
    tool_server: ToolServer,
    otlp_receiver: OTLPReceiver,
) -> None:
    worker = worker_factory(weather_agent("vf-tool-ok", tool_server.url("/weather"), otlp_receiver))
    async with calling(livekit, "vf-tool-ok", "room-tool-ok") as caller:
        await warm_up(caller)
        await answer(caller, utterance_pcm(QUESTION))
        await eventually(
            lambda: said(agent_finals(caller), "sunny in Paris"),
            within=20,
            what=f"the tool's result in the agent's transcript; heard {finals(caller)}",
        )
    (request,) = tool_server.calls("/weather")
    assert (request.method, request.body) == ("POST", {"city": "Paris"})
    assert worker.sample(f"{SECONDS}_count", tool="get_weather") == 1
    assert worker.sample(ERRORS, tool="get_weather") == 0
    spans = await eventually(
        lambda: [s for s in spans_of(otlp_receiver, "vf-tool-ok") if s.name == "tool_call"],
        within=20,
        what="the tool_call span",
    )
    assert spans[0].attributes["gen_ai.tool.name"] == "get_weather"
    assert spans[0].attributes["http.response.status_code"] == 200
    # Arguments and results stay out of traces unless the VoiceAgent allows them.
    assert "voicefleet.tool.arguments" not in spans[0].attributes
    assert "Paris" not in repr(spans[0].attributes)


FAILURES = [
    # (case, path, tool fields, reason, the tool's longest latency bucket)
    ("timeout", "/slow",
     {"http": {"method": "GET", "timeoutSeconds": 1.5},
      "waitingLine": "One moment while I look that up.", "waitingAfterSeconds": 0.3},
     "timeout", "2.0"),
    ("status 500", "/broken", {}, "http_status", "0.5"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "path", "fields", "reason", "bound"), FAILURES, ids=[f[0] for f in FAILURES]
)
async def test_a_failing_tool_gets_its_failure_line_is_counted_and_the_call_goes_on(
    livekit: LiveKitServer,
    worker_factory: Callable[..., AgentWorker],
    tool_server: ToolServer,
    otlp_receiver: OTLPReceiver,
    case: str,
    path: str,
    fields: dict[str, Any],
    reason: str,
    bound: str,
) -> None:
    name = f"vf-tool-{reason.replace('_', '-')}"
    failure = f"Sorry, the weather service failed with {case}."
    worker = worker_factory(
        weather_agent(name, tool_server.url(path), otlp_receiver, failureLine=failure, **fields)
    )
    async with calling(livekit, name, f"room-{name}") as caller:
        await warm_up(caller)
        await answer(caller, utterance_pcm(QUESTION))
        await eventually(
            lambda: said(agent_finals(caller), failure),
            within=20,
            what=f"the failure line; heard {finals(caller)}",
        )
        if waiting := fields.get("waitingLine"):
            assert said(agent_finals(caller), waiting), finals(caller)
        assert not said(agent_finals(caller), "Here is the weather"), finals(caller)
        # The call goes on: the next turn is answered.
        replies = len(agent_finals(caller))
        await answer(caller, utterance_pcm("Hello there."))
        await eventually(
            lambda: len(agent_finals(caller)) > replies, what="a reply after the failure"
        )
    request = tool_server.calls(path)[-1]
    assert (request.body or request.query) == {"city": "Paris"}
    assert worker.sample(ERRORS, tool="get_weather", reason=reason) == 1
    assert worker.sample(ERRORS, tool="get_weather") == 1
    # Bounded: a timed-out call ends at its timeout, not when the server would answer (5 s).
    assert worker.sample(f"{SECONDS}_bucket", tool="get_weather", le=bound) == 1
    assert "Paris" not in worker.log()
