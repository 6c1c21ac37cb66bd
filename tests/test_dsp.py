"""daemon.dsp: the streaming resampler and the small level/channel/fade helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.dsp import (
    SILENCE_DBFS,
    Resampler,
    array_to_pcm16,
    fade_ramp,
    pcm16_to_array,
    pick_channel,
    rms,
    rms_dbfs,
    volume_gain,
)

RATE_PAIRS = [
    (48000, 16000),
    (44100, 16000),
    (16000, 24000),
    (48000, 24000),
    (24000, 48000),
    (24000, 44100),
    (22050, 16000),
    (16000, 16000),
]


def _sine(freq: float, n: int, rate: int, amp: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(n) / rate
    return np.rint(np.sin(2 * np.pi * freq * t + phase) * amp * 32767).astype(np.int16)


def _stream(r: Resampler, x: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    out = []
    pos = 0
    for size in sizes:
        out.append(r.process(x[pos : pos + int(size)]))
        pos += int(size)
        if pos >= len(x):
            break
    if pos < len(x):
        out.append(r.process(x[pos:]))
    return np.concatenate(out)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_no_drift_over_a_million_samples_in_random_blocks(in_rate: int, out_rate: int) -> None:
    rng = np.random.default_rng(in_rate + out_rate)
    r = Resampler(in_rate, out_rate)
    total_in = 0
    total_out = 0
    while total_in < 1_000_000:
        n = int(rng.integers(0, 3000))
        block = rng.integers(-2000, 2000, n).astype(np.int16)
        y = r.process(block)
        assert y.dtype == np.int16
        total_in += n
        total_out += len(y)
        # At every point the count is exact: ceil(in * out_rate / in_rate).
        assert total_out == -(-total_in * out_rate // in_rate)
    assert abs(total_out - total_in * out_rate / in_rate) < 1


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_sine_passes_with_low_distortion(in_rate: int, out_rate: int) -> None:
    freq = 1000.0
    x = _sine(freq, in_rate, in_rate)
    r = Resampler(in_rate, out_rate)
    y = r.process(x).astype(np.float64)
    t = (np.arange(len(y)) - r.delay) / out_rate
    ref = np.sin(2 * np.pi * freq * t) * 0.5 * 32767
    edge = 300  # filter start-up and the (uncompleted) tail
    err = y[edge:-edge] - ref[edge:-edge]
    snr_db = 20 * math.log10(np.sqrt(np.mean(ref[edge:-edge] ** 2)) / np.sqrt(np.mean(err**2)))
    assert snr_db > 70, snr_db


def _gain_db(in_rate: int, out_rate: int, freq: float) -> float:
    x = np.sin(2 * np.pi * freq * np.arange(in_rate) / in_rate).astype(np.float32)
    y = Resampler(in_rate, out_rate).process(x).astype(np.float64)
    mid = y[len(y) // 4 : 3 * len(y) // 4]  # clear of the filter's start-up
    return 20 * math.log10(np.sqrt(2 * np.mean(mid**2)) + 1e-12)


@pytest.mark.parametrize(("in_rate", "out_rate"), [p for p in RATE_PAIRS if p[0] != p[1]])
def test_passband_is_flat_to_045_of_the_lower_rate(in_rate: int, out_rate: int) -> None:
    low = min(in_rate, out_rate)
    for frac in (0.05, 0.2, 0.35, 0.42, 0.45):
        gain = _gain_db(in_rate, out_rate, frac * low)
        assert abs(gain) < 0.09, (frac, gain)  # > 0.99 linear


@pytest.mark.parametrize(("in_rate", "out_rate"), [p for p in RATE_PAIRS if p[0] > p[1]])
def test_stopband_from_the_lower_nyquist(in_rate: int, out_rate: int) -> None:
    # Anything at or above the output's Nyquist would alias back into the band.
    for frac in (0.5, 0.52, 0.6, 0.8):
        freq = frac * out_rate
        if freq < in_rate / 2:
            assert _gain_db(in_rate, out_rate, freq) < -75, frac


def test_downsampling_rejects_what_cannot_be_represented() -> None:
    # 7.5 kHz fits under 8 kHz (16 kHz output); 10 kHz would alias to 6 kHz.
    x = _sine(10000, 48000, 48000)
    y = Resampler(48000, 16000).process(x)
    assert rms_dbfs(y[500:-500]) < rms_dbfs(x) - 70


@settings(max_examples=60, deadline=None)
@given(
    rates=st.sampled_from(RATE_PAIRS),
    splits=st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=25),
    freq=st.floats(min_value=50, max_value=6000),
)
def test_streaming_equals_one_shot(rates: tuple[int, int], splits: list[int], freq: float) -> None:
    in_rate, out_rate = rates
    x = _sine(freq, 8000, in_rate, amp=0.9)
    whole = Resampler(in_rate, out_rate).process(x)
    parts = _stream(Resampler(in_rate, out_rate), x, np.array(splits))
    assert len(parts) == len(whole)
    assert np.max(np.abs(parts.astype(np.int32) - whole.astype(np.int32)), initial=0) <= 1


@pytest.mark.parametrize(("in_rate", "out_rate"), [(24000, 16000), (16000, 24000), (48000, 16000)])
def test_silence_between_sounds_streams_as_one_shot(in_rate: int, out_rate: int) -> None:
    """Silent blocks take a shortcut (exact zeros, history kept): the stream around and
    through them is the same as resampling the whole at once."""
    tone = _sine(440, 3000, in_rate, amp=0.5)
    x = np.concatenate((tone, np.zeros(in_rate // 2, dtype=tone.dtype), tone))
    whole = Resampler(in_rate, out_rate).process(x)
    parts = _stream(
        Resampler(in_rate, out_rate), x, np.full(len(x) // (in_rate // 50) + 1, in_rate // 50)
    )
    assert len(parts) == len(whole)
    assert np.array_equal(parts, whole)


def test_no_click_at_block_boundaries() -> None:
    # A click shows as a jump in the second difference far above a sine's own.
    rate_in, rate_out = 44100, 16000
    x = _sine(440, 44100 * 2, rate_in, amp=0.8)
    y = _stream(Resampler(rate_in, rate_out), x, np.full(1000, 441)).astype(np.float64)
    d2 = np.abs(np.diff(y[200:-200], 2))
    expected = 0.8 * 32767 * (2 * np.pi * 440 / rate_out) ** 2
    assert d2.max() < expected * 1.05


def test_float_in_gives_float_out_and_clipping_is_safe() -> None:
    r = Resampler(16000, 24000)
    y = r.process(np.zeros(100, dtype=np.float32))
    assert y.dtype == np.float32 and len(y) == 150
    loud = np.full(4000, 32767, dtype=np.int16)
    loud[::2] = -32768  # a full-scale square at Nyquist overshoots in the filter
    z = Resampler(16000, 24000).process(loud)
    assert z.dtype == np.int16


def test_counters_rebase_on_long_streams() -> None:
    r = Resampler(44100, 16000)
    for _ in range(2000):
        r.process(np.zeros(441, dtype=np.int16))
    assert r._n_out < r.up and r._n_in <= r.down + r.taps  # stays small on long uptimes


def test_reset_and_bad_input() -> None:
    r = Resampler(48000, 16000)
    r.process(np.ones(100, dtype=np.int16))
    r.reset()
    assert r.output_count(3) == 1
    with pytest.raises(ValueError, match="mono"):
        r.process(np.zeros((10, 2), dtype=np.int16))
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 16000)


def test_passthrough_copies() -> None:
    x = np.arange(10, dtype=np.int16)
    y = Resampler(16000, 16000).process(x)
    assert np.array_equal(x, y) and y is not x and Resampler(8000, 8000).delay == 0


def test_pick_channel_from_interleaved_bytes_and_arrays() -> None:
    frames = np.array([[1, 10, 100], [2, 20, 200], [3, 30, 300]], dtype=np.int16)
    raw = frames.tobytes()
    assert pick_channel(raw, 3, 1).tolist() == [10, 20, 30]
    assert pick_channel(frames.reshape(-1), 3, 2).tolist() == [100, 200, 300]
    assert pick_channel(raw[:-2], 3, 2).tolist() == [100, 200]  # torn last frame dropped
    assert pick_channel(np.array([5, 6], dtype=np.int16), 1, 0).tolist() == [5, 6]
    with pytest.raises(ValueError, match="out of range"):
        pick_channel(raw, 3, 3)
    with pytest.raises(ValueError, match="at least 1"):
        pick_channel(raw, 0, 0)


def test_pcm16_round_trip_and_odd_bytes() -> None:
    x = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    assert np.array_equal(pcm16_to_array(array_to_pcm16(x)), x)
    assert len(pcm16_to_array(array_to_pcm16(x) + b"\x01")) == 5


def test_levels() -> None:
    assert rms_dbfs(np.zeros(100, dtype=np.int16)) == SILENCE_DBFS
    assert rms_dbfs(np.zeros(0, dtype=np.int16)) == SILENCE_DBFS
    square = np.array([32767, -32767] * 100, dtype=np.int16)
    assert rms_dbfs(square) == pytest.approx(0.0, abs=0.01)
    sine = _sine(1000, 48000, 48000, amp=1.0)
    assert rms_dbfs(sine) == pytest.approx(-3.01, abs=0.05)
    assert rms(np.full(10, 0.5, dtype=np.float32)) == pytest.approx(0.5)


def test_volume_curve() -> None:
    assert volume_gain(0) == 0.0
    assert volume_gain(100) == 1.0
    assert 20 * math.log10(volume_gain(50)) == pytest.approx(-12.04, abs=0.01)
    assert volume_gain(150) == 1.0 and volume_gain(-5) == 0.0
    gains = [volume_gain(p) for p in range(101)]
    assert gains == sorted(gains)


def test_fade_ramp() -> None:
    ramp = fade_ramp(8)
    assert ramp[0] < 1.0 and ramp[-1] > 0.0 and np.all(np.diff(ramp) < 0)
    assert len(fade_ramp(0)) == 0
