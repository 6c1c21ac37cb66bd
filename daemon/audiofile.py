"""Reading audio files: the one reader behind every WAV path (the ``file:`` mic, demo,
`voicepi wakeword`), built on libsndfile through ``soundfile``.

libsndfile reads what recorders and sox write: 8/16/24/32-bit integer and 32/64-bit
float PCM, plain or WAVE_FORMAT_EXTENSIBLE headers, any channel count (and FLAC, OGG
and the other formats it knows). Samples come back as int16 frames of shape
(n, channels); the channel choice is the daemon's (``pick_channel``), never a mix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class WavError(ValueError):
    """An audio file that cannot be read (or used); the message names the file."""


@dataclass(frozen=True)
class AudioFile:
    """A decoded file: ``frames`` int16 of shape (n, channels) at ``rate`` Hz.

    ``declared_frames`` is what the header promised when the file holds fewer
    (a recorder killed mid-write); otherwise None.
    """

    path: Path
    frames: np.ndarray
    rate: int
    declared_frames: int | None = None

    @property
    def channels(self) -> int:
        return int(self.frames.shape[1])

    @property
    def truncated(self) -> bool:
        return self.declared_frames is not None

    def truncation_note(self) -> str:
        """One line for a warning, e.g. ``x.wav: truncated: 0.50 s of the 1.00 s in its header``."""
        assert self.declared_frames is not None
        have, want = len(self.frames) / self.rate, self.declared_frames / self.rate
        return f"{self.path}: truncated: {have:.2f} s of the {want:.2f} s in its header"

    def channel(self, index: int) -> np.ndarray:
        """The mono int16 samples the daemon would use; see ``pick_channel``."""
        return self.frames[:, pick_channel(self.channels, index, self.path)].copy()


def pick_channel(channels: int, index: int, path: Path | str) -> int:
    """``audio.input_channel`` for a file: a mono file is its only channel, a
    multichannel file gives channel ``index``; raises WavError when it has no such channel."""
    if channels == 1:
        return 0
    if not 0 <= index < channels:
        raise WavError(f"{path}: has {channels} channel(s), channel {index} requested")
    return index


# libsndfile's header log, e.g. "data : 288000 (should be 143978)"
_SHORT_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def read_audio(path: Path | str) -> AudioFile:
    """Decode ``path``; raises WavError (one line naming the file) if it cannot be read."""
    import soundfile

    p = Path(path)
    if not p.is_file():
        reason = "no such file" if not p.exists() else "not a file"
        raise WavError(f"{p}: {reason}")
    try:
        info = soundfile.info(str(p))
        # Integer PCM: libsndfile scales any width to int16 itself (20x faster than via
        # float). Floats (and compressed formats) via float64: its float->short cast truncates.
        direct = info.subtype.startswith("PCM_")
        data, rate = soundfile.read(str(p), dtype="int16" if direct else "float64", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, ValueError, EOFError) as exc:
        detail = str(exc).replace(f"Error opening {str(p)!r}: ", "")
        raise WavError(f"{p}: not a readable audio file ({detail.strip().rstrip('.')})") from None
    except OSError as exc:
        raise WavError(f"{p}: cannot read ({exc.strerror})") from None
    if rate < 1 or data.shape[1] < 1:
        raise WavError(f"{p}: not a readable audio file ({data.shape[1]} channels, {rate} Hz)")
    frames = data if direct else _float_to_int16(data)
    declared = None
    short = _SHORT_DATA.search(info.extra_info)
    block = info.channels * max(1, _bytes_per_sample(info.subtype))
    if short and int(short.group(1)) > int(short.group(2)):
        declared = int(short.group(1)) // block
    return AudioFile(path=p, frames=frames, rate=int(rate), declared_frames=declared)


def _float_to_int16(data: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(data * 32768.0), -32768, 32767).astype(np.int16)


def _bytes_per_sample(subtype: str) -> int:
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}.get(
        subtype, 8 if subtype == "DOUBLE" else 2
    )
