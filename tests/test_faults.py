"""The fault matrix (issue 7): the real appliance against a misbehaving simulator.

Each fault must end in a known state (idle, error then idle, or a clean exit),
report its reason once, leave the LEDs showing that state's pattern, and never
lose the next wake: after every fault a second session connects.

Sessions start with the button's wake action (no wake word needed); the user's
turn is the question WAV played into the PulseAudio pipe-source mic. Process-level
faults (SIGTERM) run `voicepi run` with a `file:` mic. SIGHUP with a broken
config is covered by tests/test_run_cli.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon import config
from daemon import events as ev
from daemon.appliance.button_map import button_action
from daemon.realtime.simulator import Faults, Simulator
from daemon.wakeword import WakeWordDetector
from hw.leds.patterns import LedInput, pattern_for
from tests.appliance_harness import SPEECH, Watched, appliance_config, start

pytestmark = pytest.mark.pulse

QUESTION = "what is the weather like today"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(transcripts=[QUESTION] * 8, speech="tone", strict=True) as s:
        yield s


def _cfg(sim: Simulator, tmp_path: Path, **sections: Any) -> config.Config:
    # The answer goes to a file: no sink needed, and the player's timing is still real.
    audio = {"input": "pulse", "output": f"file:{tmp_path / 'out.wav'}"}
    audio.update(sections.pop("audio", {}))
    return appliance_config(sim.url, audio=audio, **sections)


def since(app: Watched, mark: int, kind: type[ev.Event]) -> list[Any]:
    return [e for _, e in app.events[mark:] if isinstance(e, kind)]


def assert_leds_match(app: Watched, cfg: config.Config) -> None:
    """The last LED change shows the pattern of the appliance's current state."""
    state = app.app.sm.state
    leds = app.of(ev.LedChanged)
    assert leds, "no LED change was reported"
    want = pattern_for(LedInput(state=state, error=state == "error"), cfg.leds).name
    assert leds[-1].pattern == want, (state, leds[-1], app.summary())


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for ``predicate`` (checked every 20 ms); fail naming ``what``."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def settle_idle(app: Watched, mark: int, timeout: float = 15.0) -> None:
    """Idle, with nothing left that could still change it: the session run is over and
    the speaker drained (no more player callbacks can come)."""
    if app.app.sm.state != "idle":
        await app.wait_state("idle", timeout, after=mark)
    await until(
        lambda: app.app.run_ is None and not app.app.parts.speaker.is_playing,
        timeout,
        "the session to finish and the speaker to drain",
    )
    await asyncio.sleep(0)  # what the audio thread queued before it drained runs first
    assert app.app.sm.state == "idle", app.summary()


def gesture(app: Watched, name: str) -> str:
    """A button gesture routed like the wiring does (state -> action); returns the action."""
    facts = app.app.sm.facts
    action = button_action(name, app.app.sm.state, facts.approval_pending)
    app.app.button(name, action)
    return action


def button_wake(app: Watched) -> int:
    mark = app.mark()
    assert gesture(app, "press") == "wake", app.summary()
    return mark


async def next_wake_connects(app: Watched, sim: Simulator, cfg: config.Config) -> None:
    """The fault is over: a new wake connects, and a button end brings idle back."""
    sim.set_faults(Faults())
    before = len(sim.sessions)
    mark = button_wake(app)
    await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
    assert gesture(app, "double") == "end_session"
    _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
    assert closed.reason == "button"
    await settle_idle(app, mark)
    assert len(sim.sessions) == before + 1
    assert_leds_match(app, cfg)


async def ends_idle_and_wakes_again(
    app: Watched, sim: Simulator, cfg: config.Config, mark: int
) -> None:
    """The contract of every fault: one close, idle, the LEDs say so, the next wake works."""
    closed_once(app, mark)
    await settle_idle(app, mark)
    assert_leds_match(app, cfg)
    await next_wake_connects(app, sim, cfg)


