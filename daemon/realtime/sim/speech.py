"""Spoken answers: espeak-ng when installed, else a tone; PCM16 mono 24 kHz."""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
from typing import Literal

import numpy as np

from daemon import dsp
from daemon.vocab import PCM_RATE

RATE = PCM_RATE
SpeechMode = Literal["auto", "espeak", "tone"]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def resolve(mode: SpeechMode) -> Literal["espeak", "tone"]:
    if mode == "auto":
        return "espeak" if espeak_available() else "tone"
    if mode == "espeak" and not espeak_available():
        raise ValueError("speech: 'espeak' asked for, but espeak-ng is not installed")
    if mode not in ("espeak", "tone"):
        raise ValueError(f"speech: expected auto, espeak or tone, got {mode!r}")
    return mode


@functools.lru_cache(maxsize=64)
def synthesize(text: str, mode: Literal["espeak", "tone"] = "tone") -> bytes:
    """``text`` spoken (or a tone as long as speaking it would take)."""
    if mode == "espeak":
        try:
            return _espeak(text)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass  # a broken espeak must not end the answer: fall back to a tone
    return tone(text)


def tone(text: str) -> bytes:
    """A soft 440 Hz beep per word, about as long as speaking the text (~150 wpm)."""
    words = max(1, len(text.split()))
    word = int(RATE * 0.32)
    gap = int(RATE * 0.08)
    t = np.arange(word) / RATE
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms ramps: no clicks
    beep = (0.25 * 32767 * env * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16)
    one = np.concatenate([beep, np.zeros(gap, dtype=np.int16)])
    return dsp.array_to_pcm16(np.tile(one, words))


def _espeak(text: str) -> bytes:
    proc = subprocess.run(
        ["espeak-ng", "--stdout", "-v", "en-us", "-s", "165", "--", text],
        capture_output=True,
        timeout=30,
        check=True,
    )
    rate, pcm = _parse_wav(proc.stdout)
    samples = dsp.pcm16_to_array(pcm)
    if rate != RATE:
        samples = dsp.Resampler(rate, RATE).process(samples)
    return dsp.array_to_pcm16(samples)


def _parse_wav(data: bytes) -> tuple[int, bytes]:
    """Mono PCM16 WAV from a pipe (espeak-ng writes bogus sizes when streaming)."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("espeak-ng did not write a WAV")
    pos = 12
    rate = 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            channels, rate, _, _, bits = struct.unpack("<HIIHH", data[body + 2 : body + 16])
            if channels != 1 or bits != 16:
                raise ValueError("espeak-ng WAV is not mono PCM16")
        elif cid == b"data":
            pcm = data[body:]  # to the end: the streamed size field is not trustworthy
            return rate, pcm[: len(pcm) // 2 * 2]
        pos = body + size + (size & 1)
    raise ValueError("espeak-ng WAV has no data chunk")
