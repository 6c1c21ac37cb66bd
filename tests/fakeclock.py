"""A monotonic clock the test moves, for threads that pace themselves on an injected clock.

Threads call ``clock()`` and ``clock.sleep(seconds)``; the test calls ``run_to``/``advance``,
which wake each sleeper at its own deadline in order (as real time would) and return
once every sleeper is asleep again past the new time: everything due has run. So a
test asserts exact counts at a simulated time, never a fit to the wall clock.
"""

from __future__ import annotations

import threading


class FakeClock:
    """``clock()`` reads simulated seconds; ``clock.sleep`` blocks until the test moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self.start = start
        self._cond = threading.Condition()
        self._sleepers: dict[int, float] = {}  # thread id -> deadline
        self._closed = False
        self.reads = 0  # how often a thread read the time (a poller's heartbeat)
        self._holder: int | None = None

    def __call__(self) -> float:
        with self._cond:
            me = threading.get_ident()
            self._cond.wait_for(lambda: self._holder in (None, me))
            self.reads += 1
            self._cond.notify_all()
            return self._now

    def set(self, elapsed: float) -> None:
        """Move to ``start + elapsed`` at once, for threads that poll rather than sleep."""
        with self._cond:
            self._now = self.start + elapsed

    def hold(self) -> None:
        """Until ``release``, only this thread reads the clock; others block in the read."""
        with self._cond:
            self._holder = threading.get_ident()

    def release(self) -> None:
        with self._cond:
            self._holder = None
            self._cond.notify_all()

    def read_twice(self, timeout: float = 10.0) -> None:
        """Wait until the time has been read twice more: a poller that computes a value
        from each read and then writes it has written one computed after now."""
        with self._cond:
            target = self.reads + 2
            ok = self._cond.wait_for(lambda: self.reads >= target, timeout)
        assert ok, "nothing read the clock"

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self._cond:
            deadline = self._now + seconds
            self._sleepers[me] = deadline
            self._cond.notify_all()
            try:
                while self._now < deadline and not self._closed:
                    self._cond.wait()
            finally:
                del self._sleepers[me]
                self._cond.notify_all()

    def _asleep(self) -> int:
        return sum(d > self._now for d in self._sleepers.values())

    def settle(self, sleepers: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``sleepers`` threads sleep past now (real-time bound: a hang fails)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._asleep() >= sleepers, timeout)
        assert ok, f"{sleepers} thread(s) never went back to sleep at t={self._now - self.start}"

    def run_to(self, elapsed: float, sleepers: int = 1) -> None:
        """Move to ``start + elapsed`` through every sleeper's deadline on the way."""
        target = self.start + elapsed
        self.settle(sleepers)
        while True:
            with self._cond:
                if self._now >= target:
                    return
                due = [d for d in self._sleepers.values() if d > self._now]
                self._now = min([*due, target])
                self._cond.notify_all()
            self.settle(sleepers)

    def advance(self, seconds: float, sleepers: int = 1) -> None:
        self.run_to(self._now - self.start + seconds, sleepers)

    def jump(self, seconds: float, sleepers: int = 1) -> None:
        """Move at once (a suspended process resuming), then let the sleepers catch up."""
        with self._cond:
            self._now += seconds
            self._cond.notify_all()
        self.settle(sleepers)

    @property
    def elapsed(self) -> float:
        with self._cond:
            return self._now - self.start

    def close(self) -> None:
        """Release every sleeper for good (before closing the threads that sleep here)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
