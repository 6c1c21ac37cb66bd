"""Never stuck, never silent (issue 17): each failure on the real appliance ends in the
``error`` state and LED with a typed ``error`` event naming the cause, then idle, and
the next wake works.

Real parts: PortAudio on PulseAudio virtual devices, the wake word models, gpiozero
mock pins, and real websocket servers on loopback: the simulator behind a TCP relay
that can freeze (a dead Wi-Fi link), and scripted servers for what the simulator
never does (a server_error with no response.done, a failed response, rejected
handshakes with their bodies, two parallel tools).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon import config
from daemon import events as ev
from daemon.realtime.simulator import Simulator
from daemon.wakeword import WakeWordDetector
from tests import engine_script as S
from tests.appliance_harness import SPEECH, Watched, appliance_config, start
from tests.relay import FreezableRelay
from tests.scripted_server import ScriptedServer
from tests.test_faults import assert_leds_match, button_wake, gesture, settle_idle, since

pytestmark = pytest.mark.pulse

QUESTION = "what is the weather like today"
# Shortened bounds keep the tests quick; `make bench` measures the defaults.
FAST = {"answer_silence": 0.5, "pong_timeout": 0.5, "ping_interval": 1.0}


def _cfg(url: str, tmp_path: Path, **sections: Any) -> config.Config:
    audio = {"input": "pulse", "output": f"file:{tmp_path / 'out.wav'}"}
    realtime = {**FAST, **sections.pop("realtime", {})}
    return appliance_config(url, audio=audio, realtime=realtime, **sections)


def the_failure(app: Watched, mark: int) -> ev.ErrorInfo:
    """Exactly one typed failure since ``mark``."""
    failures = [e.error for e in since(app, mark, ev.Error) if e.error.kind]
    assert len(failures) == 1, app.summary()
    return failures[0]


async def shown_then_idle(app: Watched, cfg: config.Config, mark: int) -> None:
    """The error state and its LED, then idle (and the idle LED)."""
    await app.wait_state("error", 15, after=mark)
    leds = [e.pattern for e in since(app, mark, ev.LedChanged)]
    assert "error" in leds, app.summary()
    await settle_idle(app, mark)
    assert_leds_match(app, cfg)


async def wake_and_end(app: Watched) -> None:
    mark = button_wake(app)
    await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
    assert gesture(app, "double") == "end_session"
    _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
    assert closed.reason == "button"


# --------------------------------------------------------------------------- a dead link


@pytest.fixture
async def long_answers() -> AsyncIterator[Simulator]:
    # Six seconds of answer streamed in real time: the link dies while it arrives.
    async with Simulator(
        transcripts=[QUESTION] * 4, speech=lambda _text: S.pcm(6000), realtime_factor=1.0
    ) as sim:
        yield sim


async def test_a_link_that_dies_mid_answer_shows_the_error_then_idle(
    pulse_mic: Any, long_answers: Simulator, detector: WakeWordDetector, tmp_path: Path
) -> None:
    async with FreezableRelay(long_answers.url) as relay:
        cfg = _cfg(relay.url, tmp_path)
        app = await start(cfg, detector)
        try:
            mark = button_wake(app)
            await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
            pulse_mic.play(SPEECH / "question.wav")
            await app.wait(lambda e: isinstance(e, ev.AudioStart), 20, after=mark)
            relay.freeze()  # no FIN, no RST: the answer just stops coming
            _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 15, after=mark)
            assert closed.reason == "error"
            err = the_failure(app, mark)
            assert (err.kind, err.code) == ("network", "connection_lost"), err
            stopped = since(app, mark, ev.AgentStopped)
            assert [s.reason for s in stopped] == ["connection_lost"]
            await shown_then_idle(app, cfg, mark)
            assert not app.app.parts.speaker.is_playing
            relay.thaw()
            await wake_and_end(app)
        finally:
            assert await app.stop() == 0


async def test_a_wake_on_a_frozen_link_shows_a_network_error_then_idle(
    pulse_mic: Any, long_answers: Simulator, detector: WakeWordDetector, tmp_path: Path
) -> None:
    async with FreezableRelay(long_answers.url) as relay:
        cfg = _cfg(relay.url, tmp_path, realtime={"connect_timeout": 1.0})
        app = await start(cfg, detector)
        try:
            relay.freeze()
            mark = button_wake(app)
            _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 15, after=mark)
            assert closed.reason == "error"
            err = the_failure(app, mark)
            assert (err.kind, err.code) == ("network", "timeout"), err
            # The lifecycle, as it happened: agent_starting at the wake, then the cause.
            types = [e.type for _, e in app.events[mark:]]
            assert types.index("agent_starting") < types.index("error")
            assert [s.reason for s in since(app, mark, ev.AgentStopped)] == ["connect_failed"]
            await shown_then_idle(app, cfg, mark)
            relay.thaw()
            await wake_and_end(app)
        finally:
            assert await app.stop() == 0


# --------------------------------------------------------------------------- server failures


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as srv:
        yield srv
        assert not srv.invalid, f"client sent invalid messages: {srv.invalid}"


async def _answer_starts(app: Watched, srv: ScriptedServer) -> int:
    """Wake; the server starts an answer with 200 ms of audio; returns the mark."""
    mark = button_wake(app)
    await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
    await srv.send_all([S.response_created(), S.output_item_added()])
    await srv.send(S.audio_delta(S.pcm(200)))
    await app.wait(lambda e: isinstance(e, ev.AudioStart), 10, after=mark)
    return mark


@pytest.mark.parametrize(
    ("frames", "kind", "code"),
    [
        ([S.server_error()], "server", None),
        ([S.response_failed()], "quota", "insufficient_quota"),
        (
            [S.response_failed(code="rate_limit_exceeded", type_="rate_limit_exceeded")],
            "rate_limit",
            "rate_limit_exceeded",
        ),
    ],
    ids=["server_error_no_response_done", "failed_quota", "failed_rate_limit"],
)
async def test_a_failed_answer_shows_the_error_then_idle(
    pulse_mic: Any,
    scripted: ScriptedServer,
    detector: WakeWordDetector,
    tmp_path: Path,
    frames: list[dict[str, Any]],
    kind: str,
    code: str | None,
) -> None:
    cfg = _cfg(scripted.url, tmp_path)
    app = await start(cfg, detector)
    try:
        mark = await _answer_starts(app, scripted)
        await scripted.send_all(frames)
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed.reason == "error"
        err = the_failure(app, mark)
        assert (err.kind, err.code) == (kind, code), err
        await shown_then_idle(app, cfg, mark)
        # The session was closed: the mic no longer streams to the paid API.
        assert scripted.connections[-1].close_code is not None
        await wake_and_end(app)
    finally:
        assert await app.stop() == 0


async def test_401_and_429_show_the_servers_reason_and_retry_after_is_honoured(
    pulse_mic: Any, detector: WakeWordDetector, tmp_path: Path
) -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests"}}
    body["error"]["code"] = "rate_limit_exceeded"
    async with ScriptedServer(
        reject_status=429,
        reject_body=json.dumps(body).encode(),
        reject_headers={"Retry-After": "30"},
    ) as srv:
        cfg = _cfg(srv.url, tmp_path)
        app = await start(cfg, detector)
        try:
            mark = button_wake(app)
            await app.wait_state("error", 10, after=mark)
            err = the_failure(app, mark)
            assert (err.kind, err.code, err.retry_after) == (
                "rate_limit",
                "rate_limit_exceeded",
                30,
            )
            assert "Rate limit reached" in err.message
            await settle_idle(app, mark)
            # Wakes inside Retry-After fail at once, say how long, and never connect.
            for _ in range(2):
                mark = button_wake(app)
                await app.wait_state("error", 10, after=mark)
                again = the_failure(app, mark)
                assert (again.kind, again.code) == ("rate_limit", "rate_limit_exceeded")
                assert again.retry_after is not None and 0 < again.retry_after <= 30
                assert again.message.count("retry in") == 1, again.message
                await settle_idle(app, mark)
            assert srv.handshakes == 1
            # 401: the body's invalid_api_key code is kept (the server echoes no key).
            srv.reject_status = 401
            srv.reject_body = json.dumps(
                {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}
            ).encode()
            app.app.failures.retry_at = None  # Retry-After is over (it is the clock's business)
            mark = button_wake(app)
            await app.wait_state("error", 10, after=mark)
            err = the_failure(app, mark)
            assert (err.kind, err.code) == ("auth", "invalid_api_key"), err
            await settle_idle(app, mark)
        finally:
            assert await app.stop() == 0


async def test_no_api_key_is_an_auth_error_on_each_wake_without_a_traceback(
    pulse_mic: Any, detector: WakeWordDetector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = _cfg("wss://api.openai.com/v1/realtime", tmp_path)
    app = await start(cfg, detector, api_key=None)
    try:
        for _ in range(2):
            mark = button_wake(app)
            await app.wait_state("error", 10, after=mark)
            err = the_failure(app, mark)
            assert (err.kind, err.code) == ("auth", "missing_api_key"), err
            await settle_idle(app, mark)
            assert_leds_match(app, cfg)
    finally:
        assert await app.stop() == 0
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


# --------------------------------------------------------------------------- busy by identity


def _parallel_calls() -> list[dict[str, Any]]:
    fast = S.function_call(item_id="item_f1", call_id="call_fast", name="fast", args="{}")
    slow = S.function_call(item_id="item_f2", call_id="call_slow", name="slow", args="{}")
    return [S.response_created(), *fast, *slow, S.response_done()]


async def test_the_countdown_waits_for_every_parallel_tool(
    pulse_mic: Any, scripted: ScriptedServer, detector: WakeWordDetector, tmp_path: Path
) -> None:
    """The issue's repro: `fast` and `slow` in one response; the first to finish used to
    clear the one busy flag, and the session closed for inactivity while `slow` ran."""
    tools = [
        {"name": "fast", "description": "Quick.", "argv": ["/bin/sleep", "0.2"]},
        {"name": "slow", "description": "Slow.", "argv": ["/bin/sleep", "2.5"]},
    ]
    cfg = _cfg(
        scripted.url,
        tmp_path,
        session={"inactivity_timeout": 1.0, "countdown": 1},
        tools=tools,
    )
    app = await start(cfg, detector)
    try:
        mark = button_wake(app)
        await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
        await scripted.send_all(_parallel_calls())
        await app.wait_state("working", 10, after=mark)
        await scripted.wait_until(
            lambda msgs: any(
                m.get("type") == "conversation.item.create"
                and m["item"].get("call_id") == "call_slow"
                for m in msgs
            )
        )
        await app.wait(
            lambda e: isinstance(e, ev.AgentToolEnd) and e.call_id == "call_slow", 10, after=mark
        )
        ends = [e.call_id for e in since(app, mark, ev.AgentToolEnd)]
        assert ends == ["call_fast", "call_slow"], ends
        # Nothing counted down or closed while either tool ran.
        ran = app.events[mark:]
        first = next(i for i, (_, e) in enumerate(ran) if isinstance(e, ev.AgentToolStart))
        ran = ran[first:]
        slow_end = next(
            i
            for i, (_, e) in enumerate(ran)
            if isinstance(e, ev.AgentToolEnd) and e.call_id == "call_slow"
        )
        early = [
            e
            for _, e in ran[:slow_end]
            if isinstance(e, ev.UserInactivityCountdown | ev.SessionClosed)
        ]
        assert not early, app.summary()
        assert "working" in app.states()
        assert gesture(app, "double") == "end_session"
        _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
        assert closed.reason == "button"
    finally:
        assert await app.stop() == 0
