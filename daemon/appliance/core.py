"""The appliance's state and outputs: facts -> state, countdown, LEDs, STATUS, errors.

``ApplianceCore`` holds what every part of the appliance reads and writes (config,
parts, the state machine, the running session) and the outputs they share; the
microphone (microphone.py), the speaker (speaker.py) and the session logic
(app.py) build on it. Everything here runs on the asyncio loop: no locks.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .. import events as ev
from ..config import Config
from ..countdown import InactivityCountdown
from .audio_path import AudioPath
from .failure import FailureHold
from .feedback import LedOutput, SoundQueue
from .handoff import FrameHandoff
from .parts import Parts, SessionRun
from .ports import Mic
from .state import ApplianceStateMachine
from .status import status_text

log = logging.getLogger("voicepi.appliance")


class ApplianceCore:
    """The appliance's shared state and outputs; ``Appliance`` (app.py) is the whole."""

    def __init__(self, cfg: Config, parts: Parts, *, max_sessions: int | None = None) -> None:
        self.cfg = cfg
        self.parts = parts
        self.max_sessions = max_sessions
        self.sm = ApplianceStateMachine()
        self.countdown = InactivityCountdown(cfg.session.inactivity_timeout, cfg.session.countdown)
        self.path: AudioPath | None = None
        self.mic: Mic | None = None
        self.run_: SessionRun | None = None
        self.sessions_done = 0
        self.exit_code = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._timer_kick = asyncio.Event()
        self._last_frame = 0.0
        self._last_watchdog = 0.0
        self._end_when_drained = False  # end_session came before the speaker's drain hop
        self._handoff: FrameHandoff | None = None
        self._idle_hold = 0  # the handoff's hold_samples while idle (device-rate samples)
        self.audio_dropped_samples = 0  # microphone audio dropped because the CPU fell behind
        self._dropped_logged_at: float | None = None
        self._dropped_unlogged = 0  # since the last warning (logged at most every 10 s)
        self._frames_seen = False
        self._ready_sent = False
        self._remaining: int | None = None
        self.led_output = LedOutput(parts.leds, parts.led_pattern, parts.emit)
        self._mic_failed_at: float | None = None
        self._mic_fault = asyncio.Event()  # wakes the mic monitor at a failure
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake_offset = 0  # path.wake_total when the detector was last reset
        self.failures = FailureHold()  # a failure on display, a Retry-After to respect
        self.sound_queue = SoundQueue(
            parts.speaker,
            parts.sounds,
            lambda name: str(getattr(self.cfg.sounds, name)),
            parts.emit,
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def request_stop(self, exit_code: int = 0) -> None:
        self.exit_code = self.exit_code or exit_code
        self._stop.set()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("internal task failed: %r", exc, exc_info=exc)
            self._error("internal_error", repr(exc))

    # ================================================================ outputs

    def _emit_state(self, changes: list[ev.StateChanged]) -> None:
        for change in changes:
            self.parts.emit(change)
        if changes:
            self._update_status()

    def _error(self, kind: str, message: str) -> None:
        self.parts.emit(ev.Error(error=ev.ErrorInfo(type=kind, message=message)))

    def _show_failure(self, info: ev.ErrorInfo, *, remember_retry: bool = True) -> None:
        """A wake that failed before any session: the error state and LED for ERROR_HOLD_S,
        then idle, and the error sound."""
        self._hold_failure(info, remember_retry=remember_retry)
        self.sound_queue.play("error")
        self._emit_state(self.sm.update(failure=FailureHold.text(info)))
        self._refresh_leds()
        self._update_status()

    def _hold_failure(self, info: ev.ErrorInfo, *, remember_retry: bool = True) -> None:
        """Start the failure's display time; remember a rate limit's Retry-After."""
        self.failures.hold(info, self.parts.clock(), remember_retry=remember_retry)
        self._timer_kick.set()

    def _set_busy(self, cause: str, busy: bool, **facts: Any) -> None:
        """A cause of activity began or ended outside the session's events: the countdown,
        the state, the LEDs and the timers all hear of it."""
        self._emit_countdown(self.countdown.set_busy(cause, busy, self.parts.clock()))
        self._emit_state(self.sm.update(**facts))
        self._refresh_leds()
        self._timer_kick.set()

    def _refresh_leds(self) -> None:
        facts = self.sm.facts
        inputs = {
            "state": self.sm.state,
            "countdown": self._remaining,
            "muted": facts.muted,
            "error": bool(facts.error or facts.failure),
            "approval_pending": facts.approval_pending,
        }
        self.led_output.show(inputs)

    def _update_status(self) -> None:
        run = self.run_
        self.parts.notifier.status(
            status_text(
                self.sm.state,
                self.sm.facts,
                self.parts.wake_names,
                None if run is None else run.started,
                self.parts.clock,
            )
        )

    def _emit_countdown(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.UserInactivityCountdown):
                self._remaining = event.remaining_seconds
            elif isinstance(event, ev.CountdownCancelled):
                self._remaining = None
            self.parts.emit(event)
        if events:
            self._refresh_leds()
