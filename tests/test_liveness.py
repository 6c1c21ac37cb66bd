"""Session liveness and typed failures (issue 17) at the transport: real sockets only.

A scripted websocket server on loopback, reached through a TCP relay the test
can freeze (tests/relay.py: no FIN, no RST, nothing forwarded either way), as a
Wi-Fi link that silently dies. Bounds are shortened so the tests stay quick; the
seconds at the defaults are measured by `make bench` (tests/bench_liveness.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from daemon import events as ev
from daemon.realtime import RealtimeSession, SessionSettings
from daemon.realtime.failures import RealtimeFailure
from daemon.realtime.liveness import LivenessBounds
from tests import engine_script as S
from tests.relay import FreezableRelay
from tests.scripted_server import ScriptedServer
from tests.test_session import KEY, Collector

FAST = LivenessBounds(answer_silence=0.3, listen_silence=0.6, pong_timeout=0.5, response_timeout=30)


@pytest.fixture
async def linked() -> AsyncIterator[tuple[ScriptedServer, FreezableRelay]]:
    async with ScriptedServer() as srv, FreezableRelay(srv.url) as relay:
        yield srv, relay


def session_via(relay: FreezableRelay, **kw: Any) -> RealtimeSession:
    kw.setdefault("connect_timeout", 5.0)
    kw.setdefault("liveness", FAST)
    return RealtimeSession(SessionSettings(), url=relay.url, api_key=KEY, **kw)


def failure_then_stop(seen: list[ev.Event]) -> tuple[ev.ErrorInfo, ev.AgentStopped]:
    """The last two events: one typed error, then agent_stopped."""
    *_, err, stopped = seen
    assert isinstance(err, ev.Error) and isinstance(stopped, ev.AgentStopped), S.types(seen)
    return err.error, stopped


async def test_a_link_that_dies_mid_answer_ends_the_session_as_connection_lost(
    linked: tuple[ScriptedServer, FreezableRelay],
) -> None:
    srv, relay = linked
    session = session_via(relay)
    events = Collector(session)
    await session.connect()
    await srv.send_all([S.response_created(), S.output_item_added()])
    await srv.send(S.audio_delta(S.pcm(200)))
    await events.until_type("audio")
    assert session.protocol.expecting_server
    relay.freeze()  # the Wi-Fi dies: nothing more arrives, nothing is closed
    seen = await events.finished()
    err, stopped = failure_then_stop(seen)
    assert (err.kind, err.code) == ("network", "connection_lost"), err
    assert "during an answer" in err.message
    assert stopped.reason == "connection_lost"
    assert await session.wait_closed() == "connection_lost"


async def test_a_link_that_dies_while_listening_is_found_by_keepalive(
    linked: tuple[ScriptedServer, FreezableRelay],
) -> None:
    _, relay = linked
    session = session_via(relay)
    events = Collector(session)
    await session.connect()
    assert not session.protocol.expecting_server
    relay.freeze()
    session.send_audio(S.pcm(400))  # the mic keeps streaming into the dead link
    seen = await events.finished()
    err, stopped = failure_then_stop(seen)
    assert (err.kind, err.code) == ("network", "connection_lost"), err
    assert "while listening" in err.message
    assert stopped.reason == "connection_lost"


async def test_a_quiet_server_that_answers_pings_is_not_cut_off(
    linked: tuple[ScriptedServer, FreezableRelay],
) -> None:
    """Silence alone proves nothing (the model may think): only an unanswered ping does."""
    srv, relay = linked
    session = session_via(relay)
    events = Collector(session)
    await session.connect()
    await srv.send(S.response_created())
    await events.until_type("agent_start")
    live = session._liveness
    assert live is not None
    # Three pings answered across a silence of several answer_silence + pong_timeout.
    await events.until(lambda _: live.pongs >= 3)
    assert session.connected and not events.of(ev.Error)
    await srv.send_all(S.answer()[1:])  # the answer arrives after all
    await events.until_type("agent_end")
    assert session.connected
    await session.close()
    assert [e.reason for e in events.of(ev.AgentStopped)] == ["client_closed"]


async def test_a_response_that_stalls_on_a_live_link_is_given_up(
    server: ScriptedServer,
) -> None:
    bounds = LivenessBounds(
        answer_silence=0.3, listen_silence=5, pong_timeout=2, response_timeout=1.0
    )
    session = RealtimeSession(
        SessionSettings(), url=server.url, api_key=KEY, liveness=bounds, connect_timeout=5
    )
    events = Collector(session)
    await session.connect()
    await server.send_all([S.response_created(), S.output_item_added()])
    await server.send(S.audio_delta(S.pcm(200)))
    await events.until_type("agent_end")
    (err,) = events.of(ev.Error)
    assert (err.error.kind, err.error.code) == ("server", "response_timeout"), err
    (end,) = events.of(ev.AgentEnd)
    assert end.status == "failed"
    assert [e.item_id for e in events.of(ev.AudioStopped)] == ["item_a1"]
    (cancel,) = await server.wait_for("response.cancel")
    assert cancel["response_id"] == "resp_1"
    assert not session.protocol.expecting_server
    await session.close()


async def test_a_server_error_without_response_done_ends_the_answer(
    server: ScriptedServer,
) -> None:
    session = RealtimeSession(SessionSettings(), url=server.url, api_key=KEY, connect_timeout=5)
    events = Collector(session)
    await session.connect()
    await server.send_all([S.response_created(), S.output_item_added()])
    await server.send(S.audio_delta(S.pcm(200)))
    await server.send(S.server_error("The server had an error while processing your request."))
    await events.until_type("agent_end")
    (err,) = events.of(ev.Error)
    assert (err.error.kind, err.error.type) == ("server", "server_error"), err
    assert "processing your request" in err.error.message
    assert events.of(ev.AgentEnd)[0].status == "failed"
    assert [e.item_id for e in events.of(ev.AudioStopped)] == ["item_a1"]
    assert not session.protocol.expecting_server
    await session.close()


async def test_a_failed_response_names_its_reason(server: ScriptedServer) -> None:
    session = RealtimeSession(SessionSettings(), url=server.url, api_key=KEY, connect_timeout=5)
    events = Collector(session)
    await session.connect()
    await server.send_all([S.response_created(), S.response_failed()])
    await events.until_type("agent_end")
    (err,) = events.of(ev.Error)
    assert (err.error.kind, err.error.code) == ("quota", "insufficient_quota"), err
    assert events.of(ev.AgentEnd)[0].status == "failed"
    await session.close()


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "code", "retry_after"),
    [
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided: sk-te***CRET.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            {},
            "auth",
            "invalid_api_key",
            None,
        ),
        (
            429,
            {
                "error": {
                    "message": "Rate limit reached for requests",
                    "type": "requests",
                    "code": "rate_limit_exceeded",
                }
            },
            {"Retry-After": "30"},
            "rate_limit",
            "rate_limit_exceeded",
            30.0,
        ),
        (
            429,
            {
                "error": {
                    "message": "You exceeded your current quota.",
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                }
            },
            {},
            "quota",
            "insufficient_quota",
            None,
        ),
    ],
    ids=["401_invalid_api_key", "429_retry_after", "429_quota"],
)
async def test_a_rejected_handshake_is_a_typed_failure_with_the_body(
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    kind: str,
    code: str,
    retry_after: float | None,
) -> None:
    raw = json.dumps(body).encode()
    async with ScriptedServer(reject_status=status, reject_body=raw, reject_headers=headers) as srv:
        session = RealtimeSession(SessionSettings(), url=srv.url, api_key=KEY, connect_timeout=5)
        events = Collector(session)
        with pytest.raises(RealtimeFailure) as info:
            await session.connect()
        seen = await events.finished()
    assert S.types(seen) == ["agent_starting", "error", "agent_stopped"]
    err, stopped = failure_then_stop(seen)
    assert (err.kind, err.code, err.retry_after) == (kind, code, retry_after), err
    assert body["error"]["message"] in err.message and f"HTTP {status}" in err.message
    assert info.value.info == err
    assert stopped.reason == "connect_failed"


async def test_a_wake_on_a_frozen_link_fails_as_a_network_timeout(
    linked: tuple[ScriptedServer, FreezableRelay],
) -> None:
    _, relay = linked
    relay.freeze()
    session = session_via(relay, connect_timeout=1.0)
    events = Collector(session)
    with pytest.raises(TimeoutError):
        await session.connect()
    seen = await events.finished()
    err, stopped = failure_then_stop(seen)
    assert (err.kind, err.code) == ("network", "timeout"), err
    assert stopped.reason == "connect_failed"


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as srv:
        yield srv
        assert not srv.invalid, f"client sent invalid messages: {srv.invalid}"
