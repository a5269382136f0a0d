"""A streaming recognizer driven by the session's VAD, shared by the keyless STT providers.

Local recognizers have no endpointing of their own, so the stream runs the Silero VAD over its
input and turns its speech segments into start/interim/final/end events, the sequence a cloud
streaming STT such as Deepgram produces.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from typing import Any

from livekit import rtc
from livekit.agents import APIConnectOptions, LanguageCode, stt, utils, vad

from voicefleet_agent.config import Simulation

SAMPLE_RATE = 16000
INTERIM_INTERVAL_SECONDS = 0.5


class SpeechSegmenter:
    """Recognizer of one speech segment at a time; the stream calls these in order."""

    @abstractmethod
    async def begin(self, frames: list[rtc.AudioFrame]) -> None:
        """Speech started; `frames` hold it from its first (padded) sample."""

    @abstractmethod
    async def feed(self, frames: list[rtc.AudioFrame]) -> None:
        """More speech of the current segment."""

    @abstractmethod
    async def interim(self) -> str:
        """Best hypothesis so far, possibly empty."""

    @abstractmethod
    async def finish(self) -> str:
        """Speech ended: the final transcript, possibly empty."""

    async def close(self) -> None:
        """The stream ended; release what the segmenter holds."""


class VADRecognizeStream(stt.RecognizeStream):
    """Streams transcripts of the segments the VAD finds in the pushed audio."""

    def __init__(
        self,
        *,
        owner: stt.STT[Any],
        vad_model: vad.VAD,
        segmenter: SpeechSegmenter,
        language: str,
        simulation: Simulation | None,
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(stt=owner, conn_options=conn_options, sample_rate=SAMPLE_RATE)
        self._vad_model = vad_model
        self._segmenter = segmenter
        self._language = language
        self._simulation = simulation
        self._request_id = utils.shortuuid("stt_")

    async def _run(self) -> None:
        if self._simulation is not None and self._simulation.fail:
            raise stt_failure(self._stt)
        vad_stream = self._vad_model.stream()

        async def forward_audio() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        tasks = [
            asyncio.create_task(forward_audio(), name="stt_forward_audio"),
            asyncio.create_task(self._segments(vad_stream), name="stt_segments"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            await vad_stream.aclose()
            await self._segmenter.close()

    async def _segments(self, vad_stream: vad.VADStream) -> None:
        speaking = False
        fed_since_interim = 0.0
        async for ev in vad_stream:
            if ev.type == vad.VADEventType.START_OF_SPEECH:
                speaking, fed_since_interim = True, 0.0
                await self._segmenter.begin(ev.frames)
                self._send(stt.SpeechEventType.START_OF_SPEECH)
            elif ev.type == vad.VADEventType.INFERENCE_DONE and speaking:
                await self._segmenter.feed(ev.frames)
                fed_since_interim += utils.audio.calculate_audio_duration(ev.frames)
                if fed_since_interim >= INTERIM_INTERVAL_SECONDS:
                    fed_since_interim = 0.0
                    if text := await self._segmenter.interim():
                        self._send(stt.SpeechEventType.INTERIM_TRANSCRIPT, text)
            elif ev.type == vad.VADEventType.END_OF_SPEECH and speaking:
                speaking = False
                await self._end_segment(ev)

    async def _end_segment(self, ev: vad.VADEvent) -> None:
        speech_end = time.time() - ev.silence_duration - ev.inference_duration
        self._send(stt.SpeechEventType.END_OF_SPEECH, speech_end_time=speech_end)
        text = await self._segmenter.finish()
        if self._simulation is not None:
            # The simulated latency counts from the end of speech, as a cloud STT's would.
            await asyncio.sleep(max(0.0, speech_end + self._simulation.delay_seconds - time.time()))
        if text:
            self._send(stt.SpeechEventType.FINAL_TRANSCRIPT, text, speech_end_time=speech_end)
        usage = stt.RecognitionUsage(audio_duration=ev.speech_duration)
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=stt.SpeechEventType.RECOGNITION_USAGE,
                request_id=self._request_id,
                recognition_usage=usage,
            )
        )

    def _send(
        self, kind: stt.SpeechEventType, text: str = "", *, speech_end_time: float | None = None
    ) -> None:
        language = LanguageCode(self._language)
        alternatives = [stt.SpeechData(language=language, text=text)] if text else []
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=kind,
                request_id=self._request_id,
                alternatives=alternatives,
                speech_end_time=speech_end_time,
            )
        )


def stt_failure(owner: stt.STT[Any]) -> Exception:
    """The error a provider configured with `simulation.fail` raises."""
    from livekit.agents import APIConnectionError

    return APIConnectionError(f"{owner.provider} STT is configured to fail (simulation.fail)")
