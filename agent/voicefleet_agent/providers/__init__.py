"""Providers that need no API key: offline (local models) and simulated (scripted, timed)."""

from voicefleet_agent.providers._local_llm import LocalLLM
from voicefleet_agent.providers._local_stt import LocalSTT, PocketSphinxSTT, ScriptedSTT
from voicefleet_agent.providers._local_tts import EspeakTTS, LocalTTS, ToneTTS
from voicefleet_agent.providers.replies import OFFLINE_LABEL, offline_reply, simulated_reply

__all__ = [
    "OFFLINE_LABEL",
    "EspeakTTS",
    "LocalLLM",
    "LocalSTT",
    "LocalTTS",
    "PocketSphinxSTT",
    "ScriptedSTT",
    "ToneTTS",
    "offline_reply",
    "simulated_reply",
]
