"""AudioPath: no session-rate work while idle, and bit-for-bit the same session audio."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.appliance.audio_path import AudioPath
from daemon.appliance.preroll import PreRoll
from daemon.dsp import Resampler


def reference(
    rate: int, blocks: list[np.ndarray], wake_after: int, start: int | None, preroll_s: float
) -> np.ndarray:
    """What reached the session before: every block converted to 24 kHz and kept in a
    24 kHz pre-roll, the session getting ``since(start)`` and then the live blocks."""
    to_session = Resampler(rate, 24000)
    preroll = PreRoll(max(preroll_s, 0.5), 24000)
    out: list[np.ndarray] = []
    for i, block in enumerate(blocks):
        if i == wake_after:
            out.append(preroll.since(preroll.end_index if start is None else start))
        pcm = to_session.process(block)
        preroll.push(pcm)
        if i >= wake_after:
            out.append(pcm)
    return np.concatenate(out)


@settings(max_examples=40, deadline=None)
@given(
    rate=st.sampled_from([8000, 16000, 24000, 44100, 48000]),
    sizes=st.lists(st.integers(1, 6000), min_size=2, max_size=40),
    wake_frac=st.floats(0.0, 1.0),
    back=st.one_of(st.none(), st.integers(-100, 80000)),
    preroll_s=st.sampled_from([0.0, 0.7, 2.0]),
)
def test_session_audio_is_bit_for_bit_what_a_always_on_resampler_gave(
    rate: int, sizes: list[int], wake_frac: float, back: int | None, preroll_s: float
) -> None:
    rng = np.random.default_rng(len(sizes) * 7919 + rate)
    blocks = [rng.integers(-20000, 20000, n).astype(np.int16) for n in sizes]
    wake_after = min(len(blocks) - 1, int(wake_frac * len(blocks)))
    path = AudioPath(rate, 16000, 24000, preroll_s)
    got: list[np.ndarray] = []
    start: int | None = None
    for i, block in enumerate(blocks):
        if i == wake_after:
            start = None if back is None else path.session_end - back
            got.append(path.start_session(start))
        _wake, session = path.feed(block)
        if i < wake_after:
            assert len(session) == 0  # idle: nothing converted to 24 kHz
        else:
            got.append(session)
    np.testing.assert_array_equal(
        np.concatenate(got), reference(rate, blocks, wake_after, start, preroll_s)
    )
    path.end_session()
    assert len(path.feed(blocks[0])[1]) == 0


def test_idle_feed_never_resamples_to_the_session_rate() -> None:
    path = AudioPath(48000, 16000, 24000, 2.0)
    for _ in range(50):
        _wake, session = path.feed(np.ones(3840, dtype=np.int16))
        assert len(session) == 0
    assert path.to_session is None
    assert 50 * 1280 - 800 <= path.wake_total <= 50 * 1280  # soxr holds a few ms back
    assert path.session_end == 50 * 1920


def test_a_48k_mic_wakes_at_the_words_end_through_the_wake_path() -> None:
    """hey_jarvis at 48 kHz (most USB mics) through AudioPath's soxr wake path: the same
    single detection as at 16 kHz, at the same place within one frame."""
    from daemon.config import WakewordConfig
    from daemon.wakeword import FRAME_SAMPLES, WakeWordDetector
    from daemon.wakeword.wav import read_wav
    from tests.test_wakeword import SPEECH

    word = read_wav(SPEECH / "hey_jarvis_then_question.wav")[0]
    mic = Resampler(16000, 48000).process(word)
    det = WakeWordDetector(WakewordConfig())
    (at_16k,) = det.process(word)
    det.reset()
    path = AudioPath(48000, 16000, 24000, 2.0)
    found = [
        d for i in range(0, len(mic), 3840) for d in det.process(path.feed(mic[i : i + 3840])[0])
    ]
    assert [d.model for d in found] == ["hey_jarvis"]
    assert abs(found[0].end_sample - at_16k.end_sample) <= FRAME_SAMPLES
    det.close()
