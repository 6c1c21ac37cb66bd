"""Inactivity countdown: pure logic, time passed in.

A session is idle when nothing is busy (user speaking, a response in
progress, the speaker draining, a tool running, an approval pending). After
``timeout`` idle seconds it expires; the last ``countdown`` seconds announce
themselves at exactly 5, 4, 3, 2, 1 seconds before the end. Remaining seconds
are rounded up, so "5" fires with 5 s left, not 6 (the peer that used int()
got that wrong). Any activity cancels a running countdown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .events import CountdownCancelled, Event, UserInactivityCountdown


@dataclass(frozen=True)
class Expired:
    """The idle time ran out: close the session (reason inactivity)."""


class InactivityCountdown:
    def __init__(self, timeout: float, countdown: int) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.countdown = max(0, min(countdown, math.floor(timeout)))
        self._busy: set[str] = set()
        self._idle_since: float | None = None
        self._last_announced: int | None = None
        self._expired = False

    # ---------------------------------------------------------------- inputs

    def start(self, now: float) -> None:
        """A session began: idle from now unless something is busy."""
        self._busy.clear()
        self._idle_since = now
        self._last_announced = None
        self._expired = False

    def set_busy(self, cause: str, busy: bool, now: float) -> list[Event]:
        """Mark one cause busy or free; becoming busy cancels a running countdown."""
        events: list[Event] = []
        if busy:
            if cause not in self._busy:
                events.extend(self._cancel(cause))
                self._busy.add(cause)
                self._idle_since = None
        elif cause in self._busy:
            self._busy.discard(cause)
            if not self._busy:
                self._idle_since = now
        return events

    def activity(self, cause: str, now: float) -> list[Event]:
        """A momentary activity (a transcript, a button press) restarts the idle time."""
        events = self._cancel(cause)
        if not self._busy:
            self._idle_since = now
        return events

    # ---------------------------------------------------------------- outputs

    @property
    def busy(self) -> frozenset[str]:
        return frozenset(self._busy)

    @property
    def running(self) -> bool:
        """True while a countdown is being announced."""
        return self._last_announced is not None

    def deadline(self) -> float | None:
        """When the session expires if nothing happens; None while busy."""
        if self._idle_since is None or self._expired:
            return None
        return self._idle_since + self.timeout

    def next_wakeup(self, now: float) -> float | None:
        """The next instant ``poll`` has something to say; None while busy."""
        end = self.deadline()
        if end is None:
            return None
        for k in range(self.countdown, 0, -1):
            at = end - k
            if at >= now and (self._last_announced is None or k < self._last_announced):
                return at
        return end

    def poll(self, now: float) -> list[Event | Expired]:
        """Announcements and expiry due at ``now`` (call at ``next_wakeup`` or later)."""
        end = self.deadline()
        if end is None:
            return []
        if now >= end:
            self._expired = True
            self._last_announced = None
            return [Expired()]
        remaining = math.ceil(end - now - 1e-9)
        if remaining > self.countdown:
            return []
        if self._last_announced is not None and remaining >= self._last_announced:
            return []
        self._last_announced = remaining
        return [UserInactivityCountdown(remaining_seconds=remaining)]

    def _cancel(self, cause: str) -> list[Event]:
        if self._last_announced is None:
            return []
        self._last_announced = None
        return [CountdownCancelled(cause=cause)]
