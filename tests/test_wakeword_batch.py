"""Idle batching (``wakeword.batch_frames``): the loop scores a few frames per wake-up while
idle, and a wake word is still reported at the block that completes it.

The real appliance runs on a real ``file:`` microphone whose pacing clock the test steps one
80 ms block at a time, so "when" is a block count, not a wall-clock time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon import events as ev
from daemon.appliance import wiring
from daemon.realtime.simulator import Simulator
from daemon.wakeword import WakeWordDetector
from daemon.wakeword.wav import read_wav_16k
from hw.audio.files import FileCapture, write_wav
from tests.appliance_harness import SPEECH, appliance_config, start

BLOCK = 1280  # the appliance's 80 ms mic block at 16 kHz


class _SteppedClock:
    """The file mic's pacing clock: time moves only when the test steps it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._moved = threading.Condition()

    def clock(self) -> float:
        return self.now

    def sleep(self, _seconds: float) -> None:  # the mic's thread: wait for a step
        with self._moved:
            self._moved.wait(0.05)

    def step(self, seconds: float) -> None:
        with self._moved:
            self.now += seconds
            self._moved.notify_all()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(transcripts=["what time is it"]) as s:
        yield s


async def _run(
    tmp_path: Path, sim: Simulator, detector: WakeWordDetector, audio: np.ndarray, batch: int
) -> tuple[int | None, list[int]]:
    """Feed ``audio`` block by block; returns (the block after which the wake was reported,
    or None; the blocks still waiting for the loop after each block of the lead-in)."""
    wav = tmp_path / f"mic{batch}.wav"
    write_wav(wav, audio, 16000)
    stepper = _SteppedClock()
    cfg = appliance_config(
        sim.url,
        audio={"input": f"file:{wav}", "output": f"file:{tmp_path / f'out{batch}.wav'}"},
        wakeword={"batch_frames": batch},
    )
    mics: list[FileCapture] = []

    def open_mic(on_audio: Any, on_error: Any) -> FileCapture:
        mic = FileCapture(
            wav,
            on_audio=lambda samples, _index: on_audio(samples),
            on_error=on_error,
            block_ms=80,
            clock=stepper.clock,
            sleep=stepper.sleep,
            watchdog=False,
        )
        mics.append(mic)
        return mic

    with pytest.MonkeyPatch.context() as patch:  # build() wires our stepped mic
        patch.setattr(wiring, "mic_factory", lambda *_a, **_k: open_mic)
        watched = await start(cfg, detector)
    app = watched.app
    waiting: list[int] = []
    woke_at: int | None = None
    try:
        for block in range(1, len(audio) // BLOCK):
            stepper.step(0.08)
            async with asyncio.timeout(10):
                while mics[0].frames_captured < (block + 1) * BLOCK:
                    await asyncio.sleep(0.001)  # the mic's thread delivers the block
                while app._handoff._scheduled:
                    await asyncio.sleep(0)  # the loop takes what it was woken for
            if watched.of(ev.WakeWordDetected):
                woke_at = block
                break
            waiting.append(app._handoff._queued // BLOCK)
    finally:
        await watched.stop()
    return woke_at, waiting


@pytest.mark.parametrize("lead_frames", [0, 1, 2, 3])
async def test_a_batched_idle_reports_the_wake_word_at_the_same_block(
    tmp_path: Path, sim: Simulator, detector: WakeWordDetector, lead_frames: int
) -> None:
    """Every alignment of the word against a batch of 4: the same block reports it as
    scoring every frame on arrival, while the silence before it waited in batches."""
    word = read_wav_16k(SPEECH / "hey_jarvis.wav")
    lead = np.zeros((12 + lead_frames) * BLOCK, np.int16)
    audio = np.concatenate((lead, word, np.zeros(20 * BLOCK, np.int16)))
    unbatched, kept = await _run(tmp_path, sim, detector, audio, 1)
    batched, waited = await _run(tmp_path, sim, detector, audio, 4)
    assert unbatched is not None and batched == unbatched
    assert max(kept) == 0  # every block was taken at once
    # The lead-in: up to 3 blocks wait, and every 4th block wakes the loop for all of them.
    assert max(waited[:8]) == 3 and waited[:8].count(0) == 2


async def test_other_speech_stays_batched(
    tmp_path: Path, sim: Simulator, detector: WakeWordDetector
) -> None:
    """Speech that is not a wake word never comes near a threshold: the loop keeps
    waking once per 4 blocks throughout."""
    speech = read_wav_16k(SPEECH / "question.wav")
    audio = np.concatenate((np.zeros(4 * BLOCK, np.int16), speech, speech))
    woke_at, waited = await _run(tmp_path, sim, detector, audio, 4)
    assert woke_at is None
    assert waited.count(0) <= len(waited) // 4 + 1
    assert not detector.near_threshold
