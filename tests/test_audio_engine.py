"""The player's jitter buffer and item accounting, driven block by block (no device)."""

from __future__ import annotations

import numpy as np
import pytest

from hw.audio.engine import PlaybackEngine

RATE = 24000
BLOCK = 480  # 20 ms


class Tracker:
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def on_started(self, item_id: str) -> None:
        self.events.append(("started", item_id))

    def on_progress(self, item_id: str, samples_played: int) -> None:
        self.events.append(("progress", item_id, samples_played))

    def on_finished(self, item_id: str) -> None:
        self.events.append(("finished", item_id))

    def on_drained(self) -> None:
        self.events.append(("drained",))

    def kinds(self) -> list[object]:
        return [e[0] for e in self.events if e[0] != "progress"]

    def last_progress(self, item_id: str) -> int:
        return max(int(e[2]) for e in self.events if e[0] == "progress" and e[1] == item_id)  # type: ignore[call-overload]


def pcm(n: int, value: int = 1000) -> bytes:
    return np.full(n, value, dtype="<i2").tobytes()


def engine(**kw: object) -> tuple[PlaybackEngine, Tracker]:
    t = Tracker()
    args: dict[str, object] = {"device_rate": RATE, "jitter_ms": 80, "volume": 100, "tracker": t}
    args.update(kw)
    return PlaybackEngine(**args), t  # type: ignore[arg-type]


def test_waits_for_the_jitter_buffer_then_plays() -> None:
    e, t = engine()
    e.write("a", pcm(1000))  # ~42 ms < 80 ms
    assert not e.render(BLOCK).any()
    assert t.events == [] and not e.is_playing
    e.write("a", pcm(1000))  # 83 ms queued: start
    out = e.render(BLOCK)
    assert np.all(out == 1000)
    assert t.events[:2] == [("started", "a"), ("progress", "a", BLOCK)]
    assert e.is_playing


def test_end_of_item_starts_a_short_item_and_reports_finish_and_drain() -> None:
    e, t = engine()
    e.write("a", pcm(300))
    assert not e.render(BLOCK).any()
    e.end_of_item("a")
    out = e.render(BLOCK)
    assert np.count_nonzero(out) == 300 and np.all(out[:300] == 1000)
    assert t.events == [("started", "a"), ("progress", "a", 300), ("finished", "a"), ("drained",)]
    assert not e.is_playing


def test_per_item_counts_across_two_items_in_one_block() -> None:
    e, t = engine(jitter_ms=0)
    e.write("a", pcm(700, 100))
    e.end_of_item("a")
    e.write("b", pcm(700, 200))
    e.end_of_item("b")
    first = e.render(BLOCK)
    second = e.render(BLOCK)
    third = e.render(BLOCK)
    assert np.all(first == 100)
    assert np.all(second[:220] == 100) and np.all(second[220:] == 200)
    assert np.count_nonzero(third) == 700 - 260
    assert t.kinds() == ["started", "finished", "started", "finished", "drained"]
    assert t.last_progress("a") == 700 and t.last_progress("b") == 700
    assert t.events[1] == ("progress", "a", 480)


def test_flush_returns_played_counts_and_fades_within_one_block() -> None:
    e, t = engine(jitter_ms=0, fade_ms=5)
    e.write("a", pcm(24000, 10000))
    e.render(BLOCK)
    e.render(BLOCK)
    played = e.flush()
    assert played == {"a": 2 * BLOCK}
    out = e.render(BLOCK)
    fade = int(0.005 * RATE)
    assert out[0] > 9000 and np.all(out[fade:] == 0)
    assert np.all(np.diff(out[:fade].astype(int)) <= 0)  # a ramp, not a cut
    assert not e.render(BLOCK).any()
    assert not e.is_playing and e.queued_frames == 0
    assert ("finished", "a") not in t.events  # a flush reports through its return value


def test_late_audio_for_a_flushed_item_stays_silent() -> None:
    e, _ = engine(jitter_ms=0)
    e.write("a", pcm(2400))
    e.render(BLOCK)
    e.flush()
    e.write("a", pcm(2400))  # still in flight when the flush happened
    e.end_of_item("a")
    e.render(BLOCK)
    assert not e.render(BLOCK).any()
    e.write("b", pcm(2400))
    e.end_of_item("b")
    assert e.render(BLOCK).any()


def test_flush_before_anything_played() -> None:
    e, _ = engine()
    e.write("a", pcm(100))
    assert e.flush() == {"a": 0}
    assert not e.render(BLOCK).any()