def closed_once(app: Watched, mark: int) -> ev.SessionClosed:
    closes = since(app, mark, ev.SessionClosed)
    assert len(closes) == 1, app.summary()
    return closes[0]


# --------------------------------------------------------------------------- server faults


async def test_connection_dropped_mid_answer(
    pulse_mic: Any, sim: Simulator, detector: WakeWordDetector, tmp_path: Path
) -> None:
    sim.set_faults(Faults(drop_mid_answer=True))
    cfg = _cfg(sim, tmp_path)
    app = await start(cfg, detector)
    try:
        mark = button_wake(app)
        await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
        pulse_mic.play(SPEECH / "question.wav")
        await app.wait(lambda e: isinstance(e, ev.AgentStart), 20, after=mark)
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed.reason == "error"
        stopped = since(app, mark, ev.AgentStopped)
        assert [s.reason for s in stopped] == ["connection_lost"]
        assert stopped[0].code == 1006
        closed_once(app, mark)
        await settle_idle(app, mark)
        assert not app.app.parts.speaker.is_playing, "the half answer still plays"
        assert_leds_match(app, cfg)
        await next_wake_connects(app, sim, cfg)
    finally:
        assert await app.stop() == 0


@pytest.mark.parametrize(
    ("fault", "kind", "why"),
    [
        (Faults(refuse=True), "server", "503"),
        (Faults(silent=True), "network", "not configured within 1 s"),
    ],
    ids=["refused", "never_session_created"],
)
async def test_connecting_fails(
    pulse_mic: Any,
    sim: Simulator,
    detector: WakeWordDetector,
    tmp_path: Path,
    fault: Faults,
    kind: str,
    why: str,
) -> None:
    sim.set_faults(fault)
    cfg = _cfg(sim, tmp_path, realtime={"connect_timeout": 1.0})
    app = await start(cfg, detector)
    try:
        mark = button_wake(app)
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed.reason == "error"
        errors = since(app, mark, ev.Error)
        assert [e.error.kind for e in errors] == [kind], errors
        assert why in errors[0].error.message
        assert not since(app, mark, ev.SessionConnected)
        # The owner sees it: the error state (and LED), then idle.
        assert "error" in app.states()[-3:], app.summary()
        stopped = since(app, mark, ev.AgentStopped)
        assert [s.reason for s in stopped] == ["connect_failed"]
        await ends_idle_and_wakes_again(app, sim, cfg, mark)
    finally:
        assert await app.stop() == 0


async def test_garbage_oversized_and_out_of_order_frames(
    pulse_mic: Any, sim: Simulator, detector: WakeWordDetector, tmp_path: Path
) -> None:
    sim.set_faults(Faults(garbage=True))
    cfg = _cfg(sim, tmp_path)
    app = await start(cfg, detector)
    try:
        mark = button_wake(app)
        await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
        await app.wait(
            lambda e: isinstance(e, ev.Error) and e.error.type == "unknown_event", 10, after=mark
        )
        # The session goes on: a question is still answered.
        pulse_mic.play(SPEECH / "question.wav")
        _, said = await app.wait(lambda e: isinstance(e, ev.UserTranscript), 20, after=mark)
        assert said.transcript == QUESTION
        await app.wait(lambda e: isinstance(e, ev.AgentEnd), 20, after=mark)
        await app.wait_state("listening", 20, after=mark)
        # Each bad frame is reported once; none ends the session.
        errors = [e.error for e in since(app, mark, ev.Error)]
        kinds = sorted(e.type for e in errors)
        assert kinds.count("unknown_event") == 1, errors
        assert {"invalid_frame", "invalid_event"} <= set(kinds), errors
        assert len(errors) <= 5, errors  # one per bad frame at most
        assert not since(app, mark, ev.SessionClosed)
        assert gesture(app, "double") == "end_session"
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed.reason == "button"
        await ends_idle_and_wakes_again(app, sim, cfg, mark)
    finally:
        assert await app.stop() == 0


