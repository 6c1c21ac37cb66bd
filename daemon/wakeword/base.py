"""Wake word engines' shared ground: the frame format, the engine protocol, model names.

16 kHz int16 audio in 80 ms frames -> one score per model. The engines are in
pyopen.py (pyopen-wakeword, the default), oww.py (upstream openwakeword) and
micro.py (microWakeWord); engines.make_engine picks one from the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import ConfigError

SAMPLE_RATE = 16000
FRAME_SAMPLES = 1280  # 80 ms: the step of openWakeWord's embedding model
BUILTIN_MODELS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa", "hey_rhasspy")
EXTRA_HINT = "pip install 'voicepi[openwakeword]'"


class WakewordError(ConfigError):
    """A wake word model or engine that cannot be used; names the config key."""


class WakeEngine(Protocol):
    """Scores 80 ms frames; ``names`` orders the scores ``process_frame`` returns."""

    @property
    def names(self) -> tuple[str, ...]: ...

    def load(self) -> None:
        """Load every model (slow, once); scoring before this loads implicitly."""

    def process_frame(self, frame: np.ndarray) -> list[float]:
        """One frame of FRAME_SAMPLES int16 samples -> one score per model."""

    def reset(self) -> None:
        """Forget the audio heard so far, as if starting after silence."""

    def close(self) -> None: ...

    @property
    def default_thresholds(self) -> dict[str, float]:
        """Thresholds the models come with, by name (``wakeword.thresholds`` overrides)."""


def model_name(spec: str) -> str:
    """The name a model's scores and thresholds go by: built-in name or file stem."""
    return spec if spec in BUILTIN_MODELS else Path(spec).stem


def _unique_names(specs: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for i, spec in enumerate(specs):
        name = model_name(spec)
        if name in names:
            raise WakewordError(f"wakeword.models[{i}]", f"model {name!r} is listed twice")
        names.append(name)
    return tuple(names)
