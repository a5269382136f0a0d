"""Streaming recognizers shared by the keyless STT providers.

Local recognizers have no endpointing of their own, so a stream finds the speech segments in
its input and turns them into start/interim/final/end events, the sequence a cloud streaming
STT such as Deepgram produces. PocketSphinx decodes what the Silero VAD segments; the simulated
STT stands in for a remote recognizer, so it segments with an energy gate that costs the worker
next to nothing, as a remote recognizer's endpointing does.
"""

from __future__ import annotations

import asyncio
import enum
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any, TypedDict, Unpack

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, LanguageCode, stt, utils, vad

from voicefleet_models.agent_config import Simulation

SAMPLE_RATE = 16000
INTERIM_INTERVAL_SECONDS = 0.5
# Energy gate: a frame is voiced above -45 dBFS and 12 dB above the quietest frame of the last
# 1.5 s (the noise floor), so steady noise (a fan, a hissing line) does not hold a segment open.
GATE_THRESHOLD_DBFS = -45.0
GATE_FLOOR_MARGIN = 10 ** (12.0 / 10)
GATE_FLOOR_SECONDS = 1.5
# Voiced audio needed to start a segment, as Silero's default min_speech_duration.
GATE_MIN_SPEECH_SECONDS = 0.05
# Frames kept before a segment starts: its voiced onset at any frame size down to 10 ms.
ONSET_FRAMES = 5


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


class StreamOptions(TypedDict):
    """What every segmented stream is built with, whichever way it finds the segments."""

    owner: stt.STT[Any]
    segmenter: SpeechSegmenter
    language: str
    simulation: Simulation | None
    failing: Callable[[], bool]
    """Whether the provider is down (a simulated failure): every request then fails."""
    conn_options: APIConnectOptions


class SegmentedRecognizeStream(stt.RecognizeStream):
    """Streams transcripts of the speech segments `_segment_input` finds in the pushed audio."""

    def __init__(self, **options: Unpack[StreamOptions]) -> None:
        super().__init__(
            stt=options["owner"], conn_options=options["conn_options"], sample_rate=SAMPLE_RATE
        )
        self._segmenter = options["segmenter"]
        self._language = options["language"]
        self._simulation = options["simulation"]
        self._failing = options["failing"]
        self._request_id = utils.shortuuid("stt_")
        self._since_interim = 0.0

    async def _run(self) -> None:
        if self._failing():
            raise stt_failure(self._stt)
        try:
            await self._segment_input()
        finally:
            await self._segmenter.close()

    @abstractmethod
    async def _segment_input(self) -> None:
        """Read `_input_ch` to its end, calling the `_speech_*` methods in order."""

    async def _speech_started(self, frames: list[rtc.AudioFrame]) -> None:
        if self._failing():  # gone down since the stream opened: the fallback takes the turn
            raise stt_failure(self._stt)
        self._since_interim = 0.0
        await self._segmenter.begin(frames)
        self._send(stt.SpeechEventType.START_OF_SPEECH)

    async def _speech_continues(self, frames: list[rtc.AudioFrame]) -> None:
        await self._segmenter.feed(frames)
        self._since_interim += utils.audio.calculate_audio_duration(frames)
        if self._since_interim >= INTERIM_INTERVAL_SECONDS:
            self._since_interim = 0.0
            if text := await self._segmenter.interim():
                self._send(stt.SpeechEventType.INTERIM_TRANSCRIPT, text)

    async def _speech_ended(self, speech_end: float, speech_seconds: float) -> None:
        """The segment ended at wall-clock `speech_end` after `speech_seconds` of speech."""
        self._send(stt.SpeechEventType.END_OF_SPEECH, speech_end_time=speech_end)
        text = await self._segmenter.finish()
        if self._simulation is not None:
            # The simulated latency counts from the end of speech, as a cloud STT's would.
            await asyncio.sleep(max(0.0, speech_end + self._simulation.delay_seconds - time.time()))
        if text:
            self._send(stt.SpeechEventType.FINAL_TRANSCRIPT, text, speech_end_time=speech_end)
        usage = stt.RecognitionUsage(audio_duration=speech_seconds)
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


