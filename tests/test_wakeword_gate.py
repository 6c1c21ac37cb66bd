"""The silence gate: skips the embedding and wake models on quiet audio, same detections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.config import WakewordConfig, parse
from daemon.dsp import rms_dbfs
from daemon.wakeword import (
    BUILTIN_MODELS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    PyOpenWakeWordEngine,
    WakeWordDetector,
    make_engine,
)
from daemon.wakeword.wav import read_wav

SPEECH = Path(__file__).parent / "fixtures" / "speech"
FIXTURES = sorted(p.name for p in SPEECH.glob("*.wav"))


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[PyOpenWakeWordEngine, PyOpenWakeWordEngine]]:
    plain = PyOpenWakeWordEngine(list(BUILTIN_MODELS))
    gated = PyOpenWakeWordEngine(list(BUILTIN_MODELS), gate=True)
    plain.load()
    gated.load()
    yield plain, gated
    plain.close()
    gated.close()


def in_a_quiet_room(name: str, variant: str) -> np.ndarray:
    """The fixture after 3 s of quiet (the gate has closed) and before 1.5 s more."""
    word = read_wav(SPEECH / name)[0].astype(np.float64)
    quiet = np.zeros(3 * SAMPLE_RATE)
    audio = np.concatenate([quiet, word, quiet[: 3 * SAMPLE_RATE // 2]])
    rng = np.random.default_rng(len(name))
    if variant == "noise":  # a fan at -50 dBFS under full-level speech
        audio += rng.normal(0.0, 32768 * 10 ** (-50 / 20), len(audio))
    elif variant == "-40dBFS":  # a far talker: speech at -40 dBFS RMS, a faint hiss under it
        audio *= 10 ** (-40 / 20) / 10 ** (rms_dbfs(word.astype(np.int16)) / 20)
        audio += rng.normal(0.0, 32768 * 10 ** (-75 / 20), len(audio))
    return np.clip(np.rint(audio), -32768, 32767).astype(np.int16)


def frames(engine: PyOpenWakeWordEngine, audio: np.ndarray) -> np.ndarray:
    engine.reset()
    n = len(audio) // FRAME_SAMPLES
    return np.array(
        [engine.process_frame(audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(n)]
    )


@pytest.mark.parametrize("variant", ["clean", "noise", "-40dBFS"])
@pytest.mark.parametrize("name", FIXTURES)
def test_gated_scores_equal_ungated_while_open_and_detections_match(
    engines: tuple[PyOpenWakeWordEngine, PyOpenWakeWordEngine], name: str, variant: str
) -> None:
    plain, gated = engines
    audio = in_a_quiet_room(name, variant)
    before = gated.frames_gated
    ungated_scores, gated_scores = frames(plain, audio), frames(gated, audio)
    skipped = gated.frames_gated - before
    assert skipped >= 10  # the quiet seconds really were skipped ...
    open_ = gated_scores.any(axis=1)
    assert open_.sum() == len(open_) - skipped
    # ... and every frame the gate let through scored exactly as without it (the
    # embeddings skipped in its window were caught up first).
    np.testing.assert_array_equal(gated_scores[open_], ungated_scores[open_])
    assert ungated_scores[~open_].max() < 0.1  # nothing near a detection was skipped
    if variant != "clean":
        return  # the detector only sees these scores; once through it is enough

    def detections(gate: bool) -> list[tuple[str, int, float]]:
        cfg = WakewordConfig(models=BUILTIN_MODELS, gate=gate)
        det = WakeWordDetector(cfg, engine=gated if gate else plain)
        return [(d.model, d.end_sample, d.score) for d in det.process(audio)]

    assert detections(True) == detections(False)


def test_digital_silence_keeps_the_gate_closed(
    engines: tuple[PyOpenWakeWordEngine, PyOpenWakeWordEngine],
) -> None:
    _, gated = engines
    before = gated.frames_gated
    scores = frames(gated, np.zeros(2 * SAMPLE_RATE, np.int16))
    assert not scores.any()
    assert gated.frames_gated - before == len(scores)


def test_the_gate_is_on_by_default_and_can_be_turned_off() -> None:
    assert WakewordConfig().gate is True
    engine = make_engine(WakewordConfig())
    assert isinstance(engine, PyOpenWakeWordEngine) and engine.gate
    cfg = parse({"wakeword": {"gate": False}}).wakeword
    off = make_engine(cfg)
    assert isinstance(off, PyOpenWakeWordEngine) and not off.gate
