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
from ..config import Config, ConfigError
from ..realtime.session import RealtimeSession
from ..realtime.settings import SessionSettings
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
            # A file's trailing silence is exact zeros by design.
            silence_timeout=0.0 if is_file else cfg.audio.silence_timeout,
        )
        opened.append(mic)
        if canceller is None:
            return mic
        canceller.realign()  # a new stream: its first block anchors the reference again
        return _CancelledMic(mic)

    return open_mic


def echo_canceller(cfg: Config) -> aec.EchoCanceller | None:
    """The canceller ``audio.echo_cancel`` asks for, or None. "auto" stays off for a WAV
    file mic (nothing echoes into a file) and, without the binding, warns and runs
    without; "on" without the binding raises ConfigError (exit 78)."""
    from hw.audio import file_path
    from hw.profiles import PROFILES

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
) -> Built:
    """Wire every part for ``cfg``; the wake word models are loaded before this returns."""
    from hw.audio import open_player

    closers: list[Callable[[], None]] = []
    if detector is None:
        detector = WakeWordDetector(cfg.wakeword)
        detector.load()
        closers.append(detector.close)

    player = open_player(
        cfg.audio.output,
        rate=cfg.audio.output_rate,
        block_ms=cfg.audio.block_ms,
        jitter_ms=cfg.audio.jitter_ms,
        volume=cfg.audio.volume,
    )
    closers.append(player.close)
    canceller = echo_canceller(cfg)
    if canceller is not None:
        player.engine.reference_tap = canceller.reference

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
    from hw.leds import build_leds
    from hw.leds.patterns import LedInput, pattern_for

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
    from hw.button import GestureButton

    from .button_map import button_action

    def on_gesture(gesture: str) -> None:
        loop = app.loop
        if loop is None or loop.is_closed():
            return

        def act() -> None:
            facts = app.sm.facts
            app.button(gesture, button_action(gesture, app.sm.state, facts.approval_pending))

        loop.call_soon_threadsafe(act)

    try:
        if pin_factory is None:
            from hw.gpio import make_pin_factory

            pin_factory = make_pin_factory(cfg.gpio.pin_factory)
        button = GestureButton(cfg.button, on_gesture, pin_factory=pin_factory)
    except Exception as exc:
        log.error("button unavailable: %s", exc)
        return
    closers.append(button.close)


async def run_until_stopped(built: Built) -> int:
    try:
        return await built.app.run()
    finally:
        await asyncio.sleep(0)
        built.close()
