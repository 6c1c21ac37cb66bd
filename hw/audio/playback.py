"""Speaker playback: 24 kHz PCM16 items through a jitter buffer to an output device.

The asyncio side calls ``write``/``end_of_item``/``flush``/``set_volume``; the
audio thread pulls blocks. The tracker's callbacks run on the audio thread and
must hop to their loop (``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from daemon.vocab import PCM_RATE

from .devices import (
    AudioDeviceError,
    DeviceInfo,
    find_device,
    new_pyaudio,
    open_stream,
    supports_rate,
)
from .engine import PlaybackEngine, PlaybackTracker, ReferenceTap
from .watch import Watchdog

log = logging.getLogger(__name__)

# An idle output stream is stopped after this long and restarted by the next write:
# a running stream costs a callback (and its thread's wake-up) every block for nothing
# (with the echo canceller's reference, a PulseAudio speaker idled at 0.023 CPU s/s).
PARK_AFTER_S = 2.0


class Player:
    """What every output shares; subclasses own the thread that calls ``engine.render``."""

    def __init__(self, engine: PlaybackEngine, *, name: str, rate: int, block_frames: int) -> None:
        self.engine = engine
        self.name = name
        self.rate = rate  # device rate; input is always engine.source_rate (24 kHz)
        self.block_frames = block_frames
        self.reference_underflow: Callable[[], None] | None = None
        self.reference_restarted: Callable[[], None] | None = None
        self._closed = False
        self._keep_running = False

    def write(self, item_id: str, pcm: bytes) -> None:
        """Queue PCM16 LE mono audio at the source rate for ``item_id``."""
        self.engine.write(item_id, pcm)

    def end_of_item(self, item_id: str) -> None:
        self.engine.end_of_item(item_id)

    def flush(self) -> dict[str, int]:
        """Silence within one block (short fade), drop the queue; {item_id: samples played}."""
        return self.engine.flush()

    def set_reference_tap(
        self,
        tap: ReferenceTap | None,
        underflow: Callable[[], None] | None = None,
        restarted: Callable[[], None] | None = None,
    ) -> None:
        """Hand every rendered block (int16 mono, device rate, its DAC time or None) to
        ``tap`` from the audio thread, silence included: an echo canceller's reference
        at the device's pace. ``underflow`` is called (audio thread) when the device ran
        dry and sounded silence the reference does not hold (PortAudio's
        paOutputUnderflow); ``restarted`` (audio thread) before the first block of a
        stream restarted after it parked. Between the two, the blocks ``tap`` gets
        sound one after another."""
        self.engine.reference_tap = tap
        self.reference_underflow = underflow
        self.reference_restarted = restarted

    def keep_running(self, running: bool) -> None:
        """While ``running``, an idle output stream is not parked (the appliance holds it
        from the wake to the session's close): answers then start on a stream already in
        its steady state, and only the wake restarts a parked one. A sink that never
        parks (a file) ignores it."""
        self._keep_running = running

    def set_volume(self, percent: int) -> None:
        self.engine.set_volume(percent)

    @property
    def volume(self) -> int:
        return self.engine.volume

    @property
    def tracker(self) -> PlaybackTracker | None:
        return self.engine.tracker

    @tracker.setter
    def tracker(self, value: PlaybackTracker | None) -> None:
        self.engine.tracker = value

    @property
    def is_playing(self) -> bool:
        return self.engine.is_playing

    @property
    def level_db(self) -> float:
        return self.engine.level_db

    @property
    def output_latency(self) -> float:
        """Seconds from a block leaving the callback to it sounding (device's estimate)."""
        return 0.0

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_sink()

    def _close_sink(self) -> None:
        pass

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.rate} Hz block {self.block_frames}>"


def _call_hook(hook: Callable[[], None] | None, what: str) -> bool:
    """Call a reference hook on the audio thread; False (logged) when it raised: the
    caller drops it, as a failing canceller must not silence the speaker."""
    if hook is None:
        return True
    try:
        hook()
    except Exception:
        log.exception("%s callback failed", what)
        return False
    return True


class PyAudioPlayer(Player):
    """A PortAudio callback output stream. Opens at ``rate`` when the device takes it,
    else at the device's default rate (the 24 kHz input is resampled either way)."""

    def __init__(
        self,
        spec: str,
        *,
        rate: int = PCM_RATE,
        block_ms: int = 20,
        jitter_ms: int = 80,
        volume: int = 80,
        tracker: PlaybackTracker | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        channels: int = 0,
        source_rate: int = PCM_RATE,
        fade_ms: float = 5.0,
    ) -> None:
        import pyaudio

        pa = new_pyaudio()
        try:
            device = find_device(pa, spec, "output")
            use_rate = rate
            if not supports_rate(pa, device, "output", rate, channels or 1):
                log.info(
                    "output device %s does not take %d Hz; using %d Hz",
                    device.name,
                    rate,
                    device.default_rate,
                )
                use_rate = device.default_rate
            if channels == 0:  # mono when the device takes it; I2S codecs often need stereo
                mono = supports_rate(pa, device, "output", use_rate, 1)
                channels = 1 if mono else min(2, device.output_channels)
            block = max(1, use_rate * block_ms // 1000)
            engine = PlaybackEngine(
                device_rate=use_rate,
                source_rate=source_rate,
                jitter_ms=jitter_ms,
                volume=volume,
                fade_ms=fade_ms,
                tracker=tracker,
            )
            super().__init__(engine, name=device.name, rate=use_rate, block_frames=block)
            self.device: DeviceInfo = device
            self.channels = channels
            self.callback_errors = 0
            self.output_underflows = 0
            self._pa: Any = pa
            self._silent: tuple[np.ndarray | None, bytes] = (None, b"")  # engine's idle block
            self._park_lock = threading.Lock()
            self._parked = False  # the callback completed the stream while idle
            self._restarting = False  # _unpark restarted it: its next callback tells the tap
            self._idle_blocks = 0
            self._park_blocks = max(1, round(PARK_AFTER_S * use_rate / block))
            self._dac_times = True  # every callback so far carried a DAC time
            self._paComplete = pyaudio.paComplete
            self._paContinue = pyaudio.paContinue
            self._underflow_flag = pyaudio.paOutputUnderflow
            self._stream: Any = open_stream(
                pa,
                device,
                "output",
                spec=spec,
                rate=use_rate,
                channels=channels,
                block_frames=block,
                callback=self._callback,
            )
        except BaseException:
            pa.terminate()
            raise
        self._on_error = on_error
        self._watchdog: Watchdog | None = None
        if on_error is not None:
            self._watchdog = Watchdog(
                self._health, self._report, interval=1.0, name=f"player-watch {device.name}"
            )

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: dict[str, float], status: int
    ) -> tuple[bytes, int]:
        if status & self._underflow_flag:
            self.output_underflows += 1
            if not _call_hook(self.reference_underflow, "reference underflow"):
                self.reference_underflow = None
        if self._restarting:
            self._restarting = False
            if not _call_hook(self.reference_restarted, "reference restarted"):
                self.reference_restarted = None
        try:
            dac_time = time_info.get("output_buffer_dac_time", 0.0)
            self._dac_times = self._dac_times and dac_time > 0
            block = self.engine.render(frame_count, dac_time if dac_time > 0 else None)
            if block is not self.engine.silence:
                self._idle_blocks = 0
                data = (np.repeat(block, self.channels) if self.channels > 1 else block).tobytes()
                return data, self._paContinue
            if block is not self._silent[0]:
                self._silent = (block, bytes(2 * self.channels * frame_count))
            self._idle_blocks += 1
            if self._idle_blocks >= self._park_blocks:
                # write() queues, then checks _parked under this lock; keep_running sets
                # its flag under it, so a wake never finds the stream parking behind it.
                with self._park_lock:
                    if self.engine.idle and self._may_park():
                        self._parked = True
                        return self._silent[1], self._paComplete
            return self._silent[1], self._paContinue  # idle: the same bytes every block
        except Exception:  # never let the audio thread die: play silence instead
            self.callback_errors += 1
            if self.callback_errors == 1:
                log.exception("playback callback failed")
            return bytes(2 * self.channels * frame_count), self._paContinue

    def write(self, item_id: str, pcm: bytes) -> None:
        self.engine.write(item_id, pcm)
        self._unpark()

    def end_of_item(self, item_id: str) -> None:
        self.engine.end_of_item(item_id)
        self._unpark()

    def set_reference_tap(
        self,
        tap: ReferenceTap | None,
        underflow: Callable[[], None] | None = None,
        restarted: Callable[[], None] | None = None,
    ) -> None:
        super().set_reference_tap(tap, underflow, restarted)
        self._unpark()  # parks again only if the device stamps its blocks

    def keep_running(self, running: bool) -> None:
        with self._park_lock:
            super().keep_running(running)
        if running:
            self._unpark()

    def _may_park(self) -> bool:
        """Audio thread, ``_park_lock`` held: whether an idle stream may stop now. With
        an echo canceller only on a device that stamps its blocks: the canceller places
        the restarted reference by their DAC times."""
        if self._keep_running:
            return False
        return self.engine.reference_tap is None or self._dac_times

    def _unpark(self) -> None:
        """Restart a stream the callback completed while idle (on the caller's thread)."""
        with self._park_lock:
            if not self._parked or self._closed:
                return
        self._idle_blocks = 0
        self._restarting = True  # read by the restarted stream's first callback
        try:
            self._stream.stop_stream()  # PortAudio: a completed stream is stopped first
            self._stream.start_stream()
        except OSError as exc:
            self._report(AudioDeviceError(f"playback stream on {self.name!r}: {exc}"))
        finally:
            with self._park_lock:
                self._parked = False

    @property
    def parked(self) -> bool:
        """True while the idle stream is stopped (restarted by the next write)."""
        return self._parked

    @property
    def output_latency(self) -> float:
        return float(self._stream.get_output_latency())

    def _health(self) -> BaseException | None:
        if not self._closed and not self._parked and not self._stream.is_active():
            return AudioDeviceError(f"playback stream on {self.name!r} stopped")
        return None

    def _report(self, exc: BaseException) -> None:
        if self._closed or self._on_error is None:
            return
        try:
            self._on_error(exc)
        except Exception:
            log.exception("on_error callback failed")

    def _close_sink(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
        try:
            self._stream.stop_stream()
        except OSError as exc:
            log.debug("playback stop: %s", exc)
        finally:
            self._stream.close()
            self._pa.terminate()
