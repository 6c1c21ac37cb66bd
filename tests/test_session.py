"""The websocket session (transport) against a scripted server on loopback.

The server is tests/scripted_server.py: a real ``websockets`` server whose every
frame the test chooses. Client messages are validated twice: by the conftest
oracle fixture (on the engine's output) and by the server on what arrived.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from daemon import events as ev
from daemon.listener import AgentListener
from daemon.realtime import RealtimeSession, SessionSettings
from tests import engine_script as S
from tests.scripted_server import TIMEOUT, ScriptedServer

KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as srv:
        yield srv
        assert not srv.invalid, f"client sent invalid messages: {srv.invalid}"


def make(srv: ScriptedServer, **kw: Any) -> RealtimeSession:
    kw.setdefault("connect_timeout", 5.0)
    return RealtimeSession(SessionSettings(), url=srv.url, api_key=KEY, **kw)


class Collector:
    """``async for event in session`` in a task; ``seen`` fills as events arrive."""

    def __init__(self, session: RealtimeSession) -> None:
        self.seen: list[ev.Event] = []
        self.task = asyncio.get_running_loop().create_task(self._run(session))

    async def _run(self, session: RealtimeSession) -> None:
        async for event in session:
            self.seen.append(event)

    def types(self, *, raw: bool = False) -> list[str]:
        return S.types(self.seen, raw=raw)

    def of(self, cls: type[ev.Event]) -> list[Any]:
        return [e for e in self.seen if isinstance(e, cls)]

    async def until(self, predicate: Callable[[list[ev.Event]], bool]) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not predicate(self.seen):
                await asyncio.sleep(0.005)

    async def until_type(self, type_: str, count: int = 1) -> None:
        await self.until(lambda seen: sum(e.type == type_ for e in seen) >= count)

    async def finished(self) -> list[ev.Event]:
        await asyncio.wait_for(self.task, TIMEOUT)
        return self.seen


async def barrier(srv: ScriptedServer, session: RealtimeSession) -> None:
    """Everything the client queued before now has reached the server.

    send_raw bypasses the response queue, so a message that was NOT sent before
    this marker is provably held back (the writer keeps order).
    """
    before = len(srv.of_type("input_audio_buffer.clear"))
    session.send_raw({"type": "input_audio_buffer.clear"})
    await srv.wait_for("input_audio_buffer.clear", before + 1)


# --------------------------------------------------------------------------- connecting


async def test_bearer_key_reaches_the_server_and_never_a_log_or_repr(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = make(server)
    events = Collector(session)
    await session.connect()
    assert server.request_headers is not None
    assert server.request_headers["Authorization"] == f"Bearer {KEY}"
    assert "OpenAI-Beta" not in server.request_headers  # GA: no beta header
    assert server.path == "/v1/realtime?model=gpt-realtime"
    assert server.types()[0] == "session.update"
    assert session.connected and session.session_id == "sess_1"
    await session.close()
    seen = await events.finished()
    # The websocket debug log did print the request headers: redacted.
    assert "Bearer ***" in caplog.text
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()
    for text in (repr(session), repr(session.protocol), str(session), *map(repr, seen)):
        assert KEY not in text


async def test_a_rejected_handshake_names_the_failure_but_never_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ScriptedServer(reject_status=401) as srv:
        session = make(srv)
        events = Collector(session)
        with pytest.raises(ConnectionError) as info:
            await session.connect()
        seen = await events.finished()
        assert KEY.encode() in srv.rejected_body  # the server did echo it back
    assert "401" in str(info.value) and srv.url.split("/v1")[0] in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in caplog.text
    assert S.types(seen) == ["agent_starting", "error", "agent_stopped"]
    # A typed auth failure; the body the server sent is shown (with the key redacted).
    err = seen[1].error
    assert (err.kind, err.code) == ("auth", "http_401"), err
    assert "bad credential Bearer ***" in err.message and KEY not in err.message
    assert seen[-1] == ev.AgentStopped(reason="connect_failed", code=None)
    assert await session.wait_closed() == "connect_failed"


def test_bad_keys_and_urls_are_refused_without_echoing_the_key() -> None:
    with pytest.raises(ValueError, match="api_key") as info:
        RealtimeSession(SessionSettings(), url="ws://127.0.0.1:1/", api_key=KEY + " x")
    assert KEY not in str(info.value)
    with pytest.raises(ValueError, match="loopback"):
        RealtimeSession(SessionSettings(), url="ws://example.com/", api_key=KEY)
    with pytest.raises(ValueError, match="api_key"):
        RealtimeSession(SessionSettings(), url="wss://api.openai.com/v1/realtime", api_key=None)


async def test_no_maximum_message_size(server: ScriptedServer) -> None:
    session = make(server)
    events = Collector(session)
    await session.connect()
    big = bytes(range(256)) * (3 * 1024 * 1024 // 2 // 256)  # 1.5 MiB of PCM
    frame = json.dumps(S.audio_delta(big))
    assert len(frame) > 2 * 1024 * 1024  # above websockets' 1 MiB default limit
    await server.send_all([S.response_created(), S.output_item_added()])
    await server.send(frame)
    await events.until_type("audio")
    (audio,) = events.of(ev.Audio)
    assert audio.data == big
    assert session.connected
    await session.close()


async def test_connect_times_out_when_the_session_is_never_configured() -> None:
    async with ScriptedServer(configure=False) as srv:
        session = make(srv, connect_timeout=0.5)
        events = Collector(session)
        with pytest.raises(TimeoutError, match="not configured"):
            await session.connect()
        seen = await events.finished()
    assert seen[-1] == ev.AgentStopped(reason="connect_failed", code=None)


# --------------------------------------------------------------------------- mic audio


async def test_audio_before_session_updated_is_buffered_then_sent_in_order_in_20ms_appends() -> (
    None
):
    pcm = bytes(i % 251 for i in range(5000))
    async with ScriptedServer(configure=False) as srv:
        session = make(srv)
        session.send_audio(pcm[:1000])  # before connect: the wake word's pre-roll
        connecting = asyncio.get_running_loop().create_task(session.connect())
        await srv.wait_for("session.update")
        session.send_audio(pcm[1000:3500])  # socket open, session not configured yet
        await barrier(srv, session)
        assert srv.of_type("input_audio_buffer.append") == []
        await srv.send_updated()
        await connecting
        session.send_audio(pcm[3500:])
        appends = await srv.wait_for("input_audio_buffer.append", len(pcm) // 960)
        await barrier(srv, session)
        await session.close()
        assert not srv.invalid
    chunks = [base64.b64decode(m["audio"]) for m in appends]
    assert all(len(c) == 960 for c in chunks)
    assert b"".join(chunks) == pcm[: len(chunks) * 960]  # nothing lost, nothing reordered
    assert len(srv.of_type("input_audio_buffer.append")) == 5  # the 200-byte rest waits
    assert srv.updated_sent_at is not None
    first_append = srv.types().index("input_audio_buffer.append")
    assert first_append >= srv.updated_sent_at


# --------------------------------------------------------------------------- three styles


def _listener_call(event: ev.Event) -> tuple[Any, ...] | None:
    """The seed-003 listener call an event maps to (None: only on_event)."""
    simple = {
        "agent_starting": "on_agent_starting",
        "session_connected": "on_agent_session_connected",
        "agent_stopped": "on_agent_stopped",
        "audio_interrupted": "on_agent_interrupted",
        "audio_start": "on_assistant_started_responding",
        "audio_stopped": "on_assistant_stopped_responding",
        "user_started_speaking": "on_user_started_speaking",
        "user_stopped_speaking": "on_user_stopped_speaking",
    }
    if event.type in simple:
        return (simple[event.type],)
    match event:
        case ev.Error(error=error):
            return ("on_agent_error", error)
        case ev.UserTranscript(transcript=text):
            return ("on_user_transcript", text)
        case ev.AssistantTranscript(transcript=text):
            return ("on_assistant_transcript", text)
        case ev.AssistantTranscriptDelta(delta=delta):
            return ("on_assistant_transcript_delta", delta)
    return None


class RecordingListener(AgentListener):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.other: list[str] = []

    async def on_agent_starting(self) -> None:
        self.calls.append(("on_agent_starting",))

    async def on_agent_session_connected(self) -> None:
        self.calls.append(("on_agent_session_connected",))

    async def on_agent_stopped(self) -> None:
        self.calls.append(("on_agent_stopped",))

    async def on_agent_error(self, error: ev.ErrorInfo) -> None:
        self.calls.append(("on_agent_error", error))

    async def on_agent_interrupted(self) -> None:
        self.calls.append(("on_agent_interrupted",))

    async def on_assistant_started_responding(self) -> None:
        self.calls.append(("on_assistant_started_responding",))

    async def on_assistant_stopped_responding(self) -> None:
        self.calls.append(("on_assistant_stopped_responding",))

    async def on_assistant_transcript(self, transcript: str) -> None:
        self.calls.append(("on_assistant_transcript", transcript))

    async def on_assistant_transcript_delta(self, delta: str) -> None:
        self.calls.append(("on_assistant_transcript_delta", delta))

    async def on_user_started_speaking(self) -> None:
        self.calls.append(("on_user_started_speaking",))

    async def on_user_stopped_speaking(self) -> None:
        self.calls.append(("on_user_stopped_speaking",))

    async def on_user_transcript(self, transcript: str) -> None:
        self.calls.append(("on_user_transcript", transcript))

    async def on_event(self, event: ev.Event) -> None:
        self.other.append(event.type)


def _voice_turn() -> list[dict[str, Any]]:
    return [
        S.speech_started(),
        S.speech_stopped(),
        S.committed(),
        S.user_item_added(),
        S.user_transcript(text="what time is it"),
        *S.answer(text="It is noon.", ms=100),
    ]


async def test_async_for_on_and_listener_all_receive_every_event(server: ScriptedServer) -> None:
    listener = RecordingListener()
    session = make(server, listener=listener)
    events = Collector(session)
    handled: dict[str, list[tuple[Any, ...]]] = {}

    def record(name: str) -> Callable[..., None]:
        return lambda *args: handled.setdefault(name, []).append(args)

    async def async_audio(*args: Any) -> None:
        await asyncio.sleep(0)
        handled.setdefault("async_audio", []).append(args)

    for name in ev.EVENT_TYPES:
        session.on(name, record(name))
    session.on("audio_end", record("alias:audio_end"))  # seed 002 spelling
    session.on("raw_model_event", record("alias:raw_model_event"))
    session.on("audio", async_audio)
    gone = record("unsubscribed")
    unsubscribe = session.on("audio", gone)
    unsubscribe()
    with pytest.raises(ValueError, match="unknown event name 'audio_ended'"):
        session.on("audio_ended", gone)

    await session.connect()
    await server.send_all(_voice_turn())
    await events.until_type("agent_end")
    await server.close(1000)
    seen = await events.finished()
    assert await session.wait_closed() == "closed"

    assert S.types(seen) == [
        "agent_starting",
        "session_connected",
        "user_started_speaking",
        "user_stopped_speaking",
        "user_transcript",
        "agent_start",
        "audio_start",
        "audio",
        "assistant_transcript_delta",
        "audio",
        "assistant_transcript_delta",
        "audio",
        "assistant_transcript_delta",
        "audio",
        "audio",
        "audio_stopped",
        "assistant_transcript",
        "agent_end",
        "agent_stopped",
    ]
    # on(): every event, positional args = the fields in order
    for event in seen:
        assert event.args() in handled[event.type]
    assert sum(len(v) for k, v in handled.items() if ":" not in k and k != "async_audio") == len(
        seen
    )
    assert handled["alias:audio_end"] == handled["audio_stopped"]
    assert handled["alias:raw_model_event"] == handled["transport_event"]
    assert handled["async_audio"] == handled["audio"]
    assert "unsubscribed" not in handled
    data, item_id, content_index, response_id = handled["audio"][0]
    assert (len(data), item_id, content_index, response_id) == (960, "item_a1", 0, "resp_1")
    # listener: seed-003 method names and arguments, in event order
    expected = [call for e in seen if (call := _listener_call(e)) is not None]
    assert listener.calls == expected
    assert ("on_user_transcript", "what time is it") in listener.calls
    assert ("on_assistant_transcript", "It is noon.") in listener.calls
    assert {"agent_start", "agent_end", "audio", "history_added", "transport_event"} <= set(
        listener.other
    )


async def test_a_raising_handler_or_listener_becomes_an_error_event_and_the_session_goes_on(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    class Exploding(AgentListener):
        async def on_user_transcript(self, transcript: str) -> None:
            raise RuntimeError(f"listener cannot take {transcript!r}")

    session = make(server, listener=Exploding())
    events = Collector(session)
    later: list[str] = []

    def boom(item_id: str) -> None:
        raise ValueError("handler broke on " + item_id)

    session.on("audio_start", boom)
    session.on("agent_end", lambda *a: later.append("agent_end"))
    await session.connect()
    await server.send_all(_voice_turn())
    await events.until_type("agent_end")
    # the session still works both ways
    session.send_text("and tomorrow?")
    await server.wait_for("response.create")
    await server.send_all(S.answer(rid="resp_2", item_id="item_b1", ms=40))
    await events.until_type("agent_end", 2)
    await session.close()
    seen = await events.finished()

    errors = [e.error for e in seen if isinstance(e, ev.Error)]
    assert [e.type for e in errors] == ["listener_error"] * 3  # one per raise, every time
    assert "Exploding" in errors[0].message and "user_transcript" in errors[0].message
    assert "RuntimeError" in errors[0].message
    assert "boom" in errors[1].message and "handler broke on item_a1" in errors[1].message
    assert "handler broke on item_b1" in errors[2].message
    assert later == ["agent_end", "agent_end"]
    assert seen[-1] == ev.AgentStopped(reason="client_closed", code=1000)
    assert "raised on" in caplog.text


# --------------------------------------------------------------------------- how it ends


@pytest.mark.parametrize(
    ("script", "reason", "code"),
    [
        ("close_1000", "closed", 1000),
        ("close_1001", "session_expired", 1001),
        ("expired_error_then_1000", "session_expired", 1000),
        ("abort", "connection_lost", 1006),
    ],
)
async def test_every_server_side_end_is_agent_stopped_with_its_reason(
    server: ScriptedServer, script: str, reason: str, code: int
) -> None:
    session = make(server)
    events = Collector(session)
    await session.connect()
    await server.send_all(S.answer(ms=40))
    await events.until_type("agent_end")
    if script == "close_1000":
        await server.close(1000)
    elif script == "close_1001":
        await server.close(1001, "Your session hit the maximum duration of 60 minutes.")
    elif script == "expired_error_then_1000":
        await server.send(S.error("session_expired", "Your session hit the maximum duration"))
        await server.close(1000)
    else:
        await server.abort()
    async with asyncio.timeout(TIMEOUT):  # never a hang
        assert await session.wait_closed() == reason
    seen = await events.finished()
    assert seen[-1] == ev.AgentStopped(reason=reason, code=code)
    assert [e.type for e in seen].count("agent_stopped") == 1
    assert not session.connected
    await session.close()  # closing a finished session is a no-op
    assert session.stop_reason == reason


async def test_client_close_is_client_closed_and_the_server_sees_a_normal_close(
    server: ScriptedServer,
) -> None:
    session = make(server)
    events = Collector(session)
    async with session:
        await server.send_all(S.answer(ms=40))
        await events.until_type("agent_end")
        session.send_audio(S.pcm(40))  # queued before the close: still delivered
    await server.wait_handler_done()
    assert len(server.of_type("input_audio_buffer.append")) == 2
    assert server.conn is not None and server.conn.close_code == 1000
    seen = await events.finished()
    assert seen[-1] == ev.AgentStopped(reason="client_closed", code=1000)
    assert await session.wait_closed() == "client_closed"


async def test_close_against_a_hung_server_still_ends(server: ScriptedServer) -> None:
    session = make(server)
    events = Collector(session)
    await session.connect()
    await server.pause()  # no closing handshake will ever come back
    async with asyncio.timeout(TIMEOUT * 2):  # the close timeout is 5 s; never a hang
        await session.close()
        assert await session.wait_closed() == "client_closed"
    assert (await events.finished())[-1].type == "agent_stopped"


# --------------------------------------------------------------------------- bad frames


async def test_garbage_frames_become_error_and_transport_events_and_the_session_goes_on(
    server: ScriptedServer,
) -> None:
    session = make(server)
    events = Collector(session)
    await session.connect()
    await server.send("this is not json {")
    await server.send("[1, 2, 3]")
    await server.send(json.dumps({"type": "bogus.event", "x": 1}))
    await server.send(json.dumps({"no_type": True}))
    await server.send(b"\xff\xfe\x00binary")
    await server.send(json.dumps({"type": "response.output_audio.delta", "delta": 17}))
    await server.send_all(S.answer(ms=40))
    await events.until_type("agent_end")
    assert session.connected
    errors = [e.error for e in events.of(ev.Error)]
    assert [e.type for e in errors] == [
        "invalid_frame",
        "invalid_event",
        "unknown_event",
        "invalid_event",
        "invalid_frame",
        "invalid_event",
    ]
    assert "not valid JSON" in errors[0].message and "this is not json" in errors[0].message
    assert "list" in errors[1].message
    assert "bogus.event" in errors[2].message
    raw = [e.data.get("type") for e in events.of(ev.TransportEvent)]
    assert "bogus.event" in raw and "response.done" in raw
    assert events.types().count("audio") == 2  # the real answer after the garbage plays
    await session.close()
    assert (await events.finished())[-1] == ev.AgentStopped(reason="client_closed", code=1000)


# --------------------------------------------------------------------------- barge-in, responses


async def test_interruption_after_response_done_truncates_by_samples_played(
    server: ScriptedServer,
) -> None:
    session = make(server)
    events = Collector(session)
    await session.connect()
    await server.send_all(S.answer(text="A long answer here.", ms=300))
    await events.until_type("agent_end")
    assert not session.protocol.response_active
    session.playback_progress("item_a1", 4800)  # the speaker still drains: 200 of 300 ms
    await server.send(S.speech_started("item_user2"))
    (truncate,) = await server.wait_for("conversation.item.truncate")
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": "item_a1",
        "content_index": 0,
        "audio_end_ms": 200,
    }
    await barrier(server, session)
    assert server.of_type("response.cancel") == []  # nothing active: nothing to cancel
    assert ev.AudioInterrupted(item_id="item_a1", played_ms=200) in events.seen
    raw = events.types(raw=True)
    cut = raw.index("audio_interrupted")
    assert raw[cut + 1] == "history_updated"
    await session.close()


async def test_local_interrupt_while_speaking_truncates_and_cancels(server: ScriptedServer) -> None:
    session = make(server)
    events = Collector(session)
    await session.connect()
    await server.send_all(
        [S.response_created(), S.output_item_added()] + [S.audio_delta(S.pcm(20)) for _ in range(5)]
    )
    await events.until_type("audio", 5)
    session.playback_progress("item_a1", 1440)  # 60 ms
    session.interrupt()
    await server.wait_for("response.cancel")
    assert server.types()[-2:] == ["conversation.item.truncate", "response.cancel"]
    assert server.of_type("conversation.item.truncate")[0]["audio_end_ms"] == 60
    await events.until_type("audio_interrupted")
    await session.close()


async def test_never_two_active_responses(server: ScriptedServer) -> None:
    session = make(server)
    events = Collector(session)
    await session.connect()
    session.create_response()
    await server.wait_for("response.create")
    await server.send(S.response_created("resp_1"))
    await events.until_type("agent_start")
    session.create_response(instructions="second")
    session.send_text("third")
    await barrier(server, session)
    assert len(server.of_type("response.create")) == 1  # held back while resp_1 is active
    assert len(server.of_type("conversation.item.create")) == 1  # the text item goes at once
    await server.send(S.response_done("resp_1"))
    creates = await server.wait_for("response.create", 2)
    assert creates[1]["response"] == {"instructions": "second"}
    await barrier(server, session)
    assert len(server.of_type("response.create")) == 2  # "third" waits for the second one
    await server.send_all([S.response_created("resp_2"), S.response_done("resp_2")])
    await server.wait_for("response.create", 3)
    await session.close()


# --------------------------------------------------------------------------- tools


class Tools:
    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.release = asyncio.Event()
        self.fail = fail

    async def run(self, name: str, arguments_json: str, call_id: str) -> str:
        self.calls.append((name, arguments_json, call_id))
        await self.release.wait()
        if name == self.fail:
            raise OSError("weather service down")
        return json.dumps({"tool": name, "args": json.loads(arguments_json)})


async def test_tool_runner_runs_calls_as_tasks_and_answers_with_one_response(
    server: ScriptedServer,
) -> None:
    tools = Tools(fail="get_weather")
    session = make(server, tool_runner=tools)
    events = Collector(session)
    await session.connect()
    await server.send_all(
        [
            S.response_created(),
            *S.function_call(item_id="item_f1", call_id="call_1", name="get_time"),
            *S.function_call(
                item_id="item_f2", call_id="call_2", name="get_weather", args='{"city": "Oslo"}'
            ),
            S.response_done(),
        ]
    )
    await events.until_type("agent_tool_start", 2)
    async with asyncio.timeout(TIMEOUT):
        while len(tools.calls) < 2:
            await asyncio.sleep(0.005)
    assert tools.calls == [
        ("get_time", '{"tz": "UTC"}', "call_1"),
        ("get_weather", '{"city": "Oslo"}', "call_2"),
    ]
    # the tools are still running: the session keeps reading meanwhile
    await server.send(S.speech_started())
    await events.until_type("user_started_speaking")
    assert server.of_type("conversation.item.create") == []
    tools.release.set()
    await server.wait_for("response.create")
    await barrier(server, session)
    outputs = [m["item"] for m in server.of_type("conversation.item.create")]
    assert [(o["type"], o["call_id"]) for o in outputs] == [
        ("function_call_output", "call_1"),
        ("function_call_output", "call_2"),
    ]
    assert json.loads(outputs[0]["output"]) == {"tool": "get_time", "args": {"tz": "UTC"}}
    assert "weather service down" in json.loads(outputs[1]["output"])["error"]
    assert len(server.of_type("response.create")) == 1  # both outputs, one response
    assert server.types().index("response.create") > server.types().index(
        "conversation.item.create"
    )
    ends = events.of(ev.AgentToolEnd)
    assert [(e.call_id, e.tool, e.is_error) for e in ends] == [
        ("call_1", "get_time", False),
        ("call_2", "get_weather", True),
    ]
    tool_errors = [e.error for e in events.of(ev.Error) if e.error.type == "tool_error"]
    assert len(tool_errors) == 1 and "get_weather" in tool_errors[0].message
    await session.close()


async def test_a_runner_can_flag_an_output_as_an_error(server: ScriptedServer) -> None:
    class Flagged(str):
        is_error = True

    class Runner:
        async def run(self, name: str, arguments_json: str, call_id: str) -> str:
            return Flagged('{"error": "no such city"}')

    session = make(server, tool_runner=Runner())
    events = Collector(session)
    await session.connect()
    await server.send_all([S.response_created(), *S.function_call(), S.response_done()])
    await server.wait_for("response.create")
    (end,) = events.of(ev.AgentToolEnd)
    assert end.is_error and end.output == '{"error": "no such city"}'
    await session.close()


# --------------------------------------------------------------------------- README


def _readme_sdk_blocks() -> list[str]:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- section:sdk -->\n(.*?)<!-- /section:sdk -->", text, re.S)
    assert m is not None
    return re.findall(r"```python\n(.*?)```", m.group(1), re.S)


def test_the_readme_sdk_examples_compile() -> None:
    blocks = _readme_sdk_blocks()
    assert len(blocks) >= 3
    for i, block in enumerate(blocks):
        compile(block, f"README sdk example {i}", "exec")


async def test_the_readme_sdk_example_runs_against_a_server(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _readme_sdk_blocks()[0]
    assert "asyncio.run(main())" in code and "wss://api.openai.com/v1/realtime" in code
    code = code.replace("asyncio.run(main())", "").replace(
        "wss://api.openai.com/v1/realtime", server.url
    )
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, "README sdk example", "exec"), namespace)
    task = asyncio.get_running_loop().create_task(namespace["main"]())
    (text,) = await server.wait_for("conversation.item.create")
    assert text["item"]["content"][0]["text"] == "What time is it?"
    await server.wait_for("response.create")
    await server.send_all([S.user_transcript(text="what time is it"), *S.answer(ms=40)])
    await asyncio.wait_for(task, TIMEOUT)
    out = capsys.readouterr().out
    assert "user: what time is it" in out
    assert "assistant: It is noon." in out
    assert "answer audio complete" in out
    assert "stopped: client_closed" in out
    assert server.of_type("session.update")[0]["session"]["tools"][0]["name"] == "get_time"


class _Reporting(RealtimeSession):
    """The real session, noting the player's reports (what the test waits on)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.progress: dict[str, int] = {}
        self.finished: set[str] = set()
        self.reported = asyncio.Event()

    def playback_progress(self, item_id: str, samples_played: int) -> None:
        super().playback_progress(item_id, samples_played)
        self.progress[item_id] = samples_played
        self.reported.set()

    def playback_finished(self, item_id: str) -> None:
        super().playback_finished(item_id)
        self.finished.add(item_id)
        self.reported.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not predicate():
                self.reported.clear()
                await self.reported.wait()


