"""Hardware-free audio DSP on numpy arrays: resampling, channel picking, levels, fades.

Everything here is pure computation on int16 / float arrays, cheap enough for a
PortAudio callback on a Raspberry Pi, and never touches a device or a clock.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

INT16_FULL_SCALE = 32768.0
SILENCE_DBFS = -120.0  # what rms_dbfs reports for digital silence (log of zero)

# Filter design, relative to the lower of the two rates: flat (within 0.1 dB) to
# 0.45 of it, 80 dB down from its Nyquist (0.5) on, so nothing aliases back into
# the band. The Kaiser window's length follows from that transition width.
_PASSBAND = 0.45
_STOPBAND = 0.5
_ATTENUATION_DB = 80.0
_KAISER_BETA = 0.1102 * (_ATTENUATION_DB - 8.7)


class Resampler:
    """Streaming rational-ratio resampler (polyphase Kaiser-windowed sinc).

    ``process`` may be called with blocks of any size; the filter history and
    the output phase are carried across calls, so a stream cut into blocks
    gives exactly the samples the whole signal would give in one call (no
    boundary clicks) and the output count never drifts: after N input samples
    in total, exactly ``ceil(N * out_rate / in_rate)`` samples have come out.

    The output lags the input by ``delay`` output samples (the filter's group
    delay, about 3 ms; not always a whole sample). int16 in gives int16 out
    (rounded, clipped); floating-point in gives float32 out.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        # The reduced ratio by gcd (fractions would import decimal: 0.3 MB for one division).
        common = math.gcd(self.out_rate, self.in_rate)
        self.up = self.out_rate // common  # L: phases
        self.down = self.in_rate // common  # M: input step per output, in 1/L units
        self.passthrough = self.up == self.down == 1
        self._phases, self.taps = _design(self.up, self.down)
        self._hist = np.zeros(self.taps - 1, dtype=np.float64)
        # Counters since the last rebase; only their difference matters, and
        # rebasing by whole periods keeps the integers small on long uptimes.
        self._n_in = 0
        self._n_out = 0

    @property
    def delay(self) -> float:
        """Group delay in output samples."""
        if self.passthrough:
            return 0.0
        return (self.up * self.taps - 1) / (2.0 * self.down)

    def output_count(self, n_in: int) -> int:
        """Output samples that ``n_in`` more input samples would produce now."""
        total = self._n_in + n_in
        return (total * self.up + self.down - 1) // self.down - self._n_out

    def reset(self) -> None:
        """Forget the history (start of an unrelated stream)."""
        self._hist[:] = 0.0
        self._n_in = 0
        self._n_out = 0

    def process(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"expected mono (1-D) samples, got shape {x.shape}")
        as_int16 = not np.issubdtype(x.dtype, np.floating)
        if self.passthrough:
            return x.astype(np.int16 if as_int16 else np.float32, copy=True)
        y = self._run(x.astype(np.float64))
        if as_int16:
            return float_to_int16(y)
        out: np.ndarray = y.astype(np.float32)
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:
        k = self.taps
        n_new = len(x)
        n_out = self.output_count(n_new)
        # Digital silence in, silence held: the output is exact zeros (a linear filter) and
        # the history stays zeros. An idle speaker's echo reference is this, every block:
        # filtering it cost 0.03 CPU s/s.
        silent = not x.any() and not self._hist.any()
        buf = self._hist if silent else np.concatenate((self._hist, x))
        out = np.zeros(n_out, dtype=np.float64) if silent else np.empty(n_out, dtype=np.float64)
        if n_out and not silent:
            windows = sliding_window_view(buf, k)  # windows[w] ends at input self._n_in + w
            # Outputs ``up`` apart share a phase and their newest inputs are ``down`` apart:
            # one strided view per phase, no gathered copy of the windows (bit-identical to
            # a per-output dot, a fraction of the time and memory on a pre-roll's seconds).
            for r in range(min(self.up, n_out)):
                pos = (self._n_out + r) * self.down
                newest = pos // self.up  # index of the newest input this output needs
                phase = pos - newest * self.up
                count = len(range(r, n_out, self.up))
                first = newest - self._n_in
                view = windows[first : first + (count - 1) * self.down + 1 : self.down]
                out[r :: self.up] = np.einsum("ij,j->i", view, self._phases[phase])
        if not silent:
            self._hist = buf[len(buf) - (k - 1) :].copy()
        self._n_in += n_new
        self._n_out += n_out
        periods = self._n_out // self.up
        if periods:
            self._n_out -= periods * self.up
            self._n_in -= periods * self.down
        return out