async def test_session_expired_then_close_1001(
    pulse_mic: Any, sim: Simulator, detector: WakeWordDetector, tmp_path: Path
) -> None:
    sim.set_faults(Faults(expire_after=1.0))
    cfg = _cfg(sim, tmp_path)
    app = await start(cfg, detector)
    try:
        mark = button_wake(app)
        await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed.reason == "server_closed"
        codes = [e.error.code for e in since(app, mark, ev.Error)]
        assert codes == ["session_expired"], codes
        stopped = since(app, mark, ev.AgentStopped)
        assert [(s.reason, s.code) for s in stopped] == [("session_expired", 1001)]
        await ends_idle_and_wakes_again(app, sim, cfg, mark)
    finally:
        assert await app.stop() == 0


# --------------------------------------------------------------------------- a tool that hangs


def _hang_tool(timeout: float) -> dict[str, Any]:
    return {
        "tools": [
            {
                "name": "weather",
                "description": "Looks out of the window (and never comes back).",
                "argv": ["sleep", "600"],
                "timeout": timeout,
            }
        ]
    }


async def _ask_for_the_hanging_tool(app: Watched, mic: Any) -> int:
    """Wake by button, ask the question that calls the tool; returns the mark before."""
    mark = button_wake(app)
    await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
    mic.play(SPEECH / "question.wav")
    await app.wait(lambda e: isinstance(e, ev.AgentToolStart), 20, after=mark)
    return mark


def _sleepers() -> set[int]:
    """Our own `sleep 600` children still alive."""
    me = os.getpid()
    out: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(stat[1])
        if cmd[:2] == [b"sleep", b"600"] and ppid == me:
            out.add(int(entry.name))
    return out


@pytest.fixture
async def tool_sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        transcripts=[QUESTION] * 4,
        speech="tone",
        function_calls={"weather": ("weather", {})},
    ) as s:
        yield s


async def test_a_hanging_tool_times_out_and_the_session_goes_on(
    pulse_mic: Any, tool_sim: Simulator, detector: WakeWordDetector, tmp_path: Path
) -> None:
    sim = tool_sim
    cfg = _cfg(sim, tmp_path, **_hang_tool(1.0))
    app = await start(cfg, detector)
    try:
        mark = await _ask_for_the_hanging_tool(app, pulse_mic)
        assert _sleepers(), "the command tool did not start"
        _, end = await app.wait(lambda e: isinstance(e, ev.AgentToolEnd), 10, after=mark)
        assert end.is_error
        assert [e.error.code for e in since(app, mark, ev.Error)] == ["tool_timeout"]
        assert not _sleepers(), "the timed-out command was not killed"
        # The model heard the failure and answered; the session is alive.
        await app.wait(lambda e: isinstance(e, ev.AssistantTranscript), 20, after=mark)
        await app.wait_state("listening", 20, after=mark)
        assert gesture(app, "double") == "end_session"
        closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed[1].reason == "button"
        await ends_idle_and_wakes_again(app, sim, cfg, mark)
    finally:
        assert await app.stop() == 0


async def test_ending_the_session_while_a_tool_hangs(
    pulse_mic: Any, tool_sim: Simulator, detector: WakeWordDetector, tmp_path: Path
) -> None:
    sim = tool_sim
    cfg = _cfg(sim, tmp_path, **_hang_tool(300.0))
    app = await start(cfg, detector)
    try:
        mark = await _ask_for_the_hanging_tool(app, pulse_mic)
        assert _sleepers()
        assert gesture(app, "double") == "end_session"
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed.reason == "button"
        closed_once(app, mark)
        await settle_idle(app, mark)
        await until(lambda: not _sleepers(), 5.0, "the hanging command to be killed")
        assert_leds_match(app, cfg)
        await next_wake_connects(app, sim, cfg)
    finally:
        assert await app.stop() == 0


