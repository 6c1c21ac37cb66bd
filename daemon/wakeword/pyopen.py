"""pyopen-wakeword: openWakeWord's TFLite models on pyopen-wakeword's TFLite C library.

An engine computes the shared features (mel spectrogram and speech embedding)
once per frame and runs every wake model on them. Engines know nothing about
thresholds, patience or pauses; ``WakeWordDetector`` does.
"""

from __future__ import annotations

import ctypes as C
import importlib.util
import math
import os
import sys
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..dsp import INT16_FULL_SCALE, SILENCE_DBFS
from ..memory import drop_file_pages
from .base import BUILTIN_MODELS, FRAME_SAMPLES, WakewordError, _unique_names

# openWakeWord's streaming layout (pyopen-wakeword's own loops, in their steady state):
# each 80 ms frame runs the melspectrogram on the 1760 samples ending 800 samples
# before the newest, adding 8 mel rows; the embedding model reads the 76 mel rows
# ending 4 rows before the newest; each wake model reads its last ``window`` embeddings.
_MEL_IN = 1760
_MEL_LAG = 800
_MEL_ROWS = 8
_MEL_BINS = 32
_EMB_MELS = 76
_EMB_LAG = 4
_EMB_DIM = 96
# Silence gate: a frame opens it when louder than the noise floor by this margin. The
# floor is the quietest frame of the last ~3 s (minimum statistics: pauses between
# words keep it down during speech) but never below -80 dBFS, so a digitally silent
# or near-silent input keeps the gate shut.
GATE_MARGIN_DB = 6.0
GATE_MIN_FLOOR_DB = -80.0
GATE_FLOOR_FRAMES = 38
_MEL_HOP = 160
_FULL_SCALE_DB = 20.0 * math.log10(INT16_FULL_SCALE)


_delegate_lock = threading.Lock()
_delegate_announced = False


def _create_xnnpack_delegate(lib: Any) -> Any:
    """``TfLiteXNNPackDelegateCreate(NULL)`` (defaults, one thread), without its banner.

    The first delegate in a process prints "INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU." straight to file descriptor 2, and the bundled library exports no
    log-severity switch: that line would precede every one-line CLI error and land in
    the journal at each start. So the first creation runs with fd 2 on /dev/null for
    the length of that one call (later ones print nothing).
    """
    global _delegate_announced
    with _delegate_lock:
        if _delegate_announced:
            return lib.TfLiteXNNPackDelegateCreate(None)
        _delegate_announced = True
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
                try:
                    return lib.TfLiteXNNPackDelegateCreate(None)
                finally:
                    os.dup2(saved, 2)
        finally:
            os.close(saved)


