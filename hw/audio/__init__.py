"""Audio devices for voicepi: PyAudio capture/playback and WAV stand-ins (``file:PATH``).

``open_capture`` and ``open_player`` pick the implementation from the device
spec: ``file:PATH`` for a WAV, otherwise a PortAudio device named by
"default", an index or a case-insensitive part of its name.
"""

from __future__ import annotations

import time
from pathlib import Path

from daemon.vocab import PCM_RATE

from .capture import Capture, Clock, OnAudio, OnError, PyAudioCapture
from .devices import (
    AudioDeviceError,
    CaptureStalled,
    DeviceInfo,
    DeviceNotFound,
    find_device,
    list_devices,
    new_pyaudio,
)
from .engine import PlaybackEngine, PlaybackTracker
from .files import FileCapture, FilePlayer, Sleep, WavError, load_mono, read_wav, write_wav
from .playback import Player, PyAudioPlayer

__all__ = [
    "AudioDeviceError",
    "Capture",
    "CaptureStalled",
    "DeviceInfo",
    "DeviceNotFound",
    "FileCapture",
    "FilePlayer",
    "PlaybackEngine",
    "PlaybackTracker",
    "Player",
    "PyAudioCapture",
    "PyAudioPlayer",
    "Sleep",
    "WavError",
    "file_path",
    "find_device",
    "list_devices",
    "load_mono",
    "new_pyaudio",
    "open_capture",
    "open_player",
    "read_wav",
    "write_wav",
]


def file_path(spec: str) -> Path | None:
    """The path of a ``file:PATH`` spec, else None."""
    if spec.startswith("file:"):
        path = spec[len("file:") :]
        if not path:
            raise ValueError(f"device spec {spec!r}: expected file:PATH")
        return Path(path)
    return None


def open_capture(
    spec: str,
    *,
    on_audio: OnAudio,
    on_error: OnError | None = None,
    channels: int = 1,
    channel: int = 0,
    rate: int = 0,
    block_ms: int = 20,
    stall_timeout: float = 1.0,
    silence_timeout: float = 0.0,
    loop: bool = False,
    clock: Clock = time.monotonic,
    sleep: Sleep | None = None,
    watchdog: bool = True,
) -> Capture:
    """Start capturing from ``spec``; mono int16 blocks of ``block_ms`` go to on_audio.

    ``rate`` 0 means the device's default rate (a file's own rate). ``loop``
    only applies to file:PATH inputs. ``stall_timeout`` seconds without a block,
    or ``silence_timeout`` seconds of exact digital zeros (0 = off; PulseAudio and
    PipeWire silently move a removed mic's stream to a fallback source), make
    the watchdog call ``on_error`` once. ``sleep`` paces a file:PATH input on
    ``clock`` (None: an interruptible real wait; tests pass a fake clock's).
    """
    path = file_path(spec)
    if path is not None:
        return FileCapture(
            path,
            on_audio=on_audio,
            on_error=on_error,
            channels=channels,
            channel=channel,
            rate=rate,
            block_ms=block_ms,
            loop=loop,
            stall_timeout=stall_timeout,
            silence_timeout=silence_timeout,
            clock=clock,
            sleep=sleep,
            watchdog=watchdog,
        )
    return PyAudioCapture(
        spec,
        on_audio=on_audio,
        on_error=on_error,
        channels=channels,
        channel=channel,
        rate=rate,
        block_ms=block_ms,
        stall_timeout=stall_timeout,
        silence_timeout=silence_timeout,
        clock=clock,
        watchdog=watchdog,
    )


def open_player(
    spec: str,
    *,
    rate: int = PCM_RATE,
    block_ms: int = 20,
    jitter_ms: int = 80,
    volume: int = 80,
    tracker: PlaybackTracker | None = None,
    on_error: OnError | None = None,
    channels: int = 0,
    fade_ms: float = 5.0,
    keep_silence: bool = True,
    clock: Clock = time.monotonic,
    sleep: Sleep | None = None,
) -> Player:
    """Open a player taking PCM16 mono 24 kHz; ``rate`` is the device rate wanted
    (a PyAudio device that refuses it runs at its default rate, resampled).
    ``clock``/``sleep`` pace a file:PATH output (see open_capture)."""
    path = file_path(spec)
    if path is not None:
        return FilePlayer(
            path,
            rate=rate,
            block_ms=block_ms,
            jitter_ms=jitter_ms,
            volume=volume,
            tracker=tracker,
            fade_ms=fade_ms,
            keep_silence=keep_silence,
            clock=clock,
            sleep=sleep,
        )
    return PyAudioPlayer(
        spec,
        rate=rate,
        block_ms=block_ms,
        jitter_ms=jitter_ms,
        volume=volume,
        tracker=tracker,
        on_error=on_error,
        channels=channels,
        fade_ms=fade_ms,
    )
