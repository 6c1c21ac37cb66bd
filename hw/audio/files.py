"""WAV files standing in for a microphone and a speaker (``file:PATH`` device specs).

FileCapture plays a WAV into the capture callback at real-time pace, then
silence forever (a microphone never ends), or loops it. FilePlayer writes what
a speaker would emit to a WAV at real-time pace, silence included, so the file's
timeline is the speaker's timeline (a flush shows up where it happened).
"""

from __future__ import annotations

import logging
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from daemon.audiofile import AudioFile, pick_channel, read_audio
from daemon.audiofile import WavError as WavError  # re-exported: hw.audio.WavError
from daemon.dsp import Resampler
from daemon.vocab import PCM_RATE

from .capture import Capture, Clock, OnAudio, OnError
from .engine import PlaybackEngine, PlaybackTracker
from .playback import Player

log = logging.getLogger(__name__)

_MAX_LAG_S = 0.5  # further behind than this (suspended process): resync instead of bursting

Sleep = Callable[[float], object]
"""Blocks for a number of seconds of the injected clock (tests pass a fake clock's)."""


class _Pacer:
    """One block per ``period`` seconds of ``clock``: the pacing both file devices share.

    ``sleep`` None waits on ``stop`` (close wakes it at once); an injected ``sleep``
    (a test's fake clock) is called with the seconds until the next block is due.
    """

    def __init__(self, period: float, clock: Clock, sleep: Sleep | None, start: float) -> None:
        self.period = period
        self.clock = clock
        self.stop = threading.Event()
        self._sleep = sleep
        self.due = start

    def wait(self) -> bool:
        """Block until the next block is due; False once stopped."""
        while not self.stop.is_set():
            delay = self.due - self.clock()
            if delay <= 0:
                return True
            if self._sleep is None:
                self.stop.wait(delay)
            else:
                self._sleep(delay)
        return False

    def done(self) -> None:
        """One block went out: the next is due a period later (resync after a long lag)."""
        self.due += self.period
        now = self.clock()
        if now - self.due > _MAX_LAG_S:
            self.due = now


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(int16 frames of shape (n, channels), rate): ``daemon.audiofile``, the one reader."""
    audio = read_audio(path)
    return audio.frames, audio.rate


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write int16 samples, mono (n,) or (n, channels), as a PCM16 WAV."""
    x = np.asarray(samples, dtype="<i2")
    channels = 1 if x.ndim == 1 else x.shape[1]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())


def load_mono(path: str | Path, *, channel: int = 0, rate: int = 0) -> tuple[np.ndarray, int]:
    """One channel of a WAV (the daemon's choice), resampled to ``rate`` (0 keeps the file's)."""
    return _to_mono(read_audio(path), channel=channel, rate=rate)


def _to_mono(audio: AudioFile, *, channel: int, rate: int) -> tuple[np.ndarray, int]:
    mono = audio.channel(channel)
    if rate and rate != audio.rate:
        return Resampler(audio.rate, rate).process(mono), rate
    return mono, audio.rate


