"""Declarative tools: HTTP endpoints the agent's LLM may call, each with a JSON-Schema'd
function. Part of both the VoiceAgent spec and the worker's configuration.

Header values never appear here: a header names the environment variable holding its value,
and that variable is set from a Secret by the VoiceAgent's `env`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic.config import JsonDict

from voicefleet_models.base import Model

FUNCTION_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
HTTP_TOKEN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$"
HTTP_URL = r"^https?://[^\s/?#]+([/?#][^\s]*)?$"
MAX_TIMEOUT_SECONDS = 30.0
MAX_TOOLS = 32


def _cel(rule: str, message: str) -> JsonDict:
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


class ToolHeader(Model):
    """A request header whose value is read from the worker's environment."""

    name: str = Field(pattern=HTTP_TOKEN)
    """Header name, e.g. Authorization."""
    from_env: str = Field(pattern=ENV_NAME, max_length=128)
    """Environment variable holding the value; set it in spec.env from a Secret
    (valueFrom.secretKeyRef). Inline values are not accepted."""


class ToolHTTP(Model):
    """The endpoint a tool calls. GET and DELETE send the arguments as query parameters, the
    other methods as a JSON body."""

    url: str = Field(
        max_length=2048,
        json_schema_extra=_cel(
            f"self.matches(r'{HTTP_URL}')",
            "tool url must be an http:// or https:// URL",
        ),
    )
    """Endpoint URL, http or https."""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    """HTTP method."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    """Longest the whole request may take, response included; above 0, at most 30."""
    headers: list[ToolHeader] = Field(default_factory=list, max_length=16)
    """Request headers, each from an environment variable."""
    max_response_bytes: int = Field(default=65536, ge=1024, le=1048576)
    """Largest response accepted; a larger one fails the call."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(HTTP_URL, value):
            raise ValueError("tool url must be an http:// or https:// URL")
        return value


class ToolSpec(Model):
    """A function the LLM may call, answered by an HTTP endpoint."""

    name: str = Field(max_length=64, pattern=FUNCTION_NAME)
    """Function name the LLM calls: letters, digits and underscores, not starting with a digit,
    at most 64 characters; unique among the agent's tools."""
    description: str = Field(min_length=1, max_length=1024)
    """What the tool does and when to use it, for the LLM."""
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        json_schema_extra={
            "x-kubernetes-preserve-unknown-fields": True,
            # Declared so the rule below can read it; every other keyword is kept as written.
            "properties": {"type": {"type": "string"}},
            "required": ["type"],
            **_cel(
                "has(self.type) && self.type == 'object'",
                "tool parameters must be a JSON Schema object (type: object)",
            ),
        },
    )
    """JSON Schema of the arguments: an object schema (type: object) with its properties."""
    http: ToolHTTP
    """The endpoint that answers the call."""
    waiting_line: str | None = Field(default=None, min_length=1, max_length=300)
    """What the agent says when the call takes longer than waitingAfterSeconds."""
    waiting_after_seconds: float = Field(default=1.0, ge=0, le=MAX_TIMEOUT_SECONDS)
    """How long a call runs before the agent says waitingLine."""
    failure_line: str = Field(
        default="Sorry, I could not get that information right now.", min_length=1, max_length=300
    )
    """What the agent says when the call fails (timeout, error status, oversize response,
    unreachable endpoint); the conversation goes on."""
    max_result_chars: int = Field(default=2000, ge=100, le=20000)
    """Longest result handed to the LLM; a longer one is truncated."""

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError("tool parameters must be a JSON Schema object (type: object)")
        return value


UNIQUE_TOOLS = (
    "!has(self.tools) || self.tools.all(a, self.tools.exists_one(b, a.name == b.name))",
    "tool names must be unique",
)


def check_unique_names(tools: Sequence[ToolSpec]) -> None:
    names = [t.name for t in tools]
    if len(names) != len(set(names)):
        raise ValueError("tool names must be unique")


def header_variables(tools: Sequence[ToolSpec]) -> list[str]:
    """Environment variables the tools' headers read, in order, each once."""
    return list(dict.fromkeys(h.from_env for t in tools for h in t.http.headers))


def missing_header_variables(
    tools: Sequence[ToolSpec], env: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(tool, variable) for each header variable absent from `env`."""
    return [(t.name, h.from_env) for t in tools for h in t.http.headers if not env.get(h.from_env)]
