"""SoxrResampler (the always-on mic -> 16 kHz path): the same band as Resampler, streamed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from daemon.dsp import SoxrResampler

DOWN = [(48000, 16000), (44100, 16000), (22050, 16000)]


def _through(in_rate: int, out_rate: int, x: np.ndarray, block_ms: int = 80) -> np.ndarray:
    r = SoxrResampler(in_rate, out_rate)
    n = in_rate * block_ms // 1000
    return np.concatenate([r.process(x[i : i + n]) for i in range(0, len(x), n)])


def _gain_db(in_rate: int, out_rate: int, freq: float) -> float:
    t = np.arange(2 * in_rate) / in_rate
    x = np.rint(np.sin(2 * np.pi * freq * t) * 16000).astype(np.int16)
    y = _through(in_rate, out_rate, x).astype(np.float64)
    mid = y[len(y) // 4 : 3 * len(y) // 4]
    return 20 * math.log10(np.sqrt(2 * np.mean(mid**2)) / 16000 + 1e-12)


@pytest.mark.parametrize(("in_rate", "out_rate"), DOWN)
def test_passband_flat_to_045_and_stopband_from_the_lower_nyquist(
    in_rate: int, out_rate: int
) -> None:
    for frac in (0.05, 0.2, 0.35, 0.45):  # Resampler's own criteria (tests/test_dsp.py)
        assert abs(_gain_db(in_rate, out_rate, frac * out_rate)) < 0.09, frac
    for frac in (0.5, 0.52, 0.6):
        if frac * out_rate < in_rate / 2:  # int16 rounding noise sets the floor here
            assert _gain_db(in_rate, out_rate, frac * out_rate) < -75, frac


@pytest.mark.parametrize(("in_rate", "out_rate"), DOWN)
def test_streamed_output_is_aligned_and_complete(in_rate: int, out_rate: int) -> None:
    seconds = 3
    t = np.arange(seconds * in_rate) / in_rate
    x = np.rint(np.sin(2 * np.pi * 1000 * t) * 16000).astype(np.int16)
    y = _through(in_rate, out_rate, x).astype(np.float64)
    held = seconds * out_rate - len(y)
    assert 0 <= held < out_rate * 0.05  # a few ms held back, never more, never a drift
    ref = np.sin(2 * np.pi * 1000 * np.arange(len(y)) / out_rate) * 16000  # no group delay
    err = (y - ref)[500:]
    snr_db = 20 * math.log10(np.sqrt(np.mean(ref[500:] ** 2)) / np.sqrt(np.mean(err**2)))
    assert snr_db > 70, snr_db


def test_digital_silence_stays_digital_silence() -> None:
    r = SoxrResampler(48000, 16000)
    out = np.concatenate([r.process(np.zeros(3840, np.int16)) for _ in range(20)])
    assert len(out) > 20000 and not out.any()  # no dither: the wake engine skips zeros


def test_equal_rates_pass_through_and_bad_input_is_refused() -> None:
    r = SoxrResampler(16000, 16000)
    x = np.arange(100, dtype=np.int16)
    assert r.process(x) is x
    with pytest.raises(ValueError, match="mono"):
        r.process(np.zeros((4, 2), np.int16))
    with pytest.raises(ValueError, match="positive"):
        SoxrResampler(0, 16000)