async def test_the_readme_player_example_reports_what_was_played(
    server: ScriptedServer, tmp_path: Path
) -> None:
    """The README's player integration, run with a real (WAV) player: the interruption is cut
    at the samples the player reported, and a fully played answer is not cut at all."""
    (code,) = [b for b in _readme_sdk_blocks() if "SessionTracker(session)" in b]
    code = code.replace('SPEAKER = "default"', f'SPEAKER = "file:{tmp_path / "answer.wav"}"')
    namespace: dict[str, Any] = {"__name__": "readme_player_example"}
    exec(compile(code, "README player example", "exec"), namespace)
    session = _Reporting(SessionSettings(), url=server.url, api_key=KEY, connect_timeout=5.0)
    await session.connect()
    speaking = asyncio.get_running_loop().create_task(namespace["speak"](session))
    await server.send_all(S.answer(ms=1000))
    await session.until(lambda: session.progress.get("item_a1", 0) > 0)
    session.interrupt()  # still playing: cut where the player is
    (cut,) = await server.wait_for("conversation.item.truncate")
    assert cut["item_id"] == "item_a1" and 0 < cut["audio_end_ms"] < 1000
    await server.send_all(S.answer(rid="resp_2", item_id="item_a2", ms=100))
    await session.until(lambda: "item_a2" in session.finished)
    session.interrupt()  # nothing is playing any more: nothing to cut
    session.send_text("next")
    await server.wait_for("conversation.item.create")
    assert [m["item_id"] for m in server.of_type("conversation.item.truncate")] == ["item_a1"]
    await session.close()
    await asyncio.wait_for(speaking, TIMEOUT)


async def test_events_wait_for_an_iterator_only_while_one_iterates(server: ScriptedServer) -> None:
    """With only session.on() consumers, nothing piles up for an iterator that never comes;
    one started right after connect() still sees the session from agent_starting on."""
    session = make(server)
    played: list[bytes] = []
    session.on("audio", lambda data, *_: played.append(data))
    done = asyncio.Event()
    session.on("agent_end", lambda *_: done.set())
    await session.connect()
    startup = session._dispatcher.queued  # agent_starting .. session_connected
    await server.send_all(S.answer(ms=2000))  # 100 audio deltas and their transport events
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert len(played) == 100
    assert session._dispatcher.queued == startup < 10
    # An iterator started now gets the start-up events, then everything from now on.
    seen = Collector(session)
    await session.close()
    events = await seen.finished()
    assert events[0].type == "agent_starting" and events[-1].type == "agent_stopped"
    assert not [e for e in events if isinstance(e, ev.Audio)]
