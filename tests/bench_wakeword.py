"""Wake word CPU cost: WakeWordDetector against a bare pyopen-wakeword loop, same audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from daemon.config import WakewordConfig
from daemon.wakeword import BUILTIN_MODELS, FRAME_SAMPLES, SAMPLE_RATE, WakeWordDetector
from daemon.wakeword.wav import read_wav
from tests.bench import Row, bench, cpu_seconds

SPEECH = Path(__file__).parent / "fixtures" / "speech"
SECONDS = 30.0
REPEATS = 3  # interleaved; the minimum is reported (the TFLite library's threads are noisy)


def _audio(seconds: float = SECONDS) -> np.ndarray:
    """About 30 s of the speech fixtures back to back (wake words included)."""
    parts = [read_wav(p)[0] for p in sorted(SPEECH.glob("*.wav"))]
    out = np.concatenate(parts)
    while len(out) < seconds * SAMPLE_RATE:
        out = np.concatenate([out, *parts])
    n = int(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    return out[:n]


def _bare_loop(audio: np.ndarray) -> float:
    """Upstream usage: one features object, one model, 80 ms chunks (warmed up first)."""
    from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

    features, model = (
        OpenWakeWordFeatures.from_builtin(),
        OpenWakeWord.from_builtin(Model.HEY_JARVIS),
    )
    chunks = [audio[i : i + FRAME_SAMPLES].tobytes() for i in range(0, len(audio), FRAME_SAMPLES)]

    def run(chunks: list[bytes]) -> None:
        for chunk in chunks:
            for emb in features.process_streaming(chunk):
                for _ in model.process_streaming(emb):
                    pass

    run([bytes(2 * FRAME_SAMPLES)])  # pay the 8 s zero autofill outside the timing
    return cpu_seconds(lambda: run(chunks))


def _detector(audio: np.ndarray, models: tuple[str, ...], block: int) -> float:
    det = WakeWordDetector(WakewordConfig(models=models))
    det.load()
    blocks = [audio[i : i + block] for i in range(0, len(audio), block)]

    def run() -> None:
        for b in blocks:
            det.process(b)

    took = cpu_seconds(run)
    det.close()
    return took


def _reset_cost() -> tuple[float, float]:
    """CPU ms of reset + the first 80 ms frame: ours (snapshot) vs upstream (8 s autofill)."""
    from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

    frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    det = WakeWordDetector(WakewordConfig())
    det.load()
    features, model = (
        OpenWakeWordFeatures.from_builtin(),
        OpenWakeWord.from_builtin(Model.HEY_JARVIS),
    )
    n = 10

    def ours() -> None:
        for _ in range(n):
            det.reset()
            det.process(frame)

    def theirs() -> None:
        for _ in range(n):
            features.reset()
            model.reset()
            for emb in features.process_streaming(frame.tobytes()):
                for _ in model.process_streaming(emb):
                    pass

    result = cpu_seconds(ours) * 1000 / n, cpu_seconds(theirs) * 1000 / n
    det.close()
    return result


@bench
def wakeword() -> list[Row]:
    audio = _audio()
    secs = len(audio) / SAMPLE_RATE
    runs: dict[str, list[float]] = {"bare": [], "one_80": [], "one_20": [], "five": []}
    for _ in range(REPEATS):
        runs["bare"].append(_bare_loop(audio) / secs)
        runs["one_80"].append(_detector(audio, ("hey_jarvis",), FRAME_SAMPLES) / secs)
        runs["one_20"].append(_detector(audio, ("hey_jarvis",), 320) / secs)
        runs["five"].append(_detector(audio, BUILTIN_MODELS, FRAME_SAMPLES) / secs)
    bare, one_80, one_20, five = (min(runs[k]) for k in ("bare", "one_80", "one_20", "five"))
    ours_ms, theirs_ms = _reset_cost()
    unit = "CPU s / audio s"
    base = "bare pyopen-wakeword loop"
    return [
        Row("wakeword: detector, 1 model, 80 ms blocks", one_80, unit, base, bare),
        Row("wakeword: detector, 1 model, 20 ms blocks", one_20, unit, base, bare),
        Row(
            "wakeword: detector, 5 models (shared features)",
            five,
            unit,
            "detector, 1 model",
            one_80,
        ),
        Row(
            "wakeword: reset + first frame",
            ours_ms,
            "CPU ms",
            "pyopen-wakeword reset (8 s autofill)",
            theirs_ms,
        ),
    ]