class VADRecognizeStream(SegmentedRecognizeStream):
    """Segments with the Silero VAD: for recognizers that decode the audio themselves."""

    def __init__(self, *, vad_model: vad.VAD, **options: Unpack[StreamOptions]) -> None:
        super().__init__(**options)
        self._vad_model = vad_model

    async def _segment_input(self) -> None:
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

    async def _segments(self, vad_stream: vad.VADStream) -> None:
        speaking = False
        async for ev in vad_stream:
            if ev.type == vad.VADEventType.START_OF_SPEECH:
                speaking = True
                await self._speech_started(ev.frames)
            elif ev.type == vad.VADEventType.INFERENCE_DONE and speaking:
                await self._speech_continues(ev.frames)
            elif ev.type == vad.VADEventType.END_OF_SPEECH and speaking:
                speaking = False
                speech_end = time.time() - ev.silence_duration - ev.inference_duration
                await self._speech_ended(speech_end, ev.speech_duration)


class GateChange(enum.Enum):
    STARTED = "started"
    ENDED = "ended"


class EnergyGate:
    """Speech segments from frame energy: a segment starts after `GATE_MIN_SPEECH_SECONDS` of
    voiced frames and ends after `min_silence` seconds without one."""

    def __init__(self, *, min_silence: float) -> None:
        self._min_silence = min_silence
        self._threshold = (np.iinfo(np.int16).max * 10 ** (GATE_THRESHOLD_DBFS / 20)) ** 2
        self._recent: deque[float] = deque()  # energies of the last GATE_FLOOR_SECONDS
        self._onset = 0.0  # voiced seconds in a row while not speaking
        self._segment = 0.0  # seconds since the segment started, trailing silence included
        self._silence = 0.0  # trailing unvoiced seconds of the segment
        self.speaking = False

    @property
    def speech_seconds(self) -> float:
        """Duration of the current (or just ended) segment without its trailing silence."""
        return self._segment - self._silence

    @property
    def silence_seconds(self) -> float:
        return self._silence

    def push(self, frame: rtc.AudioFrame) -> GateChange | None:
        seconds = frame.samples_per_channel / frame.sample_rate
        voiced = self._voiced(np.frombuffer(frame.data, dtype=np.int16), seconds)
        if self.speaking:
            self._segment += seconds
            self._silence = 0.0 if voiced else self._silence + seconds
            if self._silence >= self._min_silence:
                self.speaking = False
                return GateChange.ENDED
            return None
        self._onset = self._onset + seconds if voiced else 0.0
        if self._onset >= GATE_MIN_SPEECH_SECONDS:
            self.speaking, self._segment, self._silence = True, self._onset, 0.0
            self._onset = 0.0
            return GateChange.STARTED
        return None

    def end(self) -> bool:
        """End the current segment now; whether there was one."""
        was_speaking, self.speaking, self._onset = self.speaking, False, 0.0
        return was_speaking

    def _voiced(self, samples: np.ndarray[Any, np.dtype[np.int16]], seconds: float) -> bool:
        if not samples.size:
            return False
        pcm = samples.astype(np.float32)
        energy = float(np.dot(pcm, pcm)) / samples.size
        if self._recent.maxlen is None:  # sized on the first frame, when its length is known
            self._recent = deque(maxlen=max(1, round(GATE_FLOOR_SECONDS / seconds)))
        self._recent.append(energy)
        return energy > max(self._threshold, min(self._recent) * GATE_FLOOR_MARGIN)


class EnergyGateRecognizeStream(SegmentedRecognizeStream):
    """Segments with `EnergyGate`: for recognizers that stand in for a remote one."""

    def __init__(self, *, min_silence: float, **options: Unpack[StreamOptions]) -> None:
        super().__init__(**options)
        self._gate = EnergyGate(min_silence=min_silence)

    async def _segment_input(self) -> None:
        # The frames just before the gate opens: they hold the start of the segment's speech.
        onset: deque[rtc.AudioFrame] = deque(maxlen=ONSET_FRAMES + 1)
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                onset.clear()
                if self._gate.end():
                    await self._segment_ended()
                continue
            change = self._gate.push(item)
            if change is GateChange.STARTED:
                await self._speech_started([*onset, item])
                onset.clear()
            elif change is GateChange.ENDED:
                await self._segment_ended()
            elif self._gate.speaking:
                await self._speech_continues([item])
            else:
                onset.append(item)

    async def _segment_ended(self) -> None:
        speech_end = time.time() - self._gate.silence_seconds
        await self._speech_ended(speech_end, self._gate.speech_seconds)


def stt_failure(owner: stt.STT[Any]) -> Exception:
    """The error a simulated provider that is down raises."""
    from livekit.agents import APIConnectionError

    return APIConnectionError(f"{owner.provider} STT is down (simulation)")
