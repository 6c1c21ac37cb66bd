"""microWakeWord through pymicro-wakeword, on pyopen-wakeword's TFLite library."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import WakewordError, _unique_names
from .pyopen import _builtin_dir, _declare_options

MICRO_BUILTIN_MODELS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")


class MicroWakeWordEngine:
    """microWakeWord through pymicro-wakeword: streaming int8 models on 10 ms features.

    For the smallest boards: about a sixth of openWakeWord's floor. Models are the
    built-in names (``MICRO_BUILTIN_MODELS``) or paths to a model's ``.json``
    config (next to its ``.tflite``). A model's score for an 80 ms frame is the
    highest sliding-window mean probability within it, and its default threshold is
    its own ``probability_cutoff`` (``default_thresholds``). The models run on
    pyopen-wakeword's TFLite library, one thread, so only one TFLite is loaded.
    """

    def __init__(self, models: Sequence[str]) -> None:
        if not models:
            raise WakewordError("wakeword.models", "expected at least one model")
        if importlib.util.find_spec("pymicro_wakeword") is None:
            raise WakewordError(
                "wakeword.engine",
                '"microwakeword" needs pymicro-wakeword: pip install pymicro-wakeword',
            )
        self._configs = [self._resolve(i, spec) for i, spec in enumerate(models)]
        self._names = _unique_names(models)
        self._cutoffs = {
            name: float(json.loads(path.read_text(encoding="utf-8"))["micro"]["probability_cutoff"])
            for name, path in zip(self._names, self._configs, strict=True)
        }
        self._features: Any = None
        self._models: list[Any] = []

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def default_thresholds(self) -> dict[str, float]:
        return dict(self._cutoffs)

    @staticmethod
    def _resolve(index: int, spec: str) -> Path:
        key = f"wakeword.models[{index}]"
        if spec in MICRO_BUILTIN_MODELS:
            found = importlib.util.find_spec("pymicro_wakeword")
            assert found is not None and found.origin is not None
            return Path(found.origin).parent / "models" / f"{spec}.json"
        path = Path(spec).expanduser()
        if path.suffix != ".json":
            raise WakewordError(
                key,
                f"unknown microWakeWord model {spec!r}: expected a built-in name "
                f"({', '.join(MICRO_BUILTIN_MODELS)}) or a path to a model's .json config",
            )
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
            tflite = path.parent / str(config["model"])
            float(config["micro"]["probability_cutoff"])
            int(config["micro"]["sliding_window_size"])
        except OSError as exc:
            raise WakewordError(key, f"cannot read {spec!r}: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise WakewordError(key, f"{spec!r} is not a microWakeWord config ({exc})") from None
        try:
            with tflite.open("rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise WakewordError(key, f"cannot read {str(tflite)!r}: {exc.strerror}") from None
        if head[4:8] != b"TFL3":  # the TFLite C library crashes on a non-flatbuffer
            raise WakewordError(key, f"{str(tflite)!r} is not a TFLite model")
        return path

    def load(self) -> None:
        if self._features is not None:
            return
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

        class OneThread(MicroWakeWord):
            """Its interpreter on one thread: the default starts a worker pool."""

            def _load_model(self) -> None:
                if not isinstance(self.lib, _OneThreadLib):
                    self.lib = _OneThreadLib(self.lib)  # type: ignore[assignment]
                super()._load_model()

        lib_path = sorted((_builtin_dir().parent / "lib").glob("*tensorflowlite_c.*"))[0]
        models = []
        for i, config in enumerate(self._configs):
            try:
                models.append(OneThread.from_config(config, libtensorflowlite_c_path=lib_path))
            except (ValueError, RuntimeError) as exc:
                raise WakewordError(f"wakeword.models[{i}]", f"cannot load: {exc}") from None
        self._features, self._models = MicroWakeWordFeatures(), models

    def process_frame(self, frame: np.ndarray) -> list[float]:
        if self._features is None:
            self.load()
        scores = [0.0] * len(self._models)
        pcm = frame.astype(np.int16, copy=False).tobytes()
        for features in self._features.process_streaming(pcm):
            for i, model in enumerate(self._models):
                prob = model.process_streaming_prob(features)
                if prob is not None and prob > scores[i]:
                    scores[i] = float(prob)
        return scores

    def reset(self) -> None:
        if self._features is None:
            return
        self._features.reset()
        for model in self._models:
            model.reset()

    def close(self) -> None:
        for model in self._models:
            model.close()
        self._features, self._models = None, []


class _OneThreadLib:
    """A TFLite C library whose interpreters are created with one thread."""

    def __init__(self, lib: Any) -> None:
        self._lib = _declare_options(lib)
        self._options = lib.TfLiteInterpreterOptionsCreate()
        lib.TfLiteInterpreterOptionsSetNumThreads(self._options, 1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)

    def TfLiteInterpreterCreate(self, model: Any, _options: Any) -> Any:
        return self._lib.TfLiteInterpreterCreate(model, self._options)
