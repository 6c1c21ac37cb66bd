"""Audio files -> 16 kHz mono int16, for scoring files with the wake word.

Decoding is ``daemon.audiofile`` (libsndfile), the reader the ``file:`` mic uses;
the channel is the daemon's ``audio.input_channel`` choice, not a mix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audiofile import AudioFile, WavError, read_audio
from ..dsp import Resampler
from .engines import SAMPLE_RATE

__all__ = ["WavError", "read_wav", "read_wav_16k", "to_16k"]


def read_wav(path: Path | str, *, channel: int = 0) -> tuple[np.ndarray, int]:
    """(mono int16 samples, sample rate) of ``channel`` (a mono file: its only channel)."""
    audio = read_audio(path)
    return audio.channel(channel), audio.rate


def read_wav_16k(path: Path | str, *, channel: int = 0) -> np.ndarray:
    """The file's ``channel`` as 16 kHz mono int16, resampled if needed and aligned."""
    return to_16k(read_audio(path), channel)


def to_16k(audio: AudioFile, channel: int = 0) -> np.ndarray:
    """``audio``'s ``channel`` at 16 kHz (filter delay removed, same duration)."""
    samples, rate = audio.channel(channel), audio.rate
    if rate == SAMPLE_RATE:
        return samples
    rs = Resampler(rate, SAMPLE_RATE)
    lag = round(rs.delay)
    out = rs.process(np.concatenate([samples, np.zeros(rs.taps, dtype=np.int16)]))
    want = -(-len(samples) * SAMPLE_RATE // rate)
    return out[lag : lag + want]
