"""Wake word detector on the committed espeak-ng fixtures, through the real pyopen-wakeword."""

from __future__ import annotations

import importlib.util
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.config import ConfigError, WakewordConfig, parse
from daemon.wakeword import (
    BUILTIN_MODELS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Detection,
    OpenWakeWordEngine,
    PyOpenWakeWordEngine,
    WakeWordDetector,
    WakewordError,
)
from daemon.wakeword.wav import read_wav

SPEECH = Path(__file__).parent / "fixtures" / "speech"
DEMO = Path(__file__).parent.parent / "daemon" / "data" / "demo.wav"


def speech(name: str) -> np.ndarray:
    samples, rate = read_wav(SPEECH / name)
    assert rate == SAMPLE_RATE
    return samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def speech_segments(x: np.ndarray, min_gap: float = 0.15) -> list[tuple[float, float]]:
    """(start, end) seconds of the loud stretches, by 10 ms RMS energy."""
    hop = SAMPLE_RATE // 100
    frames = x[: len(x) // hop * hop].reshape(-1, hop).astype(np.float64)
    loud = np.sqrt((frames**2).mean(axis=1)) > 300.0
    segments: list[list[float]] = []
    for i in np.flatnonzero(loud):
        t = i * hop / SAMPLE_RATE
        if segments and t - segments[-1][1] < min_gap:
            segments[-1][1] = t + 0.01
        else:
            segments.append([t, t + 0.01])
    return [(a, b) for a, b in segments]


def the_word() -> np.ndarray:
    """ "hey jarvis" without the fixture's leading and trailing silence."""
    x = speech("hey_jarvis.wav")
    ((start, end),) = speech_segments(x)
    return x[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]


@pytest.fixture(scope="module")
def jarvis() -> Iterator[PyOpenWakeWordEngine]:
    engine = PyOpenWakeWordEngine(["hey_jarvis"])
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def every_model() -> Iterator[PyOpenWakeWordEngine]:
    engine = PyOpenWakeWordEngine(list(BUILTIN_MODELS))
    engine.load()
    yield engine
    engine.close()


def detector(engine: PyOpenWakeWordEngine, **changes: object) -> WakeWordDetector:
    cfg = WakewordConfig(models=engine.names, **changes)  # type: ignore[arg-type]
    return WakeWordDetector(cfg, engine=engine)


def frame_scores(engine: PyOpenWakeWordEngine, x: np.ndarray) -> np.ndarray:
    engine.reset()
    n = len(x) // FRAME_SAMPLES
    return np.array(
        [engine.process_frame(x[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(n)]
    )


# --------------------------------------------------------------------------- the fixtures


def test_hey_jarvis_scores_high_and_detects_once(jarvis: PyOpenWakeWordEngine) -> None:
    det = detector(jarvis, patience=1)
    found = det.process(speech("hey_jarvis.wav"))
    assert len(found) == 1
    (hit,) = found
    assert isinstance(hit, Detection)
    assert hit.model == "hey_jarvis"
    assert hit.score >= 0.5  # the first frame over the threshold fires (patience 1)
    assert det.peaks["hey_jarvis"] >= 0.9
    assert hit.end_sample % FRAME_SAMPLES == 0
    assert 0 < hit.end_sample <= det.samples_seen


@pytest.mark.parametrize("name", ["what_time_is_it.wav", "question.wav", "stop.wav"])
def test_other_speech_never_detects_on_any_model(
    every_model: PyOpenWakeWordEngine, name: str
) -> None:
    det = detector(every_model)
    assert det.process(np.concatenate([speech(name), silence(1.0)])) == []
    assert set(det.peaks) == set(BUILTIN_MODELS)
    for model, peak in det.peaks.items():
        assert peak < 0.1, (name, model, peak)


@pytest.mark.parametrize("name", ["hey_jarvis.wav", "alexa.wav", "okay_nabu.wav"])
def test_a_wake_word_comes_near_the_threshold_before_it_fires(
    every_model: PyOpenWakeWordEngine, name: str
) -> None:
    """``near_threshold`` (idle batching scores every frame on arrival from then on) turns
    on at least 3 frames before the detection, so a batch of 4 reports it on time."""
    det = detector(every_model)
    x = np.concatenate([silence(1.0), speech(name)])
    near_since = None
    for i in range(len(x) // FRAME_SAMPLES):
        found = det.process(x[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        if found:
            assert near_since is not None and i - near_since >= 3, (name, near_since, i)
            break
        if det.near_threshold and near_since is None:
            near_since = i
    else:
        raise AssertionError(f"{name} never fired")
    det.reset()
    assert not det.near_threshold


@pytest.mark.parametrize("name", ["what_time_is_it.wav", "question.wav", "stop.wav"])
def test_other_speech_never_comes_near_a_threshold(
    every_model: PyOpenWakeWordEngine, name: str
) -> None:
    det = detector(every_model)
    x = np.concatenate([speech(name), silence(1.0)])
    for i in range(len(x) // FRAME_SAMPLES):
        det.process(x[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        assert not det.near_threshold, (name, i, det.last_scores)


@pytest.mark.parametrize(
    ("name", "model"), [("alexa.wav", "alexa"), ("okay_nabu.wav", "okay_nabu")]
)
def test_each_fixture_wakes_only_its_own_model(
    every_model: PyOpenWakeWordEngine, name: str, model: str
) -> None:
    det = detector(every_model)
    assert [d.model for d in det.process(speech(name))] == [model]


def test_detection_ends_with_the_wake_word_before_the_question(
    jarvis: PyOpenWakeWordEngine,
) -> None:
    audio = speech("hey_jarvis_then_question.wav")
    (_start, word_end), (question_onset, _end) = speech_segments(audio)
    assert 0.2 <= question_onset - word_end <= 0.45  # the fixture's ~0.3 s pause
    (hit,) = detector(jarvis).process(audio)
    t = hit.end_sample / SAMPLE_RATE
    assert hit.end_seconds == t
    assert word_end - 0.1 <= t <= word_end + 0.35
    assert t < question_onset  # the pre-roll can start the session's audio at the question


def test_demo_microphone_wakes_once_before_the_question(jarvis: PyOpenWakeWordEngine) -> None:
    with wave.open(str(DEMO), "rb") as wf:
        assert (wf.getframerate(), wf.getnchannels(), wf.getsampwidth()) == (16000, 1, 2)
    audio, _ = read_wav(DEMO)
    segments = speech_segments(audio)
    assert len(segments) == 2
    assert 0.4 <= segments[0][0] <= 0.6  # ~0.5 s of silence first
    assert len(audio) / SAMPLE_RATE - segments[1][1] >= 0.9  # ~1 s of silence last
    (hit,) = detector(jarvis).process(audio)
    assert segments[0][1] - 0.1 <= hit.end_seconds < segments[1][0]


def test_scores_match_a_bare_pyopen_wakeword_loop(jarvis: PyOpenWakeWordEngine) -> None:
    """Priming once and restoring the snapshot scores exactly like upstream's autofill."""
    from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

    audio = speech("hey_jarvis_then_question.wav")
    features, model = (
        OpenWakeWordFeatures.from_builtin(),
        OpenWakeWord.from_builtin(Model.HEY_JARVIS),
    )
    bare = []
    for i in range(len(audio) // FRAME_SAMPLES):
        frame = audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes()
        bare += [
            p for emb in features.process_streaming(frame) for p in model.process_streaming(emb)
        ]
    ours = frame_scores(jarvis, audio)[:, 0]
    # Upstream's first call also scores its 8 s of zeros (the burst we pay once at load).
    assert len(bare) > len(ours) == len(audio) // FRAME_SAMPLES
    np.testing.assert_allclose(ours, bare[-len(ours) :], atol=1e-5)
    again = frame_scores(jarvis, audio)[:, 0]  # after reset(): the same again
    np.testing.assert_allclose(again, ours, atol=0)


# --------------------------------------------------------------------------- semantics


def test_patience_counts_consecutive_frames(jarvis: PyOpenWakeWordEngine) -> None:
    audio = speech("hey_jarvis.wav")
    over = frame_scores(jarvis, audio)[:, 0] >= 0.5
    first = int(np.argmax(over))
    run = int(np.argmin(over[first:])) if not over[first:].all() else len(over) - first
    assert run >= 3  # enough frames to make patience meaningful

    for patience in (1, run):
        (hit,) = detector(jarvis, patience=patience).process(audio)
        assert hit.end_sample == (first + patience) * FRAME_SAMPLES
    assert detector(jarvis, patience=run + 1).process(audio) == []


def test_per_model_threshold_overrides_the_default(jarvis: PyOpenWakeWordEngine) -> None:
    audio = speech("hey_jarvis.wav")
    assert detector(jarvis, threshold=0.5, thresholds={"hey_jarvis": 0.9999}).process(audio) == []
    assert (
        len(detector(jarvis, threshold=0.9999, thresholds={"hey_jarvis": 0.5}).process(audio)) == 1
    )


def twice(onset_gap: float) -> np.ndarray:
    word = the_word()
    return np.concatenate(
        [silence(0.5), word, silence(onset_gap - len(word) / SAMPLE_RATE), word, silence(1.5)]
    )


def test_refractory_is_counted_in_samples(jarvis: PyOpenWakeWordEngine) -> None:
    # 1 s apart: the model does fire on both (refractory 0) ...
    many = detector(jarvis, refractory=0.0, patience=1).process(twice(1.0))
    assert len({d.end_sample // SAMPLE_RATE for d in many}) >= 2
    # ... but a 2 s refractory keeps the second quiet; 3 s apart, both count.
    assert len(detector(jarvis, refractory=2.0).process(twice(1.0))) == 1
    hits = detector(jarvis, refractory=2.0).process(twice(3.0))
    assert len(hits) == 2
    assert 2.5 <= (hits[1].end_sample - hits[0].end_sample) / SAMPLE_RATE <= 3.5


@pytest.mark.parametrize("block", [1, 7, 160, 1000, 1280, 1281, 4096, 100_000])
def test_any_block_size_gives_the_same_detections(jarvis: PyOpenWakeWordEngine, block: int) -> None:
    audio = twice(3.0)
    whole = detector(jarvis).process(audio)
    assert len(whole) == 2
    det = detector(jarvis)
    blocked = [d for i in range(0, len(audio), block) for d in det.process(audio[i : i + block])]
    assert blocked == whole
    assert det.samples_seen == len(audio)


def test_pause_drops_frames_and_resume_starts_from_silence(jarvis: PyOpenWakeWordEngine) -> None:
    word = np.concatenate([silence(0.3), the_word(), silence(0.7)])
    det = detector(jarvis)
    det.pause()
    assert det.paused
    assert det.process(word) == []  # the device saying "hey jarvis" itself
    assert det.peaks["hey_jarvis"] == 0.0  # not even scored
    det.resume(0.0)
    assert not det.paused
    (hit,) = det.process(word)  # the user saying it afterwards
    assert hit.end_sample > len(word)  # counted on the same sample clock
    assert det.samples_seen == 2 * len(word)


def test_resume_tail_is_counted_in_samples(jarvis: PyOpenWakeWordEngine) -> None:
    word = np.concatenate([silence(0.3), the_word(), silence(0.7)])
    det = detector(jarvis)
    det.pause()
    det.process(silence(1.0))
    det.resume(len(word) / SAMPLE_RATE)  # the whole next utterance falls in the tail
    assert det.paused
    assert det.process(word) == []
    assert not det.paused
    assert len(det.process(word)) == 1


def test_audio_from_before_a_pause_cannot_complete_a_word(jarvis: PyOpenWakeWordEngine) -> None:
    audio = np.concatenate([silence(0.5), the_word(), silence(1.0)])
    cut = 8000 + len(the_word()) // 2
    # Unpaused, the same audio in two pieces detects ...
    det = detector(jarvis)
    assert len(det.process(audio[:cut]) + det.process(audio[cut:])) == 1
    # ... but "hey jar" (the speaker's echo), a pause, then "vis" does not.
    det = detector(jarvis)
    first = det.process(audio[:cut])
    det.pause()
    det.process(silence(0.24))
    det.resume(0.0)
    assert first + det.process(audio[cut:]) == []


def test_suppress_until_drops_frames_up_to_a_sample_index(jarvis: PyOpenWakeWordEngine) -> None:
    word = np.concatenate([silence(0.3), the_word(), silence(0.7)])
    det = detector(jarvis)
    det.suppress_until(len(word))
    assert det.process(word) == []
    assert len(det.process(word)) == 1


def test_reset_restarts_the_sample_count_and_clears_a_pause(jarvis: PyOpenWakeWordEngine) -> None:
    audio = speech("hey_jarvis.wav")
    det = detector(jarvis)
    (a,) = det.process(audio)
    det.pause()
    det.reset()
    assert det.samples_seen == 0 and not det.paused
    assert det.peaks["hey_jarvis"] == 0.0
    (b,) = det.process(audio)
    assert a == b


def test_load_is_explicit_and_idempotent() -> None:
    det = WakeWordDetector(WakewordConfig())
    assert not det.loaded
    det.load()
    assert det.loaded
    det.load()
    assert det.names == ("hey_jarvis",)
    assert len(det.process(speech("hey_jarvis.wav"))) == 1
    det.close()


def test_float_and_2d_input_are_accepted(jarvis: PyOpenWakeWordEngine) -> None:
    audio = speech("hey_jarvis.wav")
    expect = detector(jarvis).process(audio)
    assert detector(jarvis).process(audio.astype(np.float32)) == expect
    assert detector(jarvis).process(audio.reshape(-1, 1)) == expect


# --------------------------------------------------------------------------- models and errors


def test_custom_model_by_path(tmp_path: Path, jarvis: PyOpenWakeWordEngine) -> None:
    builtin = Path(importlib.util.find_spec("pyopen_wakeword").origin).parent  # type: ignore[union-attr,arg-type]
    custom = tmp_path / "my_word.tflite"
    shutil.copy(builtin / "models" / "hey_jarvis.tflite", custom)
    cfg = parse({"wakeword": {"models": [str(custom)], "thresholds": {"my_word": 0.9}}}).wakeword
    det = WakeWordDetector(cfg)
    assert det.names == ("my_word",)
    assert det.thresholds == (0.9,)
    (hit,) = det.process(speech("hey_jarvis.wav"))
    assert hit.model == "my_word"
    (same,) = detector(jarvis, threshold=0.9).process(speech("hey_jarvis.wav"))
    assert hit.end_sample == same.end_sample
    assert hit.score == pytest.approx(same.score)
    det.close()


@pytest.mark.parametrize(
    ("models", "key", "words"),
    [
        (["hey_jarvs"], "wakeword.models[0]", ["'hey_jarvs'", "hey_jarvis", ".tflite"]),
        (["hey_jarvis", "/nope/x.tflite"], "wakeword.models[1]", ["cannot read", "x.tflite"]),
        (["model.onnx"], "wakeword.models[0]", ['engine = "openwakeword"']),
        (["hey_jarvis", "hey_jarvis"], "wakeword.models[1]", ["twice"]),
    ],
)
def test_bad_models_name_the_config_key(models: list[str], key: str, words: list[str]) -> None:
    cfg = WakewordConfig(models=tuple(models))
    with pytest.raises(WakewordError) as info:
        WakeWordDetector(cfg)
    assert isinstance(info.value, ConfigError)  # the CLI exits 78 on it
    assert info.value.path == key
    message = str(info.value)
    assert message.startswith(key + ": ")
    for word in words:
        assert word in message


def test_a_file_that_is_not_a_model_is_an_error_not_a_crash(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(WakewordError, match=r"wakeword.models\[0\]: .*not a TFLite model"):
        WakeWordDetector(WakewordConfig(models=(str(junk),)))
    # A valid TFLite file of the wrong kind (the feature model, not a wake model).
    builtin = Path(importlib.util.find_spec("pyopen_wakeword").origin).parent  # type: ignore[union-attr,arg-type]
    wrong = tmp_path / "mel.tflite"
    shutil.copy(builtin / "models" / "melspectrogram.tflite", wrong)
    det = WakeWordDetector(WakewordConfig(models=(str(wrong),)))
    with pytest.raises(WakewordError, match="not an openWakeWord wake model"):
        det.load()


def test_threshold_for_an_unknown_model_names_its_key() -> None:
    cfg = WakewordConfig(thresholds={"alexa": 0.7})
    with pytest.raises(WakewordError, match=r"^wakeword.thresholds.alexa: no such model"):
        WakeWordDetector(cfg)


@pytest.mark.skipif(
    importlib.util.find_spec("openwakeword") is not None
    and importlib.util.find_spec("onnxruntime") is not None,
    reason="the openwakeword extra is installed here",
)
def test_openwakeword_engine_without_the_extra_names_it() -> None:
    cfg = WakewordConfig(engine="openwakeword", models=("my_word.onnx",))
    with pytest.raises(WakewordError) as info:
        WakeWordDetector(cfg)
    assert info.value.path == "wakeword.engine"
    assert "pip install 'voicepi[openwakeword]'" in str(info.value)
    with pytest.raises(WakewordError):
        OpenWakeWordEngine(["my_word.onnx"])