class FileCapture(Capture):
    """A WAV as a microphone, paced in real time by a thread; never ends.

    The first block goes out at open, then one every ``block_ms`` of ``clock``
    (``sleep``: see _Pacer), so after ``s`` seconds ``block_frames * (s // period + 1)``
    frames have been delivered.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        on_audio: OnAudio,
        on_error: OnError | None = None,
        channels: int = 1,
        channel: int = 0,
        rate: int = 0,
        block_ms: int = 20,
        loop: bool = False,
        stall_timeout: float = 1.0,
        silence_timeout: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
        watchdog: bool = True,
    ) -> None:
        # The file's own channel layout decides; ``channels`` only documents the device's.
        del channels
        audio = read_audio(path)
        if audio.truncated:
            log.warning("%s; playing what is there", audio.truncation_note())
        mono, use_rate = _to_mono(audio, channel=channel, rate=rate)
        super().__init__(
            name=f"file:{path}",
            rate=use_rate,
            channels=audio.channels,
            channel=pick_channel(audio.channels, channel, path),
            block_frames=max(1, use_rate * block_ms // 1000),
            on_audio=on_audio,
            on_error=on_error,
            stall_timeout=stall_timeout,
            silence_timeout=silence_timeout,
            clock=clock,
        )
        self.path = Path(path)
        self.loop = loop
        self.file_frames = len(mono)
        self._data = mono
        self._failure: BaseException | None = None
        self._pacer = _Pacer(self.block_frames / self.rate, clock, sleep, start=clock())
        self._thread = threading.Thread(target=self._run, name=f"capture {path}", daemon=True)
        self._thread.start()
        self._start_watchdog(watchdog)

    @property
    def finished_file(self) -> bool:
        """True once the whole file has been delivered (silence follows unless looping)."""
        return not self.loop and self.frames_captured >= self.file_frames

    def _next_block(self, pos: int) -> tuple[np.ndarray, int]:
        n = self.block_frames
        data = self._data
        if pos >= len(data) and not self.loop:
            return np.zeros(n, dtype=np.int16), pos
        if not self.loop or len(data) == 0:
            block = data[pos : pos + n]
            if len(block) < n:
                block = np.concatenate((block, np.zeros(n - len(block), dtype=np.int16)))
            return block, pos + n
        idx = (np.arange(pos, pos + n)) % len(data)
        return data[idx], (pos + n) % len(data)

    def _run(self) -> None:
        pos = 0
        try:
            while self._pacer.wait():
                block, pos = self._next_block(pos)
                self._deliver(block)
                self._pacer.done()
        except Exception as exc:  # reported through _health by the watchdog
            log.exception("file capture thread failed")
            self._failure = exc

    def _health(self) -> BaseException | None:
        return self._failure

    def _close_source(self) -> None:
        self._pacer.stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)


class FilePlayer(Player):
    """Writes the speaker's output to a mono PCM16 WAV at real-time pace.

    With ``keep_silence`` (the default) every block is written, idle ones as
    silence, so file time equals wall time since open. Without it, blocks in
    which nothing played are skipped (a compact file of just the answers).
    The header is rewritten after every block, so the file is readable while open.
    One block is rendered every ``block_ms`` of ``clock``, the first a block after open
    (``sleep``: see _Pacer).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        rate: int = PCM_RATE,
        block_ms: int = 20,
        jitter_ms: int = 80,
        volume: int = 80,
        tracker: PlaybackTracker | None = None,
        source_rate: int = PCM_RATE,
        fade_ms: float = 5.0,
        keep_silence: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
    ) -> None:
        engine = PlaybackEngine(
            device_rate=rate,
            source_rate=source_rate,
            jitter_ms=jitter_ms,
            volume=volume,
            fade_ms=fade_ms,
            tracker=tracker,
        )
        super().__init__(
            engine, name=f"file:{path}", rate=rate, block_frames=max(1, rate * block_ms // 1000)
        )
        self.path = Path(path)
        self.keep_silence = keep_silence
        self.frames_written = 0
        try:
            self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in _close_sink
        except OSError as exc:
            raise WavError(f"cannot write {self.path}: {exc.strerror}") from None
        self._wav = wave.open(self._file, "wb")  # noqa: SIM115 - closed in _close_sink
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self._wav.writeframes(b"")  # header now, so the file is a valid (empty) WAV at once
        self._file.flush()
        period = self.block_frames / rate
        self._pacer = _Pacer(period, clock, sleep, start=clock() + period)
        self._thread = threading.Thread(target=self._run, name=f"player {path}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._pacer.wait():
            active = self.engine.is_playing or self.engine.queued_frames > 0
            block = self.engine.render(self.block_frames)
            if self.keep_silence or active or np.any(block):
                self._wav.writeframes(block.tobytes())
                self._file.flush()
                self.frames_written += len(block)
            self._pacer.done()

    def _close_sink(self) -> None:
        self._pacer.stop.set()
        self._thread.join(timeout=2.0)
        self._wav.close()
        self._file.close()
