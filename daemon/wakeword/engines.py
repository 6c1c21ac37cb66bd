"""Wake word engines: 16 kHz int16 audio in 80 ms frames -> one score per model.

``make_engine`` builds the configured one: pyopen.py (pyopen-wakeword, the
default), oww.py (upstream openwakeword, an extra) or micro.py (microWakeWord);
base.py holds what they share (frame format, WakeEngine, WakewordError).
"""

from __future__ import annotations

from ..config import WakewordConfig
from .base import (
    BUILTIN_MODELS,
    EXTRA_HINT,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    WakeEngine,
    WakewordError,
    model_name,
)
from .micro import MICRO_BUILTIN_MODELS, MicroWakeWordEngine
from .oww import OpenWakeWordEngine
from .pyopen import PyOpenWakeWordEngine

__all__ = [
    "BUILTIN_MODELS",
    "EXTRA_HINT",
    "FRAME_SAMPLES",
    "MICRO_BUILTIN_MODELS",
    "SAMPLE_RATE",
    "MicroWakeWordEngine",
    "OpenWakeWordEngine",
    "PyOpenWakeWordEngine",
    "WakeEngine",
    "WakewordError",
    "make_engine",
    "model_name",
]


def make_engine(cfg: WakewordConfig) -> WakeEngine:
    """The configured engine; checks model names and files now, loads nothing yet."""
    if cfg.engine == "openwakeword":
        return OpenWakeWordEngine(cfg.models)
    if cfg.engine == "microwakeword":
        return MicroWakeWordEngine(cfg.models)
    return PyOpenWakeWordEngine(cfg.models, gate=cfg.gate)