def _design(up: int, down: int) -> tuple[np.ndarray, int]:
    """Polyphase table, shape (up, taps), each row reversed to dot with a window."""
    if up == down == 1:
        return np.ones((1, 1)), 1
    scale = min(1.0, up / down)  # the lower rate, in cycles per input sample
    fc = 0.5 * (_PASSBAND + _STOPBAND) * scale  # cutoff (-6 dB) mid-transition
    width = (_STOPBAND - _PASSBAND) * scale
    taps = math.ceil((_ATTENUATION_DB - 7.95) / (2.285 * 2 * math.pi * width)) + 1
    length = taps * up
    t = (np.arange(length) - (length - 1) / 2.0) / up  # in input samples
    proto = 2.0 * fc * np.sinc(2.0 * fc * t) * np.kaiser(length, _KAISER_BETA)
    phases = proto.reshape(taps, up).T.copy()  # phases[p, k] = proto[p + k * up]
    # Unit DC gain per phase: no phase-dependent gain ripple on slow signals.
    phases /= phases.sum(axis=1, keepdims=True)
    return phases[:, ::-1].copy(), taps


class SoxrResampler:
    """Streaming resampler through libsoxr (python-soxr, "HQ"), for the always-on mic path.

    Same band as ``Resampler`` and better: flat within 0.01 dB to 0.45 of the lower
    rate, over 130 dB down from its Nyquist on (tests/test_dsp.py checks both), at
    about a twentieth of the CPU (48 -> 16 kHz in 80 ms blocks: 0.0004 against 0.011
    CPU s per audio s on the bench machine). Its output is aligned to the input's
    timeline (no group delay) but trails it by a few ms of samples held back, so
    counts are not exact per call; use ``Resampler`` where a session's bit-exact
    stream or exact counts matter. int16 in, int16 out; equal rates pass through.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate, self.out_rate = int(in_rate), int(out_rate)
        self.passthrough = self.in_rate == self.out_rate
        self._stream: Any = None
        if not self.passthrough:
            import soxr

            # float32, rounded here: soxr's own int16 output is dithered, so digital
            # silence would come out as noise and wake the models' cheap silence paths.
            self._stream = soxr.ResampleStream(
                self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ"
            )

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Mono int16 samples (any count) -> the int16 samples now ready at ``out_rate``."""
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"expected mono (1-D) samples, got shape {x.shape}")
        x = x.astype(np.int16, copy=False)
        if self.passthrough:
            return x
        return float_to_int16(self._stream.resample_chunk(x.astype(np.float32)))


# --------------------------------------------------------------------------- channels


def check_channel(channels: int, channel: int) -> None:
    """Raise ValueError unless ``channel`` is one of ``channels`` (at least one)."""
    if channels < 1:
        raise ValueError(f"channels must be at least 1, got {channels}")
    if not 0 <= channel < channels:
        raise ValueError(f"channel {channel} out of range for {channels} channel(s)")


def pick_channel(interleaved: bytes | np.ndarray, channels: int, channel: int) -> np.ndarray:
    """One channel of interleaved int16 frames, as a contiguous mono int16 array."""
    check_channel(channels, channel)
    if isinstance(interleaved, bytes | bytearray | memoryview):
        data = np.frombuffer(interleaved, dtype="<i2")
    else:
        data = np.asarray(interleaved)
    usable = len(data) - len(data) % channels  # a torn last frame is dropped
    if channels == 1:
        return data[:usable].astype(np.int16, copy=True)
    return np.ascontiguousarray(data[channel:usable:channels], dtype=np.int16)


def pcm16_to_array(pcm: bytes) -> np.ndarray:
    """PCM16 little-endian bytes to int16 samples (an odd trailing byte is dropped)."""
    return np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.int16)


def array_to_pcm16(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype="<i2").tobytes()


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in int16 units to int16, rounded and clipped."""
    out: np.ndarray = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    return out


# --------------------------------------------------------------------------- levels


def rms(samples: np.ndarray) -> float:
    """Root mean square relative to int16 full scale (0.0 .. ~1.0); 0.0 when empty."""
    x = np.asarray(samples)
    if len(x) == 0:
        return 0.0
    f = x.astype(np.float64)
    if not np.issubdtype(x.dtype, np.floating):
        f /= INT16_FULL_SCALE
    return float(np.sqrt(np.mean(f * f)))


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale; SILENCE_DBFS for silence or no samples.

    A full-scale square wave reads 0 dBFS, a full-scale sine about -3 dBFS.
    """
    level = rms(samples)
    if level <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(level))


def volume_gain(percent: float) -> float:
    """Volume percent (0-100) to a linear gain; a square law, so 50 % is about -12 dB."""
    p = min(100.0, max(0.0, float(percent))) / 100.0
    return p * p


# --------------------------------------------------------------------------- fades


def fade_ramp(length: int) -> np.ndarray:
    """Half-cosine ramp from 1 down to 0 over ``length`` samples (both ends excluded
    from the silence, so a 1-sample fade is not a hard cut to zero)."""
    if length <= 0:
        return np.zeros(0, dtype=np.float32)
    n = np.arange(1, length + 1, dtype=np.float64)
    return (0.5 * (1.0 + np.cos(np.pi * n / (length + 1)))).astype(np.float32)
