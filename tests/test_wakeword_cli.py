"""`voicepi wakeword FILE.wav ...`, the WAV reader behind it, and the fixtures' score table."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from daemon.cli import main
from daemon.config import EX_CONFIG
from daemon.wakeword import SAMPLE_RATE
from daemon.wakeword.wav import WavError, read_wav, read_wav_16k

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "fixtures" / "speech"
HEY_JARVIS = str(SPEECH / "hey_jarvis.wav")
WHAT_TIME = str(SPEECH / "what_time_is_it.wav")


def test_table_shows_peaks_and_detection_times(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["wakeword", HEY_JARVIS, WHAT_TIME, "--model", "hey_jarvis", "--model", "alexa"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "FILE",
        "SECONDS",
        "MODEL",
        "THRESHOLD",
        "PEAK",
        "DETECTIONS",
        "(s)",
    ]
    rows = {(r.split()[0], r.split()[2]): r.split() for r in lines[1:]}
    assert len(rows) == 4
    jarvis = rows[(HEY_JARVIS, "hey_jarvis")]
    assert float(jarvis[4]) >= 0.9
    (when,) = jarvis[5:]
    assert 0.8 <= float(when) <= 1.6  # seconds into the file: the end of "hey jarvis"
    assert rows[(HEY_JARVIS, "alexa")][5] == "-"
    assert float(rows[(WHAT_TIME, "hey_jarvis")][4]) < 0.1
    assert rows[(WHAT_TIME, "hey_jarvis")][5] == "-"
    # Columns line up: every row starts its MODEL cell at the same offset.
    offsets = {line.index(" hey_jarvis ") for line in lines if " hey_jarvis " in line}
    assert len(offsets) == 1


def test_threshold_flag_applies_to_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wakeword", HEY_JARVIS, "--threshold", "0.9999", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    m = result["models"]["hey_jarvis"]
    assert m["threshold"] == 0.9999 and m["detections"] == [] and m["peak"] >= 0.9


def test_config_file_sets_models_and_thresholds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text('[wakeword]\nmodels = ["alexa"]\nthresholds = {alexa = 0.3}\n')
    assert main(["wakeword", str(SPEECH / "alexa.wav"), "--config", str(conf), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert list(result["models"]) == ["alexa"]
    assert result["models"]["alexa"]["threshold"] == 0.3
    assert len(result["models"]["alexa"]["detections"]) == 1


@pytest.mark.parametrize(
    "sox_format",
    [
        ["-r", "44100", "-c", "2", "-b", "24"],  # WAVE_FORMAT_EXTENSIBLE, which `wave` rejects
        ["-r", "48000", "-c", "1", "-e", "floating-point", "-b", "32"],
        ["-r", "8000", "-c", "1", "-b", "16"],
    ],
)
def test_any_wav_format_is_converted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sox_format: list[str]
) -> None:
    """Other rates, channels and encodings: converted to 16 kHz mono, scored the same."""
    odd = tmp_path / "odd.wav"
    subprocess.run(["sox", HEY_JARVIS, *sox_format, str(odd)], check=True)
    rate = int(subprocess.run(["soxi", "-r", str(odd)], capture_output=True, text=True).stdout)
    assert rate == int(sox_format[1])
    back = read_wav_16k(odd)
    orig, _ = read_wav(HEY_JARVIS)
    assert abs(len(back) - len(orig)) <= 2
    n = min(len(back), len(orig))
    # Sub-sample filter delays and, at 8 kHz, everything above 4 kHz cost a little.
    similar = 0.85 if rate == 8000 else 0.95
    assert np.corrcoef(back[:n].astype(float), orig[:n].astype(float))[0, 1] > similar
    assert main(["wakeword", str(odd), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    if rate != 8000:
        assert result["models"]["hey_jarvis"]["peak"] >= 0.9
        assert len(result["models"]["hey_jarvis"]["detections"]) == 1


def test_eight_bit_wav_is_read(tmp_path: Path) -> None:
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(1)
        wf.setframerate(SAMPLE_RATE)
        wf.writeframes(bytes([128, 255, 0, 128]))
    samples, rate = read_wav(path)
    assert rate == SAMPLE_RATE
    assert samples.tolist() == [0, 127 << 8, -128 << 8, 0]


def test_bad_files_are_reported_and_the_rest_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF nonsense")
    missing = tmp_path / "missing.wav"
    assert main(["wakeword", str(junk), str(missing), HEY_JARVIS]) == 1
    out, err = capsys.readouterr()
    assert f"{junk}: not a readable audio file" in err
    assert f"{missing}: no such file" in err
    assert HEY_JARVIS in out
    with pytest.raises(WavError):
        read_wav(junk)


def test_bad_model_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wakeword", HEY_JARVIS, "--model", "hey_jarvs"]) == EX_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("config error: wakeword.models[0]: unknown model 'hey_jarvs'")
    assert main(["wakeword", HEY_JARVIS, "--threshold", "2"]) == 2


def test_installed_entry_point_runs() -> None:
    exe = Path(sys.executable).parent / "voicepi"
    proc = subprocess.run(
        [str(exe), "wakeword", HEY_JARVIS], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "hey_jarvis" in proc.stdout


def test_score_table_matches_the_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    """scores.json (shown in the README) is what the committed WAVs really score."""
    table = json.loads((SPEECH / "scores.json").read_text())
    files = [r["file"] for r in table]
    names = {Path(f).name for f in files}
    assert {
        "hey_jarvis.wav",
        "what_time_is_it.wav",
        "question.wav",
        "hey_jarvis_then_question.wav",
        "stop.wav",
        "alexa.wav",
        "okay_nabu.wav",
        "demo.wav",
    } <= names
    models = list(table[0]["models"])
    argv = ["wakeword", "--json", *[a for m in models for a in ("--model", m)]]
    assert main([*argv, *[str(ROOT / f) for f in files]]) == 0
    now = json.loads(capsys.readouterr().out)
    for old, new in zip(table, now, strict=True):
        for model in models:
            was, is_ = old["models"][model], new["models"][model]
            assert is_["peak"] == pytest.approx(was["peak"], abs=0.01), (old["file"], model)
            assert is_["detections"] == was["detections"], (old["file"], model)
