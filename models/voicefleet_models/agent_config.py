"""The agent worker's configuration: the part of a VoiceAgent that one worker process needs.

These models are the single source of truth for the pipeline schema. The operator embeds them
in the VoiceAgent CRD (voicefleet_models.voice_agent), renders an `AgentConfig` into each region's
ConfigMap, and the worker parses that same JSON back with `AgentConfig.model_validate_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from voicefleet_models.base import Model
from voicefleet_models.tool_spec import (
    FUNCTION_NAME,
    MAX_TOOLS,
    ToolSpec,
    check_unique_names,
)

Seconds = Annotated[float, Field(ge=0, le=60)]
Ratio = Annotated[float, Field(gt=0, le=1)]

# Identifier the cloud plugins read their key from, by provider name.
PROVIDER_KEYS: dict[str, str] = {"deepgram": "DEEPGRAM_API_KEY", "google": "GOOGLE_API_KEY"}
OPENAI_KEY = "OPENAI_API_KEY"

# Latency histogram bounds in seconds; every SLO threshold must be one of them exactly.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

DEFAULT_STT_MODEL = "nova-3"
# Google's current generally available Flash model. Google retires models within months, so
# this default moves with voicefleet releases; pin `model` in the VoiceAgent to move deliberately.
DEFAULT_LLM_MODEL = "gemini-3.8-flash"
DEFAULT_TTS_MODEL = "aura-2-andromeda-en"


class Simulation(Model):
    """Behaviour of a `simulated` provider, for tests and benchmarks."""

    delay_seconds: Seconds = 0.2
    """Time to the first result: STT final after speech ends, LLM first token, TTS first audio."""
    fail: bool = False
    """Fail every request, to exercise the fallback chain."""
    fail_after_segments: int | None = Field(default=None, ge=0, le=10000)
    """STT only: recognize this many speech segments, then fail every request, as a provider
    that goes down in the middle of a call."""


class VADSpec(Model):
    """Voice activity detection."""

    provider: Literal["silero"] = "silero"
    """Voice activity detector. Silero runs locally from the model shipped in its plugin."""
    activation_threshold: Ratio = 0.5
    """Speech probability above which audio counts as speech."""
    min_silence_seconds: Seconds = 0.55
    """Silence that ends a speech segment."""


class STTSpec(Model):
    """One speech-to-text provider in a fallback chain."""

    provider: Literal["deepgram", "offline", "simulated"]
    """deepgram (cloud, needs DEEPGRAM_API_KEY), offline (PocketSphinx, no key) or simulated."""
    model: str = DEFAULT_STT_MODEL
    """Provider model name; deepgram defaults to nova-3."""
    language: str = Field(default="en-US", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    """BCP-47 language tag."""
    simulation: Simulation = Field(default_factory=Simulation)
    """Latency and failure of the simulated provider; ignored by others."""


class ScriptRule(Model):
    """One rule of the scripted LLM: what it does when the caller's last turn matches."""

    words: list[str] = Field(min_length=1, max_length=20)
    """Words or phrases, matched case-insensitively as whole words in the caller's last turn;
    any one of them selects the rule."""
    tool: str | None = Field(default=None, pattern=FUNCTION_NAME)
    """Tool to call with `arguments` before replying; none replies at once."""
    arguments: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Arguments of the tool call."""
    reply: str = Field(min_length=1, max_length=1000)
    """The reply; `{result}` in it is replaced by the tool's result."""


class ScriptSpec(Model):
    """The rule table of the scripted LLM: the first rule that matches wins."""

    rules: list[ScriptRule] = Field(default_factory=list, max_length=50)
    """Rules, tried in order."""
    fallback_reply: str = Field(
        default="I am a scripted assistant. Could you say that another way?",
        min_length=1,
        max_length=1000,
    )
    """The reply when no rule matches."""


class LLMSpec(Model):
    """One language model provider in a fallback chain."""

    provider: Literal["google", "openai", "offline", "simulated", "scripted"]
    """google (Gemini, needs GOOGLE_API_KEY), openai (any OpenAI-compatible server),
    offline (deterministic local stand-in, no key), simulated, or scripted (calls tools and
    replies as its `script` says; for tests and keyless demos)."""
    model: str = DEFAULT_LLM_MODEL
    """Model name, passed to the provider as written; google defaults to gemini-3.8-flash. Set it
    explicitly to pin a model: the default follows Google's current Flash model."""
    temperature: float = Field(default=0.6, ge=0, le=2)
    """Sampling temperature, 0 to 2."""
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    """Base URL of an OpenAI-compatible server (vLLM, Ollama); openai provider only."""
    simulation: Simulation = Field(default_factory=Simulation)
    """Latency and failure of the simulated provider; ignored by others."""
    script: ScriptSpec = Field(default_factory=ScriptSpec)
    """Rules of the scripted provider; ignored by others."""


class TTSSpec(Model):
    """One text-to-speech provider in a fallback chain."""

    provider: Literal["deepgram", "offline", "simulated"]
    """deepgram (cloud, needs DEEPGRAM_API_KEY), offline (espeak-ng, no key) or simulated."""
    model: str = DEFAULT_TTS_MODEL
    """Voice model; deepgram defaults to aura-2-andromeda-en."""
    simulation: Simulation = Field(default_factory=Simulation)
    """Latency and failure of the simulated provider; ignored by others."""


ENDPOINTING_BOUNDS: JsonDict = {
    # has(): the API server also checks the `turn: {}` default before filling in its fields.
    "rule": "!has(self.minEndpointingDelaySeconds) || !has(self.maxEndpointingDelaySeconds) || "
    "self.minEndpointingDelaySeconds <= self.maxEndpointingDelaySeconds",
    "message": "minEndpointingDelaySeconds must be less than or equal to "
    "maxEndpointingDelaySeconds",
}


