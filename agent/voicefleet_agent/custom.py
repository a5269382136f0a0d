"""Your own agent code inside a voicefleet worker.

An image built FROM the agent image adds a Python module; the VoiceAgent names a function of
it in `spec.agent.entrypoint` ("clinic.agent:build"). For each call the worker hands that
function an `AgentSetup` and starts the session with the livekit-agents `Agent` it returns:
function tools, `on_enter`, handoffs are the team's. Everything around the agent stays the
worker's: providers from the spec, metrics, traces, call limits, drain and load reporting.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from livekit.agents import Agent, llm

from voicefleet_models.agent_config import AgentConfig


@dataclass(frozen=True)
class AgentSetup:
    """What a custom agent builder is given for each call."""

    instructions: str
    """The VoiceAgent's spec.instructions."""
    tools: Sequence[llm.Tool | llm.Toolset]
    """The VoiceAgent's declared HTTP tools, ready to pass to Agent(tools=...)."""
    config: AgentConfig
    """The worker's whole configuration, read-only."""


AgentBuilder = Callable[[AgentSetup], Agent]


class AgentCodeError(Exception):
    """The entrypoint cannot be loaded or did not build an Agent; the message says which."""


def load_builder(entrypoint: str) -> AgentBuilder:
    """The function `entrypoint` ("package.module:function") names."""
    module_name, _, name = entrypoint.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise AgentCodeError(
            f"spec.agent.entrypoint {entrypoint}: cannot import {module_name} ({error}); "
            "is the module in the worker image?"
        ) from None
    builder = getattr(module, name, None)
    if not callable(builder):
        raise AgentCodeError(
            f"spec.agent.entrypoint {entrypoint}: {module_name} has no function {name}"
        )
    built: AgentBuilder = builder
    return built


def build_agent(config: AgentConfig, tools: Sequence[llm.Tool | llm.Toolset]) -> Agent:
    """The call's Agent: the configured builder's, else the instructions with the tools."""
    if config.agent.entrypoint is None:
        return Agent(instructions=config.instructions, tools=list(tools))
    builder = load_builder(config.agent.entrypoint)
    agent = builder(AgentSetup(config.instructions, tools, config))
    if not isinstance(agent, Agent):
        raise AgentCodeError(
            f"spec.agent.entrypoint {config.agent.entrypoint} returned "
            f"{type(agent).__name__}, not a livekit.agents Agent"
        )
    return agent
