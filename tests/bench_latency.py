"""Latencies of the real appliance on PulseAudio virtual devices against the simulator.

Per trial: "hey jarvis" + a question into the pipe-source mic, the answer (one long
tone) plays into the null sink, "stop" barges in. Clocks: every timestamp is
time.monotonic() in this process (simulator, appliance and audio callbacks share it).

- wake -> first append: wake_word_detected emitted -> the simulator receives the first
  input_audio_buffer.append (connect + configure + pre-roll). Baseline: a bare
  RealtimeSession connect() to the same simulator.
- first delta -> speaker: the simulator sends the first response.output_audio.delta ->
  the output callback renders the first non-silent block. Baseline: one output block
  period (measured between callbacks).
- barge-in: the simulator sends input_audio_buffer.speech_started -> the output callback
  renders the first all-silent block after the flush. Baseline: one output block period.
- truncate error: audio_end_ms sent in conversation.item.truncate minus the answer's
  length recorded at the sink monitor. Baseline: the same error for an elapsed-wall-time
  estimate (first sample rendered -> flush), the peers' fallback.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from daemon import config
from daemon import events as ev
from daemon.appliance.button_map import button_action
from daemon.realtime.session import RealtimeSession
from daemon.realtime.settings import SessionSettings
from daemon.realtime.sim.protocol import SimProtocol
from daemon.realtime.simulator import Simulator
from tests.appliance_harness import SPEECH, Watched, appliance_config, start
from tests.bench import Row, bench

TRIALS = 3
QUESTION = "what is the weather like today"
LONG_ANSWER = "This answer goes on for quite a while. " * 6


class TimedSimulator(Simulator):
    """The simulator, noting when each server message left (monotonic)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent_at: list[tuple[float, str]] = []

    async def _send(self, ws: Any, session: Any, msg: dict[str, Any]) -> None:
        await super()._send(ws, session, msg)
        self.sent_at.append((time.monotonic(), str(msg.get("type"))))

    def first_sent(self, type_: str, after: float) -> float:
        return next(t for t, kind in self.sent_at if kind == type_ and t >= after)


class Renders:
    """Wraps the player engine's render (called by the output callback) to time blocks."""

    def __init__(self, engine: Any) -> None:
        self.blocks: list[tuple[float, bool]] = []  # (time, any sound)
        original: Callable[[int], np.ndarray] = engine.render

        def render(frames: int) -> np.ndarray:
            block = original(frames)
            self.blocks.append((time.monotonic(), bool(block.any())))
            return block

        engine.render = render

    def first(self, after: float, sound: bool) -> float:
        return next(t for t, s in list(self.blocks) if t >= after and s == sound)

    def period(self) -> float:
        times = [t for t, _ in list(self.blocks)[-200:]]
        return float(np.median(np.diff(times)))


def _gesture(app: Watched, name: str) -> str:
    action = button_action(name, app.app.sm.state, app.app.sm.facts.approval_pending)
    app.app.button(name, action)
    return action


async def _connect_time(url: str) -> float:
    session = RealtimeSession(SessionSettings(), url=url, api_key=None)
    t = time.monotonic()
    await session.connect()
    took = time.monotonic() - t
    await session.close()
    return took


async def _trials(pulse: Any, detector: Any) -> dict[str, list[float]]:
    from tests.pulse import active_span

    appends: dict[int, float] = {}
    original = SimProtocol.receive_text

    def receive_text(self: SimProtocol, frame: str | bytes, now: float) -> None:
        if id(self) not in appends and b'"input_audio_buffer.append"' in (
            frame.encode() if isinstance(frame, str) else frame
        ):
            appends[id(self)] = time.monotonic()
        original(self, frame, now)

    out: dict[str, list[float]] = {
        k: [] for k in ("wake", "connect", "first", "barge", "block", "trunc", "wall")
    }
    SimProtocol.receive_text = receive_text  # type: ignore[method-assign]
    try:
        async with TimedSimulator(
            transcripts=[QUESTION] * TRIALS, answer=lambda _: LONG_ANSWER, speech="tone"
        ) as sim:
            app = await start(appliance_config(sim.url), detector)
            renders = Renders(app.app.parts.speaker.engine)
            try:
                for _ in range(TRIALS):
                    out["connect"].append(await _connect_time(sim.url))
                    rec = pulse.record()
                    mark = app.mark()
                    pulse.play(SPEECH / "hey_jarvis_then_question.wav")
                    t_wake, _ = await app.wait(
                        lambda e: isinstance(e, ev.WakeWordDetected), 20, after=mark
                    )
                    await app.wait_state("speaking", 30, after=mark)
                    await asyncio.sleep(1.0)
                    pulse.play(SPEECH / "stop.wav")
                    _, cut = await app.wait(
                        lambda e: isinstance(e, ev.AudioInterrupted), 20, after=mark
                    )
                    await app.wait_state("listening", 10, after=mark)
                    await asyncio.sleep(0.5)  # the sink drains into the recording
                    heard = rec.stop()
                    assert _gesture(app, "double") == "end_session"
                    await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
                    await app.wait_state("idle", 10, after=mark)

                    session = sim.sessions[-1]
                    out["wake"].append(appends[id(session.protocol)] - t_wake)
                    t_delta = sim.first_sent("response.output_audio.delta", t_wake)
                    t_sound = renders.first(t_delta, True)
                    out["first"].append(t_sound - t_delta)
                    t_speech = sim.first_sent("input_audio_buffer.speech_started", t_sound)
                    t_quiet = renders.first(t_speech, False)
                    out["barge"].append(t_quiet - t_speech)
                    out["block"].append(renders.period())
                    span = active_span(heard, 24000, -30.0)
                    assert span is not None, "nothing reached the sink"
                    sink_ms = (span[1] - span[0]) * 1000 / 24000
                    end_ms = session.truncates[0]["audio_end_ms"]
                    assert end_ms == cut.played_ms
                    out["trunc"].append(abs(end_ms - sink_ms))
                    out["wall"].append(abs((t_quiet - t_sound) * 1000 - sink_ms))
                    await asyncio.sleep(2.5)  # past the wake word's refractory time
            finally:
                await app.stop()
    finally:
        SimProtocol.receive_text = original  # type: ignore[method-assign]
    return out


@bench
def latency() -> list[Row]:
    from daemon.wakeword import WakeWordDetector
    from tests.pulse import PulseServer

    det = WakeWordDetector(config.Config().wakeword)
    det.load()
    with tempfile.TemporaryDirectory(prefix="voicepi-bench-pulse-") as tmp:
        pulse = PulseServer(Path(tmp)).start()
        try:
            r = asyncio.run(_trials(pulse, det))
        finally:
            pulse.stop()
            det.close()

    def med(key: str, scale: float = 1000.0) -> float:
        return statistics.median(r[key]) * scale

    block = med("block")
    n = f"median of {TRIALS}"
    return [
        Row(
            f"latency: wake -> first append ({n})",
            med("wake"),
            "ms",
            "bare RealtimeSession connect",
            med("connect"),
        ),
        Row(
            f"latency: first delta sent -> speaker ({n})",
            med("first"),
            "ms",
            "one output block",
            block,
        ),
        Row(
            f"latency: speech_started sent -> speaker silent ({n})",
            med("barge"),
            "ms",
            "one output block",
            block,
        ),
        Row(
            f"truncate error: audio_end_ms vs sink ({n})",
            med("trunc", 1.0),
            "ms",
            "elapsed-wall-time estimate",
            med("wall", 1.0),
        ),
    ]
