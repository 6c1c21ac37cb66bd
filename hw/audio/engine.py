"""The player's jitter buffer and per-item accounting, free of any audio API.

Writers (the asyncio side) append PCM16 at the source rate (24 kHz); it is
resampled to the device rate on the writer's thread, so the device side only
copies samples. ``render(frames)`` is what an output callback (PortAudio, or
the WAV writer thread) calls to take the next block. Item accounting counts
samples actually handed out by ``render``, in source-rate samples.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from daemon.dsp import (
    SILENCE_DBFS,
    Resampler,
    fade_ramp,
    float_to_int16,
    pcm16_to_array,
    rms_dbfs,
    volume_gain,
)
from daemon.vocab import PCM_RATE

log = logging.getLogger(__name__)

_DROPPED_MEMORY = 64  # flushed item ids remembered, so late deltas for them stay silent


class PlaybackTracker(Protocol):
    """The one playback observer: what a player reports about each item it plays.

    Called from the audio thread: hop to your loop (``loop.call_soon_threadsafe``)
    and return quickly. ``samples_played`` counts source-rate (24 kHz) samples of
    that item actually rendered, cumulative. ``daemon.realtime.SessionTracker``
    adapts it to a session (or an agent runtime)."""

    def on_started(self, item_id: str) -> None: ...

    def on_progress(self, item_id: str, samples_played: int) -> None: ...

    def on_finished(self, item_id: str) -> None: ...

    def on_drained(self) -> None: ...


@dataclass
class _Item:
    item_id: str
    received: int = 0  # source-rate samples written
    dev_total: int = 0  # device-rate samples queued for it (resampler output)
    dev_played: int = 0  # device-rate samples handed out by render()
    complete: bool = False
    started: bool = False


@dataclass
class _Seg:
    item: _Item
    data: np.ndarray  # float32, device rate, before volume
    pos: int = 0


# The echo canceller's reference: every rendered block (int16 mono), the device rate
# (Hz) and when the block's first sample sounds (PortAudio's DAC time, seconds; None
# where the sink has no such clock).
ReferenceTap = Callable[[np.ndarray, int, float | None], None]


class PlaybackEngine:
    def __init__(
        self,
        *,
        device_rate: int,
        source_rate: int = PCM_RATE,
        jitter_ms: int = 80,
        volume: int = 80,
        fade_ms: float = 5.0,
        tracker: PlaybackTracker | None = None,
    ) -> None:
        if not 0 <= volume <= 100:
            raise ValueError(f"volume must be 0-100, got {volume}")
        self.device_rate = device_rate
        self.source_rate = source_rate
        self.jitter_frames = max(0, int(jitter_ms * device_rate // 1000))
        self.fade_frames = max(1, int(fade_ms * device_rate / 1000))
        self.tracker = tracker
        # What the device really got and when it sounds. Audio thread: must be quick.
        self.reference_tap: ReferenceTap | None = None
        self._resampler = (
            Resampler(source_rate, device_rate) if source_rate != device_rate else None
        )
        self._wlock = threading.Lock()  # writer side: resampler state, odd bytes
        self._lock = threading.Lock()  # shared with the audio thread; held briefly
        self._odd: tuple[str, bytes] | None = None
        self._last_written: str | None = None
        self._queue: deque[_Seg] = deque()
        self._queued = 0  # device samples waiting in _queue
        self._items: dict[str, _Item] = {}
        self._dropped: deque[str] = deque(maxlen=_DROPPED_MEMORY)
        self._buffering = True
        self._active = False  # from the first rendered sample until drained/flushed
        self._fade: np.ndarray | None = None
        self._volume = volume
        self._gain = volume_gain(volume)
        self._target_gain = self._gain
        self._level = SILENCE_DBFS
        self.silence = np.zeros(0, dtype=np.int16)  # render's cached idle block (read-only)
        self.frames_rendered = 0
        self.underruns = 0

    # ------------------------------------------------------------------ writer side

    def write(self, item_id: str, pcm: bytes) -> None:
        with self._wlock:
            if item_id in self._dropped:
                return  # audio of an interrupted item that was still in flight
            if self._odd is not None and self._odd[0] == item_id:
                pcm = self._odd[1] + pcm
            self._odd = (item_id, pcm[-1:]) if len(pcm) % 2 else None
            src = pcm16_to_array(pcm)
            dev = self._to_device(src)
            self._last_written = item_id
            with self._lock:
                item = self._items.get(item_id)
                if item is None:
                    item = self._items[item_id] = _Item(item_id)
                item.received += len(src)
                self._append(item, dev)

    def end_of_item(self, item_id: str) -> None:
        """No more audio for this item: it may start below the jitter threshold and
        on_finished fires once its last sample is played."""
        with self._wlock:
            tail = np.zeros(0, dtype=np.float32)
            if self._resampler is not None and self._last_written == item_id:
                # Push the filter's delayed tail out with zeros, so the item ends whole.
                pad = np.zeros(self._resampler.taps // 2 + 1, dtype=np.float32)
                tail = self._resampler.process(pad)
            with self._lock:
                item = self._items.get(item_id)
                if item is None:
                    return
                item.complete = True
                self._append(item, tail)
                if item.dev_total == 0:
                    del self._items[item_id]  # an item without audio never plays

    def _to_device(self, src: np.ndarray) -> np.ndarray:
        if self._resampler is None:
            return src.astype(np.float32)
        return self._resampler.process(src.astype(np.float32))

    def _append(self, item: _Item, dev: np.ndarray) -> None:
        if len(dev) == 0:
            return
        item.dev_total += len(dev)
        self._queue.append(_Seg(item, dev))
        self._queued += len(dev)

    def flush(self) -> dict[str, int]:
        """Drop everything queued, fade what is sounding to silence within one block,
        and return {item_id: source samples played} for every item not yet finished.
        No tracker callbacks fire for a flush; the return value is the report."""
        with self._wlock:
            self._odd = None
            if self._resampler is not None:
                self._resampler.reset()
            with self._lock:
                played = {i.item_id: self._played_src(i) for i in self._items.values()}
                if self._active:
                    self._fade = self._take_fade()
                self._dropped.extend(played)
                self._queue.clear()
                self._queued = 0
                self._items.clear()
                self._buffering = True
                self._active = False
        return played

    def _take_fade(self) -> np.ndarray:
        n = self.fade_frames
        parts = [] if self._fade is None else [self._fade]
        have = 0 if self._fade is None else len(self._fade)
        for seg in self._queue:
            if have >= n:
                break
            chunk = seg.data[seg.pos : seg.pos + n - have]
            parts.append(chunk)
            have += len(chunk)
        if not parts:
            return np.zeros(0, dtype=np.float32)
        head: np.ndarray = np.concatenate(parts)[:n]
        faded: np.ndarray = (head * fade_ramp(len(head))).astype(np.float32)
        return faded

    # ------------------------------------------------------------------ controls

    def set_volume(self, percent: int) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"volume must be 0-100, got {percent}")
        with self._lock:
            self._volume = percent
            self._target_gain = volume_gain(percent)

    @property
    def volume(self) -> int:
        return self._volume

    @property
    def is_playing(self) -> bool:
        """True from the first played sample until the queue drains or is flushed."""
        return self._active

    @property
    def level_db(self) -> float:
        """RMS dBFS of the last block handed to the device (after volume)."""
        return self._level

    @property
    def queued_frames(self) -> int:
        return self._queued

    def _played_src(self, item: _Item) -> int:
        if item.dev_played >= item.dev_total:
            return item.received
        if self._resampler is None:
            return item.dev_played
        return min(item.received, item.dev_played * self.source_rate // self.device_rate)

    # ------------------------------------------------------------------ audio side

    def render(self, frames: int, dac_time: float | None = None) -> np.ndarray:
        """The next ``frames`` device-rate mono int16 samples. Cheap; never blocks long.

        ``dac_time``: when the block's first sample will sound, on the output stream's
        clock (PortAudio's ``output_buffer_dac_time``, seconds), passed on to the
        reference tap; None where the sink has no such clock (a file)."""
        events: list[tuple[str, tuple[object, ...]]] = []
        with self._lock:
            if self._idle():
                # Idle speaker: the same read-only block of zeros every time, no float work.
                self.frames_rendered += frames
                self._level = SILENCE_DBFS
                if len(self.silence) != frames:
                    self.silence = np.zeros(frames, dtype=np.int16)
                    self.silence.flags.writeable = False
                silence = self.silence
            else:
                silence = None
        if silence is not None:
            # An echo canceller's reference must stay continuous: silence is zeros.
            self._tap(silence, dac_time)
            return silence
        with self._lock:
            out = np.zeros(frames, dtype=np.float32)
            if self._fade is not None:
                n = min(frames, len(self._fade))
                out[:n] = self._fade[:n]
                self._fade = self._fade[n:] if n < len(self._fade) else None
            if self._buffering and self._queue:
                last = self._queue[-1].item
                if self._queued >= self.jitter_frames or last.complete:
                    self._buffering = False
            if not self._buffering:
                self._fill(out, events)
            self._finish_items(events)
            self._apply_gain(out)
            self.frames_rendered += frames
        block = float_to_int16(out)
        self._level = rms_dbfs(block)
        self._tap(block, dac_time)
        self._dispatch(events)
        return block

    @property
    def idle(self) -> bool:
        """True while render would return ``silence``: nothing to play, fade or ramp."""
        with self._lock:
            return self._idle()

    def _idle(self) -> bool:
        """Nothing queued, fading, playing or ramping: the block is silence."""
        return (
            self._fade is None
            and not self._queue
            and not self._items
            and not self._active
            and self._gain == self._target_gain
        )

    def _fill(self, out: np.ndarray, events: list[tuple[str, tuple[object, ...]]]) -> None:
        filled = 0
        touched: list[tuple[_Item, bool]] = []  # (item, first samples in this block)
        while filled < len(out) and self._queue:
            seg = self._queue[0]
            n = min(len(out) - filled, len(seg.data) - seg.pos)
            out[filled : filled + n] += seg.data[seg.pos : seg.pos + n]
            seg.pos += n
            filled += n
            self._queued -= n
            item = seg.item
            if not touched or touched[-1][0] is not item:
                touched.append((item, not item.started))
            item.started = True
            item.dev_played += n
            if seg.pos >= len(seg.data):
                self._queue.popleft()
        for item, first in touched:  # per item, in play order: started, progress, finished
            self._active = True
            if first:
                events.append(("on_started", (item.item_id,)))
            events.append(("on_progress", (item.item_id, self._played_src(item))))
            if self._done(item):
                del self._items[item.item_id]
                events.append(("on_finished", (item.item_id,)))
        if not self._queue and filled < len(out):
            self._buffering = True  # underrun or drained: rebuffer before resuming
            if any(not i.complete for i in self._items.values()):
                self.underruns += 1

    @staticmethod
    def _done(item: _Item) -> bool:
        return item.complete and item.started and item.dev_played >= item.dev_total

    def _finish_items(self, events: list[tuple[str, tuple[object, ...]]]) -> None:
        for item in [i for i in self._items.values() if self._done(i)]:
            del self._items[item.item_id]
            events.append(("on_finished", (item.item_id,)))
        if self._active and not self._queue and not self._items:
            self._active = False
            events.append(("on_drained", ()))

    def _apply_gain(self, out: np.ndarray) -> None:
        if self._gain == self._target_gain:
            if self._gain != 1.0:
                out *= self._gain
            return
        # Ramp across the block: an instant gain step would click.
        out *= np.linspace(self._gain, self._target_gain, len(out), dtype=np.float32)
        self._gain = self._target_gain

    def _tap(self, block: np.ndarray, dac_time: float | None) -> None:
        tap = self.reference_tap
        if tap is None:
            return
        try:
            tap(block, self.device_rate, dac_time)
        except Exception as exc:  # a broken canceller must not silence the speaker
            self.reference_tap = None
            log.error("playback reference tap failed, echo reference off: %s", exc)

    def _dispatch(self, events: list[tuple[str, tuple[object, ...]]]) -> None:
        tracker = self.tracker
        if tracker is None:
            return
        for name, args in events:
            try:
                getattr(tracker, name)(*args)
            except Exception:  # a tracker bug must not kill the audio thread
                log.exception("playback tracker callback failed")
