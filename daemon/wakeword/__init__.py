"""Wake word: engines that score 80 ms frames, and the detector that decides."""

from __future__ import annotations

from .detector import Detection, WakeWordDetector
from .engines import (
    BUILTIN_MODELS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    OpenWakeWordEngine,
    PyOpenWakeWordEngine,
    WakeEngine,
    WakewordError,
    make_engine,
    model_name,
)

__all__ = [
    "BUILTIN_MODELS",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "Detection",
    "OpenWakeWordEngine",
    "PyOpenWakeWordEngine",
    "WakeEngine",
    "WakeWordDetector",
    "WakewordError",
    "make_engine",
    "model_name",
]
