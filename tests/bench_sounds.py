"""Sounds: how soon the wake sound is heard, and whether it costs any of the question.

File devices (the mic is the "hey jarvis" + question WAV at real-time pace, the speaker a
WAV), the simulator on loopback, the real wake word models. Clocks: time.monotonic() in
this process.

- wake -> sound: wake_word_detected emitted -> the output callback renders the first
  non-silent block. Baseline: one output block period.
- question heard: share of the question's spoken 50 ms windows found in what the server
  received, with the wake sound on; baseline the same run with sounds off. The speaker's
  output is mixed back into the mic at -6 dB (a room without echo cancellation), so the
  wake sound really overlaps the user's first words.
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from daemon import events as ev
from daemon.dsp import Resampler
from daemon.realtime.simulator import Simulator
from daemon.wakeword import WakeWordDetector
from hw.audio.files import load_mono, write_wav
from tests.appliance_harness import SPEECH, appliance_config, start
from tests.audio_helpers import share_received
from tests.bench import Row, bench
from tests.bench_latency import Renders
from tests.pulse import active_span

QUESTION = "what is the weather like today"
TRIALS = 3


def _question_core() -> np.ndarray:
    q, _ = load_mono(SPEECH / "question.wav", rate=16000)
    span = active_span(q, 16000, -45.0)
    assert span is not None
    return q[span[0] : span[1]]


class Room:
    """Mixes what the speaker renders (24 kHz) back into the 16 kHz mic, ``gain`` down."""

    def __init__(self, app: Any, gain: float = 0.5) -> None:
        self.echo: collections.deque[int] = collections.deque()
        self.lock = threading.Lock()
        self.down = Resampler(24000, 16000)
        engine = app.app.parts.speaker.engine
        render = engine.render

        def render_and_hear(frames: int) -> np.ndarray:
            block: np.ndarray = render(frames)
            heard = self.down.process(block.astype(np.float32) * gain)
            with self.lock:
                self.echo.extend(np.asarray(heard, dtype=np.int64).tolist())
            return block

        engine.render = render_and_hear
        on_audio = app.app._on_audio

        def mic_in_the_room(samples: np.ndarray) -> None:
            with self.lock:
                n = min(len(samples), len(self.echo))
                echo = np.array([self.echo.popleft() for _ in range(n)], dtype=np.int64)
            mixed = samples.astype(np.int64)
            mixed[:n] += echo
            on_audio(np.clip(mixed, -32768, 32767).astype(np.int16))

        app.app._on_audio = mic_in_the_room


def _no_pause_mic(path: Path) -> None:
    """ "hey jarvis" and the question with no pause between them: the question's first
    words are said while the wake sound plays (the worst case for the pre-roll)."""
    wake, _ = load_mono(SPEECH / "hey_jarvis.wav", rate=16000)
    span = active_span(wake, 16000, -45.0)
    assert span is not None
    silence = np.zeros(16000, dtype=np.int16)
    mic = np.concatenate((silence, wake[: span[1]], _question_core(), silence))
    write_wav(path, mic, 16000)


async def _trial(detector: WakeWordDetector, wake: str) -> tuple[float, float, float]:
    """(wake -> first sound block s, block period s, share of the question heard)."""
    with tempfile.TemporaryDirectory() as tmp:
        _no_pause_mic(Path(tmp) / "mic.wav")
        async with Simulator(transcripts=[QUESTION]) as sim:
            audio = {
                "input": f"file:{Path(tmp) / 'mic.wav'}",
                "output": f"file:{Path(tmp) / 'out.wav'}",
            }
            cfg = appliance_config(sim.url, audio=audio, sounds={"wake": wake})
            app = await start(cfg, detector)
            player: Any = app.app.parts.speaker
            renders = Renders(player.engine)
            assert app.app.mic.rate == 16000
            Room(app)
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
        on = [asyncio.run(_trial(detector, "default")) for _ in range(TRIALS)]
        off = [asyncio.run(_trial(detector, "")) for _ in range(TRIALS)]
    finally:
        detector.close()
    latency = statistics.median(t[0] for t in on) * 1000
    period = on[0][1] * 1000
    share_on = statistics.median(t[2] for t in on) * 100
    share_off = statistics.median(t[2] for t in off) * 100
    n = f"(median of {TRIALS})"
    return [
        Row(f"sounds: wake -> wake sound rendered {n}", latency, "ms", "one output block", period),
        Row(f"sounds: question heard, wake sound on {n}", share_on, "%", "sound off", share_off),
    ]
