"""Microphone audio at the device rate -> 16 kHz for the wake word, 24 kHz for the session.

While idle only the wake word's conversion runs (libsoxr, the cheapest that meets the
band; a 16 kHz mic passes through); the pre-roll keeps the device-rate
samples. At the wake, ``start_session`` converts the pre-roll to the session rate
once and keeps converting the live blocks until ``end_session``. The session audio
is bit for bit what one session-rate resampler fed from the moment the mic opened
would have produced (a fresh resampler started ``taps`` samples early, on a whole
period of the rate ratio, has the same phase and a full history by the first sample
kept), so both timelines stay locked to the capture's sample clock: a wake word
detected at 16 kHz sample N maps to 24 kHz sample N * 1.5.
"""

from __future__ import annotations

import math

import numpy as np

from ..dsp import Resampler, SoxrResampler, rms_dbfs
from .preroll import PreRoll


class AudioPath:
    """One capture stream's conversions; ``feed`` every block, in order, from the mic opening."""

    def __init__(self, in_rate: int, wake_rate: int, session_rate: int, preroll_s: float) -> None:
        self.in_rate, self.session_rate = in_rate, session_rate
        self.to_wake = SoxrResampler(in_rate, wake_rate)  # always on: the cheapest
        self.to_session: Resampler | None = None  # only while a session runs
        self._ratio = Resampler(in_rate, session_rate)  # design only: taps and up/down
        # The session-rate span a session may reach back to (as the 24 kHz pre-roll kept).
        self.preroll_samples = max(1, int(max(preroll_s, 0.5) * session_rate))
        span = math.ceil(self.preroll_samples * in_rate / session_rate)
        self.preroll = PreRoll(
            (span + 2 * self._ratio.taps + 2 * self._ratio.down) / in_rate, in_rate
        )
        self.wake_total = 0  # wake-rate samples produced since the mic opened
        self.session_skip = 0

    @property
    def session_end(self) -> int:
        """Session-rate samples the mic's audio so far amounts to (the next index)."""
        r = self._ratio
        return (self.preroll.end_index * r.up + r.down - 1) // r.down

    def feed(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One mic block -> (wake-rate samples, session-rate samples; empty while idle)."""
        wake = self.to_wake.process(samples)
        self.wake_total += len(wake)
        self.preroll.push(samples)
        if self.to_session is None:
            return wake, np.zeros(0, dtype=np.int16)
        return wake, self._session(samples)

    def start_session(self, start: int | None) -> np.ndarray:
        """Start converting for a session; returns the session-rate audio from index
        ``start`` (clamped to the pre-roll kept; None: from now) up to now."""
        end = self.session_end
        start = end if start is None else min(end, max(start, end - self.preroll_samples, 0))
        r = self._ratio
        # A whole number of ratio periods before the first input that output needs,
        # with a full filter history in between.
        first = max(0, (start * r.down // r.up - r.taps) // r.down * r.down)
        self.to_session = Resampler(self.in_rate, self.session_rate)
        self.session_skip = start - first * r.up // r.down
        return self._session(self.preroll.since(first))

    def end_session(self) -> None:
        self.to_session = None

    def _session(self, samples: np.ndarray) -> np.ndarray:
        assert self.to_session is not None
        out = self.to_session.process(samples)
        if self.session_skip:
            drop = min(self.session_skip, len(out))
            self.session_skip -= drop
            out = out[drop:]
        return out

    @staticmethod
    def level_db(samples: np.ndarray) -> float:
        return rms_dbfs(samples)
