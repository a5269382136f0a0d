"""Pipeline factory: an `AgentConfig` in, the session's VAD/STT/LLM/TTS and turn options out.

Pure apart from constructing plugin objects (which open no connection until used), so the
whole mapping from config to framework objects is unit-tested without servers or keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, TypeVar

from livekit.agents import llm, stt, tts, vad
from livekit.agents.voice.turn import TurnHandlingOptions

from voicefleet_agent.providers import (
    EspeakTTS,
    LocalLLM,
    PocketSphinxSTT,
    ScriptedSTT,
    ToneTTS,
    offline_reply,
    simulated_reply,
)
from voicefleet_agent.providers._local_llm import user_turns
from voicefleet_agent.providers.scripted import scripted_reply
from voicefleet_models.agent_config import (
    DEFAULT_LLM_MODEL,
    DEFAULT_STT_MODEL,
    DEFAULT_TTS_MODEL,
    OPENAI_KEY,
    AgentConfig,
    LLMSpec,
    STTSpec,
    TTSSpec,
    TurnSpec,
    VADSpec,
    missing_keys,
)

Stage = Literal["stt", "llm", "tts"]
STAGES: tuple[Stage, ...] = ("stt", "llm", "tts")
# OpenAI-compatible servers (vLLM, Ollama) usually ignore the key, but the client wants one.
UNUSED_KEY = "unused"
SIMULATED_REPLY_WORDS = 8
# A voice turn cannot wait for retries: the next provider in the chain is the retry.
RETRIES_PER_PROVIDER = 0
# Seconds before a failed STT is probed again; LLM and TTS probe on their next request.
STT_RECOVERY_INTERVAL = 5.0
# Gemini 3 model names (gemini-3-flash-preview, gemini-3.8-flash, or a Vertex AI resource path
# ending in one); every one of them accepts thinking level LOW, the Flash models no lower.
GEMINI_3 = r"(^|/)gemini-3(\.\d+)?-"
GEMINI_THINKING_LEVEL = "low"


class ConfigError(Exception):
    """The configuration cannot run here; the message is one line saying how to fix it."""


@dataclass(frozen=True)
class ProviderLabel:
    """How metrics and traces name one provider of a chain: config names, never plugin ones."""

    stage: Stage
    provider: str
    model: str


@dataclass
class Pipeline:
    """What an `AgentSession` is built from, plus the labelled members of each chain."""

    vad: vad.VAD
    stt: stt.STT[Any]
    llm: llm.LLM[Any]
    tts: tts.TTS[Any]
    turn_handling: TurnHandlingOptions
    members: dict[Stage, list[tuple[object, ProviderLabel]]] = field(default_factory=dict)

    def label_of(self, stage: Stage, plugin_provider: str, plugin_model: str) -> ProviderLabel:
        """The config label of the member a framework metadata pair (provider, model) names."""
        for instance, label in self.members.get(stage, []):
            if getattr(instance, "provider", None) == plugin_provider and (
                getattr(instance, "model", None) == plugin_model
            ):
                return label
        return ProviderLabel(stage, plugin_provider.lower() or "unknown", plugin_model or "")


_CLOUD_DEFAULTS: dict[Stage, str] = {
    "stt": DEFAULT_STT_MODEL,
    "llm": DEFAULT_LLM_MODEL,
    "tts": DEFAULT_TTS_MODEL,
}
KEYLESS_MODELS: dict[str, dict[Stage, str]] = {
    "offline": {"stt": "pocketsphinx-en-us", "llm": "offline-assistant", "tts": "en-us"},
    "simulated": {"stt": "simulated-stt", "llm": "simulated-llm", "tts": "simulated-tts"},
    "scripted": {"llm": "scripted-llm"},
}


def resolved_model(spec: STTSpec | LLMSpec | TTSSpec) -> str:
    """The model a provider runs. The config's defaults name cloud models, so a keyless
    provider left at that default runs its own."""
    stage = stage_of(spec)
    if spec.provider in KEYLESS_MODELS and spec.model == _CLOUD_DEFAULTS[stage]:
        return KEYLESS_MODELS[spec.provider][stage]
    return spec.model


def stage_of(spec: STTSpec | LLMSpec | TTSSpec) -> Stage:
    return "stt" if isinstance(spec, STTSpec) else "llm" if isinstance(spec, LLMSpec) else "tts"


class VADOptions(TypedDict):
    activation_threshold: float
    min_silence_duration: float


def vad_options(spec: VADSpec) -> VADOptions:
    """Keyword arguments of `silero.VAD.load` for the configured detector."""
    return VADOptions(
        activation_threshold=spec.activation_threshold,
        min_silence_duration=spec.min_silence_seconds,
    )


def load_vad(spec: VADSpec) -> vad.VAD:
    """Load Silero (blocking, ~0.3 s): done once per process in the worker's setup."""
    from livekit.plugins import silero

    return silero.VAD.load(**vad_options(spec))


def turn_handling(turn: TurnSpec) -> TurnHandlingOptions:
    """Turn detection from the VAD, fixed endpointing delays, VAD-based interruptions.

    Interruptions are VAD-based because the adaptive detector is a LiveKit Cloud model."""
    return TurnHandlingOptions(
        turn_detection="vad",
        endpointing={
            "mode": "fixed",
            "min_delay": turn.min_endpointing_delay_seconds,
            "max_delay": max(
                turn.max_endpointing_delay_seconds, turn.min_endpointing_delay_seconds
            ),
        },
        interruption={"enabled": turn.allow_interruptions, "mode": "vad"},
        preemptive_generation={"enabled": turn.preemptive_generation},
    )


