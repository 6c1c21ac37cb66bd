"""Wake word detection over a 16 kHz sample stream: thresholds, patience, refractory, pauses.

Time is the sample count fed since start or ``reset()`` (16 kHz), never the
wall clock, so a detection's ``end_sample`` maps exactly onto the pre-roll and
the same audio gives the same detections whatever the block sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import WakewordConfig
from .engines import FRAME_SAMPLES, SAMPLE_RATE, WakeEngine, WakewordError, make_engine, model_name

# A score at this fraction of its threshold makes the detector ``near_threshold``. The
# fixtures' wake words pass it 3 frames (240 ms) before they fire; other speech in
# the fixtures and the bench stays under 0.006 of the threshold.
NEAR_RATIO = 0.02
NEAR_HOLD_S = 1.0  # ... and keeps it so this long (a word's score dips between syllables)


@dataclass(frozen=True)
class Detection:
    model: str
    score: float
    end_sample: int  # 16 kHz index (since start/reset) of the end of the frame that fired

    @property
    def end_seconds(self) -> float:
        return self.end_sample / SAMPLE_RATE


class WakeWordDetector:
    """Feeds any block size to the engine in 80 ms frames and decides detections.

    - a model fires after ``patience`` consecutive frames at or over its threshold;
    - after firing, that model stays quiet for ``refractory`` seconds of audio and
      until its score has fallen below the threshold (re-armed);
    - ``pause()`` / ``resume(tail)`` / ``suppress_until(n)`` drop frames unscored
      (the device must not wake itself); when scoring restarts the engine is
      reset, so audio heard before or during the pause cannot complete a word.

    ``near_threshold`` tells a caller that batches frames to save wake-ups (the
    appliance while idle, ``wakeword.batch_frames``) when to feed every frame as it
    comes instead: detections are the same either way, only reported later.
    """

    def __init__(self, cfg: WakewordConfig, *, engine: WakeEngine | None = None) -> None:
        self.cfg = cfg
        self.engine = engine if engine is not None else make_engine(cfg)
        self.names = self.engine.names
        self.thresholds = self._thresholds(cfg, self.names, self.engine.default_thresholds)
        self._patience_frames = cfg.patience
        self._refractory_samples = round(cfg.refractory * SAMPLE_RATE)
        self._near = tuple(t * NEAR_RATIO for t in self.thresholds)
        self._near_samples = round(NEAR_HOLD_S * SAMPLE_RATE)
        self._loaded = False
        self._pending = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self.reset()

    @staticmethod
    def _thresholds(
        cfg: WakewordConfig, names: tuple[str, ...], defaults: dict[str, float]
    ) -> tuple[float, ...]:
        by_name = {}
        for key, value in cfg.thresholds.items():
            name = key if key in names else model_name(key)
            if name not in names:
                raise WakewordError(
                    f"wakeword.thresholds.{key}",
                    f"no such model in wakeword.models ({', '.join(names)})",
                )
            by_name[name] = value
        return tuple(by_name.get(n, defaults.get(n, cfg.threshold)) for n in names)

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> None:
        """Load the models now (slow, once) so start-up can report readiness."""
        if not self._loaded:
            self.engine.load()
            self.engine.reset()
            self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded

    def reset(self) -> None:
        """Start over: sample count 0, no pause, no tail, no refractory, empty buffers."""
        self._fill = 0
        self.samples_seen = 0
        self._paused = False
        self._suppress_until = 0
        self._dropping = False
        self._streak = [0] * len(self.names)
        self._quiet_until = [0] * len(self.names)
        self._armed = [True] * len(self.names)
        self._near_until = 0
        self.peaks = dict.fromkeys(self.names, 0.0)
        self.last_scores = dict.fromkeys(self.names, 0.0)
        if self._loaded:
            self.engine.reset()

    def close(self) -> None:
        self.engine.close()
        self._loaded = False

    # ------------------------------------------------------------------ pausing

    def pause(self) -> None:
        """Stop scoring (the device is speaking) until ``resume``."""
        self._paused = True

    def resume(self, tail_seconds: float = 0.0) -> None:
        """Score again once ``tail_seconds`` more audio has gone by (echo and reverb)."""
        self._paused = False
        self.suppress_until(self.samples_seen + math.ceil(tail_seconds * SAMPLE_RATE))

    def suppress_until(self, sample_index: int) -> None:
        """Drop every frame that ends at or before ``sample_index``."""
        self._suppress_until = max(self._suppress_until, sample_index)

    @property
    def near_threshold(self) -> bool:
        """True for ``NEAR_HOLD_S`` of audio after a frame scored at least ``NEAR_RATIO``
        of its model's threshold (a wake word may be under way)."""
        return self.samples_seen < self._near_until

    @property
    def paused(self) -> bool:
        """True while frames are being dropped (paused or within a tail)."""
        return self._paused or self.samples_seen < self._suppress_until

    # ------------------------------------------------------------------ scoring

    def process(self, samples: np.ndarray) -> list[Detection]:
        """Feed 16 kHz mono int16 samples (any count); returns the detections they complete."""
        if not self._loaded:
            self.load()
        data = np.asarray(samples)
        if data.ndim != 1:
            data = data.reshape(-1)
        if data.dtype != np.int16:
            data = np.clip(data, -32768, 32767).astype(np.int16)
        found: list[Detection] = []
        pos = 0
        while pos < len(data):
            take = min(FRAME_SAMPLES - self._fill, len(data) - pos)
            self._pending[self._fill : self._fill + take] = data[pos : pos + take]
            self._fill += take
            pos += take
            self.samples_seen += take
            if self._fill == FRAME_SAMPLES:
                self._fill = 0
                self._frame(self._pending, found)
        return found

    def _frame(self, frame: np.ndarray, found: list[Detection]) -> None:
        end = self.samples_seen
        if self._paused or end <= self._suppress_until:
            self._dropping = True
            return
        if self._dropping:
            # Back from a pause: start from silence, not from what the speaker said.
            self._dropping = False
            self.engine.reset()
            self._streak = [0] * len(self.names)
            self._armed = [True] * len(self.names)
        scores = self.engine.process_frame(frame)
        for i, (name, score) in enumerate(zip(self.names, scores, strict=True)):
            self.last_scores[name] = score
            if score > self.peaks[name]:
                self.peaks[name] = score
            if score >= self._near[i]:
                self._near_until = end + self._near_samples
            if score < self.thresholds[i]:
                self._streak[i] = 0
                self._armed[i] = True
                continue
            if end < self._quiet_until[i] or not self._armed[i]:
                # One word keeps the score up ~0.5 s: the same model fires again only
                # after the score has fallen below its threshold (and the refractory).
                self._streak[i] = 0
                continue
            self._streak[i] += 1
            if self._streak[i] >= self._patience_frames:
                found.append(Detection(model=name, score=float(score), end_sample=end))
                self._streak[i] = 0
                self._armed[i] = False
                self._quiet_until[i] = end + self._refractory_samples
