"""Capture and playback through PortAudio -> ALSA pulse plugin -> a private PulseAudio.

The microphone is a pipe source fed by a separate process; the speaker is a
null sink recorded through its monitor. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

from daemon.dsp import Resampler
from hw.audio import (
    AudioDeviceError,
    CaptureStalled,
    DeviceNotFound,
    Player,
    PyAudioCapture,
    PyAudioPlayer,
    open_capture,
    open_player,
)
from hw.audio.playback import PARK_AFTER_S
from tests.audio_helpers import Collector, Tracker, wait_for
from tests.pulse import (
    MIC_RATE,
    PulseServer,
    Recording,
    active_span,
    best_lag,
    chirp_noise,
    tone,
)

pytestmark = pytest.mark.pulse

REC_RATE = 24000
PARK_BLOCKS = int(PARK_AFTER_S / 0.02)  # 20 ms blocks, the player's default


# --------------------------------------------------------------------------- capture


@pytest.mark.parametrize("rate", [MIC_RATE, 0], ids=["16k", "device-default-rate"])
def test_capture_by_name_gets_the_wav(pulse_mic: PulseServer, rate: int) -> None:
    c = Collector()
    cap = open_capture("pulse", on_audio=c.on_audio, on_error=c.on_error, rate=rate)
    try:
        assert isinstance(cap, PyAudioCapture)
        if rate == 0:
            assert cap.rate == cap.device.default_rate
        assert cap.block_frames == cap.rate // 50
        clip = chirp_noise(1.0, MIC_RATE, seed=7)
        # Audio must flow before the clip starts, or its first samples can go unrecorded.
        wait_for(lambda: c.frames() > cap.rate // 10)
        pulse_mic.play(clip)
        wait_for(lambda: c.frames() > cap.rate * 2.5)
    finally:
        cap.close()
    firsts = [f for f, _ in c.blocks]
    sizes = [len(b) for _, b in c.blocks]
    assert firsts == list(np.cumsum([0, *sizes[:-1]]))  # monotonic, gapless frame counter
    assert c.errors == []
    # Block by block, as the daemon does it, to the wake word's and the session's rates:
    # exact counts (no drift) and the clip intact (no clicks at block seams).
    reference = {MIC_RATE: clip, 24000: Resampler(MIC_RATE, 24000).process(clip)}
    for out_rate, expected in reference.items():
        r = Resampler(cap.rate, out_rate)
        audio = np.concatenate([r.process(b) for _, b in c.blocks])
        assert len(audio) == -(-c.frames() * out_rate // cap.rate)
        _lag, corr = best_lag(audio, expected)
        assert corr > 0.98, (out_rate, corr)


def _pulse_index() -> int:
    from hw.audio import find_device, new_pyaudio

    pa = new_pyaudio()
    try:
        return find_device(pa, "pulse", "input").index
    finally:
        pa.terminate()


@pytest.mark.parametrize("spec", ["PULS", "index", "default"])
def test_capture_device_by_substring_index_or_default(pulse_mic: PulseServer, spec: str) -> None:
    if spec == "index":
        spec = str(_pulse_index())
    c = Collector()
    cap = open_capture(spec, on_audio=c.on_audio, on_error=c.on_error, rate=MIC_RATE)
    try:
        assert isinstance(cap, PyAudioCapture)
        expected_name = "default" if spec == "default" else "pulse"
        assert cap.device.name == expected_name
        clip = chirp_noise(0.5, MIC_RATE, seed=5)
        wait_for(lambda: c.frames() > MIC_RATE // 10)  # flowing before the clip starts
        pulse_mic.play(clip)
        wait_for(lambda: c.frames() > MIC_RATE * 1.7)
    finally:
        cap.close()
    assert best_lag(c.audio(), clip)[1] > 0.98
    assert c.errors == []


def test_multichannel_capture_picks_the_configured_channel(pulse_mic: PulseServer) -> None:
    # A 4-channel array (like respeaker-4mic): every channel carries a different signal.
    signals = [chirp_noise(1.0, MIC_RATE, seed=20 + ch) for ch in range(4)]
    with (
        pulse_mic.add_source("array4", channels=4) as array,
        pulse_mic.default_source("array4"),
    ):
        caps: dict[int, tuple[PyAudioCapture, Collector]] = {}
        try:
            for channel in (1, 3):
                c = Collector()
                cap = open_capture(
                    "pulse", on_audio=c.on_audio, channels=4, channel=channel, rate=MIC_RATE
                )
                assert isinstance(cap, PyAudioCapture)
                assert (cap.channels, cap.channel) == (4, channel)
                caps[channel] = (cap, c)
            for _cap, c in caps.values():  # flowing before the clip starts
                wait_for(lambda c=c: c.frames() > MIC_RATE // 10)  # type: ignore[misc]
            array.play(np.stack(signals, axis=1))
            for _cap, c in caps.values():
                wait_for(lambda c=c: c.frames() > MIC_RATE * 2.5)  # type: ignore[misc]
        finally:
            for cap, _c in caps.values():
                cap.close()
    for channel, (_cap, c) in caps.items():
        audio = c.audio()
        for other, signal in enumerate(signals):
            corr = best_lag(audio, signal)[1]
            if other == channel:
                assert corr > 0.98, (channel, corr)
            else:
                assert corr < 0.3, (channel, other, corr)


def test_mic_removal_is_reported(pulse_mic: PulseServer) -> None:
    c = Collector()
    pulse_mic.play(chirp_noise(20.0, MIC_RATE, amplitude=0.05))
    cap = open_capture(
        "pulse",
        on_audio=c.on_audio,
        on_error=c.on_error,
        rate=MIC_RATE,
        stall_timeout=1.0,
        silence_timeout=1.0,
    )
    try:
        wait_for(lambda: c.frames() > MIC_RATE // 2)
        assert not c.error_seen.wait(1.5)  # a live, noisy mic is healthy
        removed = time.monotonic()
        with pulse_mic.mic_removed():
            # PulseAudio either stalls the stream or moves it to a silent fallback.
            assert c.error_seen.wait(5.0), "mic removal went unnoticed"
        when, exc = c.errors[0]
        assert isinstance(exc, AudioDeviceError)
        assert when - removed < 4.0
        if isinstance(exc, CaptureStalled):
            assert "pulse" in str(exc)
        time.sleep(0.5)  # two watchdog periods: an absence (load only makes it pass)
        assert len(c.errors) == 1  # reported once
    finally:
        cap.close()


def test_unknown_device_names_the_spec_and_lists_what_exists(pulse: PulseServer) -> None:
    with pytest.raises(DeviceNotFound) as info:
        open_capture("no-such-mic", on_audio=lambda s, i: None)
    assert "no-such-mic" in str(info.value) and "'pulse'" in str(info.value)
    with pytest.raises(DeviceNotFound, match="9999"):
        open_player("9999")
    with pytest.raises(AudioDeviceError, match="channel"):
        open_capture("pulse", on_audio=lambda s, i: None, channels=64)


# --------------------------------------------------------------------------- playback


def played_on(rec: Recording, seconds: float, timeout: float = 15.0) -> None:
    """Wait until ``rec`` holds ``seconds`` more audio than now: the sink played on that
    far, so what was queued before is in the recording (a condition on the recording,
    not a sleep the machine's load can outrun)."""
    want = rec.frames + int(seconds * rec.rate)
    wait_for(lambda: rec.frames >= want, timeout)


def _play_one_item(
    pulse: PulseServer, sound: np.ndarray, **player_args: Any
) -> tuple[Player, float, Tracker, np.ndarray]:
    """Play ``sound`` as item "a" on the pulse device until drained: the (closed) player,
    its output latency while open, its tracker and the sink's recording."""
    rec = pulse.record(rate=REC_RATE)
    t = Tracker()
    player = open_player("pulse", volume=100, tracker=t, **player_args)
    try:
        player.write("a", sound.tobytes())
        player.end_of_item("a")
        assert t.drained.wait(5.0)
        latency = player.output_latency
        played_on(rec, 0.3 + latency)
    finally:
        player.close()
        recorded = rec.stop()
    return player, latency, t, recorded


def test_playback_reaches_the_sink(pulse: PulseServer) -> None:
    sound = chirp_noise(0.6, 24000, seed=11)
    player, latency, t, recorded = _play_one_item(pulse, sound)
    assert isinstance(player, PyAudioPlayer) and player.rate == 24000
    assert 0 < latency < 1.0
    _lag, corr = best_lag(recorded, sound)
    assert corr > 0.98, corr
    span = active_span(recorded, REC_RATE)
    assert span is not None and abs((span[1] - span[0]) - len(sound)) < 0.01 * REC_RATE
    assert t.names() == [("started", ("a",)), ("finished", ("a",)), ("drained", ())]
    assert t.progress == {"a": len(sound)}


def test_playback_resampled_to_a_48k_device(pulse: PulseServer) -> None:
    sound = tone(700, 0.4, 24000)
    player, _latency, t, recorded = _play_one_item(pulse, sound, rate=48000)
    assert player.rate == 48000
    assert best_lag(recorded, sound)[1] > 0.98
    assert t.progress == {"a": len(sound)}


def test_jitter_buffer_holds_playback_until_enough_is_queued(pulse: PulseServer) -> None:
    rec = pulse.record(rate=REC_RATE)
    t = Tracker()
    player = open_player("pulse", volume=100, tracker=t, jitter_ms=120)
    try:
        player.write("a", tone(500, 0.05, 24000).tobytes())  # 50 ms < 120 ms
        played_on(rec, 0.4)  # the sink ran on 0.4 s with 50 ms queued
        assert not t.started.is_set() and not player.is_playing
        held = rec.samples()
        player.write("a", tone(500, 0.1, 24000).tobytes())  # 150 ms queued: go
        assert t.started.wait(2.0)
        assert player.is_playing
        player.end_of_item("a")
        assert t.drained.wait(3.0)
        played_on(rec, 0.2 + player.output_latency)
    finally:
        player.close()
        recorded = rec.stop()
    assert active_span(held, REC_RATE) is None  # nothing sounded while held
    span = active_span(recorded, REC_RATE)
    assert span is not None and span[0] > len(held) - 0.05 * REC_RATE
    assert t.progress == {"a": int(0.15 * 24000)}


def test_per_item_counts_and_order(pulse: PulseServer) -> None:
    rec = pulse.record(rate=REC_RATE)
    t = Tracker()
    player = open_player("pulse", volume=100, tracker=t, jitter_ms=60)
    try:
        a, b = tone(400, 0.3, 24000), tone(900, 0.2, 24000)
        for i in range(0, len(a), 1200):  # deltas as the server sends them
            player.write("a", a[i : i + 1200].tobytes())
        player.end_of_item("a")
        player.write("b", b.tobytes())
        player.end_of_item("b")
        assert t.drained.wait(5.0)
        played_on(rec, 0.2 + player.output_latency)
    finally:
        player.close()
        recorded = rec.stop()
    assert t.names() == [
        ("started", ("a",)),
        ("finished", ("a",)),
        ("started", ("b",)),
        ("finished", ("b",)),
        ("drained", ()),
    ]
    assert t.progress == {"a": len(a), "b": len(b)}
    lag_a, corr_a = best_lag(recorded, a)
    lag_b, corr_b = best_lag(recorded, b)
    assert corr_a > 0.98 and corr_b > 0.98
    assert abs(lag_b - (lag_a + len(a))) < 0.005 * REC_RATE  # b follows a without a gap


@pytest.mark.parametrize("block_ms", [20, 40])
def test_flush_silences_within_a_block_and_counts_what_sounded(
    pulse: PulseServer, block_ms: int
) -> None:
    rec = pulse.record(rate=REC_RATE)
    t = Tracker()
    player = open_player("pulse", volume=100, tracker=t, block_ms=block_ms, jitter_ms=80)
    try:
        player.write("long", tone(350, 4.0, 24000).tobytes())
        assert t.started.wait(2.0)
        played_on(rec, 0.7)  # let it play a while (by the sink's clock)
        played = player.flush()["long"]
        flushed_at = time.monotonic()
        latency = player.output_latency
        played_on(rec, 0.4 + latency)
        assert not player.is_playing
    finally:
        player.close()
        recorded = rec.stop()
    started_at = t.events[0][0]
    span = active_span(recorded, REC_RATE)
    assert span is not None
    sounded = span[1] - span[0]
    block = 24000 * block_ms // 1000
    fade = int(0.005 * 24000)
    # What reached the sink is what the callback counted, to within one block
    # (plus the fade and 2 ms for PulseAudio's resampler smear at the edges).
    assert abs(sounded - played) <= block + fade + 48, (sounded, played)
    # And it stopped within one block plus the device latency of the flush call. (An
    # upper bound on wall time: load can only widen it, never make it fail.)
    wall = (flushed_at - started_at) * 24000
    assert sounded <= wall + block + latency * 24000 + 0.05 * 24000, (sounded, wall)
    assert t.progress["long"] <= played  # progress never ran ahead of the flush report
    assert ("finished", ("long",)) not in t.names()


def test_volume_change_is_audible(pulse: PulseServer) -> None:
    rec = pulse.record(rate=REC_RATE)
    t = Tracker()
    player = open_player("pulse", volume=100, tracker=t, jitter_ms=40)
    try:
        player.write("a", tone(500, 0.3, 24000).tobytes())
        player.end_of_item("a")
        assert t.drained.wait(3.0)
        t.drained.clear()
        player.set_volume(50)
        player.write("b", tone(500, 0.3, 24000).tobytes())
        player.end_of_item("b")
        assert t.drained.wait(3.0)
        played_on(rec, 0.2 + player.output_latency)
    finally:
        player.close()
        recorded = rec.stop().astype(np.float64)
    peaks = []
    for item in (tone(500, 0.3, 24000),):
        lag, _ = best_lag(recorded, item)
        peaks.append(np.sqrt(np.mean(recorded[lag + 1200 : lag + 6000] ** 2)))
        recorded[lag : lag + len(item)] = 0
        lag2, _ = best_lag(recorded, item)
        peaks.append(np.sqrt(np.mean(recorded[lag2 + 1200 : lag2 + 6000] ** 2)))
    loud, quiet = max(peaks), min(peaks)
    assert 20 * np.log10(quiet / loud) == pytest.approx(-12.0, abs=1.0)


# --------------------------------------------------------------------------- CLI


def test_devices_command_lists_pulse(pulse: PulseServer) -> None:
    env = {**os.environ}
    cmd = [sys.executable, "-m", "daemon.cli", "devices"]
    text = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "Capture devices:" in text.stdout and "Playback devices:" in text.stdout
    assert any(line.startswith(" *") for line in text.stdout.splitlines())
    listed = json.loads(
        subprocess.run(
            [*cmd, "--json"], env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout
    )
    names = {d["name"] for d in listed}
    assert "pulse" in names
    assert any(d["default_input"] for d in listed) and any(d["default_output"] for d in listed)


def test_an_idle_output_stream_is_parked_and_the_next_item_plays_in_full(
    pulse: PulseServer,
) -> None:
    """Idle, the stream stops (no callback every block for nothing); a write restarts it,
    and neither the watchdog nor the tracker notices anything but the item."""
    errors: list[BaseException] = []
    rec = pulse.record(rate=REC_RATE)
    t = Tracker()
    player = open_player("pulse", volume=100, tracker=t, on_error=errors.append)
    try:
        assert isinstance(player, PyAudioPlayer)
        wait_for(lambda: player.parked, timeout=10.0)
        assert player._health() is None  # parked is healthy, not a stopped device
        calls = player.engine.frames_rendered
        played_on(rec, 0.3)  # the sink ran on 0.3 s
        assert player.engine.frames_rendered == calls  # no callbacks while parked
        for n in range(2):  # parked, restarted, parked again, restarted again
            sound = chirp_noise(0.5, 24000, seed=20 + n)
            player.write(f"a{n}", sound.tobytes())
            player.end_of_item(f"a{n}")
            assert not player.parked
            wait_for(lambda n=n: t.finished() == [f"a{i}" for i in range(n + 1)])
            assert t.progress[f"a{n}"] == len(sound)
            wait_for(lambda: player.parked, timeout=10.0)
        assert errors == []
    finally:
        player.close()
        recorded = rec.stop()
    assert best_lag(recorded, sound)[1] > 0.98  # the last item reached the sink intact


def test_with_an_echo_reference_the_idle_stream_parks_on_its_dac_times_and_a_session_holds_it(
    pulse: PulseServer,
) -> None:
    """The canceller's reference tap no longer keeps an idle stream running: every block
    PortAudio renders carries its DAC time, the time the stream was parked shows as a
    gap of that silence, and the player says restarted() before the first block after
    it. keep_running holds it."""
    taps: list[tuple[int, int, float | None]] = []
    restarts: list[int] = []  # taps before each restarted() call
    # Someone listens to the sink, as the room's mic does (unheard, the null sink here
    # paced a restarted stream in 2 s chunks)
    rec = pulse.record(rate=REC_RATE)
    player = open_player("pulse", volume=100)
    try:
        assert isinstance(player, PyAudioPlayer)
        player.set_reference_tap(
            lambda block, rate, dac: taps.append((len(block), rate, dac)),
            restarted=lambda: restarts.append(len(taps)),
        )
        wait_for(lambda: player.parked, timeout=10.0)
        parked_at = len(taps)
        played_on(rec, 0.3)  # the sink ran on 0.3 s: the parked stream's last blocks sounded
        player.keep_running(True)  # the wake: running until the session closes
        assert not player.parked
        wait_for(lambda: len(taps) >= parked_at + int(1.5 * PARK_BLOCKS))
        assert not player.parked  # idle for longer than PARK_AFTER_S, still running
        player.keep_running(False)
        wait_for(lambda: player.parked, timeout=10.0)
    finally:
        player.close()
        rec.stop()
    dac = [t for _, _, t in taps]
    assert all(t is not None and t > 0 for t in dac), dac[:5]
    ends = [t + n / rate for n, rate, t in taps if t is not None]
    gaps = [b - a for a, b in zip(ends[:-1], [t for t in dac[1:] if t is not None], strict=True)]
    # A running stream's DAC times step by a few ms now and then (3.4 ms here unloaded,
    # up to 7 under load), which is why the canceller only trusts them after restarted();
    # the park is the one real gap.
    assert max(abs(g) for i, g in enumerate(gaps) if i != parked_at - 1) < 0.05
    assert gaps[parked_at - 1] > 0.1
    assert restarts == [parked_at]  # said once, just before the restarted stream's first block