class _Interpreter:
    """One TFLite interpreter over pyopen-wakeword's bundled ``libtensorflowlite_c``.

    Runs with the XNNPACK delegate on one thread: on the 2-vCPU bench this cut the
    three openWakeWord models from 0.13 to 0.033 CPU s per audio s (the default
    options start a pool of 8 worker threads for models that take a millisecond).
    """

    def __init__(self, lib: Any, path: Path, shape: tuple[int, ...] | None) -> None:
        self.lib = lib
        self.model = lib.TfLiteModelCreateFromFile(str(path.resolve()).encode())
        if not self.model:
            raise RuntimeError(f"cannot load {path}")
        options = lib.TfLiteInterpreterOptionsCreate()
        lib.TfLiteInterpreterOptionsSetNumThreads(options, 1)
        self.delegate = _create_xnnpack_delegate(lib)
        if self.delegate:
            lib.TfLiteInterpreterOptionsAddDelegate(options, self.delegate)
        self.interpreter = lib.TfLiteInterpreterCreate(self.model, options)
        lib.TfLiteInterpreterOptionsDelete(options)
        if shape is not None:
            dims = (C.c_int32 * len(shape))(*shape)
            lib.TfLiteInterpreterResizeInputTensor(self.interpreter, 0, dims, len(shape))
        lib.TfLiteInterpreterAllocateTensors(self.interpreter)
        self.input_tensor = lib.TfLiteInterpreterGetInputTensor(self.interpreter, 0)
        self.output_tensor = lib.TfLiteInterpreterGetOutputTensor(self.interpreter, 0)
        self._out = np.empty(lib.TfLiteTensorByteSize(self.output_tensor) // 4, np.float32)
        if self.delegate:  # XNNPACK packed the weights into its own buffers: ~3 MB RSS
            drop_file_pages(path)

    def input_shape(self) -> list[int]:
        lib, tensor = self.lib, self.input_tensor
        return [lib.TfLiteTensorDim(tensor, d) for d in range(lib.TfLiteTensorNumDims(tensor))]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """float32 array in (the input tensor's size) -> a new float32 array out."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        lib = self.lib
        lib.TfLiteTensorCopyFromBuffer(self.input_tensor, x.ctypes.data, x.nbytes)
        lib.TfLiteInterpreterInvoke(self.interpreter)
        out = self._out
        lib.TfLiteTensorCopyToBuffer(self.output_tensor, out.ctypes.data, out.nbytes)
        return out.copy()

    def close(self) -> None:
        lib = self.lib
        if self.interpreter:
            lib.TfLiteInterpreterDelete(self.interpreter)
            self.interpreter = None
        if self.delegate:
            lib.TfLiteXNNPackDelegateDelete(self.delegate)
            self.delegate = None
        if self.model:
            lib.TfLiteModelDelete(self.model)
            self.model = None


class PyOpenWakeWordEngine:
    """The default engine: openWakeWord's TFLite models, as bundled by pyopen-wakeword.

    The streaming is pyopen-wakeword's (same windows, same scores), run here on
    interpreters with XNNPACK and one thread, and split per model so that the
    optional silence ``gate`` can skip the embedding and wake models:

    - the melspectrogram runs on every frame (cheap) and its rows are kept for
      the wake models' whole window;
    - a frame louder than the noise floor (the quietest frame of the last
      ``GATE_FLOOR_FRAMES``, at least ``GATE_MIN_FLOOR_DB``) by ``GATE_MARGIN_DB``
      opens the gate for as long as its audio can reach a wake model's input;
    - while closed, frames score 0.0; when it opens, the embeddings skipped within
      the wake window are computed from the kept mel rows first, so every score
      while open is exactly the ungated score.
    """

    def __init__(self, models: Sequence[str], *, gate: bool = False) -> None:
        if not models:
            raise WakewordError("wakeword.models", "expected at least one model")
        self._paths = [self._resolve(i, spec) for i, spec in enumerate(models)]
        self._names = _unique_names(models)
        self.gate = gate
        self._mel: _Interpreter | None = None
        self._emb: _Interpreter | None = None
        self._wakes: list[_Interpreter] = []
        self._windows: list[int] = []
        self._window = 0  # the longest wake model window, in frames (embeddings)
        self._hang = 0  # frames a loud frame keeps the gate open
        self._zero_mels = np.zeros((_MEL_ROWS, _MEL_BINS), np.float32)
        self._zero_emb = np.zeros(_EMB_DIM, np.float32)
        self.frames_gated = 0  # frames whose embedding and wake models were skipped
        self._mel_rows = 0  # mel rows kept: the embedding windows of the longest wake window
        self._audio = np.zeros(_MEL_LAG + _MEL_IN, np.float32)
        self._mels = np.zeros((0, _MEL_BINS), np.float32)
        self._embs = np.zeros((0, _EMB_DIM), np.float32)
        self._stale = 0  # newest frames whose embeddings were skipped (at most the window)
        self._open_for = 0  # frames the gate stays open
        self._levels: deque[float] = deque(maxlen=GATE_FLOOR_FRAMES)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def default_thresholds(self) -> dict[str, float]:
        return {}  # openWakeWord models: wakeword.threshold

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
        return self._mel is not None

    def load(self) -> None:
        if self._mel is not None:
            return
        lib = _tflite_lib()
        folder = _builtin_dir()
        wakes: list[_Interpreter] = []
        try:
            for i, path in enumerate(self._paths):
                self._check_flatbuffer(lib, i, path)
                wake = _Interpreter(lib, path, None)
                wakes.append(wake)
                dims = wake.input_shape()
                if len(dims) != 3 or dims[2] != _EMB_DIM:
                    raise WakewordError(
                        f"wakeword.models[{i}]",
                        f"{str(path)!r} is not an openWakeWord wake model (input shape {dims})",
                    )
        except BaseException:
            for wake in wakes:
                wake.close()
            raise
        self._windows = [w.input_shape()[1] for w in wakes]
        self._window = max(self._windows)
        self._mel = _Interpreter(lib, folder / "melspectrogram.tflite", (1, _MEL_IN))
        self._emb = _Interpreter(
            lib, folder / "embedding_model.tflite", (1, _EMB_MELS, _MEL_BINS, 1)
        )
        self._wakes = wakes
        # Audio a frame's samples reach: the mel window, then the embedding's mel rows.
        reach = _MEL_LAG + _MEL_IN + (_EMB_MELS + _EMB_LAG) * _MEL_HOP
        self._hang = math.ceil(reach / FRAME_SAMPLES) + self._window + 1
        # pyopen-wakeword starts from 8 s of zeros; everything downstream of zeros is constant.
        self._zero_mels = self._mels_of(np.zeros(_MEL_IN, np.float32))
        self._mel_rows = _EMB_LAG + _EMB_MELS + _MEL_ROWS * (self._window - 1)
        self._zero_emb = self._emb(
            np.tile(self._zero_mels, (_EMB_MELS // _MEL_ROWS + 1, 1))[:_EMB_MELS]
        )
        self.reset()

    @staticmethod
    def _check_flatbuffer(lib: Any, index: int, path: Path) -> None:
        handle = lib.TfLiteModelCreateFromFile(str(path.resolve()).encode())
        if not handle:
            raise WakewordError(f"wakeword.models[{index}]", f"{str(path)!r} is not a valid model")
        lib.TfLiteModelDelete(handle)

    def _mels_of(self, audio: np.ndarray) -> np.ndarray:
        assert self._mel is not None
        mels = self._mel(audio)
        return ((mels / 10) + 2).reshape(_MEL_ROWS, _MEL_BINS)  # pyopen-wakeword's scaling

    def process_frame(self, frame: np.ndarray) -> list[float]:
        if self._mel is None:
            self.load()
        assert self._emb is not None
        samples = frame.astype(np.int16, copy=False)
        audio = self._audio
        audio[:-FRAME_SAMPLES] = audio[FRAME_SAMPLES:]
        audio[-FRAME_SAMPLES:] = samples
        mels = self._mels
        mels[:-_MEL_ROWS] = mels[_MEL_ROWS:]
        window = audio[:_MEL_IN]
        # Digital silence (a muted or idle-gated mic) has known mels: skip the model.
        mels[-_MEL_ROWS:] = self._mels_of(window) if window.any() else self._zero_mels
        embs = self._embs
        embs[:-1] = embs[1:]
        if self.gate and not self._gate_open(samples):
            self._stale = min(self._stale + 1, self._window)
            self.frames_gated += 1
            return [0.0] * len(self._wakes)
        rows = self._mel_rows
        for back in range(self._stale, -1, -1):  # catch up the skipped embeddings first
            end = rows - _EMB_LAG - _MEL_ROWS * back
            embs[self._window - 1 - back] = self._emb(mels[end - _EMB_MELS : end])
        self._stale = 0
        return [
            float(wake(embs[self._window - w :])[0])
            for wake, w in zip(self._wakes, self._windows, strict=True)
        ]

    def _gate_open(self, samples: np.ndarray) -> bool:
        f = samples.astype(np.float32)
        power = float(np.dot(f, f)) / len(f)  # one BLAS call: rms_dbfs costs several
        level = 10.0 * math.log10(power) - _FULL_SCALE_DB if power > 0.0 else SILENCE_DBFS
        floor = max(GATE_MIN_FLOOR_DB, min(self._levels, default=GATE_MIN_FLOOR_DB))
        self._levels.append(level)
        if level > floor + GATE_MARGIN_DB:
            self._open_for = self._hang
        elif self._open_for > 0:
            self._open_for -= 1
        return self._open_for > 0

    def reset(self) -> None:
        if self._mel is None:
            return
        self._audio = np.zeros(_MEL_LAG + _MEL_IN, np.float32)
        self._mels = np.tile(self._zero_mels, (self._mel_rows // _MEL_ROWS, 1))
        self._embs = np.tile(self._zero_emb, (self._window, 1))
        self._stale = 0
        self._open_for = 0
        self._levels.clear()

    def close(self) -> None:
        for interp in [*self._wakes, self._mel, self._emb]:
            if interp is not None:
                interp.close()
        self._mel, self._emb, self._wakes = None, None, []


def _tflite_lib() -> Any:
    """pyopen-wakeword's ``libtensorflowlite_c`` with the prototypes this module uses."""
    from pyopen_wakeword.wakeword import TfLiteWakeWord

    libs = sorted((_builtin_dir().parent / "lib").glob("*tensorflowlite_c.*"))
    if not libs:  # pragma: no cover - the wheels bundle it
        raise WakewordError("wakeword.engine", "pyopen-wakeword's libtensorflowlite_c is missing")
    return _declare_options(TfLiteWakeWord(libs[0]).lib)


def _declare_options(lib: Any) -> Any:
    """Prototypes for interpreter options and the XNNPACK delegate on a TFLite C ``lib``."""
    ptr = C.c_void_p
    for name, args, res in (
        ("TfLiteInterpreterOptionsCreate", [], ptr),
        ("TfLiteInterpreterOptionsDelete", [ptr], None),
        ("TfLiteInterpreterOptionsSetNumThreads", [ptr, C.c_int32], None),
        ("TfLiteInterpreterOptionsAddDelegate", [ptr, ptr], None),
        ("TfLiteXNNPackDelegateCreate", [ptr], ptr),
        ("TfLiteXNNPackDelegateDelete", [ptr], None),
    ):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


def _builtin_dir() -> Path:
    spec = importlib.util.find_spec("pyopen_wakeword")
    if spec is None or spec.origin is None:  # pragma: no cover - a core dependency
        raise WakewordError("wakeword.engine", "pyopen-wakeword is not installed")
    return Path(spec.origin).parent / "models"
