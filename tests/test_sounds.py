"""Sounds for wake, end and error, end to end on file: devices, the simulator and the
wake word models: where each lands on the speaker's timeline, and that they are never
model output. Positions are in the output stream's own samples, not wall time."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon import config
from daemon import events as ev
from daemon.config import SoundsConfig
from daemon.realtime.simulator import Simulator
from daemon.sounds import load_sounds, synthesize
from daemon.wakeword import WakeWordDetector
from hw.audio import read_wav, write_wav
from tests.appliance_harness import SPEECH, Watched, appliance_config, start
from tests.pulse import best_lag

ROOT = Path(__file__).resolve().parent.parent
RATE = 24000


# --------------------------------------------------------------------------- the tones


@pytest.mark.parametrize("name", ["wake", "end", "error"])
def test_default_tones_are_short_and_start_and_end_without_a_click(name: str) -> None:
    x = synthesize(name).astype(np.float64) / 32768
    assert len(x) / RATE <= (0.2 if name == "wake" else 0.6)
    assert 0.3 < np.max(np.abs(x)) <= 0.5
    # Raised-cosine attack and release: the ends are (near) silent, no step at either edge.
    assert abs(x[0]) < 1e-3 and abs(x[-1]) < 1e-3
    assert np.max(np.abs(x[:24])) < 0.05 and np.max(np.abs(x[-24:])) < 0.05
    assert np.array_equal(synthesize(name), synthesize(name))


def test_volume_scales_and_empty_turns_off() -> None:
    full = load_sounds(SoundsConfig(volume=100))
    half = load_sounds(SoundsConfig(volume=50, end=""))
    assert set(full) == {"wake", "end", "error"} and set(half) == {"wake", "error"}
    ratio = np.max(np.abs(half["wake"])) / np.max(np.abs(full["wake"]))
    assert abs(ratio - 0.25) < 0.01  # the square law of audio.volume


# --------------------------------------------------------------------------- config and CLI


def _voicepi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_missing_sound_file_is_a_config_error(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path / "c.toml", '[sounds]\nwake = "/nonexistent/wake.wav"\n')
    out = _voicepi("check-config", "--config", str(cfg))
    assert out.returncode == 78, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error: sounds.wake: "), lines


def test_a_file_that_is_not_a_wav_is_a_config_error(tmp_path: Path) -> None:
    junk = tmp_path / "end.wav"
    junk.write_bytes(b"not a wav at all")
    cfg = _write_config(
        tmp_path / "c.toml",
        f'[audio]\noutput = "file:{tmp_path / "out.wav"}"\n[sounds]\nend = "{junk}"\n',
    )
    out = _voicepi("sounds", "--config", str(cfg), "--gap", "0")
    assert out.returncode == 78, out
    assert out.stderr.startswith("config error: sounds.end: "), out.stderr
    assert "Traceback" not in out.stderr


def _bursts(x: np.ndarray, *, gap: int = RATE // 20) -> list[tuple[int, int]]:
    """(start, end) of the non-silent stretches, split at ``gap`` zero samples or more."""
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 30)
    if len(loud) == 0:
        return []
    cuts = np.flatnonzero(np.diff(loud) > gap)
    starts = np.concatenate(([loud[0]], loud[cuts + 1]))
    ends = np.concatenate((loud[cuts], [loud[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _is(x: np.ndarray, name: ev.SoundName) -> bool:
    """The stretch ``x`` holds the default tone ``name`` (any gain)."""
    ref = synthesize(name)
    if len(x) < len(ref) * 0.9:
        return False
    _, corr = best_lag(np.concatenate((x, np.zeros(len(ref), np.int16))), ref)
    return corr > 0.95


def test_voicepi_sounds_plays_each_on_the_speaker(tmp_path: Path) -> None:
    out_wav = tmp_path / "out.wav"
    custom = tmp_path / "custom.wav"
    write_wav(custom, synthesize("end", 16000), 16000)  # another rate: resampled on load
    cfg = _write_config(
        tmp_path / "c.toml",
        f'[audio]\noutput = "file:{out_wav}"\n[sounds]\nend = "{custom}"\nerror = ""\n',
    )
    out = _voicepi("sounds", "--config", str(cfg), "--gap", "0.2")
    assert out.returncode == 0, out
    assert "wake: default (160 ms)" in out.stdout
    assert f"end: {custom} (250 ms)" in out.stdout
    assert "error: off" in out.stdout
    heard, rate = read_wav(out_wav)
    assert rate == RATE
    bursts = _bursts(heard[:, 0])
    assert len(bursts) == 2, bursts
    assert _is(heard[bursts[0][0] : bursts[0][1], 0], "wake")
    assert _is(heard[bursts[1][0] : bursts[1][1], 0], "end")


# --------------------------------------------------------------------------- the appliance


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(transcripts=["what is the weather like today"] * 2) as s:
        yield s


class _OutputClock:
    """Where the speaker's output stream stood when chosen events were emitted."""

    def __init__(self, app: Watched) -> None:
        self.player: Any = app.app.parts.speaker
        self.at: list[tuple[ev.Event, int]] = []
        inner = app.app.parts.emit

        def emit(event: ev.Event) -> None:
            self.at.append((event, self.player.frames_written))
            inner(event)

        app.app.parts.emit = emit

    def of(self, kind: type[ev.Event]) -> list[tuple[Any, int]]:
        return [(e, n) for e, n in self.at if isinstance(e, kind)]

    def watch_detector(self, detector: Any) -> None:
        """Note where the output stood at each pause/resume of wake word scoring."""
        self.scoring: list[tuple[str, int]] = []
        for name in ("pause", "resume"):
            inner = getattr(detector, name)

            def call(*args: Any, _name: str = name, _inner: Any = inner) -> None:
                self.scoring.append((_name, self.player.frames_written))
                _inner(*args)

            setattr(detector, name, call)


