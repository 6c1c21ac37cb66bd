"""A small watchdog: polls a health check and reports the first failure once.

By default each watchdog polls on a thread of its own. ``poll_on(loop)`` makes the
watchdogs created afterwards poll on that asyncio loop instead (``loop.call_later``):
the daemon's loop runs anyway, so a mic and a speaker cost no thread each (`voicepi run`
with a PulseAudio mic and speaker: 6 threads, the budget of issue #16). A check is a few
attribute reads; a report only queues work (``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from daemon.polling import next_tick

log = logging.getLogger(__name__)

_loop: asyncio.AbstractEventLoop | None = None


def poll_on(loop: asyncio.AbstractEventLoop | None) -> None:
    """Watchdogs created from now on poll on ``loop`` (None: a thread each again).
    Ones already running keep how they started."""
    global _loop
    _loop = loop


class Watchdog:
    def __init__(
        self,
        check: Callable[[], BaseException | None],
        report: Callable[[BaseException], None],
        *,
        interval: float,
        name: str,
    ) -> None:
        self._check = check
        self._report = report
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop = _loop if _loop is not None and not _loop.is_closed() else None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._later)
        else:
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def _poll(self) -> bool:
        """One check; True to go on polling."""
        try:
            exc = self._check()
        except Exception as err:  # a failing check is itself a failure to report
            exc = err
        if exc is None:
            return True
        self._report(exc)
        return False

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._poll():
                return

    def _later(self) -> None:
        if self._loop is not None and not self._stop.is_set():
            # On the shared grid: the mic's and the speaker's polls are one wake-up.
            self._loop.call_at(next_tick(self._loop.time(), self._interval), self._tick)

    def _tick(self) -> None:
        if self._stop.is_set() or self._loop is None or self._loop.is_closed():
            return
        if self._poll():
            self._later()

    def stop(self) -> None:
        self._stop.set()
        # The report callback may close its owner from this very thread: never join oneself.
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
