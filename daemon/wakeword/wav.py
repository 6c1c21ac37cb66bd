"""Any PCM WAV file -> 16 kHz mono int16, for scoring files with the wake word."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..dsp import Resampler
from .engines import SAMPLE_RATE


class WavError(ValueError):
    """A WAV file that cannot be read; the message names the file."""


_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """(mono int16 samples, sample rate): channels averaged.

    Reads the RIFF chunks itself (Python 3.11's ``wave`` rejects the extensible
    header sox and most recorders write for 24-bit or multichannel files):
    8/16/24/32-bit integer PCM and 32/64-bit float, plain or extensible.
    """
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        raise WavError(f"{path}: no such file") from None
    except OSError as exc:
        raise WavError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        fmt, data = _chunks(blob)
        tag, channels, rate = struct.unpack_from("<HHI", fmt, 0)
        bits = struct.unpack_from("<H", fmt, 14)[0]
        if tag == _EXTENSIBLE:
            tag = struct.unpack_from("<H", fmt, 24)[0]  # first bytes of the subformat GUID
    except (ValueError, struct.error) as exc:
        raise WavError(f"{path}: not a readable PCM WAV file ({exc})") from None
    if channels < 1 or rate < 1:
        raise WavError(f"{path}: not a readable PCM WAV file ({channels} channels, {rate} Hz)")
    samples = _decode(data, tag, bits)
    if samples is None:
        raise WavError(f"{path}: unsupported WAV encoding (format {tag}, {bits} bits)")
    frames = len(samples) // channels
    mono = samples[: frames * channels].reshape(frames, channels).mean(axis=1)
    return np.clip(np.rint(mono), -32768, 32767).astype(np.int16), rate


def _chunks(blob: bytes) -> tuple[bytes, bytes]:
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ValueError("no RIFF/WAVE header")
    fmt = data = None
    pos = 12
    while pos + 8 <= len(blob):
        cid, size = blob[pos : pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        body = blob[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            data = body  # a recorder killed mid-write leaves a short data chunk: keep it
        pos += 8 + size + (size & 1)
    if fmt is None or len(fmt) < 16:
        raise ValueError("no fmt chunk")
    if data is None:
        raise ValueError("no data chunk")
    return fmt, data


def _decode(data: bytes, tag: int, bits: int) -> np.ndarray | None:
    """Samples as float64 in int16 units, or None for an encoding we do not read."""
    width = (bits + 7) // 8
    data = data[: len(data) // width * width]
    if tag == _PCM and width == 1:  # unsigned 8-bit
        return (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if tag == _PCM and width == 2:
        return np.frombuffer(data, dtype="<i2").astype(np.float64)
    if tag == _PCM and width == 3:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8) >> 8  # sign-extend 24 bits
        return v.astype(np.float64) / 256.0
    if tag == _PCM and width == 4:
        return np.frombuffer(data, dtype="<i4").astype(np.float64) / 65536.0
    if tag == _FLOAT and width in (4, 8):
        dtype = "<f4" if width == 4 else "<f8"
        return np.frombuffer(data, dtype=dtype).astype(np.float64) * 32768.0
    return None


def read_wav_16k(path: Path | str) -> np.ndarray:
    """The file as 16 kHz mono int16, resampled if needed and aligned (filter delay removed)."""
    samples, rate = read_wav(path)
    if rate == SAMPLE_RATE:
        return samples
    rs = Resampler(rate, SAMPLE_RATE)
    lag = round(rs.delay)
    out = rs.process(np.concatenate([samples, np.zeros(rs.taps, dtype=np.int16)]))
    want = -(-len(samples) * SAMPLE_RATE // rate)
    return out[lag : lag + want]
