"""The button: gpiozero Button edges -> press / double / long gestures.

GestureRecognizer is sans-I/O (times passed in). GestureButton feeds it from
gpiozero's edge callbacks and runs one small timer thread for the deadlines
(the double-press window, the long-press threshold). A long press fires while
the button is still held, so the user sees the mute LED before letting go.
A single press is reported once the double-press window has passed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from daemon.vocab import Gesture

log = logging.getLogger("voicepi.button")


class GestureRecognizer:
    def __init__(self, double_window: float, long_press: float) -> None:
        self.double_window = double_window
        self.long_press = long_press
        self._down_at: float | None = None
        self._long_fired = False
        self._pending_since: float | None = None  # release time of an undecided first press

    def press(self, now: float) -> list[Gesture]:
        out = self.poll(now)
        if self._down_at is None:
            self._down_at = now
            self._long_fired = False
        return out

    def release(self, now: float) -> list[Gesture]:
        out = self.poll(now)
        if self._down_at is None:
            return out
        held = now - self._down_at
        self._down_at = None
        if self._long_fired:
            return out
        if held >= self.long_press:
            out += self._long()
        elif self._pending_since is not None:
            self._pending_since = None
            out.append("double")
        else:
            self._pending_since = now
        return out

    def poll(self, now: float) -> list[Gesture]:
        out: list[Gesture] = []
        if (
            self._down_at is not None
            and not self._long_fired
            and now - self._down_at >= self.long_press
        ):
            self._long_fired = True
            out += self._long()
        if (
            self._pending_since is not None
            and self._down_at is None
            and now - self._pending_since >= self.double_window
        ):
            self._pending_since = None
            out.append("press")
        return out

    def _long(self) -> list[Gesture]:
        # a first short press followed by a long hold: the press counts on its own
        out: list[Gesture] = ["press"] if self._pending_since is not None else []
        self._pending_since = None
        return [*out, "long"]

    def deadline(self) -> float | None:
        """When poll() next has something to decide, if ever."""
        times = []
        if self._down_at is not None and not self._long_fired:
            times.append(self._down_at + self.long_press)
        if self._pending_since is not None and self._down_at is None:
            times.append(self._pending_since + self.double_window)
        return min(times) if times else None


class GestureButton:
    """A gpiozero Button recognising gestures; ``on_gesture`` runs on a background thread.

    ``pin``: the GPIO (BCM number); ``pull_up``: wired to ground with the internal
    pull-up; ``bounce_time``, ``double_press_window`` and ``long_press`` in seconds
    (bounce 0 = none). ``pin_factory`` None is gpiozero's default. Call ``close()``.
    """

    def __init__(
        self,
        pin: int,
        on_gesture: Callable[[Gesture], None],
        *,
        pull_up: bool = True,
        bounce_time: float = 0.02,
        double_press_window: float = 0.35,
        long_press: float = 1.0,
        pin_factory: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import gpiozero

        if pin < 0:
            raise ValueError("button.pin: no button pin configured")
        self.on_gesture = on_gesture
        self.clock = clock
        self.recognizer = GestureRecognizer(double_press_window, long_press)
        self._cond = threading.Condition()
        self._closed = False
        self.button = gpiozero.Button(
            pin,
            pull_up=pull_up,
            bounce_time=bounce_time or None,
            pin_factory=pin_factory,
        )
        self._thread = threading.Thread(target=self._run, name="voicepi-button", daemon=True)
        self._thread.start()
        self.button.when_pressed = self._pressed
        self.button.when_released = self._released

    def _pressed(self) -> None:
        self._feed(self.recognizer.press)

    def _released(self) -> None:
        self._feed(self.recognizer.release)

    def _feed(self, step: Callable[[float], list[Gesture]]) -> None:
        with self._cond:
            gestures = step(self.clock())
            self._cond.notify()
        self._emit(gestures)

    def _emit(self, gestures: list[Gesture]) -> None:
        for gesture in gestures:
            try:
                self.on_gesture(gesture)
            except Exception:  # a failing handler must not kill the button
                log.exception("button gesture handler failed")

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                deadline = self.recognizer.deadline()
                timeout = None if deadline is None else max(0.0, deadline - self.clock())
                if timeout is None or timeout > 0:
                    self._cond.wait(timeout)
                if self._closed:
                    return
                gestures = self.recognizer.poll(self.clock())
            self._emit(gestures)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=2.0)
        self.button.close()
