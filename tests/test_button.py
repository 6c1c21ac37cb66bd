"""The button: gesture recognition (pure and on gpiozero mock pins) and the action map."""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from daemon import events as ev
from daemon.appliance.app import Appliance, Parts
from daemon.appliance.button_map import button_action
from daemon.appliance.gpio import build_button
from daemon.config import ButtonConfig, Config
from hw.button import GestureButton, GestureRecognizer
from tests.fakeclock import FakeClock

PIN = 17

# --------------------------------------------------------------------------- pure recognizer


def run(steps: list[tuple[str, float]], window: float = 0.35, long: float = 1.0) -> list[str]:
    rec = GestureRecognizer(window, long)
    out: list[str] = []
    for kind, t in steps:
        out += {"down": rec.press, "up": rec.release, "poll": rec.poll}[kind](t)
    return out


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("down", 0), ("up", 0.1), ("poll", 0.3)], []),  # still inside the double window
        ([("down", 0), ("up", 0.1), ("poll", 0.45)], ["press"]),
        ([("down", 0), ("up", 0.1), ("down", 0.3), ("up", 0.4), ("poll", 2)], ["double"]),
        ([("down", 0), ("up", 0.1), ("down", 0.5), ("up", 0.6), ("poll", 2)], ["press", "press"]),
        ([("down", 0), ("poll", 0.99)], []),
        ([("down", 0), ("poll", 1.0), ("up", 3), ("poll", 5)], ["long"]),  # fires while held
        ([("down", 0), ("up", 1.2), ("poll", 5)], ["long"]),  # no poll in between: on release
        ([("down", 0), ("up", 0.1), ("down", 0.2), ("poll", 1.3)], ["press", "long"]),
    ],
)
def test_recognizer(steps: list[tuple[str, float]], expected: list[str]) -> None:
    assert run(steps) == expected


def test_recognizer_deadlines() -> None:
    rec = GestureRecognizer(0.35, 1.0)
    assert rec.deadline() is None
    rec.press(10.0)
    assert rec.deadline() == 11.0
    rec.release(10.1)
    assert rec.deadline() == pytest.approx(10.45)


# --------------------------------------------------------------------------- action map


@pytest.mark.parametrize(
    ("gesture", "state", "approval", "action"),
    [
        ("press", "idle", False, "wake"),
        ("press", "speaking", False, "interrupt"),
        ("press", "thinking", False, "interrupt"),
        ("press", "listening", False, "none"),
        ("press", "connecting", False, "none"),
        ("press", "muted", False, "none"),
        ("press", "starting", False, "none"),
        ("press", "error", False, "none"),
        ("press", "thinking", True, "approve"),
        ("press", "speaking", True, "approve"),
        ("double", "listening", True, "reject"),
        ("double", "listening", False, "end_session"),
        ("double", "speaking", False, "end_session"),
        ("double", "connecting", False, "end_session"),
        ("double", "idle", False, "none"),
        ("double", "muted", False, "none"),
        ("long", "idle", False, "mute_toggle"),
        ("long", "speaking", True, "mute_toggle"),
        ("long", "muted", False, "mute_toggle"),
        ("tap", "idle", False, "none"),
    ],
)
def test_button_action(gesture: str, state: str, approval: bool, action: str) -> None:
    assert button_action(gesture, state, approval) == action


# --------------------------------------------------------------------------- gpiozero mock pin

CFG = ButtonConfig(pin=PIN, bounce_time=0.0, double_press_window=0.25, long_press=0.5)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def _open(on_gesture: Any, factory: MockFactory, clock: FakeClock) -> GestureButton:
    """CFG's button, through the wiring's config -> plain values mapping, on ``clock``."""
    b = build_button(Config(button=CFG), on_gesture, pin_factory=factory, clock=clock)
    assert b is not None
    return b


@dataclasses.dataclass
class Opened:
    button: GestureButton
    clock: FakeClock
    got: queue.Queue[str]

    def tap(self, pin: Any, at: float, held: float = 0.05) -> None:
        """Press at ``at`` fake seconds, release ``held`` later (pull-up: pressed = low)."""
        self.clock.set(at)
        pin.drive_low()
        self.clock.set(at + held)
        pin.drive_high()

    def gestures_at(self, t: float, count: int) -> list[str]:
        """Move to ``t``; the ``count`` gestures the button says (its thread polls at its
        deadlines), checking that nothing more is due by ``t``."""
        self.clock.set(t)
        out = [self.got.get(timeout=10) for _ in range(count)]
        deadline = self.button.recognizer.deadline()
        assert deadline is None or deadline > self.clock.start + t, "a gesture is overdue"
        return out

    def close(self) -> None:
        self.button.close()  # joins the thread: whatever it said is in the queue
        assert self.got.empty(), list(self.got.queue)


