"""Pre-roll: the last seconds of session-rate audio, addressable by sample index.

The wake word fires near the end of "hey jarvis", while the socket is still
connecting. The session must receive the audio from that moment on, so the
words said right after the wake word are not lost. Indexes count samples
since the capture started, on the session's (24 kHz) timeline.
"""

from __future__ import annotations

import numpy as np


class PreRoll:
    def __init__(self, seconds: float, rate: int) -> None:
        self.rate = rate
        self.capacity = max(1, int(seconds * rate))
        self._buf = np.zeros(self.capacity, dtype=np.int16)
        self._end = 0  # index one past the newest sample

    @property
    def end_index(self) -> int:
        return self._end

    @property
    def start_index(self) -> int:
        return max(0, self._end - self.capacity)

    def push(self, samples: np.ndarray) -> None:
        n = len(samples)
        if n > self.capacity:  # only the newest samples fit; keep them at their slots
            self._end += n - self.capacity
            samples = samples[-self.capacity :]
            n = self.capacity
        pos = self._end % self.capacity
        first = min(n, self.capacity - pos)
        self._buf[pos : pos + first] = samples[:first]
        self._buf[: n - first] = samples[first:]
        self._end += n

    def since(self, index: int) -> np.ndarray:
        """Samples from ``index`` (clamped to what is kept) to the newest, in order."""
        index = min(max(index, self.start_index), self._end)
        n = self._end - index
        if n == 0:
            return np.zeros(0, dtype=np.int16)
        pos = index % self.capacity
        if pos + n <= self.capacity:
            return self._buf[pos : pos + n].copy()
        return np.concatenate((self._buf[pos:], self._buf[: n - (self.capacity - pos)]))
