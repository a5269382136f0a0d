"""The pipeline factory maps a config to framework objects: pure, no servers, no keys needed."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import llm, stt, tts
from livekit.agents.utils import is_given
from livekit.plugins import deepgram, google, openai

from voicefleet_agent.pipeline import (
    ConfigError,
    build_pipeline,
    load_vad,
    turn_handling,
    vad_options,
)
from voicefleet_agent.providers import EspeakTTS, LocalLLM, PocketSphinxSTT, ScriptedSTT, ToneTTS
from voicefleet_models.agent_config import AgentConfig, MissingKey, PipelineSpec, missing_keys

KEYS = {"DEEPGRAM_API_KEY": "dg-test-key-123", "GOOGLE_API_KEY": "google-test-key-123"}


@pytest.fixture(scope="module")
def vad() -> Any:
    return load_vad(AgentConfig.model_validate(config()).pipeline.vad)


def config(**pipeline: Any) -> dict[str, Any]:
    return {
        "agentName": "support",
        "instructions": "Help.",
        "pipeline": {
            "stt": [{"provider": "deepgram"}],
            "llm": [{"provider": "google"}],
            "tts": [{"provider": "deepgram"}],
            **pipeline,
        },
    }


def test_production_defaults_are_deepgram_gemini_deepgram(vad: Any) -> None:
    pipeline = build_pipeline(AgentConfig.model_validate(config()), vad, KEYS)
    assert isinstance(pipeline.stt, deepgram.STT)
    assert pipeline.stt.model == "nova-3"
    assert isinstance(pipeline.llm, google.LLM)
    assert pipeline.llm.model == "gemini-3.8-flash"
    # A voice turn waits for the first token: thinking stays at the lowest level.
    assert pipeline.llm._opts.thinking_config == {"thinking_level": "low"}
    assert isinstance(pipeline.tts, deepgram.TTS)
    assert pipeline.tts.model.startswith("aura-2")
    assert pipeline.vad is vad


def test_thinking_is_set_only_for_gemini_3_models(vad: Any) -> None:
    def google_llm(model: str) -> Any:
        cfg = config(llm=[{"provider": "google", "model": model}])
        return build_pipeline(AgentConfig.model_validate(cfg), vad, KEYS).llm

    pinned = google_llm("gemini-3-flash-preview")
    assert pinned._opts.thinking_config == {"thinking_level": "low"}
    # Models whose accepted levels differ keep their own default.
    for model in ("gemini-2.5-flash", "gemini-4-argon"):
        assert not is_given(google_llm(model)._opts.thinking_config)


def test_keyless_providers_are_local_plugin_classes(vad: Any) -> None:
    offline = [{"provider": "offline"}]
    simulated = [{"provider": "simulated", "simulation": {"delaySeconds": 0.3}}]
    pipeline = build_pipeline(
        AgentConfig.model_validate(config(stt=offline, llm=offline, tts=offline)), vad, {}
    )
    assert isinstance(pipeline.stt, PocketSphinxSTT)
    assert pipeline.stt.capabilities.streaming
    assert isinstance(pipeline.llm, LocalLLM)
    assert isinstance(pipeline.tts, EspeakTTS)
    assert (pipeline.stt.model, pipeline.llm.model, pipeline.tts.model) == (
        "pocketsphinx-en-us",
        "offline-assistant",
        "en-us",
    )
    pipeline = build_pipeline(
        AgentConfig.model_validate(config(stt=simulated, llm=simulated, tts=simulated)), vad, {}
    )
    assert isinstance(pipeline.stt, ScriptedSTT)
    assert isinstance(pipeline.tts, ToneTTS)
    assert pipeline.llm.provider == "simulated"


def test_openai_provider_reaches_a_compatible_server_without_a_key(vad: Any) -> None:
    llms = [{"provider": "openai", "model": "llama3", "baseUrl": "http://127.0.0.1:11434/v1"}]
    pipeline = build_pipeline(AgentConfig.model_validate(config(llm=llms)), vad, KEYS)
    assert isinstance(pipeline.llm, openai.LLM)
    assert pipeline.llm.model == "llama3"
    assert pipeline.llm.provider == "127.0.0.1:11434"


def test_a_provider_list_becomes_a_fallback_chain_in_order(vad: Any) -> None:
    cfg = config(
        stt=[{"provider": "deepgram"}, {"provider": "offline"}],
        llm=[{"provider": "google"}, {"provider": "simulated"}, {"provider": "offline"}],
        tts=[{"provider": "deepgram"}, {"provider": "offline"}],
    )
    pipeline = build_pipeline(AgentConfig.model_validate(cfg), vad, KEYS)
    assert isinstance(pipeline.stt, stt.FallbackAdapter)
    assert isinstance(pipeline.llm, llm.FallbackAdapter)
    assert isinstance(pipeline.tts, tts.FallbackAdapter)
    assert [type(i) for i in pipeline.llm._llm_instances] == [google.LLM, LocalLLM, LocalLLM]
    assert [i.provider for i in pipeline.llm._llm_instances][1:] == ["simulated", "offline"]
    assert [type(i) for i in pipeline.stt._stt_instances] == [deepgram.STT, PocketSphinxSTT]
    assert [type(i) for i in pipeline.tts._tts_instances] == [deepgram.TTS, EspeakTTS]
    # Failing over is immediate: the next provider is the retry.
    assert pipeline.llm._max_retry_per_llm == 0
    labels = [(label.provider, label.model) for _, label in pipeline.members["llm"]]
    assert labels == [
        ("google", "gemini-3.8-flash"),
        ("simulated", "simulated-llm"),
        ("offline", "offline-assistant"),
    ]
    # Metrics name a member by config labels, whatever the plugin calls its provider.
    assert pipeline.label_of("stt", "Deepgram", "nova-3").provider == "deepgram"


def test_missing_key_is_one_line_naming_the_variable_and_the_secret(vad: Any) -> None:
    spec = PipelineSpec.model_validate(config()["pipeline"])
    assert missing_keys(spec, {}) == [
        MissingKey("DEEPGRAM_API_KEY", "deepgram"),
        MissingKey("GOOGLE_API_KEY", "google"),
    ]
    assert missing_keys(spec, KEYS) == []
    with pytest.raises(ConfigError) as error:
        build_pipeline(AgentConfig.model_validate(config()), vad, {"GOOGLE_API_KEY": "x"})
    assert str(error.value) == (
        "DEEPGRAM_API_KEY is not set: provider deepgram needs it "
        "(set it from a Secret with env valueFrom.secretKeyRef)"
    )
    api_openai = PipelineSpec.model_validate(
        config(llm=[{"provider": "openai", "model": "gpt-4o-mini"}])["pipeline"]
    )
    assert MissingKey("OPENAI_API_KEY", "openai") in missing_keys(api_openai, KEYS)


def test_turn_handling_comes_from_config() -> None:
    turn = AgentConfig.model_validate(
        config(
            turn={
                "minEndpointingDelaySeconds": 0.3,
                "maxEndpointingDelaySeconds": 2.0,
                "allowInterruptions": False,
                "preemptiveGeneration": False,
            }
        )
    ).pipeline.turn
    options = turn_handling(turn)
    assert options["turn_detection"] == "vad"
    assert options["endpointing"] == {"mode": "fixed", "min_delay": 0.3, "max_delay": 2.0}
    assert options["interruption"] == {"enabled": False, "mode": "vad"}
    assert options["preemptive_generation"] == {"enabled": False}
    defaults = turn_handling(AgentConfig.model_validate(config()).pipeline.turn)
    assert defaults["interruption"]["enabled"] is True
    assert defaults["preemptive_generation"]["enabled"] is True


def test_vad_options_come_from_config() -> None:
    spec = AgentConfig.model_validate(
        config(vad={"activationThreshold": 0.6, "minSilenceSeconds": 0.3})
    ).pipeline.vad
    assert vad_options(spec) == {"activation_threshold": 0.6, "min_silence_duration": 0.3}
