"""Build a running appliance from a config: real audio, wake word, session, LEDs, button.

This is the one place that reaches into ``hw`` (inside functions, so the
``daemon`` package stays importable without PyAudio or gpiozero). Both
`voicepi run` and `voicepi demo` use it; tests use it with PulseAudio virtual
devices and gpiozero's mock pins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import aec
from .. import events as ev
from ..agents import AgentCallbacks, AgentRuntime
from ..config import Config, ConfigError, RealtimeConfig
from ..realtime.liveness import LivenessBounds
from ..realtime.session import RealtimeSession
from ..realtime.settings import SessionSettings
from ..sounds import load_sounds
from ..urlpolicy import needs_api_key
from ..vocab import Gesture
from ..wakeword import WakeWordDetector
from .app import Appliance, Parts
from .ports import Mic, Notifier

log = logging.getLogger("voicepi.wiring")


@dataclass
class Built:
    """The appliance and what must be closed after it stops."""

    app: Appliance
    closers: list[Callable[[], None]] = field(default_factory=list)
    echo: aec.EchoCanceller | None = None  # its stats() for diagnostics and the bench

    def close(self) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()
        self.closers.clear()


class QuietNotifier:
    """Notifier for runs outside systemd (the demo, tests)."""

    def ready(self) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def watchdog(self) -> None:
        pass

    def stopping(self) -> None:
        pass


# One wake-word frame per capture callback: a quarter of the wake-ups (and thread hops
# onto the loop) of 20 ms blocks, for at most 60 ms more latency to the session.
MIC_BLOCK_MS = 80


class _CancelledMic:
    """A capture whose blocks went through the echo canceller: 16 kHz from here on."""

    def __init__(self, mic: Mic) -> None:
        self._mic = mic
        self.rate = aec.RATE

    def close(self) -> None:
        self._mic.close()


def mic_factory(cfg: Config, canceller: aec.EchoCanceller | None = None) -> Callable[..., Mic]:
    """Opens the configured capture; with ``canceller`` every block is echo-cancelled
    on the capture thread, before the pre-roll, the wake word and the session."""
    from hw.audio import file_path, open_capture

    is_file = file_path(cfg.audio.input) is not None

    def open_mic(
        on_audio: Callable[[np.ndarray], None], on_error: Callable[[BaseException], None]
    ) -> Mic:
        opened: list[Mic] = []  # the capture's rate is known once open_capture returns

        def deliver(samples: np.ndarray, _index: int) -> None:
            if canceller is None:
                on_audio(samples)
            elif opened:  # blocks before that (a few ms at start-up) are dropped
                on_audio(canceller.process(samples, opened[0].rate))

        mic: Mic = open_capture(
            cfg.audio.input,
            on_audio=deliver,
            on_error=on_error,
            channels=cfg.audio.input_channels,
            channel=cfg.audio.input_channel,
            rate=cfg.audio.input_rate,
            block_ms=MIC_BLOCK_MS,
            # A file's trailing silence is exact zeros by design.
            silence_timeout=0.0 if is_file else cfg.audio.silence_timeout,
        )
        opened.append(mic)
        if canceller is None:
            return mic
        canceller.realign()  # a new stream: its first block anchors the reference again
        return _CancelledMic(mic)

    return open_mic


def open_configured_player(cfg: Config, **extra: Any) -> Any:
    """``hw.audio.open_player`` on ``audio.output`` with the [audio] table's rate, block,
    jitter and volume; ``extra`` passes ``on_error`` or ``tracker``. Returns the Player;
    raises what open_player raises (no such device, busy, an unwritable file)."""
    from hw.audio import open_player

    return open_player(
        cfg.audio.output,
        rate=cfg.audio.output_rate,
        block_ms=cfg.audio.block_ms,
        jitter_ms=cfg.audio.jitter_ms,
        volume=cfg.audio.volume,
        **extra,
    )


SPEAKER_GIVE_UP_S = 30.0  # as the microphone: not back by then, exit 1 so systemd restarts us


class SpeakerUnavailable(Exception):
    """The speaker could not be opened within the give-up time; one line, exit 1."""


async def open_speaker(
    cfg: Config,
    *,
    emit: Callable[[ev.Event], None],
    notifier: Notifier | None = None,
    give_up_s: float = SPEAKER_GIVE_UP_S,
    clock: Callable[[], float] = time.monotonic,
    on_error: Callable[[BaseException], None] | None = None,
) -> Any:
    """Open ``audio.output``, retrying with backoff like the microphone.

    A failure is one ``error`` event (type ``speaker_unavailable``) and a status
    line; the open is retried (0.5 s doubling to 5 s) until ``give_up_s`` has passed,
    then SpeakerUnavailable is raised. ``give_up_s`` 0 tries once (the demo).
    ``on_error`` is called (from a watchdog thread) if a device stream dies later.
    Returns the hw.audio Player for ``build(..., player=...)``.
    """

    started = clock()
    delay = 0.5
    failed = False
    while True:
        try:
            player = open_configured_player(cfg, on_error=on_error)
        except Exception as exc:  # no card, device gone, unwritable file: retry, then give up
            reason = str(exc) or type(exc).__name__
            if give_up_s <= 0:
                raise SpeakerUnavailable(
                    f"speaker unavailable ({cfg.audio.output!r}): {reason}"
                ) from None
            if not failed:
                failed = True  # logged once, as the error event
                emit(ev.Error(error=ev.ErrorInfo(type="speaker_unavailable", message=reason)))
                if notifier is not None:
                    notifier.status("speaker unavailable, retrying")
            else:
                log.debug("speaker still unavailable: %s", reason)
            if clock() - started + delay > give_up_s:
                raise SpeakerUnavailable(
                    f"speaker unavailable ({cfg.audio.output!r}): {reason}"
                ) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        if failed:
            log.info("speaker recovered")
        return player


def echo_canceller(cfg: Config) -> aec.EchoCanceller | None:
    """The canceller ``audio.echo_cancel`` asks for, or None. "auto" stays off for a WAV
    file mic (nothing echoes into a file) and, without the binding, warns and runs
    without; "on" without the binding raises ConfigError (exit 78)."""
    from hw.audio import file_path

    from ..config.profiles import PROFILES

    audio = cfg.audio
    hardware_aec = PROFILES[cfg.hardware.profile].hardware_aec
    if not aec.wanted(audio.echo_cancel, audio.barge_in, hardware_aec):
        return None
    if audio.echo_cancel == "auto" and file_path(audio.input) is not None:
        return None
    try:
        canceller = aec.EchoCanceller(noise_suppression=audio.noise_suppression)
    except aec.EchoCancelUnavailable as exc:
        if audio.echo_cancel == "on":  # asked for by name: exit 78, no restart loop
            raise ConfigError("audio.echo_cancel", str(exc)) from None
        log.warning("%s; the answer's echo may interrupt it", exc)
        return None
    log.info("echo cancellation on (WebRTC AEC3)")
    return canceller


def build(
    cfg: Config,
    *,
    emit: Callable[[ev.Event], None],
    notifier: Notifier | None = None,
    api_key: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_sessions: int | None = None,
    detector: WakeWordDetector | None = None,
    pin_factory: Any | None = None,
    player: Any | None = None,
    paced_mic: bool = False,
) -> Built:
    """Wire every part for ``cfg``; the wake word models are loaded before this returns.

    ``player`` is an opened speaker (``open_speaker``); None opens ``audio.output``
    once, raising what the device raises. ``paced_mic`` lets a ``file:`` mic wait for
    the loop instead of its audio being dropped when the loop falls behind (ignored
    for a device: its callback must return in time).
    """
    from hw.audio import file_path

    closers: list[Callable[[], None]] = []
    sounds = load_sounds(cfg.sounds)  # before any device opens: a bad WAV is a config error
    if detector is None:
        detector = WakeWordDetector(cfg.wakeword)
        detector.load()
        closers.append(detector.close)

    if player is None:
        player = open_configured_player(cfg)
    closers.append(player.close)
    canceller = echo_canceller(cfg)
    if canceller is not None:
        player.set_reference_tap(canceller.reference, canceller.underflow, canceller.restarted)

    holder: dict[str, Appliance] = {}
    agents = AgentRuntime.from_config(
        cfg,
        AgentCallbacks(
            set_volume=lambda percent: holder["app"].set_volume(percent),
            end_session=lambda: holder["app"].end_session(),
            stop_playback=lambda: holder["app"].stop_playback(),
            approval_pending=lambda pending: holder["app"].set_approval_pending(pending),
        ),
    )

    def new_session() -> RealtimeSession:
        live = holder["app"].cfg  # a SIGHUP reload applies to the next session
        session = RealtimeSession(
            agents.settings(base=SessionSettings.from_config(live.realtime)),
            url=live.realtime.url,
            api_key=api_key,
            agent_name=agents.default.name,
            ping_interval=live.realtime.ping_interval,
            connect_timeout=live.realtime.connect_timeout,
            tool_runner=agents.tool_runner,
            liveness=liveness_bounds(live.realtime),
            clock=clock,
        )
        agents.attach(session)
        return session

    leds, led_pattern = _leds(cfg, lambda: holder["app"].cfg, pin_factory, closers)
    parts = Parts(
        open_mic=mic_factory(cfg, canceller),
        speaker=player,
        detector=detector,
        new_session=new_session,
        emit=emit,
        notifier=notifier if notifier is not None else QuietNotifier(),
        leds=leds,
        led_pattern=led_pattern,
        clock=clock,
        wake_names=tuple(detector.names),
        agents=agents,
        api_key_found=api_key is not None if needs_api_key(cfg.realtime.url) else None,
        sounds=sounds,
        paced_mic=paced_mic and file_path(cfg.audio.input) is not None,
    )
    app = Appliance(cfg, parts, max_sessions=max_sessions)
    holder["app"] = app
    player.tracker = app.speaker_callbacks()
    _button(cfg, app, pin_factory, closers)
    return Built(app=app, closers=closers, echo=canceller)


def _leds(
    cfg: Config,
    live: Callable[[], Config],
    pin_factory: Any | None,
    closers: list[Callable[[], None]],
) -> tuple[Any, Callable[[dict[str, Any]], Any]]:
    from hw.leds.patterns import LedInput, pattern_for

    from .gpio import build_leds

    def led_pattern(inputs: dict[str, Any]) -> Any:
        return pattern_for(LedInput(**inputs), live().leds)  # reloads recolour live

    try:
        leds = build_leds(cfg, pin_factory=pin_factory)
    except Exception as exc:  # dark LEDs must not keep the speaker from listening
        log.error("LEDs unavailable: %s", exc)
        leds = None
    if leds is not None:
        closers.append(leds.close)
    return leds, led_pattern


def _button(
    cfg: Config, app: Appliance, pin_factory: Any | None, closers: list[Callable[[], None]]
) -> None:
    if cfg.button.pin < 0:
        return
    from .button_map import button_action
    from .gpio import build_button

    def on_gesture(gesture: Gesture) -> None:
        loop = app.loop
        if loop is None or loop.is_closed():
            return

        def act() -> None:
            facts = app.sm.facts
            app.button(gesture, button_action(gesture, app.sm.state, facts.approval_pending))

        loop.call_soon_threadsafe(act)

    try:
        button = build_button(cfg, on_gesture, pin_factory=pin_factory)
    except Exception as exc:
        log.error("button unavailable: %s", exc)
        return
    if button is not None:
        closers.append(button.close)


def liveness_bounds(rt: RealtimeConfig) -> LivenessBounds:
    """The [realtime] liveness keys as the session's bounds."""
    return LivenessBounds(
        answer_silence=rt.answer_silence,
        listen_silence=rt.ping_interval,
        pong_timeout=rt.pong_timeout,
        response_timeout=rt.response_timeout,
    )


async def run_until_stopped(built: Built) -> int:
    try:
        return await built.app.run()
    finally:
        await asyncio.sleep(0)
        built.close()
