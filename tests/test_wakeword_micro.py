"""wakeword.engine = "microwakeword": pymicro-wakeword's models behind the same detector."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.cli import main
from daemon.config import WakewordConfig, parse
from daemon.wakeword import SAMPLE_RATE, WakeWordDetector, WakewordError, make_engine
from daemon.wakeword.engines import MICRO_BUILTIN_MODELS, MicroWakeWordEngine
from daemon.wakeword.wav import read_wav

SPEECH = Path(__file__).parent / "fixtures" / "speech"


def speech(name: str, tail: float = 1.0) -> np.ndarray:
    x = read_wav(SPEECH / name)[0]
    return np.concatenate([x, np.zeros(int(tail * SAMPLE_RATE), np.int16)])


@pytest.fixture(scope="module")
def micro() -> Iterator[MicroWakeWordEngine]:
    engine = MicroWakeWordEngine(list(MICRO_BUILTIN_MODELS))
    engine.load()
    yield engine
    engine.close()


def detector(engine: MicroWakeWordEngine, **changes: object) -> WakeWordDetector:
    cfg = WakewordConfig(engine="microwakeword", models=engine.names, **changes)  # type: ignore[arg-type]
    return WakeWordDetector(cfg, engine=engine)


@pytest.mark.parametrize(
    ("name", "model"), [("alexa.wav", "alexa"), ("okay_nabu.wav", "okay_nabu")]
)
def test_each_fixture_wakes_only_its_own_model(
    micro: MicroWakeWordEngine, name: str, model: str
) -> None:
    det = detector(micro)
    (hit,) = det.process(speech(name))
    assert hit.model == model and hit.score > det.thresholds[det.names.index(model)]


@pytest.mark.parametrize("name", ["what_time_is_it.wav", "question.wav", "stop.wav"])
def test_other_speech_never_detects(micro: MicroWakeWordEngine, name: str) -> None:
    assert detector(micro).process(speech(name)) == []


def test_thresholds_default_to_each_models_cutoff(micro: MicroWakeWordEngine) -> None:
    cutoffs = {
        m: json.loads(p.read_text())["micro"]["probability_cutoff"]
        for m, p in zip(MICRO_BUILTIN_MODELS, micro._configs, strict=True)
    }
    det = detector(micro)
    assert dict(zip(det.names, det.thresholds, strict=True)) == cutoffs
    # wakeword.thresholds still overrides one model; wakeword.threshold does not apply.
    det = detector(micro, threshold=0.1, thresholds={"alexa": 0.9999})
    assert det.thresholds[det.names.index("alexa")] == 0.9999
    assert det.thresholds[det.names.index("okay_nabu")] == cutoffs["okay_nabu"]
    assert det.process(speech("alexa.wav")) == []


def test_pause_and_refractory_work_as_with_openwakeword(micro: MicroWakeWordEngine) -> None:
    word = speech("alexa.wav")
    det = detector(micro)
    det.pause()
    assert det.process(word) == [] and det.peaks["alexa"] == 0.0  # not even scored
    det.resume(0.0)
    (hit,) = det.process(word)
    assert hit.end_sample > len(word)
    det = detector(micro, refractory=60.0)
    assert len(det.process(np.concatenate([word, word]))) == 1


def test_config_and_cli_score_with_microwakeword(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = parse({"wakeword": {"engine": "microwakeword", "models": ["alexa"]}}).wakeword
    assert isinstance(make_engine(cfg), MicroWakeWordEngine)
    path = tmp_path / "config.toml"
    path.write_text('[wakeword]\nengine = "microwakeword"\nmodels = ["alexa", "okay_nabu"]\n')
    assert main(["wakeword", str(SPEECH / "alexa.wav"), "--config", str(path), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["models"]["alexa"]["detections"] and result["models"]["alexa"]["peak"] > 0.9
    assert result["models"]["okay_nabu"]["detections"] == []
    args = ["wakeword", str(SPEECH / "alexa.wav"), "--config", str(path)]
    assert main([*args, "--threshold", "0.9999", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["models"]["alexa"]["threshold"] == 0.9999
    assert result["models"]["alexa"]["detections"] == []


def test_custom_model_by_json_config_and_bad_models_name_their_key(
    tmp_path: Path, micro: MicroWakeWordEngine
) -> None:
    builtin = micro._configs[MICRO_BUILTIN_MODELS.index("alexa")]
    for f in (builtin, builtin.with_suffix(".tflite")):
        shutil.copy(f, tmp_path / f.name.replace("alexa", "my_word"))
    config = tmp_path / "my_word.json"
    config.write_text(config.read_text().replace("alexa.tflite", "my_word.tflite"))
    det = WakeWordDetector(WakewordConfig(engine="microwakeword", models=(str(config),)))
    assert det.names == ("my_word",)
    (hit,) = det.process(speech("alexa.wav"))
    assert hit.model == "my_word"
    det.close()
    (tmp_path / "junk.json").write_text("{}")
    for models, words in [
        (("hey_rhasspy",), ["'hey_rhasspy'", "okay_nabu", ".json"]),
        ((str(tmp_path / "nope.json"),), ["cannot read"]),
        ((str(tmp_path / "junk.json"),), ["not a microWakeWord config"]),
    ]:
        with pytest.raises(WakewordError) as info:
            WakeWordDetector(WakewordConfig(engine="microwakeword", models=models))
        assert info.value.path == "wakeword.models[0]"
        for word in words:
            assert word in str(info.value)
