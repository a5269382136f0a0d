"""Whole turns in this process, with no LiveKit: an AgentSession runs the agent a VoiceAgent's
config builds (its instructions, its declarative tools, the scripted LLM) on text input, and
each tool answers over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.agents import AgentSession
from livekit.agents.voice.run_result import RunResult

from tests.agent.tool_server import ToolServer
from voicefleet_agent.custom import build_agent
from voicefleet_agent.metrics import Labels
from voicefleet_agent.pipeline import build_llm
from voicefleet_agent.tools import ToolClient, build_tools
from voicefleet_models.agent_config import AgentConfig

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
FAILURE_LINE = "The weather service is not answering, sorry."
RULES = [
    {"words": ["weather"], "tool": "get_weather", "arguments": {"city": "Paris"},
     "reply": "Here it is: {result}"},
    {"words": ["storm"], "tool": "get_storms", "arguments": {"city": "Oslo"},
     "reply": "Storms: {result}"},
    {"words": ["opening hours"], "reply": "We open at nine."},
]  # fmt: skip
FALLBACK = "I can tell you the weather or our opening hours."


def config(server: ToolServer) -> AgentConfig:
    tools = [
        {"name": "get_weather", "description": "Weather of a city.", "parameters": CITY,
         "http": {"url": server.url("/weather")}},
        {"name": "get_storms", "description": "Storm warnings of a city.", "parameters": CITY,
         "http": {"url": server.url("/broken")}, "failureLine": FAILURE_LINE},
    ]  # fmt: skip
    script = {"rules": RULES, "fallbackReply": FALLBACK}
    offline = [{"provider": "offline"}]
    return AgentConfig.model_validate(
        {
            "agentName": "inprocess",
            "instructions": "You answer questions about the weather.",
            "pipeline": {
                "stt": offline,
                "llm": [{"provider": "scripted", "script": script}],
                "tts": offline,
            },
            "tools": tools,
        }
    )


@pytest.fixture
async def session(server: ToolServer, client: ToolClient) -> AsyncIterator[AgentSession[None]]:
    """The session the worker would start for a call, minus the room: text in, text out."""
    agent_config = config(server)
    labels = Labels(agent_config.agent_name, agent_config.region)
    tools = build_tools(agent_config.tools, {}, client, labels, trace_content=False)
    llm = build_llm(agent_config.pipeline.llm[0], {})
    async with AgentSession[None](llm=llm) as session:
        await session.start(build_agent(agent_config, tools))
        yield session


async def turn(session: AgentSession[None], said: str) -> RunResult[None]:
    """One turn of the caller, as text: the events it caused, tool calls and replies."""
    result: RunResult[None] = await session.run(user_input=said)
    return result


def replies(result: RunResult[Any]) -> list[str]:
    return [
        event.item.text_content or ""
        for event in result.events
        if event.type == "message" and event.item.role == "assistant"
    ]


async def test_a_turn_calls_the_rules_tool_over_http_and_replies_with_its_result(
    session: AgentSession[None], server: ToolServer
) -> None:
    result = await turn(session, "What is the weather like today?")
    result.expect.next_event().is_function_call(name="get_weather", arguments={"city": "Paris"})
    output = result.expect.next_event().is_function_call_output(is_error=False)
    assert "sunny in Paris" in output.event().item.output
    reply = result.expect.next_event().is_message(role="assistant").event().item
    assert reply.text_content == f"Here it is: {output.event().item.output}"
    result.expect.no_more_events()
    (call,) = server.calls("/weather")
    assert (call.method, call.body) == ("POST", {"city": "Paris"})


async def test_a_failing_tool_makes_the_agent_say_its_failure_line_and_nothing_else(
    session: AgentSession[None], server: ToolServer
) -> None:
    result = await turn(session, "Any storm coming?")
    result.expect.next_event().is_function_call(name="get_storms", arguments={"city": "Oslo"})
    assert replies(result) == [FAILURE_LINE]
    assert not any("Storms:" in text for text in replies(result))
    assert len(server.calls("/broken")) == 1


async def test_a_rule_without_a_tool_or_no_rule_replies_at_once(
    session: AgentSession[None], server: ToolServer
) -> None:
    hours = await turn(session, "What are your opening hours?")
    hours.expect.next_event().is_message(role="assistant")
    hours.expect.no_more_events()
    assert replies(hours) == ["We open at nine."]
    other = await turn(session, "Tell me a joke")
    assert replies(other) == [FALLBACK]
    assert server.received == []


async def test_the_conversation_keeps_each_turns_tool_results_apart(
    session: AgentSession[None], server: ToolServer
) -> None:
    """A second weather question calls the tool again: the scripted LLM answers from the
    result that came after the caller's last turn, not from an earlier one."""
    first = await turn(session, "weather please")
    second = await turn(session, "and the weather tomorrow?")
    for result in (first, second):
        result.expect.next_event().is_function_call(name="get_weather")
    assert len(server.calls("/weather")) == 2
    assert replies(second) == replies(first)
