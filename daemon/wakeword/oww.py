"""Upstream openwakeword with ONNX models (the optional extra)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import BUILTIN_MODELS, EXTRA_HINT, WakewordError, _unique_names

FEATURE_MODELS = ("melspectrogram.onnx", "embedding_model.onnx")


class OpenWakeWordEngine:
    """Upstream ``openwakeword`` with ONNX models (the optional extra).

    Models are paths to .onnx files (or upstream's pre-trained names, if their
    files are present). The shared feature models melspectrogram.onnx and
    embedding_model.onnx are taken from the first model's folder, else from the
    openwakeword package's resources; nothing is ever downloaded.
    """

    def __init__(self, models: Sequence[str]) -> None:
        if not models:
            raise WakewordError("wakeword.models", "expected at least one model")
        missing = [
            m for m in ("openwakeword", "onnxruntime") if importlib.util.find_spec(m) is None
        ]
        if missing:
            raise WakewordError(
                "wakeword.engine",
                f'"openwakeword" needs the optional extra ({" and ".join(missing)} '
                f"not installed): {EXTRA_HINT}",
            )
        self._names = _unique_names(models)
        self._paths = [self._resolve(i, spec) for i, spec in enumerate(models)]
        self._features = self._feature_paths()
        self._keys = [p.stem for p in self._paths]  # upstream names models by file stem
        self._model: Any = None

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def default_thresholds(self) -> dict[str, float]:
        return {}

    @staticmethod
    def _resources() -> Path:
        spec = importlib.util.find_spec("openwakeword")
        assert spec is not None and spec.origin is not None
        return Path(spec.origin).parent / "resources" / "models"

    def _resolve(self, index: int, spec: str) -> Path:
        key = f"wakeword.models[{index}]"
        if spec in BUILTIN_MODELS:
            path = self._resources() / f"{spec}_v0.1.onnx"
            if not path.is_file():
                raise WakewordError(
                    key, f"openwakeword's pre-trained {spec!r} is not installed ({path})"
                )
            return path
        path = Path(spec).expanduser()
        if path.suffix != ".onnx":
            raise WakewordError(
                key, f"expected a built-in name or a path to an .onnx model, got {spec!r}"
            )
        if not path.is_file():
            raise WakewordError(key, f"model file {spec!r} not found")
        return path

    def _feature_paths(self) -> tuple[Path, Path]:
        for folder in (self._paths[0].parent, self._resources()):
            mel, emb = (folder / name for name in FEATURE_MODELS)
            if mel.is_file() and emb.is_file():
                return mel, emb
        raise WakewordError(
            "wakeword.models",
            f"{' and '.join(FEATURE_MODELS)} not found next to {str(self._paths[0])!r} "
            f"nor in {self._resources()}",
        )

    def load(self) -> None:
        if self._model is not None:
            return
        from openwakeword.model import Model

        mel, emb = self._features
        try:
            self._model = Model(
                wakeword_models=[str(p) for p in self._paths],
                inference_framework="onnx",
                melspec_model_path=str(mel),
                embedding_model_path=str(emb),
            )
        except Exception as exc:
            raise WakewordError(
                "wakeword.models", f"openwakeword cannot load the models: {exc}"
            ) from exc

    def process_frame(self, frame: np.ndarray) -> list[float]:
        if self._model is None:
            self.load()
        out = self._model.predict(frame.astype(np.int16, copy=False))
        return [float(out.get(k, 0.0)) for k in self._keys]

    def reset(self) -> None:
        if self._model is not None:
            self._model.reset()

    def close(self) -> None:
        self._model = None
