"""Sounds: how soon the wake sound is heard, and whether it costs any of the question.

File devices (the mic is the "hey jarvis" + question WAV at real-time pace, the speaker a
WAV), the simulator on loopback, the real wake word models. Clocks: time.monotonic() in
this process.

- wake -> sound: wake_word_detected emitted -> the output callback renders the first
  non-silent block. Baseline: one output block period.
- question heard: share of the question's spoken 50 ms windows found in what the server
  received, with the wake sound on; baseline the same run with sounds off.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from daemon import events as ev
from daemon.realtime.simulator import Simulator
from daemon.wakeword import WakeWordDetector
from hw.audio.files import load_mono
from tests.appliance_harness import SPEECH, appliance_config, start
from tests.audio_helpers import share_received
from tests.bench import Row, bench
from tests.bench_latency import Renders
from tests.pulse import active_span

QUESTION = "what is the weather like today"


def _question_core() -> np.ndarray:
    q, _ = load_mono(SPEECH / "question.wav", rate=16000)
    span = active_span(q, 16000, -45.0)
    assert span is not None
    return q[span[0] : span[1]]


async def _trial(detector: WakeWordDetector, wake: str) -> tuple[float, float, float]:
    """(wake -> first sound block s, block period s, share of the question heard)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with Simulator(transcripts=[QUESTION]) as sim:
            audio = {
                "input": f"file:{SPEECH / 'hey_jarvis_then_question.wav'}",
                "output": f"file:{Path(tmp) / 'out.wav'}",
            }
            cfg = appliance_config(sim.url, audio=audio, sounds={"wake": wake})
            app = await start(cfg, detector)
            player: Any = app.app.parts.speaker
            renders = Renders(player.engine)
            try:
                t_wake, _ = await app.wait(lambda e: isinstance(e, ev.WakeWordDetected), 20)
                await app.wait(lambda e: isinstance(e, ev.UserTranscript), 30)
                await asyncio.sleep(0.3)
                latency = renders.first(t_wake, True) - t_wake if wake else float("nan")
            finally:
                await app.stop()
            share = share_received(bytes(sim.sessions[0].audio_in), _question_core())
    return latency, player.block_frames / player.rate, share


@bench
def wake_sound() -> list[Row]:
    detector = WakeWordDetector(appliance_config("ws://127.0.0.1:1/").wakeword)
    detector.load()
    try:
        latency, period, share_on = asyncio.run(_trial(detector, "default"))
        _, _, share_off = asyncio.run(_trial(detector, ""))
    finally:
        detector.close()
    return [
        Row("wake -> wake sound rendered", latency * 1000, "ms", "one output block", period * 1000),
        Row("question heard, wake sound on", share_on * 100, "%", "sound off", share_off * 100),
    ]
