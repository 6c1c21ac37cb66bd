"""file:PATH capture and playback: real threads and WAV files, paced on a fake clock."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from daemon.dsp import Resampler
from hw.audio import (
    CaptureStalled,
    FileCapture,
    FilePlayer,
    WavError,
    open_capture,
    open_player,
    read_wav,
    write_wav,
)
from tests.audio_helpers import Collector, Tracker, wait_for
from tests.fakeclock import FakeClock
from tests.pulse import active_span, best_lag, chirp_noise, tone


def capture_threads(path: Path) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"capture {path}"]


def test_file_input_is_paced_by_its_clock_then_silent_forever(tmp_path: Path) -> None:
    clip = chirp_noise(0.4, 16000)
    path = tmp_path / "in.wav"
    write_wav(path, clip, 16000)
    c = Collector()
    clock = FakeClock()
    cap = open_capture(
        f"file:{path}", on_audio=c.on_audio, on_error=c.on_error, clock=clock, sleep=clock.sleep
    )
    try:
        assert cap.rate == 16000 and cap.block_frames == 320
        # The first block at open, then exactly 16000 frames per simulated second.
        for second in (0, 1, 2, 5):
            clock.run_to(second + 0.01)
            assert c.frames() == 320 + 16000 * second, second
        audio = c.audio()
        assert np.array_equal(audio[: len(clip)], clip)
        assert not audio[len(clip) :].any()  # silence after the file, and it keeps coming
        firsts = [f for f, _ in c.blocks]
        assert firsts == list(range(0, 320 * len(firsts), 320))  # contiguous frame counter
        assert isinstance(cap, FileCapture) and cap.finished_file
        assert c.errors == []
    finally:
        clock.close()
        cap.close()
    n = c.frames()
    assert capture_threads(path) == []  # closed means closed: no thread left to deliver
    assert c.frames() == n


def test_a_file_mic_resumed_late_resyncs_instead_of_bursting(tmp_path: Path) -> None:
    """A suspended process (or a stalled machine) resumes 2 s late: the mic goes on from
    now, one block for now, rather than delivering the 100 blocks it missed at once."""
    path = tmp_path / "in.wav"
    write_wav(path, chirp_noise(0.2, 16000), 16000)
    c = Collector()
    clock = FakeClock()
    cap = open_capture(
        f"file:{path}", on_audio=c.on_audio, clock=clock, sleep=clock.sleep, watchdog=False
    )
    try:
        clock.run_to(0.01)
        assert c.frames() == 320
        clock.jump(2.0)
        assert c.frames() == 320 + 2 * 320  # the late block, then one due now
        clock.advance(1.0)
        assert c.frames() == 320 + 2 * 320 + 16000
    finally:
        clock.close()
        cap.close()


def test_file_input_loops(tmp_path: Path) -> None:
    clip = chirp_noise(0.1, 16000)
    path = tmp_path / "loop.wav"
    write_wav(path, clip, 16000)
    c = Collector()
    cap = open_capture(f"file:{path}", on_audio=c.on_audio, loop=True)
    try:
        wait_for(lambda: c.frames() >= 4 * len(clip))
    finally:
        cap.close()
    audio = c.audio()
    for k in range(3):
        assert np.array_equal(audio[k * len(clip) : (k + 1) * len(clip)], clip)


def test_file_input_converts_rate_and_picks_the_channel(tmp_path: Path) -> None:
    left = chirp_noise(0.5, 48000, seed=3)
    right = chirp_noise(0.5, 48000, seed=4)
    path = tmp_path / "stereo48k.wav"
    write_wav(path, np.stack([left, right], axis=1), 48000)
    c = Collector()
    cap = open_capture(f"file:{path}", on_audio=c.on_audio, channels=2, channel=1, rate=16000)
    try:
        assert cap.rate == 16000 and cap.channels == 2 and cap.channel == 1
        wait_for(lambda: c.frames() >= 9000)
    finally:
        cap.close()
    expected = Resampler(48000, 16000).process(right)
    audio = c.audio()[: len(expected)]
    assert np.array_equal(audio, expected)
    _, corr_other = best_lag(c.audio(), Resampler(48000, 16000).process(left)[:4000])
    assert corr_other < 0.3


def test_digital_silence_timeout_reports_once(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    write_wav(path, chirp_noise(0.2, 16000), 16000)
    c = Collector()
    cap = open_capture(
        f"file:{path}", on_audio=c.on_audio, on_error=c.on_error, silence_timeout=0.3
    )
    try:
        assert c.error_seen.wait(3.0)
        n = c.frames()
        wait_for(lambda: c.frames() >= n + 0.3 * 16000)  # another silence_timeout of zeros
        assert len(c.errors) == 1 and isinstance(c.errors[0][1], CaptureStalled)
        assert "digital silence" in str(c.errors[0][1])
    finally:
        cap.close()


def test_stall_check_uses_the_injected_clock(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    write_wav(path, np.zeros(1600, dtype=np.int16), 16000)
    c = Collector()
    cap = open_capture(f"file:{path}", on_audio=c.on_audio, on_error=c.on_error, stall_timeout=2.0)
    try:
        wait_for(lambda: cap.frames_captured > 0)
        assert cap.check() is None
        stalled = cap.check(now=cap.last_frame_time + 2.5)
        assert isinstance(stalled, CaptureStalled) and "x.wav" in str(stalled)
    finally:
        cap.close()
    assert cap.check(now=1e9) is None  # a closed capture is not failing


def test_a_consumer_holding_the_file_mic_is_not_a_stall(tmp_path: Path) -> None:
    """A paced consumer (a slow loop the file mic waits for) holds on_audio for long: that
    is backpressure, not a dead device; the blocks then go on, contiguous."""
    path = tmp_path / "x.wav"
    write_wav(path, np.zeros(1600, dtype=np.int16), 16000)
    firsts: list[int] = []
    holding, release = threading.Event(), threading.Event()

    def slow(samples: np.ndarray, first: int) -> None:
        firsts.append(first)
        if len(firsts) == 3:
            holding.set()
            release.wait(10)

    cap = open_capture(f"file:{path}", on_audio=slow, stall_timeout=1.0)
    try:
        assert holding.wait(10)
        assert cap.check(now=cap.last_frame_time + 10.0) is None
        release.set()
        wait_for(lambda: len(firsts) >= 6)
        assert cap.check() is None
        assert firsts[:6] == list(range(0, 6 * cap.block_frames, cap.block_frames))
    finally:
        release.set()
        cap.close()


def test_consumer_exceptions_do_not_stop_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    write_wav(path, np.zeros(1600, dtype=np.int16), 16000)
    calls = []

    def bad(samples: np.ndarray, first: int) -> None:
        calls.append(first)
        raise RuntimeError("consumer bug")

    cap = open_capture(f"file:{path}", on_audio=bad)
    try:
        wait_for(lambda: len(calls) >= 5)
        assert cap.consumer_errors >= 5
    finally:
        cap.close()


def test_bad_file_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(WavError, match=r"missing\.wav"):
        open_capture(f"file:{tmp_path / 'missing.wav'}", on_audio=lambda s, i: None)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    with pytest.raises(WavError, match=r"junk\.wav"):
        open_capture(f"file:{junk}", on_audio=lambda s, i: None)
    mono = tmp_path / "mono.wav"
    write_wav(mono, np.zeros((10, 2), dtype=np.int16), 8000)
    with pytest.raises(WavError, match="channel 5"):
        open_capture(f"file:{mono}", on_audio=lambda s, i: None, channels=6, channel=5)
    with pytest.raises(ValueError, match="file:PATH"):
        open_capture("file:", on_audio=lambda s, i: None)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_read_wav_sample_widths(tmp_path: Path, width: int) -> None:
    x = np.array([0, 256, -256, 32512, -32768], dtype=np.int16)
    wide = x.astype(np.int32) << 16
    raw = {
        1: ((x >> 8) + 128).astype(np.uint8).tobytes(),
        2: x.astype("<i2").tobytes(),
        3: b"".join(int(v).to_bytes(4, "little", signed=True)[1:] for v in wide),
        4: wide.astype("<i4").tobytes(),
    }[width]
    path = tmp_path / f"w{width}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(8000)
        w.writeframes(raw)
    frames, rate = read_wav(path)
    assert rate == 8000 and frames.shape == (5, 1)
    assert frames[:, 0].tolist() == x.tolist()


def run_until(clock: FakeClock, event: threading.Event, limit: float) -> None:
    """Step the simulated clock a block at a time until ``event`` is set (by ``limit`` s)."""
    while not event.is_set():
        assert clock.elapsed < limit, "never happened in simulated time"
        clock.advance(0.02)


def test_file_output_writes_what_was_played_at_its_clock(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    t = Tracker()
    clock = FakeClock()
    player = open_player(f"file:{out}", volume=100, tracker=t, clock=clock, sleep=clock.sleep)
    try:
        assert isinstance(player, FilePlayer) and player.output_latency == 0.0
        clock.run_to(0.21)  # ten 20 ms blocks of silence: file time is the clock's time
        assert player.frames_written == 10 * 480
        sound = tone(440, 0.3, 24000)
        player.write("a", sound.tobytes())
        player.end_of_item("a")
        run_until(clock, t.drained, 1.0)
        assert t.finished() == ["a"]
        clock.advance(0.2)
        assert player.frames_written == round(clock.elapsed / 0.02) * 480  # silence kept
    finally:
        clock.close()
        player.close()
    frames, rate = read_wav(out)
    assert rate == 24000 and frames.shape[1] == 1
    data = frames[:, 0]
    span = active_span(data, 24000)
    assert span is not None
    lag, corr = best_lag(data, sound)
    # It sounded in the first block rendered after the write, not at open or at once.
    assert corr > 0.999 and lag == 10 * 480 and span[0] <= lag + 24, (lag, span)


def test_file_output_flush_matches_the_played_count(tmp_path: Path) -> None:
    out = tmp_path / "flush.wav"
    clock = FakeClock()
    player = open_player(f"file:{out}", volume=100, jitter_ms=60, clock=clock, sleep=clock.sleep)
    try:
        player.write("long", tone(300, 3.0, 24000).tobytes())
        clock.run_to(0.51)  # 25 blocks rendered
        played = player.flush()
        clock.advance(0.15)
        assert not player.is_playing
    finally:
        clock.close()
        player.close()
    data = read_wav(out)[0][:, 0]
    span = active_span(data, 24000)
    assert span is not None
    sounded = span[1] - span[0]
    fade = int(0.005 * 24000)
    assert played["long"] == 25 * 480  # exactly what the speaker consumed by then
    assert played["long"] <= sounded <= played["long"] + fade + 24  # 1 ms analysis window


def test_file_output_without_silence(tmp_path: Path) -> None:
    out = tmp_path / "compact.wav"
    t = Tracker()
    clock = FakeClock()
    player = open_player(
        f"file:{out}", volume=100, keep_silence=False, tracker=t, clock=clock, sleep=clock.sleep
    )
    try:
        clock.run_to(0.31)
        assert player.frames_written == 0  # idle blocks are not written
        player.write("a", tone(440, 0.2, 24000).tobytes())
        player.end_of_item("a")
        run_until(clock, t.drained, 1.0)
        clock.advance(0.2)
    finally:
        clock.close()
        player.close()
    data = read_wav(out)[0][:, 0]
    assert len(data) <= 0.2 * 24000 + 2 * 480  # only the blocks that carried sound
    assert best_lag(data, tone(440, 0.2, 24000))[1] > 0.999
