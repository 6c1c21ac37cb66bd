"""The appliance: wake word -> realtime session -> answer -> countdown -> idle.

Threads meet the loop in one place: audio and player callbacks hop onto the
asyncio loop with ``call_soon_threadsafe``; everything after that runs on the
loop, so the state needs no locks. State is derived from facts
(``state.derive``), LED output from state (a pure function), and every
transition is reported through ``emit`` as an event.

Layout: app.py (the session: wake, connect, events, timers, button, agent
callbacks), core.py (shared state and outputs), microphone.py, speaker.py,
parts.py (what it is built from), failure.py (a failure on display), feedback.py
(sounds, LEDs), status.py (STATUS line, start-up summary).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .. import events as ev
from ..config import Config
from ..countdown import Expired, InactivityCountdown
from ..realtime.failures import RealtimeFailure
from ..vocab import PCM_RATE, ButtonAction, Gesture, busy_cause
from .failure import FailureHold
from .microphone import WAKE_RATE, MicrophoneMixin
from .parts import AgentsPort, Parts, SessionRun
from .speaker import SpeakerMixin
from .state import session_facts

__all__ = ["AgentsPort", "Appliance", "Parts"]

log = logging.getLogger("voicepi.appliance")

SESSION_RATE = PCM_RATE  # the session's (and sounds') PCM16 rate
# The wake word's score crosses the threshold a little after the word ends;
# start the session's audio this much before the detection point.
PREROLL_MARGIN_S = 0.1
CONNECT_GUARD_S = 10.0  # beyond connect_timeout: the session's own abort takes <= 5 s


class Appliance(MicrophoneMixin, SpeakerMixin):
    """Wake word -> session -> answer -> countdown -> idle, on one asyncio loop.

    ``run()`` until ``request_stop``; the state, countdown and outputs are in core.py,
    the microphone in microphone.py, the speaker callbacks and sounds in speaker.py.
    """

    # ================================================================ lifecycle

    async def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        self._loop = asyncio.get_running_loop()
        self._emit_state(self.sm.update())
        self._refresh_leds()
        self.parts.notifier.status("starting")
        self._open_mic()
        self._spawn(self._mic_monitor())
        self._spawn(self._timer())
        await self._stop.wait()
        await self._shutdown()
        return self.exit_code

    def apply_config(self, cfg: Config) -> None:
        """Take a reloaded config (restart-only keys already kept by the caller)."""
        old, self.cfg = self.cfg, cfg
        if cfg.audio.volume != old.audio.volume:
            self.parts.speaker.set_volume(cfg.audio.volume)
        self.led_output.invalidate()  # pattern or colour overrides may have changed
        self._refresh_leds()
        self._timer_kick.set()

    async def _shutdown(self) -> None:
        self.parts.notifier.stopping()
        self.parts.notifier.status("stopping")
        if self.run_ is not None:
            await self._end_session("shutdown")
        await self.sound_queue.let_finish()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=5.0)
            for task in stuck:
                log.error("task did not stop: %r", task)
        if self.mic is not None:
            self._release_handoff()
            self.mic.close()
            self.mic = None
        self.parts.speaker.close()
        if self.parts.leds is not None:
            self.parts.leds.close()

    # ================================================================ wake and sessions

    def _can_wake(self) -> bool:
        """Idle, or only showing a past session's failure (a new wake replaces it)."""
        f = self.sm.facts
        return self.sm.state == "idle" or (
            self.sm.state == "error" and not f.error and bool(f.failure) and f.ready
        )

    def _wake(self, model: str, score: float, end_sample: int | None) -> None:
        """Start a session; ``end_sample`` (16 kHz index) marks the wake word's end."""
        if self.run_ is not None or self.sm.facts.muted or self.path is None:
            return
        self.parts.emit(ev.WakeWordDetected(model=model, score=round(float(score), 4)))
        self.play_sound("wake")  # heard before the socket connects
        refusal = self.failures.refusal(self.parts.clock())
        if refusal is not None:
            # The server asked us to wait: fail at once, without a connection attempt.
            info = refusal
            self.parts.emit(ev.Error(error=info))
            self._show_failure(info, remember_retry=False)
            return
        try:
            session = self.parts.new_session()
        except Exception as exc:  # no key, a bad URL: a typed failure, never a traceback
            found = getattr(exc, "info", None)
            if isinstance(found, ev.ErrorInfo):
                info = found
            else:
                info = ev.ErrorInfo(
                    type="config_error", message=str(exc), code="bad_session", kind="config"
                )
            log.warning("cannot start a session: %s", info.message)
            self.parts.emit(ev.Error(error=info))
            self._show_failure(info)
            return
        if self.sm.facts.failure:
            self.failures.clear()
            self._emit_state(self.sm.update(failure=""))
        start = None
        if end_sample is not None:
            start = int((end_sample / WAKE_RATE - PREROLL_MARGIN_S) * SESSION_RATE)
        # A fresh countdown per session also picks up a reloaded [session] table.
        self.countdown = InactivityCountdown(
            self.cfg.session.inactivity_timeout, self.cfg.session.countdown
        )
        self.run_ = SessionRun(session=session, started=self.parts.clock())
        # No parking until the session closes: every answer starts on a running stream
        # whose echo reference is in its steady state.
        self.parts.speaker.keep_running(True)
        self._set_backlog_limit()
        # Buffered by the engine until the session is configured: nothing said is lost.
        session.send_audio(self.path.start_session(start).tobytes())
        self._emit_state(self.sm.update(session="connecting"))
        self._refresh_leds()
        self._update_status()
        self.run_.task = self._spawn(self._session_main(self.run_))

    async def _session_main(self, run: SessionRun) -> None:
        stop_reason = "closed"
        # Events are read while connecting, so agent_starting is logged at the wake and
        # a failed connect's typed error and agent_stopped(connect_failed) are too.
        connecting = asyncio.ensure_future(self._connect(run))
        try:
            async for event in run.session:
                if isinstance(event, ev.AgentStopped):
                    stop_reason = event.reason
                self._on_session_event(run, event)
        except Exception as exc:
            log.warning("session failed: %s", exc)
            self._error("session_failed", str(exc) or type(exc).__name__)
            run.close_reason = run.close_reason or "error"
            with contextlib.suppress(Exception):
                await run.session.close()
        finally:
            if not connecting.done():
                connecting.cancel()
            await asyncio.wait({connecting})
            if run.close_reason is None:
                failed = stop_reason in ("connection_lost", "connect_failed") or run.failure
                run.close_reason = "error" if failed else "server_closed"
            self._session_finished(run)

    async def _connect(self, run: SessionRun) -> None:
        try:
            # The session applies connect_timeout itself and reports a typed failure on
            # the event stream; this outer guard only catches a connect() that never returns.
            await asyncio.wait_for(
                run.session.connect(), self.cfg.realtime.connect_timeout + CONNECT_GUARD_S
            )
        except RealtimeFailure as exc:
            log.debug("connect failed: %s", exc)  # its typed error is on the event stream
        except Exception as exc:
            if run.failure is None:
                # A connect() that raised without a typed failure on its stream (the outer
                # guard, another Session): still one error the owner sees.
                info = ev.ErrorInfo(
                    type="network_error",
                    message=str(exc) or type(exc).__name__,
                    code="connect_failed",
                    kind="network",
                )
                run.failure = info
                self.parts.emit(ev.Error(error=info))
            log.debug("connect failed: %s", exc)
            with contextlib.suppress(Exception):
                await run.session.close()

    def _session_finished(self, run: SessionRun) -> None:
        if self.run_ is not run:
            return
        self.run_ = None
        if self.path is not None:
            self.path.end_session()  # idle again: no session-rate conversion
        self._set_backlog_limit()
        self._end_when_drained = False
        self.parts.speaker.flush()
        self.parts.speaker.keep_running(False)
        self._remaining = None
        self.sound_queue.flushed()
        reason = run.close_reason or "server_closed"
        self.parts.emit(ev.SessionClosed(reason=reason))
        self._reset_detector()
        if run.failure is not None:
            self._hold_failure(run.failure)  # one transition: straight to error, then idle
        # A typed failure is heard as the error sound whatever the close reason says.
        self.sound_queue.play_close("error" if run.failure is not None else reason)
        self._emit_state(
            self.sm.update(
                session="none",
                user_speaking=False,
                awaiting_response=False,
                response_active=False,
                playing=False,
                approval_pending=False,
                tools_running=0,
                failure=FailureHold.text(run.failure) if run.failure else "",
            )
        )
        self._refresh_leds()
        self._update_status()
        self.sessions_done += 1
        if self.max_sessions is not None and self.sessions_done >= self.max_sessions:
            self.request_stop(0)

    async def _end_session(self, reason: ev.CloseReason) -> None:
        run = self.run_
        if run is None:
            return
        run.close_reason = run.close_reason or reason
        with contextlib.suppress(Exception):
            await run.session.close()
        if run.task is not None and run.task is not asyncio.current_task():
            # asyncio.wait never raises the task's outcome, and never swallows our own
            # cancellation (a suppressed CancelledError here once hung the shutdown).
            await asyncio.wait({run.task}, timeout=5.0)
        self._session_finished(run)

    # ================================================================ session events

    def _on_session_event(self, run: SessionRun, event: ev.Event) -> None:
        now = self.parts.clock()
        cd = self.countdown
        out: list[ev.Event] = []
        match event:
            case ev.Error(error=info) if info.kind is not None and run.failure is None:
                # A typed failure (failures.py) ends the session: shown, then idle.
                run.failure = info
                log.warning(
                    "session failure: kind=%s code=%s: %s", info.kind, info.code, info.message
                )
                if run.connected and self.run_ is run:
                    self._spawn(self._end_session("error"))
            case ev.SessionConnected():
                run.connected = True
                cd.start(now)
                self._emit_state(self.sm.update(session="connected"))
            case ev.UserStartedSpeaking():
                out += cd.set_busy(busy_cause("user_speaking"), True, now)
            case ev.UserStoppedSpeaking():
                out += cd.set_busy(busy_cause("user_speaking"), False, now)
            case ev.AgentStart():
                out += cd.set_busy(busy_cause("response"), True, now)
            case ev.AgentEnd():
                out += cd.set_busy(busy_cause("response"), False, now)
            case ev.Audio(item_id=item_id, data=data):
                self.parts.speaker.write(item_id, data)
            case ev.AudioStopped(item_id=item_id):
                self.parts.speaker.end_of_item(item_id)
            case ev.AudioInterrupted():
                self._flush_speaker(run)
            # Busy is counted by identity: each call, approval and item on its own, so
            # the first of two parallel tools to finish does not start the countdown.
            case ev.AgentToolStart(call_id=call_id):
                run.tools_running.add(call_id)
                out += cd.set_busy(busy_cause("tool", call_id), True, now)
                self._emit_state(self.sm.update(tools_running=len(run.tools_running)))
            case ev.AgentToolEnd(call_id=call_id):
                run.tools_running.discard(call_id)
                out += cd.set_busy(busy_cause("tool", call_id), False, now)
                self._emit_state(self.sm.update(tools_running=len(run.tools_running)))
            case ev.ToolApprovalRequested(approval_id=approval_id) if self.parts.agents is None:
                out += cd.set_busy(busy_cause("approval", approval_id), True, now)
                self._emit_state(self.sm.update(approval_pending=True))
            case ev.UserTranscript() | ev.AssistantTranscript():
                out += cd.activity(event.type, now)
            case _:
                pass
        changes = session_facts(event)
        if changes:
            self._emit_state(self.sm.update(**changes))
        if not isinstance(event, ev.Audio):  # transport events: the log keeps them at debug
            self.parts.emit(event)
        self._emit_countdown(out)
        self._refresh_leds()
        self._timer_kick.set()

    def speaker_callbacks(self) -> _SpeakerBridge:
        return _SpeakerBridge(self)

    # ================================================================ timers

    async def _timer(self) -> None:
        """Countdown announcements, inactivity close, and the max_session limit."""
        while not self._stop.is_set():
            now = self.parts.clock()
            wakeups: list[float] = []
            run = self.run_
            if run is not None and run.connected:
                nxt = self.countdown.next_wakeup(now)
                if nxt is not None:
                    wakeups.append(nxt)
                wakeups.append(run.started + self.cfg.session.max_session)
            if self.sm.state not in ("idle", "starting", "error", "muted"):
                wakeups.append(now + 5.0)  # keep STATUS "in session N s" fresh
            if self.failures.until is not None:
                wakeups.append(self.failures.until)
            delay = max(0.0, min(wakeups) - now) if wakeups else 3600.0
            self._timer_kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_kick.wait(), delay)
            await self._timer_fire()

    async def _timer_fire(self) -> None:
        if self.failures.expired(self.parts.clock()):
            self.failures.clear()
            self._emit_state(self.sm.update(failure=""))
            self._refresh_leds()
            self._update_status()
        run = self.run_
        if run is None or not run.connected:
            return
        now = self.parts.clock()
        if now >= run.started + self.cfg.session.max_session:
            await self._end_session("max_duration")
            return
        for item in self.countdown.poll(now):
            if isinstance(item, Expired):
                await self._end_session("inactivity")
                return
            self._emit_countdown([item])
        self._update_status()

    # ================================================================ button

    def button(self, gesture: Gesture, action: ButtonAction) -> None:
        """A recognised button gesture and the action the button map chose for it."""
        self.parts.emit(ev.ButtonPressed(gesture=gesture, action=action))
        now = self.parts.clock()
        if self.run_ is not None:
            self._emit_countdown(self.countdown.activity("button", now))
        if action == "wake":
            if self.path is not None:
                self._wake("button", 1.0, None)
        elif action == "interrupt":
            if self.run_ is not None:
                self.run_.session.interrupt()
                self._flush_speaker(self.run_)
        elif action == "end_session":
            self._spawn(self._end_session("button"))
        elif action == "mute_toggle":
            self.set_muted(not self.sm.facts.muted)
        elif action in ("approve", "reject") and self.parts.agents is not None:
            if action == "approve":
                self.parts.agents.approve()
            else:
                self.parts.agents.reject()
        self._timer_kick.set()

    # ================================================================ agent callbacks

    def set_volume(self, percent: int) -> None:
        self.parts.speaker.set_volume(max(0, min(100, int(percent))))

    def stop_playback(self) -> None:
        """A guardrail tripped: the engine truncates; the speaker goes quiet now."""
        if self.run_ is not None:
            self._flush_speaker(self.run_)

    def set_approval_pending(self, pending: bool) -> None:
        if self.run_ is None and pending:
            return
        self._set_busy(busy_cause("approval"), pending, approval_pending=pending)

    def end_session(self) -> None:
        """The end_session tool: called once the goodbye has played."""
        if self.run_ is None:
            return
        if self.sm.facts.playing:
            # The player reports an item finished and then that it drained, as two hops
            # from its thread: on a busy CPU the close could overtake the drain and the
            # session closed while still "speaking". Close on the drain instead.
            self._end_when_drained = True
            return
        self._spawn(self._end_session("end_session"))

    def set_muted(self, muted: bool) -> None:
        if muted and self.run_ is not None:
            self._spawn(self._end_session("button"))
        self._emit_state(self.sm.update(muted=muted))
        self._reset_detector()
        self._refresh_leds()
        self._update_status()


class _SpeakerBridge:
    """Player callbacks from the audio thread, hopped onto the appliance's loop."""

    def __init__(self, app: Appliance) -> None:
        self.app = app

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self.app._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def on_started(self, item_id: str) -> None:
        self._call(self.app.speaker_started, item_id)

    def on_progress(self, item_id: str, samples_played: int) -> None:
        self._call(self.app.speaker_progress, item_id, samples_played)

    def on_finished(self, item_id: str) -> None:
        self._call(self.app.speaker_finished, item_id)

    def on_drained(self) -> None:
        self._call(self.app._speaker_drained)
