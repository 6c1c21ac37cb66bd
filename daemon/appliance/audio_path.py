"""Microphone audio at the device rate -> 16 kHz for the wake word, 24 kHz for the session.

Both resamplers consume the same input blocks, so both timelines stay locked
to the capture's sample clock: a wake word detected at 16 kHz sample N maps to
24 kHz sample N * 1.5 in the pre-roll.
"""

from __future__ import annotations

import numpy as np

from ..dsp import Resampler, rms_dbfs
from .preroll import PreRoll


class AudioPath:
    def __init__(self, in_rate: int, wake_rate: int, session_rate: int, preroll_s: float) -> None:
        self.to_wake = Resampler(in_rate, wake_rate)
        self.to_session = Resampler(in_rate, session_rate)
        self.preroll = PreRoll(max(preroll_s, 0.5), session_rate)
        self.wake_total = 0  # wake-rate samples produced since the mic opened

    def feed(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wake = self.to_wake.process(samples)
        self.wake_total += len(wake)
        session = self.to_session.process(samples)
        self.preroll.push(session)
        return wake, session

    @staticmethod
    def level_db(samples: np.ndarray) -> float:
        return rms_dbfs(samples)