class TurnSpec(Model):
    """When a user's turn ends and how the agent may be interrupted."""

    model_config = ConfigDict(
        **Model.model_config,
        json_schema_extra={"x-kubernetes-validations": [ENDPOINTING_BOUNDS]},
    )

    min_endpointing_delay_seconds: Seconds = 0.5
    """Silence after speech before the turn may end."""
    max_endpointing_delay_seconds: Seconds = 3.0
    """Longest wait for the user to continue before the turn ends."""
    allow_interruptions: bool = True
    """Let the user talk over the agent and stop its speech."""
    preemptive_generation: bool = True
    """Start the LLM on the interim transcript before the turn is confirmed."""

    @model_validator(mode="after")
    def _bounds(self) -> TurnSpec:
        if self.min_endpointing_delay_seconds > self.max_endpointing_delay_seconds:
            raise ValueError(ENDPOINTING_BOUNDS["message"])
        return self


class PipelineSpec(Model):
    """The voice pipeline: VAD → STT → LLM → TTS. Each list is a fallback chain, first first."""

    vad: VADSpec = Field(default_factory=VADSpec)
    """Voice activity detection."""
    stt: list[STTSpec] = Field(min_length=1, max_length=5)
    """Speech-to-text providers, tried in order."""
    llm: list[LLMSpec] = Field(min_length=1, max_length=5)
    """Language models, tried in order."""
    tts: list[TTSSpec] = Field(min_length=1, max_length=5)
    """Text-to-speech providers, tried in order."""
    turn: TurnSpec = Field(default_factory=TurnSpec)
    """Turn detection and interruptions."""

    def cloud_providers(self) -> set[str]:
        """Names of the providers in use that need an API key."""
        names: set[str] = {p.provider for stage in (self.stt, self.llm, self.tts) for p in stage}
        return names & PROVIDER_KEYS.keys()


class ObservabilitySpec(Model):
    """Metrics and traces of the agent workers."""

    metrics_port: int = Field(default=9100, ge=1, le=65535)
    """Port of the worker's /metrics, /healthz and /readyz endpoints."""
    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://")
    """OTLP endpoint for traces; none disables trace export."""
    trace_sample_ratio: Ratio = 1.0
    """Share of sessions traced, in (0, 1]."""
    trace_tool_content: bool = False
    """Record tool call arguments and results on the tool spans. Off by default: they can
    carry what callers said; the spans then keep only the tool, status and timing."""


class CallSpec(Model):
    """Limits that end a call: the agent says `goodbye`, then the room is closed."""

    max_duration_seconds: int = Field(default=1800, ge=10, le=86400)
    """Longest a call may last."""
    silence_timeout_seconds: float = Field(default=60.0, ge=5, le=3600)
    """How long both sides may be silent before the call ends."""
    goodbye: str = Field(
        default="I have to end our call now. Thank you for calling, goodbye.",
        min_length=1,
        max_length=500,
    )
    """What the agent says before it ends a call for one of these limits."""


class AgentCodeSpec(Model):
    """Your own agent code, in an image built FROM the agent image."""

    entrypoint: str | None = Field(
        default=None, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
    )
    """`package.module:function` returning the livekit-agents Agent of each call, given an
    AgentSetup (the instructions and the declared tools); unset, the agent is the
    instructions and tools alone. The worker keeps the rest: providers, metrics, traces,
    limits, drain and load reporting."""


class AgentConfig(Model):
    """Everything one worker process needs, rendered by the operator into a ConfigMap."""

    agent_name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """LiveKit explicit-dispatch name the worker registers."""
    instructions: str
    """System instructions for the LLM."""
    pipeline: PipelineSpec
    """The voice pipeline."""
    region: str = "local"
    """Region label on metrics and traces."""
    sessions_per_worker: int = Field(default=8, ge=1, le=256)
    """Sessions one worker accepts before it reports itself full."""
    drain_timeout_seconds: int = Field(default=1800, ge=0, le=86400)
    """On SIGTERM, how long active sessions may continue before the worker exits."""
    remote_session: bool = False
    """Let room participants drive and observe the session (the framework's remote session)."""
    call: CallSpec = Field(default_factory=CallSpec)
    """Call length and silence limits."""
    tools: list[ToolSpec] = Field(default_factory=list, max_length=MAX_TOOLS)
    """HTTP tools the LLM may call."""
    agent: AgentCodeSpec = Field(default_factory=AgentCodeSpec)
    """Custom agent code."""
    observability: ObservabilitySpec = Field(default_factory=ObservabilitySpec)
    """Metrics and traces."""

    @model_validator(mode="after")
    def _unique_tools(self) -> AgentConfig:
        check_unique_names(self.tools)
        return self


@dataclass(frozen=True)
class MissingKey:
    variable: str
    provider: str

    def message(self) -> str:
        return (
            f"{self.variable} is not set: provider {self.provider} needs it "
            "(set it from a Secret with env valueFrom.secretKeyRef)"
        )


def missing_keys(pipeline: PipelineSpec, env: Mapping[str, str]) -> list[MissingKey]:
    """Cloud providers in use whose key is absent from `env`, in pipeline order."""
    missing: list[MissingKey] = []
    specs: list[STTSpec | LLMSpec | TTSSpec] = [*pipeline.stt, *pipeline.llm, *pipeline.tts]
    for spec in specs:
        variable = PROVIDER_KEYS.get(spec.provider)
        if isinstance(spec, LLMSpec) and spec.provider == "openai" and spec.base_url is None:
            variable = OPENAI_KEY  # api.openai.com itself, not a self-hosted server
        if variable and not env.get(variable):
            key = MissingKey(variable, spec.provider)
            if key not in missing:
                missing.append(key)
    return missing