# --------------------------------------------------------------------------- the microphone


async def reopened(app: Watched, times: int, timeout: float) -> None:
    """Wait until the appliance has opened ``times`` new microphones (reopen attempts)."""
    seen: list[Any] = []  # kept, so a new mic is never mistaken for a freed one

    def count() -> bool:
        mic = app.app.mic
        if mic is not None and not any(m is mic for m in seen):
            seen.append(mic)
        return len(seen) >= times

    await until(count, timeout, f"{times} microphone reopen attempts")


async def test_mic_disappears_while_idle_and_returns(
    pulse_mic: Any, sim: Simulator, detector: WakeWordDetector, tmp_path: Path
) -> None:
    # (Mid-session removal is in test_appliance_e2e.py.) PulseAudio moves a stream whose
    # source vanished to a fallback (here the speaker's monitor: digital zeros), as
    # PulseAudio and PipeWire do when a USB mic is pulled; audio.silence_timeout is how
    # the daemon notices. A live mic is never exactly zero: the test mic carries noise.
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 40, 16000 * 60).astype(np.int16)
    pulse_mic.play(noise)
    cfg = _cfg(sim, tmp_path, audio={"silence_timeout": 1.0})
    app = await start(cfg, detector)
    try:
        mark = app.mark()
        pulse_mic.unload_mic()
        await app.wait_state("error", 10, after=mark)
        assert_leds_match(app, cfg)
        await reopened(app, 2, 20.0)  # reopen attempts land on the fallback (silence)
        errors = [e.error.type for e in since(app, mark, ev.Error)]
        assert errors == ["microphone_unavailable"], app.summary()
        assert app.app.sm.state == "error", app.summary()
        # A wake while the mic is gone starts nothing.
        assert gesture(app, "press") == "none"
        await app.wait(lambda e: isinstance(e, ev.ButtonPressed), 5, after=mark)
        assert app.app.run_ is None and not since(app, mark, ev.SessionConnected)
        pulse_mic.load_mic()
        pulse_mic.play(noise)
        await settle_idle(app, mark, 20)
        assert_leds_match(app, cfg)
        assert since(app, mark, ev.SessionClosed) == []
        await next_wake_connects(app, sim, cfg)
    finally:
        assert await app.stop() == 0


# --------------------------------------------------------------------------- signals


async def test_sigterm_mid_session_closes_cleanly_and_the_next_start_wakes(
    sim: Simulator, tmp_path: Path
) -> None:
    from tests.test_run_cli import _start, _write_config

    # led_changed is a debug record
    debug = '[logging]\nlevel = "debug"\n'
    cfg = _write_config(tmp_path / "config.toml", sim.url, tmp_path / "out.wav", debug)
    for attempt in range(2):
        d = await _start(cfg)
        try:
            await d.wait_for(lambda r: r.get("event") == "wake_word_detected", 40)
            await d.wait_for(lambda r: r.get("event") == "session_connected", 20)
            if attempt == 0:
                d.proc.send_signal(signal.SIGTERM)
        finally:
            if d.proc.returncode is None and attempt == 1:
                d.proc.send_signal(signal.SIGTERM)
        assert await d.finish() == 0, "\n".join(d.raw[-30:])
        closes = d.events("session_closed")
        assert [c["reason"] for c in closes] == ["shutdown"], closes
        leds = d.events("led_changed")
        states = d.events("state_changed")
        assert states[-1]["state"] == "idle"
        want = pattern_for(LedInput(state="idle"), config.Config().leds).name
        assert leds[-1]["pattern"] == want
        assert not [r for r in d.records if r.get("level") in ("error", "critical")], d.raw
        assert "Traceback" not in "\n".join(d.raw)
    # The server saw two clean closes.
    for session in sim.sessions:
        await asyncio.wait_for(session.closed.wait(), 5)
    assert [s.close_code for s in sim.sessions] == [1000, 1000]
