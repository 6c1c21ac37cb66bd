"""Wake word engines: 16 kHz int16 audio in 80 ms frames -> one score per model.

An engine computes the shared features (mel spectrogram and speech embedding)
once per frame and runs every wake model on them. Engines know nothing about
thresholds, patience or pauses; ``WakeWordDetector`` does.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import ConfigError, WakewordConfig

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


def model_name(spec: str) -> str:
    """The name a model's scores and thresholds go by: built-in name or file stem."""
    return spec if spec in BUILTIN_MODELS else Path(spec).stem


def make_engine(cfg: WakewordConfig) -> WakeEngine:
    """The configured engine; checks model names and files now, loads nothing yet."""
    if cfg.engine == "openwakeword":
        return OpenWakeWordEngine(cfg.models)
    return PyOpenWakeWordEngine(cfg.models)


def _unique_names(specs: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for i, spec in enumerate(specs):
        name = model_name(spec)
        if name in names:
            raise WakewordError(f"wakeword.models[{i}]", f"model {name!r} is listed twice")
        names.append(name)
    return tuple(names)


# --------------------------------------------------------------------------- pyopen-wakeword

# pyopen-wakeword keeps its streaming state in these attributes; restoring a copy
# taken after priming makes reset() cheap instead of re-running 8 s of zeros.
_FEATURE_STATE = ("audio", "new_audio_samples", "mels", "new_mels")
_MODEL_STATE = ("embeddings", "new_embeddings")


class PyOpenWakeWordEngine:
    """The default engine: openWakeWord's TFLite models through pyopen-wakeword."""

    def __init__(self, models: Sequence[str]) -> None:
        if not models:
            raise WakewordError("wakeword.models", "expected at least one model")
        self._paths = [self._resolve(i, spec) for i, spec in enumerate(models)]
        self._names = _unique_names(models)
        self._features: Any = None
        self._models: list[Any] = []
        self._snapshot: list[dict[str, Any]] = []

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @staticmethod
    def _resolve(index: int, spec: str) -> Path:
        key = f"wakeword.models[{index}]"
        if spec in BUILTIN_MODELS:
            return _builtin_dir() / f"{spec}.tflite"
        path = Path(spec).expanduser()
        if not path.suffix:
            raise WakewordError(
                key,
                f"unknown model {spec!r}: expected a built-in name "
                f"({', '.join(BUILTIN_MODELS)}) or a path to a .tflite file",
            )
        if path.suffix != ".tflite":
            hint = ' (ONNX models need engine = "openwakeword")' if path.suffix == ".onnx" else ""
            raise WakewordError(key, f"expected a .tflite model, got {spec!r}{hint}")
        try:
            with path.open("rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise WakewordError(key, f"cannot read {spec!r}: {exc.strerror}") from None
        # The TFLite C library crashes the process on a non-flatbuffer; check first.
        if head[4:8] != b"TFL3":
            raise WakewordError(key, f"{spec!r} is not a TFLite model")
        return path

    @property
    def loaded(self) -> bool:
        return self._features is not None

    def load(self) -> None:
        if self._features is not None:
            return
        from pyopen_wakeword import OpenWakeWord, OpenWakeWordFeatures

        features = OpenWakeWordFeatures.from_builtin()
        models = []
        for i, path in enumerate(self._paths):
            self._check_flatbuffer(features.lib, i, path)
            model = OpenWakeWord.from_model(path)
            self._check_shape(model, i, path)
            models.append(model)
        # Prime once: the features start with 8 s of zeros to fill their windows,
        # a burst we pay here and never again (reset() restores this state).
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16).tobytes()
        for emb in features.process_streaming(silence):
            for model in models:
                for _ in model.process_streaming(emb):
                    pass
        self._snapshot = [_copy_state(features, _FEATURE_STATE)]
        self._snapshot += [_copy_state(m, _MODEL_STATE) for m in models]
        self._features, self._models = features, models

    @staticmethod
    def _check_flatbuffer(lib: Any, index: int, path: Path) -> None:
        handle = lib.TfLiteModelCreateFromFile(str(path.resolve()).encode())
        if not handle:
            raise WakewordError(f"wakeword.models[{index}]", f"{str(path)!r} is not a valid model")
        lib.TfLiteModelDelete(handle)

    @staticmethod
    def _check_shape(model: Any, index: int, path: Path) -> None:
        lib, tensor = model.lib, model.input_tensor
        dims = [lib.TfLiteTensorDim(tensor, d) for d in range(lib.TfLiteTensorNumDims(tensor))]
        if len(dims) != 3 or dims[2] != 96:
            model.close()
            raise WakewordError(
                f"wakeword.models[{index}]",
                f"{str(path)!r} is not an openWakeWord wake model (input shape {dims})",
            )

    def process_frame(self, frame: np.ndarray) -> list[float]:
        if self._features is None:
            self.load()
        scores = [0.0] * len(self._models)
        for emb in self._features.process_streaming(frame.astype(np.int16, copy=False).tobytes()):
            for i, model in enumerate(self._models):
                for prob in model.process_streaming(emb):
                    scores[i] = max(scores[i], prob)
        return scores

    def reset(self) -> None:
        if self._features is None:
            return
        _restore_state(self._features, self._snapshot[0])
        for model, state in zip(self._models, self._snapshot[1:], strict=True):
            _restore_state(model, state)

    def close(self) -> None:
        for obj in [*self._models, self._features]:
            if obj is not None:
                obj.close()
        self._features, self._models = None, []


def _builtin_dir() -> Path:
    spec = importlib.util.find_spec("pyopen_wakeword")
    if spec is None or spec.origin is None:  # pragma: no cover - a core dependency
        raise WakewordError("wakeword.engine", "pyopen-wakeword is not installed")
    return Path(spec.origin).parent / "models"


def _copy_state(obj: Any, attrs: Sequence[str]) -> dict[str, Any]:
    return {
        a: np.copy(v) if isinstance(v, np.ndarray) else v for a in attrs for v in [getattr(obj, a)]
    }


def _restore_state(obj: Any, state: dict[str, Any]) -> None:
    for attr, value in state.items():
        setattr(obj, attr, np.copy(value) if isinstance(value, np.ndarray) else value)


# --------------------------------------------------------------------------- openwakeword

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
