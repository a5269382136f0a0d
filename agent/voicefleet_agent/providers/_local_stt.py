"""Speech recognized in-process: PocketSphinx (offline) and a scripted recognizer (simulated)."""

from __future__ import annotations

import asyncio
import functools
from abc import abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Never

from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    LanguageCode,
    NotGivenOr,
    stt,
    utils,
    vad,
)

from voicefleet_agent.providers._speech import (
    SAMPLE_RATE,
    EnergyGateRecognizeStream,
    SpeechSegmenter,
    StreamOptions,
    VADRecognizeStream,
    stt_failure,
)
from voicefleet_models.agent_config import Simulation


class LocalSTT(stt.STT[Never]):
    """A streaming STT that finds speech segments itself and recognizes each with a
    `SpeechSegmenter`."""

    def __init__(
        self, *, provider: str, model: str, language: str, simulation: Simulation | None
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self._provider = provider
        self._model = model
        self._language = language
        self._simulation = simulation

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return self._provider

    @abstractmethod
    def segmenter(self) -> SpeechSegmenter: ...

    def _stream_options(self, conn_options: APIConnectOptions) -> StreamOptions:
        return StreamOptions(
            owner=self,
            segmenter=self.segmenter(),
            language=self._language,
            simulation=self._simulation,
            failing=self.failing,
            conn_options=conn_options,
        )

    def failing(self) -> bool:
        return self._simulation is not None and self._simulation.fail

    @abstractmethod
    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream: ...

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        if self.failing():
            raise stt_failure(self)
        frames = buffer if isinstance(buffer, list) else [buffer]
        segmenter = self.segmenter()
        try:
            await segmenter.begin(_to_stt_rate(frames))
            text = await segmenter.finish()
        finally:
            await segmenter.close()
        language = LanguageCode(self._language)
        alternatives = [stt.SpeechData(language=language, text=text)] if text else []
        return stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=alternatives)


def _to_stt_rate(frames: list[rtc.AudioFrame]) -> list[rtc.AudioFrame]:
    if not frames or frames[0].sample_rate == SAMPLE_RATE:
        return frames
    resampler = rtc.AudioResampler(frames[0].sample_rate, SAMPLE_RATE)
    out = [r for f in frames for r in resampler.push(f)]
    return out + resampler.flush()


@functools.cache
def pocketsphinx_decoder_args() -> dict[str, Any]:
    return {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}


class PocketSphinxSTT(LocalSTT):
    """PocketSphinx with the en-US model its wheel ships; one decoder per stream, fed the
    segments the Silero VAD finds (the decoder needs utterance boundaries)."""

    def __init__(self, *, model: str, language: str, vad_model: vad.VAD) -> None:
        super().__init__(provider="offline", model=model, language=language, simulation=None)
        self._vad_model = vad_model
        self._decoders: list[Any] = [new_decoder()]  # loaded at start-up, reused per stream

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return VADRecognizeStream(vad_model=self._vad_model, **self._stream_options(conn_options))

    def segmenter(self) -> SpeechSegmenter:
        decoder = self._decoders.pop() if self._decoders else new_decoder()
        return PocketSphinxSegmenter(decoder, release=self._decoders.append)


def new_decoder() -> Any:
    from pocketsphinx import Decoder  # type: ignore[import-untyped]

    return Decoder(**pocketsphinx_decoder_args())


class PocketSphinxSegmenter(SpeechSegmenter):
    """Decodes on one worker thread, in order, so the event loop never waits on the search."""

    def __init__(self, decoder: Any, release: Callable[[Any], None]) -> None:
        self._decoder = decoder
        self._release = release
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pocketsphinx")
        self._started = False

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _hyp(self) -> str:
        hyp = self._decoder.hyp()
        return str(hyp.hypstr) if hyp is not None else ""

    def _process(self, pcm: bytes) -> None:
        if pcm:
            self._decoder.process_raw(pcm, False, False)

    async def begin(self, frames: list[rtc.AudioFrame]) -> None:
        if self._started:
            await self._call(self._decoder.end_utt)
        await self._call(self._decoder.start_utt)
        self._started = True
        await self.feed(frames)

    async def feed(self, frames: list[rtc.AudioFrame]) -> None:
        await self._call(self._process, b"".join(bytes(f.data) for f in frames))

    async def interim(self) -> str:
        return str(await self._call(self._hyp))

    async def finish(self) -> str:
        if not self._started:
            return ""
        self._started = False
        await self._call(self._decoder.end_utt)
        return str(await self._call(self._hyp))

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self._call(self._decoder.end_utt)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown, True)
        self._release(self._decoder)


class ScriptedSTT(LocalSTT):
    """Answers each speech segment with "simulated utterance N", after the configured delay.

    It stands in for a remote streaming STT, so its own cost to the worker is kept as small as
    a remote one's: an energy gate ends its segments after `min_silence` seconds, not a second
    Silero."""

    def __init__(
        self, *, model: str, language: str, min_silence: float, simulation: Simulation
    ) -> None:
        super().__init__(
            provider="simulated", model=model, language=language, simulation=simulation
        )
        self._min_silence = min_silence
        self._utterances = 0

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        options = self._stream_options(conn_options)
        return EnergyGateRecognizeStream(min_silence=self._min_silence, **options)

    def segmenter(self) -> SpeechSegmenter:
        return ScriptedSegmenter(self)

    def failing(self) -> bool:
        after = self._simulation.fail_after_segments if self._simulation else None
        return super().failing() or (after is not None and self._utterances >= after)

    def next_utterance(self) -> str:
        self._utterances += 1
        return f"simulated utterance {self._utterances}"


class ScriptedSegmenter(SpeechSegmenter):
    def __init__(self, owner: ScriptedSTT) -> None:
        self._owner = owner

    async def begin(self, frames: list[rtc.AudioFrame]) -> None:
        pass

    async def feed(self, frames: list[rtc.AudioFrame]) -> None:
        pass

    async def interim(self) -> str:
        return "simulated"

    async def finish(self) -> str:
        return self._owner.next_utterance()
