"""The microphone side of the appliance: open, feed the wake word or the session,
notice a stall or a fault, reopen with backoff, give up after MIC_GIVE_UP_S.

Audio frames arrive from the capture thread through a FrameHandoff (bounded: a
starved CPU drops old audio, reported) and are handled on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import numpy as np

from ..polling import next_tick
from ..vocab import PCM_RATE
from .audio_path import AudioPath
from .core import ApplianceCore
from .handoff import FrameHandoff
from .status import log_startup_summary

if TYPE_CHECKING:
    from .. import events as ev

log = logging.getLogger("voicepi.appliance")

WAKE_RATE = 16000
MIC_STALL_S = 3.0  # no frames for this long means the microphone is gone
MIC_POLL_S = 1.0  # a healthy mic is checked this often (each check wakes the idle loop)
MIC_REOPEN_POLL_S = 0.25  # and a failed one while it is being reopened
# Microphone audio the loop may lag behind before the oldest is dropped. Idle, stale audio is
# worth nothing (a wake word heard late); in a session every word counts, so a stall (a
# connect, a busy moment) is caught up instead, still bounded (30 s is about 1 MB).
MAX_AUDIO_BACKLOG_S = 0.5
MAX_SESSION_AUDIO_BACKLOG_S = 30.0
AUDIO_BATCH_S = 0.1  # microphone audio handled per loop callback (signals get in between)
WAKE_FRAME_S = 0.08  # openWakeWord's frame: wakeword.batch_frames counts these
MIC_GIVE_UP_S = 30.0  # not recovered by then: exit so systemd restarts us
WATCHDOG_EVERY_S = 2.0


class MicrophoneMixin(ApplianceCore):
    """The appliance's microphone handling (mixed into Appliance)."""

    if TYPE_CHECKING:

        def _can_wake(self) -> bool: ...

        def _wake(self, model: str, score: float, end_sample: int | None) -> None: ...

        async def _end_session(self, reason: ev.CloseReason) -> None: ...

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
        self.path = AudioPath(self.mic.rate, WAKE_RATE, PCM_RATE, self.cfg.session.preroll)
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
        self._mic_fault.set()
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
            # A failure wakes it at once: reopening starts after the backoff, not a poll.
            poll = MIC_POLL_S if self._mic_failed_at is None else MIC_REOPEN_POLL_S
            now = asyncio.get_running_loop().time()
            with contextlib.suppress(TimeoutError):  # on the watchdogs' grid: one wake-up
                await asyncio.wait_for(self._mic_fault.wait(), next_tick(now, poll) - now)
            self._mic_fault.clear()
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
        """At the mic's opening and a session's start and end: the backlog cap, and whether
        the loop may wait for a batch of frames (idle) or takes every block (a session)."""
        if self._handoff is None or self.mic is None:
            return
        seconds = MAX_AUDIO_BACKLOG_S if self.run_ is None else MAX_SESSION_AUDIO_BACKLOG_S
        hold = self._idle_hold_samples() if self.run_ is None else 0
        self._handoff.hold_samples = hold
        # Held audio is not a backlog: the cap counts from the batch's end.
        self._handoff.max_samples = int(self.mic.rate * seconds) + hold
        self._idle_hold = hold

    def _idle_hold_samples(self) -> int:
        """Device-rate samples the loop lets wait while idle: ``wakeword.batch_frames``
        frames less half a frame, so a block that ends a batch wakes the loop."""
        assert self.mic is not None
        return int(self.mic.rate * (self.cfg.wakeword.batch_frames - 0.5) * WAKE_FRAME_S)

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
            detector = self.parts.detector
            for det in detector.process(wake):
                self._wake(det.model, det.score, self._wake_offset + det.end_sample)
                return
            if self._handoff is not None:  # a score near a threshold: every frame at once
                self._handoff.hold_samples = 0 if detector.near_threshold else self._idle_hold

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
        log_startup_summary(
            log,
            self.cfg,
            mic=self.mic,
            speaker=self.parts.speaker,
            detector=self.parts.detector,
            wake_names=self.parts.wake_names,
            api_key_found=self.parts.api_key_found,
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
