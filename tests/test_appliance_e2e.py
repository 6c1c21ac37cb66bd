"""The appliance end to end on real parts: PulseAudio virtual mic and speaker, the
wake word models, the simulator on loopback, gpiozero mock pins.

Real-time behaviour is checked with tolerances, never speed thresholds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from daemon import events as ev
from daemon.dsp import Resampler
from daemon.realtime.simulator import Simulator
from daemon.wakeword import WakeWordDetector
from hw.audio.files import load_mono
from tests.appliance_harness import SPEECH, appliance_config, start
from tests.audio_helpers import share_received
from tests.pulse import Recording, active_span, best_lag, tone


async def played_on(rec: Recording, seconds: float, timeout: float = 15.0) -> None:
    """Wait until ``rec`` holds ``seconds`` more audio than now: the sink played on that
    far past what was queued, so its last block is in the recording (a condition on the
    recording, not a sleep the machine's load can outrun)."""
    want = rec.frames + int(seconds * rec.rate)
    async with asyncio.timeout(timeout):
        while rec.frames < want:
            await asyncio.sleep(0.01)


pytestmark = pytest.mark.pulse

QUESTION = "what is the weather like today"


@pytest.fixture
def mic(pulse_mic: Any) -> Any:
    return pulse_mic


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(transcripts=[QUESTION] * 4) as s:
        yield s


def _question_core() -> np.ndarray:
    """The question's words as they appear in the composite fixture (espeak is repeatable)."""
    q, _ = load_mono(SPEECH / "question.wav", rate=16000)
    span = active_span(q, 16000, -45.0)
    assert span is not None
    return q[span[0] : span[1]]


@pytest.mark.parametrize(
    "sections",
    [{}, {"sounds": {"wake": "default"}, "audio": {"barge_in": "button"}}],
    ids=["plain", "wake-sound-half-duplex"],
)
async def test_wake_then_question_reaches_the_model_and_the_answer_plays(
    mic: Any, sim: Simulator, detector: WakeWordDetector, sections: dict[str, Any]
) -> None:
    # With the wake sound on, even half duplex (mic muted while the device speaks) must
    # keep streaming the question over it: a sound is not the device speaking.
    app = await start(appliance_config(sim.url, **sections), detector)
    try:
        rec = mic.record()
        mic.play(SPEECH / "hey_jarvis_then_question.wav")
        _, wake = await app.wait(lambda e: isinstance(e, ev.WakeWordDetected))
        assert wake.model == "hey_jarvis" and wake.score >= 0.5
        await app.wait(lambda e: isinstance(e, ev.SessionConnected))
        _, said = await app.wait(lambda e: isinstance(e, ev.UserTranscript))
        assert said.transcript == QUESTION
        await app.wait_state("speaking")
        await app.wait_state("listening", 30, after=app.mark())
        await played_on(rec, 0.3)  # the sink's last block has reached the recording
        heard = rec.stop()
    finally:
        assert await app.stop() == 0

    # Everything the session received, back at 16 kHz: the whole question is there,
    # including the words said while the socket was still connecting.
    sent = np.frombuffer(bytes(sim.sessions[0].audio_in), dtype="<i2")
    sent16 = Resampler(24000, 16000).process(sent)
    _, corr = best_lag(sent16, _question_core())
    assert corr > 0.9, f"question not fully received (correlation {corr:.3f})"
    share = share_received(bytes(sim.sessions[0].audio_in), _question_core())
    assert share > 0.97, f"the server heard {share:.0%} of the question"
    assert len(app.of(ev.SoundPlayed)) == (1 if sections else 0)
    # The answer came out of the speaker.
    span = active_span(heard, 24000, -40.0)
    assert span is not None and span[1] - span[0] > 24000 // 2, "no answer audio at the sink"
    states = app.states()
    for a, b in [("idle", "connecting"), ("connecting", "listening"), ("thinking", "speaking")]:
        assert a in states and b in states
    assert states.index("connecting") < states.index("speaking")


async def test_other_speech_never_wakes_it(
    mic: Any, sim: Simulator, detector: WakeWordDetector
) -> None:
    app = await start(appliance_config(sim.url), detector)
    try:
        mark = app.mark()
        seconds = len(load_mono(SPEECH / "what_time_is_it.wav")[0]) / 16000
        for _ in range(2):
            mic.play(SPEECH / "what_time_is_it.wav")
        with pytest.raises(AssertionError, match="timed out"):
            await app.wait(
                lambda e: isinstance(e, ev.WakeWordDetected), 2 * seconds + 1.5, after=mark
            )
    finally:
        assert await app.stop() == 0
    assert sim.sessions == []
    assert app.states()[-1] in ("idle", "stopping")


async def test_countdown_then_inactivity_close_then_a_second_wake(
    mic: Any, sim: Simulator, detector: WakeWordDetector
) -> None:
    cfg = appliance_config(sim.url, session={"inactivity_timeout": 6.0, "countdown": 5})
    app = await start(cfg, detector)
    try:
        mic.play(SPEECH / "hey_jarvis_then_question.wav")
        await app.wait(lambda e: isinstance(e, ev.SessionConnected))
        await app.wait_state("speaking", 30)
        await app.wait_state("listening", 30, after=app.mark())
        mark = app.mark()
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 20, after=mark)
        assert closed.reason == "inactivity"
        await app.wait_state("idle", 5, after=mark)
        ticks = [
            (t, e.remaining_seconds)
            for t, e in app.timed(ev.UserInactivityCountdown)
            if (t, e) in app.events[mark:]
        ]
        assert [n for _, n in ticks] == [5, 4, 3, 2, 1]
        gaps = np.diff([t for t, _ in ticks])
        assert np.all(np.abs(gaps - 1.0) < 0.3), gaps
        t_close = app.timed(ev.SessionClosed)[-1][0]
        assert abs(t_close - ticks[-1][0] - 1.0) < 0.3

        # Idle again: the wake word works a second time.
        mark = app.mark()
        mic.play(SPEECH / "hey_jarvis.wav")
        await app.wait(lambda e: isinstance(e, ev.WakeWordDetected), 10, after=mark)
        await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
    finally:
        assert await app.stop() == 0
    assert len(sim.sessions) == 2


