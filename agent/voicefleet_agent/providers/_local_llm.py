"""A language model computed in-process: the base of the offline and simulated LLMs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Never

from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectionError,
    APIConnectOptions,
    NotGivenOr,
    llm,
    utils,
)

from voicefleet_agent.providers.replies import split_tokens
from voicefleet_models.agent_config import Simulation

# Called with the chat history; returns the full reply text or a tool call to make first.
ReplyFn = Callable[[llm.ChatContext], str | llm.FunctionToolCall]


def user_turns(chat_ctx: llm.ChatContext) -> list[str]:
    """Texts of the user's messages, oldest first."""
    return [m.text_content or "" for m in chat_ctx.messages() if m.role == "user"]


class LocalLLM(llm.LLM[Never]):
    """Streams a reply computed by `reply`, first token after `simulation.delay_seconds`."""

    def __init__(
        self, *, provider: str, model: str, reply: ReplyFn, simulation: Simulation | None
    ) -> None:
        super().__init__()
        self._provider = provider
        self._model = model
        self._reply = reply
        self._simulation = simulation

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return self._provider

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return LocalLLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class LocalLLMStream(llm.LLMStream):
    def __init__(
        self,
        owner: LocalLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._owner = owner

    async def _run(self) -> None:
        simulation = self._owner._simulation
        if simulation is not None:
            if simulation.fail:
                raise APIConnectionError(
                    f"{self._owner.provider} LLM is configured to fail (simulation.fail)"
                )
            await asyncio.sleep(simulation.delay_seconds)
        request_id = utils.shortuuid("llm_")
        reply = self._owner._reply(self._chat_ctx)
        if isinstance(reply, llm.FunctionToolCall):
            delta = llm.ChoiceDelta(role="assistant", tool_calls=[reply])
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
        tokens = [] if isinstance(reply, llm.FunctionToolCall) else split_tokens(reply)
        for token in tokens:
            delta = llm.ChoiceDelta(role="assistant", content=token)
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
            await asyncio.sleep(0)  # let the pipeline start on the first words
        prompt = sum(len(split_tokens(text)) for text in user_turns(self._chat_ctx))
        usage = llm.CompletionUsage(
            completion_tokens=len(tokens), prompt_tokens=prompt, total_tokens=prompt + len(tokens)
        )
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, usage=usage))