def _file_config(url: str, tmp_path: Path, mic: str, **sections: Any) -> config.Config:
    audio = {"input": f"file:{SPEECH / mic}", "output": f"file:{tmp_path / 'out.wav'}"}
    return appliance_config(url, audio=audio, **sections)


def _heard(tmp_path: Path) -> np.ndarray:
    frames, rate = read_wav(tmp_path / "out.wav")
    assert rate == RATE
    return frames[:, 0]


async def test_wake_sound_at_the_wake_then_answer_then_end_sound_after_the_countdown(
    tmp_path: Path, sim: Simulator, detector: WakeWordDetector
) -> None:
    cfg = _file_config(
        sim.url,
        tmp_path,
        "hey_jarvis_then_question.wav",
        sounds={"wake": "default", "end": "default", "volume": 100},
        session={"inactivity_timeout": 3.0, "countdown": 2},
    )
    app = await start(cfg, detector)
    clock = _OutputClock(app)
    clock.watch_detector(detector)
    try:
        await app.wait(lambda e: isinstance(e, ev.WakeWordDetected), 20)
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 60)
        assert closed.reason == "inactivity"
        await app.wait(lambda e: isinstance(e, ev.SoundPlayed) and e.name == "end", 5)
        await app.wait_state("idle", 5)
    finally:
        assert await app.stop() == 0  # shutdown lets the queued end sound play out
        for name in ("pause", "resume"):
            detector.__dict__.pop(name, None)  # the shared detector's own methods again
    heard = _heard(tmp_path)
    bursts = _bursts(heard)
    assert len(bursts) >= 3, bursts  # wake sound, the answer, end sound
    (_, at_wake), *_ = clock.of(ev.WakeWordDetected)
    ticks = clock.of(ev.UserInactivityCountdown)
    assert [e.remaining_seconds for e, _ in ticks] == [2, 1]
    (_, at_close), *_ = clock.of(ev.SessionClosed)
    audio_start = [n for e, n in clock.at if isinstance(e, ev.AudioStart)]
    assert audio_start, "no answer"

    wake, answer, end = bursts[0], bursts[1], bursts[-1]
    assert _is(heard[wake[0] : wake[1]], "wake")
    # Within 100 ms of the detection on the speaker's own timeline.
    assert 0 <= wake[0] - at_wake <= RATE // 10, (wake[0] - at_wake) * 1000 // RATE
    assert wake[1] <= answer[0] and answer[0] >= audio_start[0]
    assert _is(heard[end[0] : end[1]], "end")
    assert end[0] >= at_close >= ticks[-1][1]
    # Back in idle, the wake word was not scored while the end sound played: paused from
    # its first rendered block (before the mic can hear it) until it had played out.
    after_close = [(op, n) for op, n in clock.scoring if n >= at_close]
    pauses = [n for op, n in after_close if op == "pause"]
    assert pauses and pauses[0] <= end[0] + RATE // 10, (after_close, end)
    resumes = [n for op, n in after_close if op == "resume" and n >= pauses[0]]
    # (the drain is reported from the render of the last block, before it is written)
    assert resumes and resumes[0] + clock.player.block_frames >= end[1], (after_close, end)
    assert [e.name for e in app.of(ev.SoundPlayed)] == ["wake", "end"]

    # The sounds were never model output: the session heard of the answer alone, and
    # "speaking" began with the answer, not the wake sound.
    kinds = [
        e.state if isinstance(e, ev.StateChanged) else e.type
        for _, e in app.events
        if isinstance(e, ev.StateChanged | ev.AudioStart | ev.SoundPlayed)
    ]
    assert kinds.index("speaking") > kinds.index("audio_start"), kinds
    served = sim.sessions[0]
    assert served.truncates == []


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ws://127.0.0.1:{port}/v1/realtime"  # nothing listens there any more


@pytest.mark.parametrize("on", [True, False], ids=["sounds-on", "sounds-off"])
async def test_error_sound_after_a_refused_connection(
    tmp_path: Path, detector: WakeWordDetector, on: bool
) -> None:
    value = "default" if on else ""
    cfg = _file_config(
        _refused_url(),
        tmp_path,
        "hey_jarvis.wav",
        sounds={"wake": value, "end": value, "error": value},
    )
    app = await start(cfg, detector)
    clock = _OutputClock(app)
    try:
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 30)
        assert closed.reason == "error"
        if on:
            await app.wait(lambda e: isinstance(e, ev.SoundPlayed) and e.name == "error", 5)
        await app.wait_state("idle", 5)
    finally:
        assert await app.stop() == 0
    heard = _heard(tmp_path)
    bursts = _bursts(heard)
    if not on:
        assert bursts == [] and app.of(ev.SoundPlayed) == []
        return
    (_, at_close), *_ = clock.of(ev.SessionClosed)
    assert [e.name for e in app.of(ev.SoundPlayed)] == ["wake", "error"]
    # A refusal within milliseconds flushes the wake sound (possibly before it began):
    # the error sound replaces it, whole, after the close.
    assert _is(heard[at_close:], "error")
    assert not app.of(ev.AudioStart)
