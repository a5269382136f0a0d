"""espeak-ng (the Debian package) as a speech synthesizer: text in, 16-bit mono PCM out."""

from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

ESPEAK = "espeak-ng"
HEADER_LIMIT = 4096


class EspeakMissingError(RuntimeError):
    """espeak-ng is not installed."""


def espeak_path() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise EspeakMissingError(
            "espeak-ng is not installed: the offline TTS needs it (apt-get install espeak-ng)"
        )
    return path


@dataclass(frozen=True)
class WavFormat:
    sample_rate: int
    num_channels: int
    header_size: int


def parse_wav_header(data: bytes) -> WavFormat | None:
    """The format of a 16-bit PCM WAV stream, or None until its data chunk has begun."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if len(data) >= 12:
            raise ValueError("espeak-ng did not produce a WAV stream")
        return None
    pos, rate, channels = 12, 0, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 16 <= len(data):
            channels, rate = struct.unpack("<HI", data[pos + 10 : pos + 16])
        if chunk == b"data":
            return WavFormat(rate, channels, pos + 8)
        pos += 8 + size
    return None


def espeak_args(voice: str, words_per_minute: int) -> list[str]:
    # Text comes on stdin so that nothing a user says can become an option.
    return [espeak_path(), "--stdin", "--stdout", "-v", voice, "-s", str(words_per_minute)]


async def synthesize(
    text: str, *, voice: str = "en-us", words_per_minute: int = 175
) -> AsyncIterator[tuple[WavFormat, bytes]]:
    """Yield (format, PCM chunk) pairs as espeak-ng produces them."""
    proc = await asyncio.create_subprocess_exec(
        *espeak_args(voice, words_per_minute),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(text.encode())
    proc.stdin.close()
    head, fmt = b"", None
    try:
        while chunk := await proc.stdout.read(8192):
            if fmt is None:
                head += chunk
                fmt = parse_wav_header(head)
                if fmt is None:
                    if len(head) > HEADER_LIMIT:
                        raise ValueError("espeak-ng produced no WAV data chunk")
                    continue
                chunk = head[fmt.header_size :]
            if chunk:
                yield fmt, chunk
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def render_wav(text: str, path: str, *, voice: str = "en-us", words_per_minute: int = 150) -> None:
    """Write espeak-ng's WAV rendering of `text` to `path` (blocking)."""
    with open(path, "wb") as out:
        subprocess.run(
            espeak_args(voice, words_per_minute), input=text.encode(), stdout=out, check=True
        )
