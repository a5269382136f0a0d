"""The VoiceAgent's declarative tools as function tools of the session.

Each tool is a livekit-agents raw function tool whose JSON Schema is the spec's `parameters`;
calling it sends one HTTP request. A call is bounded (the tool's timeout for the whole
exchange, a response size cap, the result truncated for the LLM), metered (latency histogram,
error counter by reason), traced (one `tool_call` span; arguments and results only when
`observability.traceToolContent` allows) and never ends the conversation: on failure the agent
says the tool's failureLine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from livekit.agents import RunContext, StopResponse, llm
from opentelemetry import trace

from voicefleet_agent.metrics import Labels, observe_tool_call
from voicefleet_agent.tracing import start_tool_span
from voicefleet_models.tool_spec import ToolSpec

logger = logging.getLogger("voicefleet.agent")

Reason = Literal["timeout", "http_status", "too_large", "connection"]
TRUNCATED = " …[truncated]"
QUERY_METHODS = frozenset({"GET", "DELETE"})
READ_CHUNK = 16384


class ToolCallError(Exception):
    """A tool call that produced no usable result; `reason` is the metric label."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason: Reason = reason


@dataclass(frozen=True)
class ToolResult:
    status: int
    text: str
    """The response body as the LLM gets it: decoded and truncated."""


def query_parameters(arguments: Mapping[str, Any]) -> dict[str, str]:
    """Arguments as query parameters: strings as they are, everything else as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()}


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def traced_url(url: str) -> str:
    """The URL without user info, query or fragment, which may carry what should not be kept."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    if response.content_length is not None and response.content_length > cap:
        raise ToolCallError("too_large", f"response of {response.content_length} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        body += chunk
        if len(body) > cap:
            raise ToolCallError("too_large", f"response above {cap} bytes")
    return bytes(body)


class HttpTool:
    """One declared tool: its request, bounded and measured."""

    def __init__(
        self,
        spec: ToolSpec,
        env: Mapping[str, str],
        client: ToolClient,
        labels: Labels,
        trace_content: bool,
    ) -> None:
        self.spec = spec
        self._headers = {h.name: env.get(h.from_env, "") for h in spec.http.headers}
        self._client = client
        self._labels = labels
        self._trace_content = trace_content

    async def request(self, arguments: Mapping[str, Any]) -> ToolResult:
        """Send the call; raises ToolCallError on timeout, status ≥ 300, oversize or no answer."""
        http = self.spec.http
        payload: dict[str, Any] = (
            {"params": query_parameters(arguments)}
            if http.method in QUERY_METHODS
            else {"json": dict(arguments)}
        )
        try:
            async with asyncio.timeout(http.timeout_seconds):
                session = self._client.session()
                async with session.request(
                    http.method,
                    http.url,
                    headers=self._headers,
                    allow_redirects=False,
                    **payload,
                ) as response:
                    if response.status >= 300:
                        raise ToolCallError("http_status", f"HTTP {response.status}")
                    body = await _read_capped(response, http.max_response_bytes)
        except TimeoutError:
            raise ToolCallError("timeout", f"no answer within {http.timeout_seconds:g} s") from None
        except aiohttp.ClientError as e:
            raise ToolCallError("connection", type(e).__name__) from None
        text = body.decode(response.charset or "utf-8", errors="replace")
        return ToolResult(response.status, truncate(text, self.spec.max_result_chars))

    async def call(self, arguments: Mapping[str, Any]) -> ToolResult:
        """`request`, with its span, latency and error count."""
        http = self.spec.http
        started = time.monotonic()
        failure: Reason | None = None
        with start_tool_span(self.spec.name, http.method, traced_url(http.url)) as span:
            if self._trace_content:
                span.set_attribute("voicefleet.tool.arguments", json.dumps(arguments))
            try:
                result = await self.request(arguments)
            except ToolCallError as e:
                failure = e.reason
                span.set_attribute("error.type", e.reason)
                span.set_status(trace.StatusCode.ERROR, str(e))
                raise
            finally:
                observe_tool_call(self._labels, self.spec.name, time.monotonic() - started, failure)
            span.set_attribute("http.response.status_code", result.status)
            if self._trace_content:
                span.set_attribute("voicefleet.tool.result", result.text)
            return result

    def function_tool(self) -> llm.Tool:
        """The session's function tool: the LLM sees the spec's name, description and schema."""
        spec = self.spec

        async def run(raw_arguments: dict[str, object], context: RunContext[Any]) -> str:
            waiting = spec.waiting_line
            try:
                if waiting is None:
                    return (await self.call(raw_arguments)).text
                async with context.with_filler(waiting, delay=spec.waiting_after_seconds):
                    return (await self.call(raw_arguments)).text
            except ToolCallError as e:
                logger.warning(
                    "tool call failed",
                    extra={"tool": spec.name, "reason": e.reason, "detail": str(e)},
                )
                # The fixed line is the answer; the LLM is not asked to word the failure.
                context.session.say(spec.failure_line)
                raise StopResponse() from None

        schema = {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
        return llm.function_tool(run, raw_schema=schema)


class ToolClient:
    """The HTTP client the tools of one session share, opened on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def build_tools(
    specs: Sequence[ToolSpec],
    env: Mapping[str, str],
    client: ToolClient,
    labels: Labels,
    trace_content: bool,
) -> list[llm.Tool | llm.Toolset]:
    return [HttpTool(spec, env, client, labels, trace_content).function_tool() for spec in specs]
