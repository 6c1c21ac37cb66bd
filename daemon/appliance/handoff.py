"""Microphone blocks from the audio thread to the asyncio loop, with a bounded backlog.

A starved CPU (a Pi Zero under load, qemu emulation, a cgroup quota) runs the loop slower
than real time. One ``call_soon_threadsafe`` per block would queue audio without bound and
process it ever later (a wake word heard a minute ago, a stop that waits behind it). Here the
audio thread appends to a capped queue and wakes the loop once per batch; when more than
``max_samples`` wait, the oldest blocks are dropped and counted, and the loop is told how
many samples it lost before it gets the rest. The loop takes at most ``batch_samples`` per
callback and queues the rest behind whatever else is ready (a stop, a reload, the watchdog),
so those are never stuck behind a backlog of wake word scoring.

While idle the loop need not wake for every block: with ``hold_samples`` set, ``put`` wakes
it only once that much audio waits, and the loop then scores those frames back to back (a
wake-up and a cold cache fewer per block: see ``wakeword.batch_frames``), as one array in one
callback. The owner sets it back to 0 for a session or a score near a threshold.

With ``wait`` the producer is paced by the loop instead: ``put`` blocks while the backlog is
full, so nothing is dropped however slow the loop is. Only for a producer whose thread is its
own (a ``file:`` WAV microphone, as in ``voicepi demo --mic-pacing consumer``), never for a
device callback that must return in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable

import numpy as np


class FrameHandoff:
    """``put`` on the audio thread; ``deliver(samples)`` and ``dropped(n_samples)`` run on
    ``loop``, ``dropped`` before the blocks that came after the gap."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[np.ndarray], None],
        dropped: Callable[[int], None],
        max_samples: int,
        batch_samples: int = 1,
        *,
        wait: bool = False,
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._dropped = dropped
        self.max_samples = max_samples
        self.batch_samples = batch_samples
        self.wait = wait
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified when the loop takes blocks
        self._closed = False
        self._blocks: deque[np.ndarray] = deque()
        self._queued = 0
        self._lost = 0
        self._scheduled = False
        self.dropped_samples = 0  # in total, for diagnostics
        self.hold_samples = 0  # wake the loop once this many samples wait (0: every block)

    def put(self, samples: np.ndarray) -> None:
        """Audio thread: queue one block. Never blocks on the loop, unless ``wait``: then
        it blocks while ``max_samples`` are queued, until the loop takes some or ``close``."""
        with self._lock:
            # Room for the whole block, so nothing below is dropped (an oversized block
            # still goes once the queue is empty); a closed loop releases the wait too.
            while (
                self.wait
                and self._blocks
                and self._queued + len(samples) > self.max_samples
                and not (self._closed or self._loop.is_closed())
            ):
                self._room.wait(0.5)
            if self._closed:
                return  # the mic is closing: nothing more is taken (nor counted as dropped)
            self._blocks.append(samples)
            self._queued += len(samples)
            while self._queued > self.max_samples and len(self._blocks) > 1:
                old = self._blocks.popleft()
                self._queued -= len(old)
                self._lost += len(old)
                self.dropped_samples += len(old)
            if self._scheduled or self._queued < self.hold_samples:
                return  # a drain is already on its way, or the loop may sleep on
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody left to hear it
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        blocks: list[np.ndarray] = []
        taken = 0
        with self._lock:
            held = self.hold_samples
            limit = max(self.batch_samples, held)  # a held batch goes in one callback
            while self._blocks and (not blocks or taken < limit):
                block = self._blocks.popleft()
                blocks.append(block)
                taken += len(block)
            self._queued -= taken
            self._room.notify_all()
            lost, self._lost = self._lost, 0
            more = bool(self._blocks)
            self._scheduled = more
        if lost:
            self._dropped(lost)
        if held and len(blocks) > 1:
            blocks = [np.concatenate(blocks)]  # idle: one pass of the loop's work per batch
        for block in blocks:
            self._deliver(block)
        if more:
            self._loop.call_soon(self._drain)  # behind what became ready meanwhile

    def close(self) -> None:
        """Release a producer waiting in ``put``; later blocks are ignored (the mic is
        closing). Idempotent."""
        with self._lock:
            self._closed = True
            self._room.notify_all()