@pytest.fixture
def opened(factory: MockFactory) -> Iterator[Opened]:
    got: queue.Queue[str] = queue.Queue()
    clock = FakeClock()
    o = Opened(_open(got.put, factory, clock), clock, got)
    yield o
    o.close()


def test_single_press(factory: MockFactory, opened: Opened) -> None:
    opened.tap(factory.pin(PIN), 0.0)
    assert opened.gestures_at(0.2, 0) == []  # the double-press window is still open
    assert opened.gestures_at(0.31, 1) == ["press"]


def test_double_press(factory: MockFactory, opened: Opened) -> None:
    pin = factory.pin(PIN)
    opened.tap(pin, 0.0)
    opened.tap(pin, 0.13)
    assert opened.gestures_at(0.6, 1) == ["double"]


def test_long_press_fires_while_held(factory: MockFactory, opened: Opened) -> None:
    pin = factory.pin(PIN)
    opened.clock.set(0.0)
    pin.drive_low()
    assert opened.gestures_at(0.3, 0) == []
    assert opened.gestures_at(0.51, 1) == ["long"]  # still held
    opened.clock.set(0.7)
    pin.drive_high()
    assert opened.gestures_at(1.1, 0) == []


def test_slow_second_press_is_two_presses(factory: MockFactory, opened: Opened) -> None:
    pin = factory.pin(PIN)
    opened.tap(pin, 0.0)
    opened.tap(pin, 0.45)
    assert opened.gestures_at(1.0, 2) == ["press", "press"]


def test_no_pin_no_button() -> None:
    assert build_button(Config(), print) is None


# --------------------------------------------------------------------------- to the appliance


class _Quiet:
    def ready(self) -> None: ...
    def status(self, text: str) -> None: ...
    def watchdog(self) -> None: ...
    def stopping(self) -> None: ...


class _NoWake:
    """The wake word is not under test here; muting resets it."""

    def process(self, samples: Any) -> list[Any]:
        return []

    def pause(self) -> None: ...
    def resume(self, tail_seconds: float) -> None: ...
    def reset(self) -> None: ...

    near_threshold = False


def test_gestures_reach_the_appliance(factory: MockFactory) -> None:
    """Mock pin -> GestureButton -> button_action -> Appliance.button (its ButtonPressed event)."""
    emitted: list[ev.Event] = []
    parts = Parts(
        open_mic=None,  # type: ignore[arg-type]
        speaker=None,  # type: ignore[arg-type]
        detector=_NoWake(),
        new_session=None,  # type: ignore[arg-type]
        emit=emitted.append,
        notifier=_Quiet(),
    )
    app = Appliance(Config(), parts)
    app.sm.update(ready=True)
    got: queue.Queue[str] = queue.Queue()
    clock = FakeClock()
    o = Opened(_open(got.put, factory, clock), clock, got)
    pin = factory.pin(PIN)

    def deliver(t: float, count: int) -> None:
        for gesture in o.gestures_at(t, count):  # on the test's thread, as the loop would
            app.button(gesture, button_action(gesture, app.sm.state, app.sm.facts.approval_pending))

    try:
        clock.set(0.0)
        pin.drive_low()
        deliver(0.7, 1)
        pin.drive_high()
        assert app.sm.state == "muted"
        o.tap(pin, 1.0)
        deliver(1.5, 1)  # press while muted: nothing
        clock.set(2.0)
        pin.drive_low()
        deliver(2.7, 1)
        pin.drive_high()
        assert app.sm.state == "idle"
        o.tap(pin, 3.0)
        o.tap(pin, 3.1)
        deliver(3.6, 1)
        o.tap(pin, 4.0)
        deliver(4.5, 1)
    finally:
        o.close()
    pressed = [(e.gesture, e.action) for e in emitted if isinstance(e, ev.ButtonPressed)]
    assert pressed == [
        ("long", "mute_toggle"),
        ("press", "none"),
        ("long", "mute_toggle"),
        ("double", "none"),
        ("press", "wake"),
    ]
