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