def _continuous_tone(text: str) -> bytes:
    """One unbroken 440 Hz tone, 60 ms per character: its length at the sink is exactly
    what played (the simulator's own tone pauses between words, which would blur that)."""
    return tone(440.0, 0.06 * len(text), 24000, amplitude=0.25).astype("<i2").tobytes()


async def test_barge_in_silences_the_speaker_and_truncates_at_what_was_played(
    mic: Any, detector: WakeWordDetector
) -> None:
    long_answer = "This answer goes on for quite a while. " * 6
    async with Simulator(
        transcripts=[QUESTION], answer=lambda _: long_answer, speech=_continuous_tone
    ) as s:
        # The pipe mic never hears this speaker, and under a pure-tone reference AEC3
        # suppresses all near-end speech: the canceller's own barge-in is test_echo_room's.
        cfg = appliance_config(s.url, audio={"echo_cancel": "off"})
        app = await start(cfg, detector)
        try:
            rec = mic.record()
            mic.play(SPEECH / "hey_jarvis_then_question.wav")
            await app.wait_state("speaking", 30)
            await app.wait(lambda e: isinstance(e, ev.UserStoppedSpeaking), 5)
            mic.play(SPEECH / "stop.wav")
            mark = app.mark()
            _, cut = await app.wait(lambda e: isinstance(e, ev.AudioInterrupted), 20, after=mark)
            await app.wait_state("listening", 10, after=mark)
            await played_on(rec, 0.5)  # the sink has drained into the recording
            heard = rec.stop()
        finally:
            assert await app.stop() == 0
        truncates = s.sessions[0].truncates
    assert truncates, "no conversation.item.truncate reached the server"
    end_ms = truncates[0]["audio_end_ms"]
    assert end_ms == cut.played_ms
    assert end_ms > 300, "the interruption came before the answer really played"
    # The answer is one continuous tone: its length at the sink is what really played.
    # The flush must stop it within one 20 ms block plus the 5 ms fade, and the
    # truncate must report the same amount.
    span = active_span(heard, 24000, -30.0)
    assert span is not None
    sink_ms = (span[1] - span[0]) * 1000 / 24000
    assert -20 - 5 <= sink_ms - end_ms <= 20 + 5 + 10, (sink_ms, end_ms)


async def test_mic_removed_mid_session_errors_then_recovers(
    mic: Any, sim: Simulator, detector: WakeWordDetector
) -> None:
    # PulseAudio moves a stream whose source vanished to a fallback source (here the
    # speaker's monitor: digital zeros), as it and PipeWire do when a USB mic is pulled;
    # audio.silence_timeout is how the daemon notices. A live mic is never exactly zero,
    # so the test mic carries quiet noise under the speech.
    noise = np.random.default_rng(7).normal(0, 40, 16000 * 60).astype(np.int16)
    cfg = appliance_config(sim.url, audio={"silence_timeout": 1.0})
    app = await start(cfg, detector)
    try:
        mic.play(SPEECH / "hey_jarvis.wav")
        mic.play(noise)
        await app.wait(lambda e: isinstance(e, ev.SessionConnected), 15)
        mark = app.mark()
        mic.unload_mic()
        await app.wait_state("error", 10, after=mark)
        await app.wait(
            lambda e: isinstance(e, ev.Error) and e.error.type == "microphone_unavailable",
            5,
            after=mark,
        )
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed.reason == "error"
        mark = app.mark()
        mic.load_mic()
        mic.play(noise)
        await app.wait_state("idle", 20, after=mark)
        mark = app.mark()
        mic.silence()
        mic.play(SPEECH / "hey_jarvis.wav")
        await app.wait(lambda e: isinstance(e, ev.WakeWordDetected), 10, after=mark)
    finally:
        assert await app.stop() == 0
