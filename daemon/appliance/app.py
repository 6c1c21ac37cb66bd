"""The appliance: wake word -> realtime session -> answer -> countdown -> idle.

Threads meet the loop in one place: audio and player callbacks hop onto the
asyncio loop with ``call_soon_threadsafe``; everything after that runs on the
loop, so the state needs no locks. State is derived from facts
(``state.derive``), LED output from state (a pure function), and every
transition is reported through ``emit`` as an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from .. import events as ev
from ..config import Config
from ..countdown import Expired, InactivityCountdown
from ..realtime.failures import RealtimeFailure
from ..sounds import CLOSE_SOUNDS, SOUND_ITEM_PREFIX, is_sound_item
from .audio_path import AudioPath
from .handoff import FrameHandoff
from .ports import Leds, Mic, MicFactory, Notifier, Session, Speaker, WakeDetector
from .state import ApplianceStateMachine, session_facts

log = logging.getLogger("voicepi.appliance")

SESSION_RATE = 24000
WAKE_RATE = 16000
# The wake word's score crosses the threshold a little after the word ends;
# start the session's audio this much before the detection point.
PREROLL_MARGIN_S = 0.1
MIC_STALL_S = 3.0  # no frames for this long means the microphone is gone
# Microphone audio the loop may lag behind before the oldest is dropped. Idle, stale audio is
# worth nothing (a wake word heard late); in a session every word counts, so a stall (a
# connect, a busy moment) is caught up instead, still bounded (30 s is about 1 MB).
MAX_AUDIO_BACKLOG_S = 0.5
MAX_SESSION_AUDIO_BACKLOG_S = 30.0
AUDIO_BATCH_S = 0.1  # microphone audio handled per loop callback (signals get in between)
MIC_GIVE_UP_S = 30.0  # not recovered by then: exit so systemd restarts us
WATCHDOG_EVERY_S = 2.0
CONNECT_GUARD_S = 10.0  # beyond connect_timeout: the session's own abort takes <= 5 s
ERROR_HOLD_S = 3.0  # a session failure shows the error state and LED this long, then idle


class AgentsPort(Protocol):
    def approve(self) -> bool: ...

    def reject(self) -> bool: ...

    def playback_progress(self, item_id: str, samples_played: int) -> None: ...

    def playback_finished(self, item_id: str) -> None: ...


@dataclass
class Parts:
    """Everything the appliance drives, wired by the CLI or a test."""

    open_mic: MicFactory
    speaker: Speaker
    detector: WakeDetector
    new_session: Callable[[], Session]
    emit: Callable[[ev.Event], None]
    notifier: Notifier
    leds: Leds | None = None
    led_pattern: Callable[[dict[str, Any]], Any] | None = None  # LedInput fields -> pattern
    clock: Callable[[], float] = time.monotonic
    wake_names: tuple[str, ...] = ("hey_jarvis",)
    # daemon.agents.AgentRuntime: approvals, and playback reports for end_session.
    agents: AgentsPort | None = None
    api_key_found: bool | None = None  # for the start-up summary (never the key itself)
    # Feedback sounds by name (daemon.sounds.load_sounds): int16 mono at 24 kHz.
    sounds: dict[ev.SoundName, np.ndarray] = field(default_factory=dict)
    # The mic's thread may wait for the loop instead of its audio being dropped when the
    # loop falls behind (FrameHandoff ``wait``): only a file: mic, whose thread is its own.
    paced_mic: bool = False


@dataclass
class _SessionRun:
    session: Session
    started: float
    task: asyncio.Task[None] | None = None
    close_reason: ev.CloseReason | None = None
    connected: bool = False
    items_playing: set[str] = field(default_factory=set)
    tools_running: set[str] = field(default_factory=set)  # call ids
    failure: ev.ErrorInfo | None = None  # the typed failure that ends this session


class Appliance:
    def __init__(self, cfg: Config, parts: Parts, *, max_sessions: int | None = None) -> None:
        self.cfg = cfg
        self.parts = parts
        self.max_sessions = max_sessions
        self.sm = ApplianceStateMachine()
        self.countdown = InactivityCountdown(cfg.session.inactivity_timeout, cfg.session.countdown)
        self.path: AudioPath | None = None
        self.mic: Mic | None = None
        self.run_: _SessionRun | None = None
        self.sessions_done = 0
        self.exit_code = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._timer_kick = asyncio.Event()
        self._last_frame = 0.0
        self._last_watchdog = 0.0
        self._end_when_drained = False  # end_session came before the speaker's drain hop
        self._handoff: FrameHandoff | None = None
        self.audio_dropped_samples = 0  # microphone audio dropped because the CPU fell behind
        self._dropped_logged_at: float | None = None
        self._dropped_unlogged = 0  # since the last warning (logged at most every 10 s)
        self._frames_seen = False
        self._ready_sent = False
        self._remaining: int | None = None
        self._led_key: tuple[Any, ...] | None = None
        self._mic_failed_at: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake_offset = 0  # path.wake_total when the detector was last reset
        self._failure_until: float | None = None  # the failure shown until then
        # A rate limit's Retry-After: wakes before this fail at once, no connection attempt.
        self._retry_at: float | None = None
        self._retry_info: ev.ErrorInfo | None = None
        self._sound_seq = 0
        self._sounds_queued: set[str] = set()  # sound items not yet played out
        self._sounds_done = asyncio.Event()  # set while no sound is queued
        self._sounds_done.set()

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
        self._led_key = None  # pattern or colour overrides may have changed
        self._refresh_leds()
        self._timer_kick.set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def request_stop(self, exit_code: int = 0) -> None:
        self.exit_code = self.exit_code or exit_code
        self._stop.set()

    async def _shutdown(self) -> None:
        self.parts.notifier.stopping()
        self.parts.notifier.status("stopping")
        if self.run_ is not None:
            await self._end_session("shutdown")
        await self._let_sounds_finish()
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

    # ================================================================ microphone

    def _open_mic(self) -> bool:
        loop = self._loop
        assert loop is not None

        # Bounded: a starved CPU drops old audio (reported) instead of processing it late.
        start_limit = int(WAKE_RATE * MAX_AUDIO_BACKLOG_S)  # until the rate is known
        handoff = FrameHandoff(
            loop, self._on_audio, self._on_audio_dropped, start_limit, wait=self.parts.paced_mic
        )

        def on_error(exc: BaseException) -> None:
            loop.call_soon_threadsafe(self._on_mic_error, exc)

        try:
            self.mic = self.parts.open_mic(handoff.put, on_error)
        except Exception as exc:  # a missing device is an error state, not a crash
            self._on_mic_error(exc)
            return False
        handoff.batch_samples = int(self.mic.rate * AUDIO_BATCH_S)
        self._handoff = handoff
        self._set_backlog_limit()
        self.path = AudioPath(self.mic.rate, WAKE_RATE, SESSION_RATE, self.cfg.session.preroll)
        self._last_frame = self.parts.clock()
        self._frames_seen = False
        return True

    def _on_mic_error(self, exc: BaseException) -> None:
        if self.mic is None and self._mic_failed_at is not None:
            return  # already recovering
        if self.mic is not None:
            self._release_handoff()
            with contextlib.suppress(Exception):
                self.mic.close()
            self.mic = None
        if self._mic_failed_at is not None:
            # A reopen attempt failed again before any frame: the fault is already shown
            # and logged once; the monitor keeps retrying until it gives up.
            log.debug("microphone still unavailable: %s", exc)
            return
        now = self.parts.clock()  # logged once, as the error event below
        if self._mic_failed_at is None:
            self._mic_failed_at = now
        self._error("microphone_unavailable", str(exc) or type(exc).__name__)
        self._emit_state(self.sm.update(error="microphone unavailable"))
        self._refresh_leds()
        self.parts.notifier.status("microphone unavailable, retrying")
        if self.run_ is not None:
            self._spawn(self._end_session("error"))

    async def _mic_monitor(self) -> None:
        """Detect stalls, reopen a failed mic with backoff, give up after 30 s."""
        backoff = 0.5
        while not self._stop.is_set():
            await asyncio.sleep(0.25)
            now = self.parts.clock()
            if self.mic is not None and now - self._last_frame > MIC_STALL_S:
                self._on_mic_error(TimeoutError(f"no audio for {MIC_STALL_S:g} s"))
            if self.mic is not None or self._mic_failed_at is None:
                backoff = 0.5
                continue
            if now - self._mic_failed_at > MIC_GIVE_UP_S:
                log.error("microphone not recovered in %g s; exiting", MIC_GIVE_UP_S)
                self.parts.notifier.status("microphone unavailable, giving up")
                self.request_stop(1)
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 4.0)
            self._open_mic()

    def _release_handoff(self) -> None:
        """Before closing the mic: a paced mic's thread may be waiting for the loop."""
        if self._handoff is not None:
            self._handoff.close()

    def _set_backlog_limit(self) -> None:
        if self._handoff is None or self.mic is None:
            return
        seconds = MAX_AUDIO_BACKLOG_S if self.run_ is None else MAX_SESSION_AUDIO_BACKLOG_S
        self._handoff.max_samples = int(self.mic.rate * seconds)  # read by the audio thread

    def _on_audio_dropped(self, samples: int) -> None:
        """The loop fell more than MAX_AUDIO_BACKLOG_S behind the microphone."""
        self.audio_dropped_samples += samples
        self._dropped_unlogged += samples
        now = self.parts.clock()
        if self._dropped_logged_at is None or now - self._dropped_logged_at >= 10.0:
            self._dropped_logged_at = now
            rate = self.mic.rate if self.mic is not None else WAKE_RATE
            log.warning(
                "CPU too slow for real time: dropped %d ms of microphone audio (%d ms so far)",
                self._dropped_unlogged * 1000 // rate,
                self.audio_dropped_samples * 1000 // rate,
            )
            self._dropped_unlogged = 0

    def _on_audio(self, samples: np.ndarray) -> None:
        if self.path is None or self.mic is None or self._stop.is_set():
            return  # stopping: a backlog of wake word scoring must not delay the exit
        now = self.parts.clock()
        self._last_frame = now
        if now - self._last_watchdog >= WATCHDOG_EVERY_S:
            self._last_watchdog = now
            self.parts.notifier.watchdog()  # fed only while frames really flow
        if not self._frames_seen:
            self._frames_seen = True
            self._mic_recovered()
        wake, sess = self.path.feed(samples)
        facts = self.sm.facts
        if facts.muted:
            return
        if self.run_ is not None:
            self._stream_to_session(sess)
        elif self._can_wake() and len(wake):
            for det in self.parts.detector.process(wake):
                self._wake(det.model, det.score, self._wake_offset + det.end_sample)
                break

    def _mic_recovered(self) -> None:
        if self._mic_failed_at is not None:
            log.info("microphone recovered")
        self._mic_failed_at = None
        self._reset_detector()
        self._emit_state(self.sm.update(ready=True, error=""))
        self._refresh_leds()
        self._update_status()
        if not self._ready_sent:
            self._ready_sent = True
            self._log_summary()
            self.parts.notifier.ready()

    def _log_summary(self) -> None:
        """One info record of what started: the first thing to read in a bug report."""
        from .. import __version__

        mic, spk, det = self.mic, self.parts.speaker, self.parts.detector
        names = getattr(det, "names", self.parts.wake_names)
        thresholds = getattr(det, "thresholds", ())
        wake = ", ".join(
            f"{n}>={t:g}" if isinstance(t, float) else n
            for n, t in itertools.zip_longest(names, thresholds[: len(names)])
        )
        rt = self.cfg.realtime
        key = {True: "found", False: "not found", None: "not needed"}[self.parts.api_key_found]
        log.info(
            "voicepi %s ready: mic %r %s Hz %s ch; speaker %r %s Hz %s ch; wake %s; "
            "realtime %s model %s; barge-in %s; API key %s",
            __version__,
            getattr(mic, "name", self.cfg.audio.input),
            getattr(mic, "rate", "?"),
            getattr(mic, "channels", "?"),
            getattr(spk, "name", self.cfg.audio.output),
            getattr(spk, "rate", "?"),
            getattr(spk, "channels", 1),
            wake,
            urlsplit(rt.url).netloc,
            rt.model,
            self.cfg.audio.barge_in,
            key,
        )

    def _reset_detector(self) -> None:
        # Detections count samples since the reset; remember where that was on our timeline.
        self._wake_offset = self.path.wake_total if self.path is not None else 0
        self.parts.detector.reset()

    def _stream_to_session(self, pcm: np.ndarray) -> None:
        run = self.run_
        assert run is not None and self.path is not None
        mode = self.cfg.audio.barge_in
        if self.sm.facts.playing and mode != "voice":
            # Half duplex ("button") or a gate louder than the playback: silence keeps the
            # server's audio clock continuous while the device hears itself.
            margin = self.cfg.audio.gate_margin_db
            loud = self.path.level_db(pcm) > self.parts.speaker.level_db + margin
            if mode == "button" or not loud:
                pcm = np.zeros_like(pcm)
        run.session.send_audio(pcm.tobytes())

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
        now = self.parts.clock()
        if self._retry_at is not None and now < self._retry_at and self._retry_info:
            # The server asked us to wait: fail at once, without a connection attempt.
            left = self._retry_at - now
            info = dataclasses.replace(
                self._retry_info,
                message=f"{self._retry_info.message} (retry in {math.ceil(left)} s)",
                retry_after=round(left, 1),
            )
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
            self._failure_until = None
            self._emit_state(self.sm.update(failure=""))
        start = None
        if end_sample is not None:
            start = int((end_sample / WAKE_RATE - PREROLL_MARGIN_S) * SESSION_RATE)
        # A fresh countdown per session also picks up a reloaded [session] table.
        self.countdown = InactivityCountdown(
            self.cfg.session.inactivity_timeout, self.cfg.session.countdown
        )
        self.run_ = _SessionRun(session=session, started=self.parts.clock())
        self._set_backlog_limit()
        # Buffered by the engine until the session is configured: nothing said is lost.
        session.send_audio(self.path.start_session(start).tobytes())
        self._emit_state(self.sm.update(session="connecting"))
        self._refresh_leds()
        self._update_status()
        self.run_.task = self._spawn(self._session_main(self.run_))

    async def _session_main(self, run: _SessionRun) -> None:
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

    async def _connect(self, run: _SessionRun) -> None:
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

    def _session_finished(self, run: _SessionRun) -> None:
        if self.run_ is not run:
            return
        self.run_ = None
        if self.path is not None:
            self.path.end_session()  # idle again: no session-rate conversion
        self._set_backlog_limit()
        self._end_when_drained = False
        self.parts.speaker.flush()
        self._remaining = None
        self._sounds_flushed()
        reason = run.close_reason or "server_closed"
        self.parts.emit(ev.SessionClosed(reason=reason))
        self._reset_detector()
        if run.failure is not None:
            self._hold_failure(run.failure)  # one transition: straight to error, then idle
        # A typed failure is heard as the error sound whatever the close reason says.
        self._play_close_sound("error" if run.failure is not None else reason)
        self._emit_state(
            self.sm.update(
                session="none",
                user_speaking=False,
                awaiting_response=False,
                response_active=False,
                playing=False,
                approval_pending=False,
                tools_running=0,
                failure=self._failure_text(run.failure) if run.failure else "",
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

    def _on_session_event(self, run: _SessionRun, event: ev.Event) -> None:
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
                out += cd.set_busy("user_speaking", True, now)
            case ev.UserStoppedSpeaking():
                out += cd.set_busy("user_speaking", False, now)
            case ev.AgentStart():
                out += cd.set_busy("response", True, now)
            case ev.AgentEnd():
                out += cd.set_busy("response", False, now)
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
                out += cd.set_busy(f"tool:{call_id}", True, now)
                self._emit_state(self.sm.update(tools_running=len(run.tools_running)))
            case ev.AgentToolEnd(call_id=call_id):
                run.tools_running.discard(call_id)
                out += cd.set_busy(f"tool:{call_id}", False, now)
                self._emit_state(self.sm.update(tools_running=len(run.tools_running)))
            case ev.ToolApprovalRequested(approval_id=approval_id) if self.parts.agents is None:
                out += cd.set_busy(f"approval:{approval_id}", True, now)
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

    def _flush_speaker(self, run: _SessionRun) -> None:
        played = self.parts.speaker.flush()
        self._sounds_flushed()
        for item_id, samples in played.items():
            if not is_sound_item(item_id):  # a sound is never model output to truncate
                run.session.playback_progress(item_id, samples)
        self._speaker_drained()

    # ================================================================ speaker callbacks
    # The player calls these from its audio thread; ``speaker_callbacks`` hops them here.

    def speaker_started(self, item_id: str) -> None:
        if is_sound_item(item_id):
            self.parts.detector.pause()  # the device must not score its own sounds
            return
        run = self.run_
        if run is None:
            return
        run.items_playing.add(item_id)
        self.parts.detector.pause()
        self._set_busy(f"playing:{item_id}", True, playing=True)

    def speaker_progress(self, item_id: str, samples: int) -> None:
        if self.run_ is None or is_sound_item(item_id):
            return
        if self.parts.agents is not None:
            self.parts.agents.playback_progress(item_id, samples)  # forwards to the session
        else:
            self.run_.session.playback_progress(item_id, samples)

    def speaker_finished(self, item_id: str) -> None:
        if is_sound_item(item_id):
            self._sounds_queued.discard(item_id)
            if not self._sounds_queued:
                self._sounds_done.set()
            return
        if self.run_ is None:
            return
        self.run_.items_playing.discard(item_id)
        self._set_busy(f"playing:{item_id}", False)
        if self.parts.agents is not None:
            self.parts.agents.playback_finished(item_id)
        else:
            self.run_.session.playback_finished(item_id)

    def _speaker_drained(self) -> None:
        self.parts.detector.resume(self.cfg.wakeword.speaking_tail)
        if self._end_when_drained:
            self._end_when_drained = False
            if self.run_ is not None:
                self._spawn(self._end_session("end_session"))
        if not self.sm.facts.playing:
            return
        run = self.run_
        for item_id in run.items_playing if run is not None else ():
            self._set_busy(f"playing:{item_id}", False)
        if run is not None:
            run.items_playing.clear()
        self._set_busy("playing", False, playing=False)

    def speaker_callbacks(self) -> _SpeakerBridge:
        return _SpeakerBridge(self)

    # ================================================================ sounds

    def play_sound(self, name: ev.SoundName) -> None:
        """Queue the feedback sound ``name`` on the speaker (nothing if it is off).

        It is a player item of its own, so answer items keep exact played counts; the
        speaker callbacks keep it away from the session and from the ``speaking`` state.
        """
        pcm = self.parts.sounds.get(name)
        if pcm is None:
            return
        self._sound_seq += 1
        item_id = f"{SOUND_ITEM_PREFIX}{name}-{self._sound_seq}"
        try:
            self.parts.speaker.write(item_id, pcm.tobytes())
            self.parts.speaker.end_of_item(item_id)
        except Exception as exc:  # a failing speaker must not stop the wake or the close
            log.warning("sound %s not played: %s", name, exc)
            return
        self._sounds_queued.add(item_id)
        self._sounds_done.clear()
        source = getattr(self.cfg.sounds, name)
        self.parts.emit(
            ev.SoundPlayed(name=name, source=source, duration_ms=len(pcm) * 1000 // SESSION_RATE)
        )

    def _play_close_sound(self, reason: ev.CloseReason) -> None:
        """The end or error sound for a session that closed for ``reason``."""
        name = CLOSE_SOUNDS.get(reason)
        if name is not None:
            self.play_sound(name)

    def _sounds_flushed(self) -> None:
        self._sounds_queued.clear()
        self._sounds_done.set()

    async def _let_sounds_finish(self) -> None:
        """At shutdown (e.g. the demo's last close), let a queued sound play out, bounded."""
        longest = max((len(p) for p in self.parts.sounds.values()), default=0) / SESSION_RATE
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._sounds_done.wait(), longest + 1.0)

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
            if self._failure_until is not None:
                wakeups.append(self._failure_until)
            delay = max(0.0, min(wakeups) - now) if wakeups else 3600.0
            self._timer_kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_kick.wait(), delay)
            await self._timer_fire()

    async def _timer_fire(self) -> None:
        if self._failure_until is not None and self.parts.clock() >= self._failure_until:
            self._failure_until = None
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

    def _emit_countdown(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.UserInactivityCountdown):
                self._remaining = event.remaining_seconds
            elif isinstance(event, ev.CountdownCancelled):
                self._remaining = None
            self.parts.emit(event)
        if events:
            self._refresh_leds()

    # ================================================================ button

    def button(self, gesture: str, action: str) -> None:
        """A recognised button gesture and the action the button map chose for it."""
        self.parts.emit(ev.ButtonPressed(gesture=gesture, action=action))  # type: ignore[arg-type]
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
        self._set_busy("approval", pending, approval_pending=pending)

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
        self.play_sound("error")
        self._emit_state(self.sm.update(failure=self._failure_text(info)))
        self._refresh_leds()
        self._update_status()

    @staticmethod
    def _failure_text(info: ev.ErrorInfo) -> str:
        return f"{info.kind or 'session'} error ({info.code or info.type})"

    def _hold_failure(self, info: ev.ErrorInfo, *, remember_retry: bool = True) -> None:
        """Start the failure's display time; remember a rate limit's Retry-After."""
        now = self.parts.clock()
        if remember_retry and info.kind == "rate_limit" and info.retry_after:
            self._retry_at = now + info.retry_after
            self._retry_info = dataclasses.replace(info, retry_after=None)
        self._failure_until = now + ERROR_HOLD_S
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
        key = tuple(inputs.values())
        if key == self._led_key or self.parts.led_pattern is None:
            return
        self._led_key = key
        pattern = self.parts.led_pattern(inputs)
        if self.parts.leds is not None:
            try:
                self.parts.leds.show(pattern)
            except Exception as exc:  # a failing LED driver never takes the speaker down
                log.warning("LED driver failed: %s", exc)
        name = getattr(pattern, "name", str(pattern))
        color = getattr(pattern, "color_hex", "")
        self.parts.emit(ev.LedChanged(pattern=name, color=color))

    def _update_status(self) -> None:
        state = self.sm.state
        if state == "idle":
            names = " or ".join(n.replace("_", " ") for n in self.parts.wake_names)
            text = f"listening for {names}"
        elif state == "muted":
            text = "muted"
        elif state == "error" and self.sm.facts.error:
            text = f"{self.sm.facts.error}, retrying"
        elif state == "error":
            text = self.sm.facts.failure
        elif state == "starting":
            text = "starting"
        elif self.run_ is not None:
            secs = int(self.parts.clock() - self.run_.started)
            text = f"in session {secs} s ({state})"
        else:
            text = state
        self.parts.notifier.status(text)


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