def build_stt(
    spec: STTSpec, vad_model: vad.VAD, vad_spec: VADSpec, env: Mapping[str, str]
) -> stt.STT[Any]:
    """PocketSphinx decodes the segments of the session's Silero VAD; the simulated STT ends
    its segments after the same silence as the VAD, so both agree on where an utterance ends."""
    model = resolved_model(spec)
    if spec.provider == "deepgram":
        from livekit.plugins import deepgram

        return deepgram.STT(model=model, language=spec.language, api_key=env["DEEPGRAM_API_KEY"])
    if spec.provider == "offline":
        return PocketSphinxSTT(model=model, language=spec.language, vad_model=vad_model)
    return ScriptedSTT(
        model=model,
        language=spec.language,
        min_silence=vad_spec.min_silence_seconds,
        simulation=spec.simulation,
    )


def gemini_thinking(model: str) -> dict[str, Any]:
    """Keyword arguments of google.LLM that keep a Gemini 3 model's thinking at the lowest
    level every Gemini 3 model accepts: a voice turn waits for the first token, and thinking
    comes before it. Other models keep their own default, since the levels they accept differ."""
    if re.search(GEMINI_3, model):
        return {"thinking_config": {"thinking_level": GEMINI_THINKING_LEVEL}}
    return {}


def build_llm(spec: LLMSpec, env: Mapping[str, str]) -> llm.LLM[Any]:
    model = resolved_model(spec)
    if spec.provider == "google":
        from livekit.plugins import google

        return google.LLM(
            model=model,
            api_key=env["GOOGLE_API_KEY"],
            temperature=spec.temperature,
            **gemini_thinking(model),
        )
    if spec.provider == "openai":
        from livekit.plugins import openai

        if spec.base_url is None:
            return openai.LLM(model=model, api_key=env[OPENAI_KEY], temperature=spec.temperature)
        return openai.LLM(
            model=model,
            base_url=spec.base_url,
            api_key=env.get(OPENAI_KEY) or UNUSED_KEY,
            temperature=spec.temperature,
        )
    if spec.provider == "scripted":
        script = spec.script
        return LocalLLM(
            provider="scripted",
            model=model,
            reply=lambda ctx: scripted_reply(script, ctx),
            simulation=None,
        )
    if spec.provider == "offline":
        return LocalLLM(
            provider="offline",
            model=model,
            reply=lambda ctx: offline_reply((user_turns(ctx) or [""])[-1]),
            simulation=None,
        )
    return LocalLLM(
        provider="simulated",
        model=model,
        reply=lambda ctx: simulated_reply(len(user_turns(ctx)), SIMULATED_REPLY_WORDS),
        simulation=spec.simulation,
    )


def build_tts(spec: TTSSpec, env: Mapping[str, str]) -> tts.TTS[Any]:
    model = resolved_model(spec)
    if spec.provider == "deepgram":
        from livekit.plugins import deepgram

        return deepgram.TTS(model=model, api_key=env["DEEPGRAM_API_KEY"])
    if spec.provider == "offline":
        return EspeakTTS(voice=model)
    return ToneTTS(model=model, simulation=spec.simulation)


Member = TypeVar("Member")


def _labelled(
    stage: Stage, specs: Sequence[STTSpec | LLMSpec | TTSSpec], built: Sequence[Member]
) -> list[tuple[object, ProviderLabel]]:
    return [
        (instance, ProviderLabel(stage, spec.provider, resolved_model(spec)))
        for spec, instance in zip(specs, built, strict=True)
    ]


def build_pipeline(config: AgentConfig, vad_model: vad.VAD, env: Mapping[str, str]) -> Pipeline:
    """Every stage of `config.pipeline`; a list of several providers becomes a fallback chain.

    Raises ConfigError naming the first missing key."""
    spec = config.pipeline
    if missing := missing_keys(spec, env):
        raise ConfigError(missing[0].message())
    stts = [build_stt(s, vad_model, spec.vad, env) for s in spec.stt]
    llms = [build_llm(s, env) for s in spec.llm]
    ttss = [build_tts(s, env) for s in spec.tts]
    return Pipeline(
        vad=vad_model,
        stt=stts[0]
        if len(stts) == 1
        else stt.FallbackAdapter(
            stts,
            vad=vad_model,
            max_retry_per_stt=RETRIES_PER_PROVIDER,
            retry_interval=STT_RECOVERY_INTERVAL,
        ),
        llm=llms[0]
        if len(llms) == 1
        else llm.FallbackAdapter(llms, max_retry_per_llm=RETRIES_PER_PROVIDER),
        tts=ttss[0]
        if len(ttss) == 1
        else tts.FallbackAdapter(ttss, max_retry_per_tts=RETRIES_PER_PROVIDER),
        turn_handling=turn_handling(spec.turn),
        members={
            "stt": _labelled("stt", spec.stt, stts),
            "llm": _labelled("llm", spec.llm, llms),
            "tts": _labelled("tts", spec.tts, ttss),
        },
    )
