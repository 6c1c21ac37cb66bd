"""What the capture and playback tests hand to the audio layer and wait on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np


class Collector:
    """on_audio/on_error sink for a capture: blocks with their frame index, timed errors."""

    def __init__(self) -> None:
        self.blocks: list[tuple[int, np.ndarray]] = []
        self.errors: list[tuple[float, BaseException]] = []
        self.lock = threading.Lock()
        self.error_seen = threading.Event()

    def on_audio(self, samples: np.ndarray, first: int) -> None:
        with self.lock:
            self.blocks.append((first, samples.copy()))

    def on_error(self, exc: BaseException) -> None:
        self.errors.append((time.monotonic(), exc))
        self.error_seen.set()

    def audio(self) -> np.ndarray:
        with self.lock:
            return np.concatenate([b for _, b in self.blocks])

    def frames(self) -> int:
        with self.lock:
            return sum(len(b) for _, b in self.blocks)


class Tracker:
    """A player's PlaybackTracker that logs what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, tuple[object, ...]]] = []
        self.progress: dict[str, int] = {}
        self.drained = threading.Event()
        self.started = threading.Event()

    def _log(self, name: str, *args: object) -> None:
        self.events.append((time.monotonic(), name, args))

    def on_started(self, item_id: str) -> None:
        self._log("started", item_id)
        self.started.set()

    def on_progress(self, item_id: str, samples_played: int) -> None:
        assert samples_played >= self.progress.get(item_id, 0)  # counts never go back
        self.progress[item_id] = samples_played

    def on_finished(self, item_id: str) -> None:
        self._log("finished", item_id)

    def on_drained(self) -> None:
        self._log("drained")
        self.drained.set()

    def names(self) -> list[tuple[str, tuple[object, ...]]]:
        return [(n, a) for _, n, a in self.events]

    def finished(self) -> list[object]:
        return [a[0] for n, a in self.names() if n == "finished"]


def wait_for(pred: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def share_received(sent24: bytes, words16: np.ndarray, *, window_ms: int = 50) -> float:
    """Share (0-1) of the spoken windows of ``words16`` (16 kHz) that are found, in place,
    in ``sent24`` (PCM16 at 24 kHz, what the server received): aligned at the best lag,
    a window counts when it correlates above 0.8 with what was sent there."""
    from daemon.dsp import Resampler
    from tests.pulse import best_lag

    got = Resampler(24000, 16000).process(np.frombuffer(sent24, dtype="<i2"))
    # Zeros on both sides: the words may begin before what was sent, or run past its end.
    pad = np.zeros(len(words16), dtype=np.float32)
    sent = np.concatenate((pad, got, pad))
    lag, _ = best_lag(sent, words16)
    win = 16 * window_ms
    spoken = found = 0
    for start in range(0, len(words16) - win + 1, win):
        a = words16[start : start + win].astype(np.float64)
        if np.sqrt(np.mean(a * a)) < 100:  # a pause between words: nothing to find
            continue
        spoken += 1
        b = sent[lag + start : lag + start + win].astype(np.float64)
        if np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9) > 0.8:
            found += 1
    return found / spoken if spoken else 0.0
