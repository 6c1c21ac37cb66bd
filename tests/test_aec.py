"""The echo canceller (daemon/aec.py) between the real playback engine and a simulated
room: the reference is what PlaybackEngine.render handed the device, the mic hears it
through a decaying impulse response after a delay, plus the user's speech."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from daemon import aec
from daemon.config.profiles import PROFILES
from daemon.dsp import Resampler
from hw.audio.engine import PlaybackEngine
from hw.audio.files import load_mono
from tests.appliance_harness import SPEECH

DEV_RATE = 24000
BLOCK = 480  # 20 ms at the device rate
MIC_BLOCK = 320  # 20 ms at 16 kHz


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-9))


def _room(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.normal(0, 1, 1600) * np.exp(-np.arange(1600) / 400.0)  # ~RT60 0.17 s at 16 kHz
    h[0] = 4.0  # the direct path
    return h / np.abs(h).sum() * 2.0


def _answer(seconds: float) -> bytes:
    speech, _ = load_mono(SPEECH / "question.wav", rate=DEV_RATE)
    reps = int(seconds * DEV_RATE) // len(speech) + 1
    return np.tile(speech, reps)[: int(seconds * DEV_RATE)].astype("<i2").tobytes()


class SimClock:
    """Seconds of simulated audio: the canceller's clock in a room run faster than real time.

    ``t`` is the true time (the devices'); the canceller reads ``t + skew``: a skew set
    between two blocks is a thread held off, its next block arriving that much late."""

    def __init__(self) -> None:
        self.t = 100.0
        self.skew = 0.0

    def __call__(self) -> float:
        return self.t + self.skew


AHEAD_S = 0.05  # a rendered block sounds this long after its callback (its DAC time)


def _run_room(
    canceller: aec.EchoCanceller,
    seconds: float,
    *,
    delay_ms: int,
    user: np.ndarray | None = None,
    user_at: float = 0.0,
    preplay_blocks: int = 0,
    clock: SimClock | None = None,
    dac: bool = False,
    dac_error: Callable[[int], float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Play an answer through the engine; returns (mic as heard, mic after the canceller).
    ``clock``, the canceller's, advances 20 ms per block; with ``dac`` each block carries
    its DAC time, the true time it sounds (as PortAudio stamps it), off by
    ``dac_error(block index)`` seconds when given."""
    engine = PlaybackEngine(device_rate=DEV_RATE, volume=80)
    engine.reference_tap = canceller.reference
    for _ in range(preplay_blocks):  # the player ran before the mic opened
        engine.render(BLOCK)
    engine.write("answer", _answer(seconds))
    engine.end_of_item("answer")
    to_mic = Resampler(DEV_RATE, 16000)
    h = _room()
    delay = delay_ms * 16
    sounded = np.zeros(delay, dtype=np.float64)  # what the speaker emitted, at 16 kHz
    heard_parts: list[np.ndarray] = []
    out_parts: list[np.ndarray] = []
    conv_tail = np.zeros(len(h) - 1)
    mic_pos = 0
    for i in range(int(seconds * 50)):
        if clock is not None:
            clock.t += 0.02
        dac_time = clock.t + AHEAD_S if dac and clock is not None else None
        if dac_time is not None and dac_error is not None:
            dac_time += dac_error(i)
        block = engine.render(BLOCK, dac_time)  # the player renders before the mic hears it
        sounded = np.concatenate((sounded, to_mic.process(block.astype(np.float32))))
        src = sounded[mic_pos : mic_pos + MIC_BLOCK]
        mic_pos += MIC_BLOCK
        full = np.convolve(src, h)
        full[: len(h) - 1] += conv_tail
        echo = full[:MIC_BLOCK]
        conv_tail = full[MIC_BLOCK:]
        mic = echo.copy()
        if user is not None:
            start = int(user_at * 16000)
            lo = mic_pos - MIC_BLOCK - start
            if lo + MIC_BLOCK > 0 and lo < len(user):
                seg = user[max(lo, 0) : lo + MIC_BLOCK].astype(np.float64)
                at = max(-lo, 0)
                mic[at : at + len(seg)] += seg
        mic16 = np.clip(np.rint(mic), -32768, 32767).astype(np.int16)
        heard_parts.append(mic16)
        out_parts.append(canceller.process(mic16, 16000))
    return np.concatenate(heard_parts), np.concatenate(out_parts)


@pytest.mark.parametrize("delay_ms", [10, 40, 100])
def test_echo_is_reduced_by_30_db_after_two_seconds(delay_ms: int) -> None:
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    heard, out = _run_room(canceller, 6.0, delay_ms=delay_ms, clock=clock)
    assert len(out) == len(heard)
    assert _db(heard[32000:]) > 40  # a loud echo reached the mic
    reduction = _db(heard[32000:]) - _db(out[32000:])
    assert reduction >= 30, reduction
    assert canceller.stats().reference_underruns == 0


def test_the_mic_is_muted_while_aec3_hears_its_first_second_of_sound_only() -> None:
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    heard, out = _run_room(canceller, 4.0, delay_ms=40, clock=clock)
    assert canceller.stats().muted_frames >= aec.WARMUP_FRAMES
    first = int(np.argmax(np.abs(heard) > 0))  # the echo's first sample
    assert not out[first : first + 8000].any()  # nothing leaks while AEC3 converges
    assert out[first + 24000 :].any()  # later the mic passes (the residual is not zero)


def test_a_reference_backlog_from_before_the_mic_opened_cannot_lag_the_echo() -> None:
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    # 5 s of silence rendered before the mic opened
    heard, out = _run_room(canceller, 6.0, delay_ms=40, preplay_blocks=250, clock=clock)
    assert canceller.stats().lead_ms <= 200  # anchored at the mic's first frame, not 5 s ago
    assert _db(heard[32000:]) - _db(out[32000:]) >= 30


def test_the_user_speaking_over_the_answer_survives_the_canceller() -> None:
    user, _ = load_mono(SPEECH / "stop.wav", rate=16000)
    user = (user.astype(np.float64) * 0.3).astype(np.int16)  # echo louder than the user
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    _, out = _run_room(canceller, 5.0, delay_ms=40, user=user, user_at=3.0, clock=clock)
    at, n = 3 * 16000, len(user)
    echo_only = out[int(2.2 * 16000) : int(2.9 * 16000)]
    during = out[at : at + n]
    assert _db(during) - _db(echo_only) >= 15, (_db(during), _db(echo_only))


def _capture_only(canceller: aec.EchoCanceller, clock: SimClock, seconds: float) -> None:
    """The mic runs while the player renders nothing (not started yet, stalled, parked)."""
    for _ in range(int(seconds * 1000) // 80):
        clock.t += 0.08
        canceller.process(np.zeros(1280, dtype=np.int16), 16000)


def test_a_player_that_starts_after_the_mic_is_silence_not_a_realignment() -> None:
    # The speaker's stream began 1.5 s after the mic (PulseAudio here): the capture
    # timeline ran on alone. That time is zeros; the player's first block belongs
    # at the capture's "now", and AEC3's first answer must not be delayed by 1.5 s.
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    _capture_only(canceller, clock, 1.5)
    heard, out = _run_room(canceller, 6.0, delay_ms=100, clock=clock)
    stats = canceller.stats()
    assert (stats.resyncs, stats.reference_gaps) == (0, 1), stats
    assert stats.lead_ms <= 200, stats
    assert _db(heard[32000:]) - _db(out[32000:]) >= 30


def test_a_stalled_player_between_answers_keeps_the_alignment_and_the_warm_up() -> None:
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    # The player ran before the mic opened (as the daemon's does); 100 ms device path.
    _run_room(canceller, 3.0, delay_ms=100, clock=clock, preplay_blocks=5)
    muted = canceller.stats().muted_frames
    _capture_only(canceller, clock, 2.0)  # the player thread stalled for 2 s
    heard, out = _run_room(canceller, 4.0, delay_ms=100, clock=clock)
    stats = canceller.stats()
    assert (stats.resyncs, stats.reference_gaps, stats.muted_frames) == (0, 1, muted), stats
    assert _db(heard[16000:]) - _db(out[16000:]) >= 30  # the learned room still holds


@pytest.mark.parametrize("skew_s", [0.12, -0.06])
def test_a_restarted_stream_is_placed_by_its_dac_times_not_by_when_its_blocks_arrive(
    skew_s: float,
) -> None:
    # A parked speaker restarts for the next answer: its first blocks come in a burst,
    # its callbacks and the capture's are held off at will under load (through
    # PulseAudio the arrival times placed the reference 38-166 ms after its echo). The
    # DAC times say where it sounds: AEC3's learned delay holds from the first block.
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    _run_room(canceller, 3.0, delay_ms=100, clock=clock, preplay_blocks=5, dac=True)
    _capture_only(canceller, clock, 2.0)  # the speaker parked for 2 s
    clock.skew = skew_s
    heard, out = _run_room(canceller, 3.0, delay_ms=100, clock=clock, dac=True)
    stats = canceller.stats()
    assert (stats.resyncs, stats.reference_gaps) == (0, 1), stats
    assert _db(heard[:16000]) - _db(out[:16000]) >= 30  # from the answer's first second


def test_a_running_streams_stepping_dac_times_do_not_move_its_reference() -> None:
    # Through PulseAudio under load a running stream's DAC times stepped by 2-7 ms about
    # every 1.5 s with no sample lost: the echo stayed where it was. Placed by them, the
    # reference moved by each step under AEC3 (the echo delay it saw drifted 88 -> 112
    # ms over one answer) and answers interrupted themselves.
    steps = {75: -0.004, 150: -0.007, 225: 0.005, 300: -0.003}  # block -> new DAC error

    def dac_error(block: int) -> float:
        return sum(step for at, step in steps.items() if block >= at)

    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    heard, out = _run_room(canceller, 8.0, delay_ms=100, clock=clock, dac=True, dac_error=dac_error)
    stats = canceller.stats()
    assert (stats.reference_gaps, stats.resyncs) == (0, 0), stats
    for at in steps:  # the half second after each step is cancelled as well as before
        after = slice(at * MIC_BLOCK, at * MIC_BLOCK + 8000)
        assert _db(heard[after]) - _db(out[after]) >= 30, at


@pytest.mark.parametrize(
    ("woken_after_s", "silence_s"),
    [
        # Woken 200 ms after its last block, sooner than a stall: only the player knows
        # the stream restarted, and says so. The silence the device played meanwhile (by
        # its DAC time) is then zeros in the reference.
        (0.2, 0.18),
        # Restarted right after it parked, PortAudio dropped the idle blocks it still held
        # (60 ms through PulseAudio here): the next block's DAC time is before where they
        # would have ended. That silence never sounded; kept in the reference, it would
        # put every later block 60 ms after its echo.
        (0.02, -0.06),
    ],
)
def test_a_restarted_stream_is_placed_by_the_dac_time_after_the_restart_the_player_reports(
    woken_after_s: float, silence_s: float
) -> None:
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    zeros = np.zeros(BLOCK, dtype=np.int16)
    dac = clock.t + AHEAD_S
    for _ in range(10):
        clock.t += 0.02
        canceller.reference(zeros, DEV_RATE, dac)
        dac += 0.02
    canceller.process(np.zeros(160, dtype=np.int16), 16000)
    before = canceller.stats().lead_ms
    clock.t += woken_after_s
    canceller.restarted()
    canceller.reference(zeros, DEV_RATE, dac + silence_s)
    after = canceller.stats()
    assert after.lead_ms == pytest.approx(before + 20 + silence_s * 1000), (before, after)
    assert after.reference_gaps == 1


def test_a_mic_reopened_while_the_speaker_is_parked_keeps_the_room() -> None:
    # The mic stalled and was reopened (realign) while the idle speaker was parked: its
    # first block must pair with where the reference would be by now, not with the last
    # block the parked stream rendered seconds ago (in the room, a stalled mic at start-up
    # then made the next answers interrupt themselves).
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    _run_room(canceller, 3.0, delay_ms=100, clock=clock, preplay_blocks=5, dac=True)
    _capture_only(canceller, clock, 1.0)  # parked
    canceller.realign()
    _capture_only(canceller, clock, 1.0)
    heard, out = _run_room(canceller, 3.0, delay_ms=100, clock=clock, dac=True)
    stats = canceller.stats()
    assert stats.resyncs == 0, stats
    assert _db(heard[:16000]) - _db(out[:16000]) >= 30


def test_dac_times_from_a_stepped_clock_fall_back_to_the_capture_clock() -> None:
    # PortAudio 19.6 stamps with CLOCK_REALTIME: NTP stepping it while the speaker was
    # parked (a Pi without an RTC syncs after boot) must not insert an hour of zeros.
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    _run_room(canceller, 3.0, delay_ms=100, clock=clock, preplay_blocks=5, dac=True)
    _capture_only(canceller, clock, 2.0)
    engine = PlaybackEngine(device_rate=DEV_RATE)
    engine.reference_tap = canceller.reference
    clock.t += 0.02
    engine.render(BLOCK, clock.t + AHEAD_S + 3600.0)
    canceller.process(np.zeros(MIC_BLOCK, dtype=np.int16), 16000)
    stats = canceller.stats()
    assert stats.reference_gaps == 1 and 0 <= stats.lead_ms <= 200, stats


def test_with_nothing_played_the_voice_passes_bit_exact() -> None:
    # AEC3 with a silent reference still delays and reshapes a voice (correlation 0.94
    # on this fixture): the wake word and the server must get the mic as it was.
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    speech, _ = load_mono(SPEECH / "hey_jarvis_then_question.wav", rate=16000)
    out = []
    for i in range(0, len(speech) - 1280 + 1, 1280):
        clock.t += 0.08
        for _ in range(4):  # the idle player's zeros, at its pace
            canceller.reference(np.zeros(BLOCK, dtype=np.int16), DEV_RATE)
        out.append(canceller.process(speech[i : i + 1280], 16000))
    got = np.concatenate(out)
    # As AEC3 delays it (8 ms): switching to AEC3 and back neither repeats nor skips audio.
    d = aec.AEC3_DELAY
    assert not got[:d].any() and np.array_equal(got[d:], speech[: len(got) - d])
    assert canceller.stats().reference_underruns == 0


def test_a_late_reference_costs_only_its_frames_never_the_alignment() -> None:
    canceller = aec.EchoCanceller(clock=SimClock())
    for _ in range(10):  # the player is ahead by 100 ms: the lead becomes the cushion
        canceller.reference(np.zeros(BLOCK // 2, dtype=np.int16), DEV_RATE)
    canceller.process(np.zeros(160, dtype=np.int16), 16000)
    assert canceller.stats().lead_ms == aec.CUSHION_MS  # the block ends now: its end pairs
    for _ in range(20):  # a capture burst of 200 ms while the player thread starves
        canceller.process(np.zeros(160, dtype=np.int16), 16000)
    late = canceller.stats().reference_underruns
    assert late == 20 - aec.CUSHION_MS // 10
    for _ in range(12):  # the player catches up
        canceller.reference(np.zeros(BLOCK, dtype=np.int16), DEV_RATE)
    canceller.process(np.zeros(160, dtype=np.int16), 16000)
    assert canceller.stats().reference_underruns == late  # same offset: no frame lost since
    assert canceller.stats().resyncs == 0


def test_without_a_reference_the_mic_passes_through_at_16_khz() -> None:
    canceller = aec.EchoCanceller()
    speech, _ = load_mono(SPEECH / "question.wav", rate=48000)
    out = np.concatenate(
        [canceller.process(speech[i : i + 960], 48000) for i in range(0, len(speech), 960)]
    )
    # Whole 10 ms frames only, and libsoxr holds back its filter's last ~30 ms.
    assert 0 <= len(speech) / 3 - len(out) <= 160 + 480
    assert abs(_db(out) - _db(speech)) < 3
    assert canceller.stats().reference_underruns == canceller.stats().frames


def test_auto_is_on_for_voice_barge_in_without_hardware_aec() -> None:
    assert aec.wanted("auto", "voice", hardware_aec=False)
    assert not aec.wanted("auto", "voice", hardware_aec=True)
    assert not aec.wanted("auto", "button", hardware_aec=False)
    assert aec.wanted("on", "button", hardware_aec=True)
    assert not aec.wanted("off", "voice", hardware_aec=False)
    assert PROFILES["respeaker-usb-v2"].hardware_aec
    assert not PROFILES["respeaker-2mic"].hardware_aec


def test_a_failing_reference_tap_is_dropped_and_playback_goes_on() -> None:
    engine = PlaybackEngine(device_rate=DEV_RATE)

    def broken(block: np.ndarray, rate: int, dac_time: float | None) -> None:
        raise RuntimeError("boom")

    engine.reference_tap = broken
    engine.write("a", np.full(4800, 3000, dtype="<i2").tobytes())
    engine.end_of_item("a")
    first = engine.render(BLOCK)
    assert engine.reference_tap is None
    assert first.any() and engine.render(BLOCK).any()


def test_the_missing_binding_is_a_one_line_error() -> None:
    import sys

    saved = sys.modules.get("pywebrtc_audio")
    sys.modules["pywebrtc_audio"] = None  # type: ignore[assignment]
    try:
        with pytest.raises(aec.EchoCancelUnavailable, match="pip install pywebrtc-audio"):
            aec.EchoCanceller()
    finally:
        if saved is not None:
            sys.modules["pywebrtc_audio"] = saved
        else:
            sys.modules.pop("pywebrtc_audio", None)


def test_echo_cancel_on_without_the_binding_is_a_config_error_naming_the_key() -> None:
    import sys

    from daemon import config
    from daemon.appliance.wiring import echo_canceller

    cfg = config.parse({"audio": {"echo_cancel": "on", "input": "pulse"}})
    saved = sys.modules.get("pywebrtc_audio")
    sys.modules["pywebrtc_audio"] = None  # type: ignore[assignment]
    try:
        with pytest.raises(config.ConfigError, match=r"^audio\.echo_cancel: .*pywebrtc-audio"):
            echo_canceller(cfg)
        auto = config.parse({"audio": {"input": "pulse"}})
        assert echo_canceller(auto) is None  # "auto" warns and runs without
    finally:
        if saved is not None:
            sys.modules["pywebrtc_audio"] = saved
        else:
            sys.modules.pop("pywebrtc_audio", None)
    assert echo_canceller(config.parse({"audio": {"input": "file:/x.wav"}})) is None
    assert echo_canceller(config.parse({"audio": {"input": "pulse"}})) is not None
    usb = config.parse({"audio": {"input": "pulse"}, "hardware": {"profile": "respeaker-usb-v2"}})
    assert echo_canceller(usb) is None


def test_a_speaker_underflow_mutes_the_echo_until_aec3_has_heard_a_second_again() -> None:
    # The device ran dry mid-answer and sounded silence the reference does not hold:
    # the echo comes later than the pairing says and leaked until the consumer moved the
    # alignment (in the room an answer interrupted itself right there).
    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock)
    _run_room(canceller, 3.0, delay_ms=100, clock=clock, preplay_blocks=5)
    muted = canceller.stats().muted_frames
    canceller.underflow()
    _run_room(canceller, 3.0, delay_ms=100, clock=clock)
    stats = canceller.stats()
    assert stats.device_underflows == 1
    assert stats.muted_frames - muted >= aec.WARMUP_FRAMES, stats


def test_idle_blocks_with_a_parked_player_pass_in_one_step_bit_exact() -> None:
    """Idle with the speaker parked, a mic block passes in one step: the same samples
    and counters as frame by frame (a monitor makes the canceller go frame by frame)."""
    speech, _ = load_mono(SPEECH / "hey_jarvis_then_question.wav", rate=16000)
    runs = []
    for monitor in (None, lambda near, far, out: None):
        clock = SimClock()
        canceller = aec.EchoCanceller(clock=clock)
        canceller.monitor = monitor
        _, before = _run_room(canceller, 3.0, delay_ms=100, clock=clock, dac=True)
        _capture_only(canceller, clock, 4.0)  # parked: AEC3 goes idle
        idle = []
        for i in range(0, len(speech) - 1280 + 1, 1280):  # someone speaks, nothing plays
            clock.t += 0.08
            idle.append(canceller.process(speech[i : i + 1280], 16000))
        _, after = _run_room(canceller, 3.0, delay_ms=100, clock=clock, dac=True)
        runs.append((np.concatenate((before, *idle, after)), canceller.stats(), canceller))
    (fast, fast_stats, fast_c), (slow, slow_stats, slow_c) = runs
    assert fast_c.bypassed_frames == slow_c.bypassed_frames > len(speech) // aec.FRAME - 10
    assert fast_stats == slow_stats
    assert np.array_equal(fast, slow)


def test_idle_frames_skip_aec3_and_the_next_answer_is_still_cancelled() -> None:
    """Once nothing has sounded for IDLE_FRAMES, AEC3 is not called (idle, it was most
    of the daemon's CPU); the learned room holds for the next answer."""
    calls = [0]

    def counting(noise_suppression: bool) -> aec.Backend:
        real = aec.pywebrtc_backend(noise_suppression)

        class Counting:
            def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
                calls[0] += 1
                return real.process(near, far)

        return Counting()

    clock = SimClock()
    canceller = aec.EchoCanceller(clock=clock, backend=counting)
    _run_room(canceller, 3.0, delay_ms=100, clock=clock, preplay_blocks=5)
    before = calls[0]
    _capture_only(canceller, clock, 5.0)  # idle: the player parked
    idle_frames = 500
    assert calls[0] - before <= aec.IDLE_FRAMES, (calls[0] - before, idle_frames)
    assert canceller.bypassed_frames >= idle_frames - aec.IDLE_FRAMES
    heard, out = _run_room(canceller, 4.0, delay_ms=100, clock=clock)
    assert canceller.stats().resyncs == 0
    assert _db(heard[16000:]) - _db(out[16000:]) >= 30
