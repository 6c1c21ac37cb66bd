"""Microphone capture: mono int16 blocks with a monotonic frame counter.

``on_audio(samples, first_frame_index)`` runs on the audio thread (PortAudio's,
or the WAV reader's). It must be quick and must not touch asyncio objects
directly: hop with ``loop.call_soon_threadsafe(handler, samples, index)``.
``on_error(exc)`` runs on the watchdog thread, at most once per capture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from daemon.dsp import check_channel, pick_channel

from .devices import (
    AudioDeviceError,
    CaptureStalled,
    DeviceInfo,
    find_device,
    new_pyaudio,
    open_stream,
)
from .watch import Watchdog

log = logging.getLogger(__name__)

OnAudio = Callable[[np.ndarray, int], None]
OnError = Callable[[BaseException], None]
Clock = Callable[[], float]


def _log_error(exc: BaseException) -> None:
    log.error("audio capture failed: %s", exc)


class Capture:
    """What every capture source shares: delivery, counters, stall detection, close.

    Stalls are detectable two ways: the watchdog thread (``watchdog=True``)
    reports ``CaptureStalled`` through ``on_error`` after ``stall_timeout``
    seconds without a block, and owners may poll ``check()`` themselves or read
    ``last_frame_time`` (a value of the injected clock) and ``frames_captured``.
    """

    def __init__(
        self,
        *,
        name: str,
        rate: int,
        channels: int,
        channel: int,
        block_frames: int,
        on_audio: OnAudio,
        on_error: OnError | None,
        stall_timeout: float,
        clock: Clock,
        silence_timeout: float = 0.0,
    ) -> None:
        self.name = name
        self.rate = rate
        self.channels = channels
        self.channel = channel
        self.block_frames = block_frames
        self.stall_timeout = stall_timeout
        self.silence_timeout = silence_timeout
        self._on_audio = on_audio
        self._on_error = on_error or _log_error
        self._clock = clock
        self.frames_captured = 0
        self.last_frame_time = clock()  # the open counts as a frame: a dead device stalls too
        self.last_sound_time = self.last_frame_time  # last block with a non-zero sample
        self.overflows = 0
        self.consumer_errors = 0
        self._delivering = False  # inside on_audio (the consumer holds the source)
        self._closed = False
        self._reported = False
        self._report_lock = threading.Lock()
        self._watchdog: Watchdog | None = None

    def _start_watchdog(self, enabled: bool) -> None:
        timeouts = [t for t in (self.stall_timeout, self.silence_timeout) if t > 0]
        if enabled and timeouts:
            # Half the shortest timeout: a stall is reported 1-1.5 timeouts in. Each poll
            # wakes the daemon's loop; idle, polls were 7 of its 9 wake-ups a second.
            interval = min(0.5, min(timeouts) / 2)
            self._watchdog = Watchdog(
                self.check, self._report, interval=interval, name=f"capture-watch {self.name}"
            )

    def _deliver(self, samples: np.ndarray) -> None:
        first = self.frames_captured
        self.frames_captured += len(samples)
        self.last_frame_time = now = self._clock()
        if self.silence_timeout > 0 and samples.any():
            self.last_sound_time = now
        self._delivering = True
        try:
            self._on_audio(samples, first)
        except Exception:  # the consumer's bug must not stop the microphone
            self.consumer_errors += 1
            if self.consumer_errors == 1:
                log.exception("on_audio callback failed (further failures are counted only)")
        finally:
            # A consumer that paces the source (a file: mic waiting for a slow loop) held
            # it: the time spent in on_audio is not a device stall.
            self.last_frame_time = self._clock()
            self._delivering = False

    def _health(self) -> BaseException | None:
        """Source-specific failure (stream stopped, thread died); None when fine."""
        return None

    def check(self, now: float | None = None) -> BaseException | None:
        """The failure this capture is in, if any (stall or source error). Pure query:
        reporting to on_error is the watchdog's job."""
        if self._closed:
            return None
        failure = self._health()
        if failure is not None:
            return failure
        t = self._clock() if now is None else now
        idle = t - self.last_frame_time
        if self.stall_timeout > 0 and idle > self.stall_timeout and not self._delivering:
            return CaptureStalled(
                f"no audio from capture device {self.name!r} for {idle:.1f} s "
                f"(device removed or stalled)"
            )
        quiet = t - self.last_sound_time
        if self.silence_timeout > 0 and quiet > self.silence_timeout:
            return CaptureStalled(
                f"only digital silence from capture device {self.name!r} for {quiet:.1f} s "
                f"(device removed, muted or replaced by a fallback)"
            )
        return None

    def _report(self, exc: BaseException) -> None:
        with self._report_lock:
            if self._reported or self._closed:
                return
            self._reported = True
        try:
            self._on_error(exc)
        except Exception:
            log.exception("on_error callback failed")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.stop()
        self._close_source()

    def _close_source(self) -> None:
        pass

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} {self.rate} Hz "
            f"ch {self.channel}/{self.channels} frames={self.frames_captured}>"
        )


class PyAudioCapture(Capture):
    """A PortAudio callback input stream on a named device."""

    def __init__(
        self,
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
        clock: Clock = time.monotonic,
        watchdog: bool = True,
    ) -> None:
        import pyaudio

        check_channel(channels, channel)
        pa = new_pyaudio()
        try:
            device = find_device(pa, spec, "input")
            if channels > device.input_channels:
                raise AudioDeviceError(
                    f"capture device {spec!r} ({device.name}) has {device.input_channels} "
                    f"input channel(s), {channels} requested"
                )
            use_rate = rate or device.default_rate
            block = max(1, use_rate * block_ms // 1000)
            super().__init__(
                name=device.name,
                rate=use_rate,
                channels=channels,
                channel=channel,
                block_frames=block,
                on_audio=on_audio,
                on_error=on_error,
                stall_timeout=stall_timeout,
                silence_timeout=silence_timeout,
                clock=clock,
            )
            self.device: DeviceInfo = device
            self._pa: Any = pa
            self._paContinue = pyaudio.paContinue
            self._paComplete = pyaudio.paComplete
            self._overflow_flag = pyaudio.paInputOverflow
            self._stream: Any = open_stream(
                pa,
                device,
                "input",
                spec=spec,
                rate=use_rate,
                channels=channels,
                block_frames=block,
                callback=self._callback,
            )
        except BaseException:
            pa.terminate()
            raise
        self.last_frame_time = self.last_sound_time = clock()
        self._start_watchdog(watchdog)

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: Any, status: int
    ) -> tuple[None, int]:
        if self._closed:
            return None, self._paComplete
        if status & self._overflow_flag:
            self.overflows += 1
        if in_data:
            self._deliver(pick_channel(in_data, self.channels, self.channel))
        return None, self._paContinue

    @property
    def input_latency(self) -> float:
        return float(self._stream.get_input_latency())

    def _health(self) -> BaseException | None:
        if not self._stream.is_active():
            return AudioDeviceError(f"capture stream on {self.name!r} stopped")
        return None

    def _close_source(self) -> None:
        try:
            self._stream.stop_stream()
        except OSError as exc:  # a vanished device can refuse a clean stop
            log.debug("capture stop: %s", exc)
        finally:
            self._stream.close()
            self._pa.terminate()