def test_underrun_rebuffers_and_is_not_a_drain() -> None:
    e, t = engine(jitter_ms=40)
    e.write("a", pcm(960))
    e.render(BLOCK)
    e.render(BLOCK)
    e.render(BLOCK)  # nothing left, item not complete: underrun
    assert e.underruns == 1
    assert ("drained",) not in t.events and e.is_playing
    e.write("a", pcm(480))  # below the 40 ms threshold again: wait
    assert not e.render(BLOCK).any()
    e.end_of_item("a")
    assert e.render(BLOCK).any()
    assert t.kinds()[-2:] == ["finished", "drained"]
    assert t.last_progress("a") == 1440


def test_end_of_item_after_it_played_out_still_finishes() -> None:
    e, t = engine(jitter_ms=0)
    e.write("a", pcm(480))
    e.render(BLOCK)
    e.render(BLOCK)
    e.end_of_item("a")
    e.render(BLOCK)
    assert t.kinds() == ["started", "finished", "drained"]


def test_item_without_audio_is_ignored() -> None:
    e, t = engine()
    e.write("tool", b"")
    e.end_of_item("tool")
    e.end_of_item("never-written")
    e.render(BLOCK)
    assert t.events == []


def test_odd_byte_chunks_are_joined() -> None:
    e, _ = engine(jitter_ms=0)
    data = np.arange(1, 301, dtype="<i2").tobytes()
    e.write("a", data[:101])
    e.write("a", data[101:])
    e.end_of_item("a")
    out = e.render(BLOCK)
    assert out[:300].tolist() == list(range(1, 301))


def test_volume_scales_and_ramps() -> None:
    e, _ = engine(jitter_ms=0, volume=50)
    e.write("a", pcm(24000, 10000))
    assert np.all(e.render(BLOCK) == 2500)  # 50 % is a quarter of the amplitude
    e.set_volume(100)
    ramp = e.render(BLOCK)
    assert ramp[0] == 2500 and ramp[-1] == 10000 and np.all(np.diff(ramp.astype(int)) >= 0)
    assert np.all(e.render(BLOCK) == 10000)
    assert e.level_db == pytest.approx(20 * np.log10(10000 / 32768), abs=0.01)
    with pytest.raises(ValueError, match="0-100"):
        e.set_volume(101)


def test_resampled_device_counts_in_source_samples() -> None:
    t = Tracker()
    e = PlaybackEngine(device_rate=48000, jitter_ms=0, volume=100, tracker=t)
    tone = np.rint(np.sin(2 * np.pi * 500 * np.arange(2400) / RATE) * 8000).astype("<i2")
    e.write("a", tone.tobytes())
    e.end_of_item("a")
    out = e.render(960)  # 20 ms at 48 kHz = 480 source samples
    assert t.last_progress("a") == 480
    for _ in range(10):
        out = np.concatenate((out, e.render(960)))
    assert t.kinds() == ["started", "finished", "drained"]
    assert t.last_progress("a") == 2400
    span = np.flatnonzero(np.abs(out) > 100)
    assert 4700 <= span[-1] - span[0] <= 4900  # 100 ms of tone at 48 kHz, tail included


def test_a_failing_tracker_does_not_break_rendering() -> None:
    class Broken(Tracker):
        def on_progress(self, item_id: str, samples_played: int) -> None:
            raise RuntimeError("listener bug")

    e = PlaybackEngine(device_rate=RATE, jitter_ms=0, tracker=Broken())
    e.write("a", pcm(960))
    assert e.render(BLOCK).any() and e.render(BLOCK).any()


def test_bad_volume_at_construction() -> None:
    with pytest.raises(ValueError, match="volume"):
        PlaybackEngine(device_rate=RATE, volume=120)


def test_an_idle_speaker_renders_one_cached_silent_block() -> None:
    e, t = engine(jitter_ms=0)
    idle = e.render(BLOCK)
    assert not idle.any() and not idle.flags.writeable
    assert e.render(BLOCK) is idle  # no new array, no float work per idle block
    e.write("a", pcm(BLOCK))
    e.end_of_item("a")
    out = e.render(BLOCK)
    assert out is not idle and np.all(out == 1000)
    assert t.kinds() == ["started", "finished", "drained"]
    assert e.render(BLOCK) is idle and e.level_db == -120.0
    e.set_volume(50)  # a gain ramp is rendered, not skipped
    assert e.render(BLOCK) is not idle
    longer = e.render(2 * BLOCK)
    assert len(longer) == 2 * BLOCK and not longer.any() and e.render(2 * BLOCK) is longer
    assert e.frames_rendered == 9 * BLOCK
