"""Feedback sounds for wake, end and error: the built-in tones and the ``[sounds]`` loader.

The default tones are synthesized here (no recordings): short sine chimes with a
soft second harmonic, a raised-cosine attack and an exponential decay that ends
in a fade to exact zero, so neither end clicks. ``wake`` rises (two notes,
160 ms), ``end`` falls, ``error`` is a lower, repeated minor step.

Sounds are played by the appliance through the answer player as items whose id
starts with ``SOUND_ITEM_PREFIX``: the player counts their samples per item like
any other, but the appliance never reports them to the session (no truncation,
no ``audio_end_ms``), and they never make the device ``speaking``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import SOUND_NAMES, ConfigError, SoundsConfig
from .dsp import volume_gain
from .events import CloseReason
from .vocab import PCM_RATE, SoundName

SOURCE_RATE = PCM_RATE  # the player's input rate; sounds are stored at it
SOUND_ITEM_PREFIX = "voicepi-sound:"  # player item ids of sounds (server ids never look so)
MAX_SECONDS = 10.0  # a longer WAV is refused: sounds are cues, and they are held in memory
_PEAK = 0.5  # of full scale, before [sounds] volume and audio.volume
_ATTACK_S = 0.005
_RELEASE_S = 0.012

# Which sound a session's close plays; None: silent (a shutdown must not beep).
CLOSE_SOUNDS: Mapping[CloseReason, SoundName | None] = {
    "inactivity": "end",
    "button": "end",
    "end_session": "end",
    "max_duration": "end",
    "server_closed": "end",
    "error": "error",
    "shutdown": None,
}


@dataclass(frozen=True)
class _Note:
    freq: float  # Hz
    start: float  # seconds from the sound's start
    length: float  # seconds, decay included
    decay: float  # seconds for the envelope to fall by 1/e
    level: float = 1.0


# E5 -> B5 rising fifth (wake), B5 -> E5 falling (end), A4 -> F4 twice (error).
_TONES: Mapping[SoundName, tuple[_Note, ...]] = {
    "wake": (_Note(659.25, 0.0, 0.09, 0.05), _Note(987.77, 0.06, 0.10, 0.05)),
    "end": (_Note(987.77, 0.0, 0.12, 0.07), _Note(659.25, 0.09, 0.16, 0.08)),
    "error": (
        _Note(440.0, 0.0, 0.13, 0.09),
        _Note(349.23, 0.12, 0.13, 0.09),
        _Note(440.0, 0.30, 0.13, 0.09, 0.8),
        _Note(349.23, 0.42, 0.16, 0.10, 0.8),
    ),
}


def synthesize(name: SoundName, rate: int = SOURCE_RATE) -> np.ndarray:
    """The built-in tone ``name`` as mono int16 at ``rate`` Hz (peak about -6 dBFS).

    wake lasts 160 ms, end 250 ms, error 580 ms. Pure: same input, same samples.
    """
    notes = _TONES[name]
    total = max(n.start + n.length for n in notes)
    out = np.zeros(round(total * rate), dtype=np.float64)
    for note in notes:
        n = round(note.length * rate)
        t = np.arange(n) / rate
        wave = np.sin(2 * np.pi * note.freq * t) + 0.25 * np.sin(4 * np.pi * note.freq * t)
        env = np.exp(-t / note.decay)
        attack = max(1, int(_ATTACK_S * rate))
        env[:attack] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
        release = min(n, max(1, int(_RELEASE_S * rate)))
        env[n - release :] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, release + 1) / release)
        start = round(note.start * rate)
        out[start : start + n] += note.level * wave * env
    out *= _PEAK / max(1e-9, float(np.max(np.abs(out))))
    return np.round(out * 32767).astype(np.int16)


def load_sound(name: SoundName, spec: str, rate: int = SOURCE_RATE) -> np.ndarray | None:
    """One sound as mono int16 at ``rate``: the built-in tone for "default", None for "",
    else the WAV at path ``spec`` (first channel, resampled).

    Raises ConfigError naming ``sounds.<name>`` for a missing, unreadable or too long file.
    """
    if spec == "":
        return None
    if spec == "default":
        return synthesize(name, rate)
    from hw.audio.files import load_mono  # the one WAV reader; hw stays out of import time

    key = f"sounds.{name}"
    try:
        samples, _ = load_mono(Path(spec), rate=rate)
    except (OSError, ValueError) as exc:  # WavError is a ValueError
        raise ConfigError(key, f"cannot use {spec!r} as a sound: {exc}") from None
    if len(samples) > MAX_SECONDS * rate:
        seconds = len(samples) / rate
        limit = f"a sound may last {MAX_SECONDS:g} s"
        raise ConfigError(key, f"{spec!r} lasts {seconds:.1f} s; {limit}")
    return np.asarray(samples, dtype=np.int16)


def load_sounds(cfg: SoundsConfig, rate: int = SOURCE_RATE) -> dict[SoundName, np.ndarray]:
    """Every sound that is on, int16 mono at ``rate``, ``cfg.volume`` applied (same square
    law as audio.volume, which the player applies on top). Raises ConfigError."""
    gain = volume_gain(cfg.volume)
    out: dict[SoundName, np.ndarray] = {}
    for name in SOUND_NAMES:
        pcm = load_sound(name, getattr(cfg, name), rate)
        if pcm is not None and len(pcm):
            out[name] = np.round(pcm.astype(np.float32) * gain).astype(np.int16)
    return out


def is_sound_item(item_id: str) -> bool:
    """True for a player item that is a feedback sound, not model output."""
    return item_id.startswith(SOUND_ITEM_PREFIX)
