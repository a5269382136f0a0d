"""Speech synthesized in-process: the offline (espeak-ng) and simulated (tone) TTS."""

from __future__ import annotations

import asyncio
import math
from abc import abstractmethod
from typing import Never

import numpy as np
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectionError, APIConnectOptions, tts
from livekit.agents import utils as lk_utils

from voicefleet_agent import espeak
from voicefleet_models.agent_config import Simulation

ESPEAK_SAMPLE_RATE = 22050
TONE_SAMPLE_RATE = 24000
TONE_SECONDS_PER_CHARACTER = 0.06
TONE_HZ = 440.0
TONE_AMPLITUDE = 0.3
# Small frames so the first audio leaves as soon as it exists.
FRAME_MS = 40


class LocalTTS(tts.TTS[Never]):
    """A non-streaming TTS; the session's sentence tokenizer streams it sentence by sentence."""

    def __init__(self, *, provider: str, model: str, sample_rate: int) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=sample_rate,
            num_channels=1,
        )
        self._provider = provider
        self._model = model

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return self._provider

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _LocalChunkedStream(self, text, conn_options)

    @abstractmethod
    async def render(self, text: str, emitter: tts.AudioEmitter) -> None:
        """Push the PCM of `text` into the initialized emitter."""


class _LocalChunkedStream(tts.ChunkedStream):
    def __init__(self, owner: LocalTTS, text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=owner, input_text=text, conn_options=conn_options)
        self._owner = owner

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=lk_utils.shortuuid("tts_"),
            sample_rate=self._owner.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            frame_size_ms=FRAME_MS,
        )
        await self._owner.render(self.input_text, output_emitter)
        output_emitter.flush()


class EspeakTTS(LocalTTS):
    """espeak-ng voices; `model` is the espeak voice name (defaults to en-us)."""

    def __init__(self, *, voice: str) -> None:
        super().__init__(provider="offline", model=voice, sample_rate=ESPEAK_SAMPLE_RATE)
        espeak.espeak_path()  # fail at start-up, not on the first reply

    async def render(self, text: str, emitter: tts.AudioEmitter) -> None:
        async for fmt, pcm in espeak.synthesize(text, voice=self.model):
            if fmt.sample_rate != self.sample_rate or fmt.num_channels != 1:
                raise APIConnectionError(f"unexpected espeak-ng output format {fmt}")
            emitter.push(pcm)


class ToneTTS(LocalTTS):
    """A tone as long as the text, after `simulation.delay_seconds`: audible, deterministic."""

    def __init__(self, *, model: str, simulation: Simulation) -> None:
        super().__init__(provider="simulated", model=model, sample_rate=TONE_SAMPLE_RATE)
        self._simulation = simulation

    async def render(self, text: str, emitter: tts.AudioEmitter) -> None:
        if self._simulation.fail:
            raise APIConnectionError("simulated TTS is configured to fail (simulation.fail)")
        await asyncio.sleep(self._simulation.delay_seconds)
        emitter.push(tone(len(text) * TONE_SECONDS_PER_CHARACTER, self.sample_rate))


def tone(seconds: float, sample_rate: int) -> bytes:
    """16-bit PCM of a sine tone with short fades, so it neither clicks nor sounds like noise."""
    n = max(1, math.ceil(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    wave = np.sin(2 * np.pi * TONE_HZ * t) * TONE_AMPLITUDE
    fade = min(n // 2, sample_rate // 100)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return (wave * np.iinfo(np.int16).max).astype("<i2").tobytes()
