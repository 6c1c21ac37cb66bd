"""One audio file reader (libsndfile) for the `file:` mic and `voicepi wakeword`.

Files as recorders and sox write them: WAVE_FORMAT_EXTENSIBLE, 24- and 32-bit,
float, header only, truncated; the channel is the daemon's `audio.input_channel`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile

from daemon.cli import main
from hw.audio import WavError, open_capture
from tests.audio_helpers import Collector, wait_for
from tests.pulse import chirp_noise

SPEECH = Path(__file__).resolve().parent / "fixtures" / "speech"
HEY_JARVIS = SPEECH / "hey_jarvis.wav"


@pytest.mark.parametrize(
    ("fmt", "subtype", "channels"),
    [
        ("WAVEX", "PCM_24", 6),  # the ReSpeaker USB array's 6 channels, extensible header
        ("WAV", "PCM_24", 2),
        ("WAVEX", "PCM_32", 4),
        ("WAV", "FLOAT", 1),
        ("WAV", "DOUBLE", 2),
    ],
)
def test_file_mic_reads_extensible_wide_and_float_wavs(
    tmp_path: Path, fmt: str, subtype: str, channels: int
) -> None:
    clip = chirp_noise(0.2, 16000)
    frames = np.zeros((len(clip), channels), dtype=np.int16)
    frames[:, channels - 1] = clip  # only the last channel carries the signal
    path = tmp_path / "multi.wav"
    # Float files hold -1..1 (libsndfile would store int16 values unscaled).
    data = frames / 32768.0 if subtype in ("FLOAT", "DOUBLE") else frames
    soundfile.write(str(path), data, 16000, format=fmt, subtype=subtype)
    c = Collector()
    cap = open_capture(
        f"file:{path}", on_audio=c.on_audio, on_error=c.on_error, channel=channels - 1
    )
    try:
        wait_for(lambda: c.frames() >= len(clip))
    finally:
        cap.close()
    got = c.audio()[: len(clip)]
    assert np.abs(got.astype(int) - clip).max() <= 1  # float formats round to the nearest step
    assert c.errors == []


def test_header_only_wav_is_a_silent_mic_and_junk_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros((0, 1), np.int16), 16000)
    c = Collector()
    cap = open_capture(f"file:{empty}", on_audio=c.on_audio, on_error=c.on_error)
    try:
        wait_for(lambda: c.frames() >= 640)
    finally:
        cap.close()
    assert not c.audio().any() and c.errors == []
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(WavError) as info:
        open_capture(f"file:{junk}", on_audio=c.on_audio)
    assert str(info.value).startswith(f"{junk}: not a readable audio file")
    assert "\n" not in str(info.value)


def _stereo(tmp_path: Path, *, right_only: bool) -> Path:
    mono, rate = soundfile.read(str(HEY_JARVIS), dtype="int16")
    silent = np.zeros_like(mono)
    pair = np.stack([silent, mono] if right_only else [mono, silent], axis=1)
    path = tmp_path / "right.wav"
    soundfile.write(str(path), pair, rate, format="WAVEX", subtype="PCM_24")
    return path


def _detections(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[float]:
    assert main(["wakeword", *args, "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    detections: list[float] = result["models"]["hey_jarvis"]["detections"]
    return detections


def test_wakeword_scores_the_channel_the_daemon_listens_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    right = _stereo(tmp_path, right_only=True)
    left_cfg = tmp_path / "left.toml"
    left_cfg.write_text("[audio]\ninput_channels = 2\ninput_channel = 0\n")
    right_cfg = tmp_path / "right.toml"
    right_cfg.write_text("[audio]\ninput_channels = 2\ninput_channel = 1\n")
    # The daemon on channel 0 never hears the right channel: neither does `wakeword`.
    assert _detections([str(right), "--config", str(left_cfg)], capsys) == []
    assert len(_detections([str(right), "--config", str(right_cfg)], capsys)) == 1


def test_truncated_wav_is_scored_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    blob = HEY_JARVIS.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(blob[: len(blob) * 3 // 4])
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    assert main(["wakeword", str(cut), "--config", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert f"voicepi wakeword: warning: {cut}: truncated: " in err, err
    assert "of the 1." in err or "of the 0." in err or "of the 2." in err, err
    assert str(cut) in out
    with caplog.at_level(logging.WARNING):
        cap = open_capture(f"file:{cut}", on_audio=lambda s, i: None)
        cap.close()
    assert any("truncated" in r.getMessage() for r in caplog.records), caplog.text


def test_one_word_fires_once_even_with_a_short_refractory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The score stays over the threshold ~0.45 s: a 0.25 s refractory fired twice."""
    from daemon.config import WakewordConfig
    from daemon.wakeword import WakeWordDetector
    from daemon.wakeword.wav import read_wav_16k

    once = read_wav_16k(HEY_JARVIS)
    gap = np.zeros(16000, np.int16)
    twice = np.concatenate([once, gap, once, gap])
    det = WakeWordDetector(WakewordConfig(refractory=0.25))
    try:
        assert len(det.process(np.concatenate([once, gap]))) == 1
        det.reset()
        assert len(det.process(twice)) == 2  # re-armed once the score fell
    finally:
        det.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text("[wakeword]\nrefractory = 0.25\n")
    assert len(_detections([str(HEY_JARVIS), "--config", str(cfg)], capsys)) == 1
