"""The sans-I/O engine driven by scripted server events: events, order, history, responses."""

from __future__ import annotations

import base64
import itertools
import json

import pytest

from daemon import events as ev
from daemon.realtime.engine import ConnectionState, RealtimeProtocol
from daemon.realtime.responses import Phase
from daemon.realtime.settings import SessionSettings
from tests import engine_script as S


def test_connection_made_sends_session_update_first_even_if_text_was_queued() -> None:
    p = RealtimeProtocol(SessionSettings(instructions="x"))
    p.send_text("hello")
    assert p.data_to_send() == []  # nothing leaves before the socket is open
    p.connection_made()
    out = p.data_to_send()
    assert S.sent_types(out) == ["session.update", "conversation.item.create", "response.create"]
    assert out[0] == SessionSettings(instructions="x").session_update()


def test_session_connected_once_on_session_updated_with_ids() -> None:
    p = RealtimeProtocol(SessionSettings())
    p.connection_made()
    p.data_to_send()
    evs = S.feed(p, [S.session_created("sess_9")])
    assert S.types(evs) == [] and not p.configured
    assert p.session_id == "sess_9"
    evs = S.feed(p, [S.session_updated("sess_9"), S.session_updated("sess_9")])
    connected = [e for e in evs if isinstance(e, ev.SessionConnected)]
    assert connected == [ev.SessionConnected(session_id="sess_9", model="gpt-realtime")]
    assert p.configured


def test_a_full_voice_turn_emits_every_event_in_order() -> None:
    p = S.configured()
    script = [
        S.speech_started(),
        S.speech_stopped(),
        S.committed(),
        S.user_item_added(),
        *S.answer(text="It is noon.", ms=60),
        S.user_transcript(text="what time is it"),  # transcription is async: after the answer
    ]
    evs = S.feed(p, script)
    assert S.types(evs) == [
        "user_started_speaking",
        "user_stopped_speaking",
        "agent_start",
        "audio_start",
        "audio",
        "assistant_transcript_delta",
        "audio",
        "assistant_transcript_delta",
        "audio",
        "assistant_transcript_delta",
        "audio_stopped",
        "assistant_transcript",
        "agent_end",
        "user_transcript",
    ]
    # every raw server event is forwarded, normalised, in order, before what it causes
    raw = [e for e in evs if isinstance(e, ev.TransportEvent)]
    assert [e.data["type"] for e in raw] == [e["type"] for e in script]
    audio = [e for e in evs if isinstance(e, ev.Audio)]
    assert all(a.data == S.pcm(20) and a.item_id == "item_a1" for a in audio)
    assert audio[0].response_id == "resp_1"
    end = next(e for e in evs if isinstance(e, ev.AgentEnd))
    assert end == ev.AgentEnd(
        agent="assistant", output="It is noon.", response_id="resp_1", status="completed"
    )
    assert next(e for e in evs if isinstance(e, ev.AgentStart)).response_id == "resp_1"
    assert next(e for e in evs if isinstance(e, ev.UserTranscript)) == ev.UserTranscript(
        transcript="what time is it", item_id="item_user1"
    )
    assert next(e for e in evs if isinstance(e, ev.AssistantTranscript)) == ev.AssistantTranscript(
        transcript="It is noon.", item_id="item_a1"
    )
    assert p.audio_ms_received("item_a1") == 60
    assert not p.response_active


def test_history_keeps_server_ids_and_fills_in_transcripts() -> None:
    p = S.configured()
    evs = S.feed(
        p, [S.speech_started(), S.user_item_added(), *S.answer(text="Noon."), S.user_transcript()]
    )
    added = [e.item.item_id for e in evs if isinstance(e, ev.HistoryAdded)]
    assert added == ["item_user1", "item_a1"]
    updates = [e for e in evs if isinstance(e, ev.HistoryUpdated)]
    # the last update carries the full history with both transcripts
    user, assistant = updates[-1].history
    assert (user.item_id, user.role, user.transcript) == ("item_user1", "user", "what time is it")
    assert (assistant.item_id, assistant.role, assistant.transcript) == (
        "item_a1",
        "assistant",
        "Noon.",
    )
    assert assistant.status == "completed"
    # the assistant transcript grows delta by delta
    partial = [
        h.transcript for u in updates for h in u.history if h.item_id == "item_a1" and h.transcript
    ]
    assert partial[0] == "Noon." or len(partial) > 1
    # no update repeats the same history
    snapshots = [u.history for u in updates]
    assert all(a != b for a, b in itertools.pairwise(snapshots))


def test_beta_spellings_give_the_same_events_as_ga() -> None:
    script = [S.speech_started(), S.user_item_added(), *S.answer(text="Hi there.", ms=40)]
    ga = S.feed(S.configured(), script)
    beta_script = [S.beta(e) for e in script]
    assert any(e["type"] == "response.audio.delta" for e in beta_script)
    assert any(e["type"] == "response.audio_transcript.delta" for e in beta_script)
    assert any(e["type"] == "conversation.item.created" for e in beta_script)
    assert any(
        part["type"] == "audio"
        for e in beta_script
        for part in (e.get("item") or {}).get("content", [])
    )
    b = S.feed(S.configured(), beta_script)
    assert [e for e in b if e.type != "transport_event"] == [
        e for e in ga if e.type != "transport_event"
    ]
    # transport events carry the GA spelling
    assert [e.data for e in b if isinstance(e, ev.TransportEvent)] == [
        e.data for e in ga if isinstance(e, ev.TransportEvent)
    ]


def test_beta_text_events_become_transcript_events() -> None:
    p = S.configured()
    base = {"response_id": "resp_1", "item_id": "item_t", "output_index": 0, "content_index": 0}
    evs = S.feed(
        p,
        [
            S.response_created(),
            {"type": "response.text.delta", "event_id": "e1", "delta": "Hel", **base},
            {"type": "response.text.delta", "event_id": "e2", "delta": "lo", **base},
            {"type": "response.text.done", "event_id": "e3", "text": "Hello", **base},
            S.response_done(),
        ],
    )
    assert [e for e in evs if isinstance(e, ev.AssistantTranscriptDelta)] == [
        ev.AssistantTranscriptDelta(delta="Hel", item_id="item_t"),
        ev.AssistantTranscriptDelta(delta="lo", item_id="item_t"),
    ]
    assert ev.AssistantTranscript(transcript="Hello", item_id="item_t") in evs
    assert next(e for e in evs if isinstance(e, ev.AgentEnd)).output == "Hello"
    assert not any(e.type == "error" for e in evs)


def test_create_response_is_queued_until_the_active_one_is_done() -> None:
    p = S.configured()
    S.feed(p, [S.response_created("resp_1")])
    p.create_response(instructions="first")
    p.create_response(instructions="second")
    assert p.data_to_send() == []  # never two active responses
    S.feed(p, [S.response_done("resp_1")])
    out = p.data_to_send()
    assert S.sent_types(out) == ["response.create"]
    assert out[0]["response"] == {"instructions": "first"}
    assert p.response_active
    p.create_response()
    assert p.data_to_send() == []  # requested counts as active
    S.feed(p, [S.response_created("resp_2")])
    assert p.data_to_send() == []
    S.feed(p, [S.response_done("resp_2")])
    out = p.data_to_send()
    assert [m.get("response") for m in out] == [{"instructions": "second"}]
    S.feed(p, [S.response_created("resp_3"), S.response_done("resp_3")])
    out = p.data_to_send()
    assert S.sent_types(out) == ["response.create"] and "response" not in out[0]


def test_a_new_response_ends_one_whose_done_never_came() -> None:
    """The server runs one response at a time: response.created for another id ends the
    active one (its audio stops, agent_end "incomplete"); its late response.done is ignored.
    Found by the liveness property: the old item's audio otherwise never stopped."""
    p = S.configured()
    evs = S.feed(p, [S.response_created("resp_2"), S.audio_delta(S.pcm(40), "resp_2", "item_a2")])
    assert "audio_start" in S.types(evs)
    evs = S.feed(p, [S.response_created("resp_1")])
    stopped = [e.item_id for e in evs if isinstance(e, ev.AudioStopped)]
    ends = [(e.response_id, e.status) for e in evs if isinstance(e, ev.AgentEnd)]
    assert stopped == ["item_a2"] and ends == [("resp_2", "incomplete")]
    assert p.response_active
    evs = S.feed(p, [S.response_done("resp_2")])
    assert [e for e in evs if isinstance(e, ev.AgentEnd)] == []  # ended once, not twice
    assert p.response_active  # resp_1 is still the active one
    evs = S.feed(p, [S.response_done("resp_1")])
    assert [(e.response_id, e.status) for e in evs if isinstance(e, ev.AgentEnd)] == [
        ("resp_1", "completed")
    ]
    assert not p.response_active


def test_a_create_that_lost_the_race_is_retried_after_the_active_response() -> None:
    p = S.configured()
    p.create_response(instructions="mine")
    (create,) = p.data_to_send()
    # the server had started a VAD response at the same time and rejects ours
    evs = S.feed(
        p,
        [
            S.response_created("resp_vad"),
            S.error(
                "conversation_already_has_active_response",
                "Conversation already has an active response",
                event_id=create["event_id"],
            ),
        ],
    )
    assert next(e for e in evs if isinstance(e, ev.Error)).error.code == (
        "conversation_already_has_active_response"
    )
    assert p.data_to_send() == []
    S.feed(p, [S.response_done("resp_vad")])
    (retry,) = p.data_to_send()
    assert retry["type"] == "response.create" and retry["response"] == {"instructions": "mine"}


def test_send_text_is_a_user_message_and_a_response() -> None:
    p = S.configured()
    p.send_text("turn on the lights")
    item, create = p.data_to_send()
    assert item["item"] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "turn on the lights"}],
    }
    assert create["type"] == "response.create"


def test_function_call_starts_a_tool_and_outputs_batch_into_one_response() -> None:
    p = S.configured()
    script = [
        S.response_created("resp_1"),
        *S.function_call("resp_1", "item_f1", "call_1", "get_time", '{"tz":"UTC"}'),
        *S.function_call("resp_1", "item_f2", "call_2", "get_weather", '{"city":"Oslo"}'),
    ]
    evs = S.feed(p, script)
    starts = [e for e in evs if isinstance(e, ev.AgentToolStart)]
    assert starts == [
        ev.AgentToolStart(
            agent="assistant", tool="get_time", call_id="call_1", arguments='{"tz":"UTC"}'
        ),
        ev.AgentToolStart(
            agent="assistant", tool="get_weather", call_id="call_2", arguments='{"city":"Oslo"}'
        ),
    ]  # once each, though both arguments.done and output_item.done name the call
    p.send_tool_output("call_1", '{"time":"12:00"}')
    out = p.data_to_send()
    assert S.sent_types(out) == ["conversation.item.create"]
    assert out[0]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"time":"12:00"}',
    }
    evs = S.feed(p, [S.response_done("resp_1")])
    assert p.data_to_send() == []  # call_2 still open: one response for both
    p.send_tool_output("call_2", "sunny", is_error=False)
    out = p.data_to_send()
    assert S.sent_types(out) == ["conversation.item.create", "response.create"]
    ends = [e for e in p.events_received() if isinstance(e, ev.AgentToolEnd)]
    assert ends == [
        ev.AgentToolEnd(agent="assistant", tool="get_weather", call_id="call_2", output="sunny")
    ]
    hist = {h.item_id: h for h in p.history}
    assert hist["item_f1"].kind == "function_call" and hist["item_f1"].name == "get_time"
    assert hist["item_f1"].call_id == "call_1" and hist["item_f1"].arguments == '{"tz":"UTC"}'


def test_tool_output_after_response_done_creates_a_response_at_once() -> None:
    p = S.configured()
    S.feed(p, [S.response_created(), *S.function_call(), S.response_done()])
    p.send_tool_output("call_1", "12:00")
    assert S.sent_types(p.data_to_send()) == ["conversation.item.create", "response.create"]


def test_function_call_seen_only_in_response_done_still_starts() -> None:
    p = S.configured()
    item = S.function_call_item("item_f9", "call_9", "lights", "{}")
    evs = S.feed(p, [S.response_created(), S.response_done(output=[item])])
    assert [e.call_id for e in evs if isinstance(e, ev.AgentToolStart)] == ["call_9"]


def test_mcp_tools_calls_and_approvals() -> None:
    p = S.configured()
    base = {"type": "response.output_item.done", "response_id": "resp_1", "output_index": 0}
    script = [
        S._ev(
            {
                "type": "conversation.item.done",
                "item": {
                    "id": "item_l1",
                    "type": "mcp_list_tools",
                    "server_label": "docs",
                    "tools": [{"name": "search", "input_schema": {}, "description": "Find"}],
                },
            }
        ),
        S.response_created(),
        S._ev(
            {
                **base,
                "item": {
                    "id": "item_m1",
                    "type": "mcp_approval_request",
                    "server_label": "docs",
                    "name": "search",
                    "arguments": '{"q":"x"}',
                },
            }
        ),
        S._ev(
            {
                **base,
                "item": {
                    "id": "item_m2",
                    "type": "mcp_call",
                    "server_label": "docs",
                    "name": "search",
                    "arguments": "{}",
                    "output": "found",
                },
            }
        ),
        S.response_done(),
    ]
    evs = S.feed(p, script)
    assert [e for e in evs if isinstance(e, ev.McpToolsChanged)] == [
        ev.McpToolsChanged(
            tools=(ev.McpTool(server_label="docs", name="search", description="Find"),)
        )
    ]
    assert (
        ev.ToolApprovalRequested(
            approval_id="item_m1",
            agent="assistant",
            tool="search",
            arguments='{"q":"x"}',
            server_label="docs",
        )
        in evs
    )
    done = next(e for e in evs if isinstance(e, ev.McpToolCallCompleted))
    assert done.server_label == "docs" and done.item is not None and done.item.output == "found"
    p.approve_tool("item_m1")
    approval, create = p.data_to_send()
    assert approval["item"]["type"] == "mcp_approval_response"
    assert approval["item"]["approval_request_id"] == "item_m1" and approval["item"]["approve"]
    assert create["type"] == "response.create"


def test_server_errors_become_error_events_and_the_session_goes_on() -> None:
    p = S.configured()
    evs = S.feed(p, [S.error("input_audio_buffer_commit_empty", "buffer too small")])
    (err,) = [e for e in evs if isinstance(e, ev.Error)]
    assert err.error == ev.ErrorInfo(
        type="invalid_request_error",
        code="input_audio_buffer_commit_empty",
        message="buffer too small",
    )
    assert not p.closed
    evs = S.feed(p, S.answer())
    assert "agent_end" in S.types(evs)


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ("not json", "invalid_frame"),
        (b"\xff\xfe\x00", "invalid_frame"),
        ("[1, 2]", "invalid_event"),
        ("42", "invalid_event"),
        ('{"no": "type"}', "invalid_event"),
        ('{"type": 7}', "invalid_event"),
        ('{"type": "response.teleport", "event_id": "e"}', "unknown_event"),
        ('{"type": "response.output_audio.delta", "delta": "!!!not base64"}', "invalid_event"),
        ('{"type": "response.output_audio.delta", "delta": 5}', "invalid_event"),
        ('{"type": "response.output_audio.delta", "delta": "AAAA"}', "invalid_event"),
        ('{"type": "response.done", "response": "nope"}', None),
        ('{"type": "error", "error": null}', None),
        ('{"type": "conversation.item.added", "item": {"id": 5, "type": []}}', None),
        ("{" * 100000, "invalid_frame"),
    ],
)
def test_garbage_frames_become_error_events_never_exceptions(
    frame: str | bytes, kind: str | None
) -> None:
    p = S.configured()
    p.receive_text(frame)
    evs = p.events_received()
    errors = [e for e in evs if isinstance(e, ev.Error)]
    if kind is not None:
        assert [e.error.type for e in errors] == [kind]
        assert errors[0].error.message
    decodable = frame not in ("not json", b"\xff\xfe\x00", "[1, 2]", "42", "{" * 100000)
    assert any(isinstance(e, ev.TransportEvent) for e in evs) == decodable
    # and the session still works afterwards
    assert "agent_end" in S.types(S.feed(p, S.answer()))


def test_audio_without_an_item_is_not_played_and_never_truncated() -> None:
    p = S.configured()
    p.receive_text(json.dumps({"type": "response.output_audio.delta", "delta": "AAAA"}))
    assert not [e for e in p.events_received() if isinstance(e, ev.Audio)]
    p.interrupt()
    sent = [m["type"] for m in p.data_to_send()]
    assert "conversation.item.truncate" not in sent


def test_receive_text_accepts_str_and_bytes_frames() -> None:
    p = S.configured()
    p.receive_text(json.dumps(S.response_created()))
    p.receive_text(json.dumps(S.audio_delta(S.pcm(20))).encode())
    assert S.types(p.events_received()) == ["agent_start", "audio_start", "audio"]


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (1000, "", "closed"),
        (1001, "Your session hit the maximum duration of 60 minutes.", "session_expired"),
        (1001, "", "session_expired"),
        (1006, "", "connection_lost"),
        (1011, "internal error", "connection_lost"),
        (None, "", "connection_lost"),
    ],
)
def test_close_codes_map_to_the_stop_reason(code: int | None, reason: str, expected: str) -> None:
    p = S.configured()
    p.connection_lost(code, reason)
    *errors, stopped = p.events_received()
    assert stopped == ev.AgentStopped(reason=expected, code=code)
    # A lost link is a typed network failure the owner sees; a normal end is not.
    kinds = [e.error.kind for e in errors if isinstance(e, ev.Error)]
    assert kinds == (["network"] if expected == "connection_lost" else []), errors
    assert p.closed and p.stop_reason == expected


def test_session_expired_error_then_normal_close_is_session_expired() -> None:
    p = S.configured()
    evs = S.feed(
        p, [S.error("session_expired", "Your session hit the maximum duration of 60 minutes.")]
    )
    assert next(e for e in evs if isinstance(e, ev.Error)).error.code == "session_expired"
    p.connection_lost(1000, "")
    assert p.events_received() == [ev.AgentStopped(reason="session_expired", code=1000)]


def test_agent_stopped_exactly_once_and_last() -> None:
    p = S.configured()
    S.feed(p, [S.response_created()])
    p.connection_lost(1006, "")
    p.connection_lost(1000, "")
    p.connection_lost(None, "", by_client=True)
    p.receive_event(S.audio_delta(S.pcm(20)))
    p.receive_text("garbage")
    p.send_audio(S.pcm(100))
    p.interrupt()
    p.create_response()
    p.send_tool_output("call_1", "x")
    assert S.types(p.events_received()) == ["error", "agent_stopped"]
    assert p.data_to_send() == []


def test_client_close_is_client_closed() -> None:
    p = S.configured()
    p.connection_lost(1000, "", by_client=True)
    assert p.events_received() == [ev.AgentStopped(reason="client_closed", code=1000)]


def test_audio_delta_is_decoded_pcm() -> None:
    p = S.configured()
    data = bytes(range(256)) * 4
    evs = S.feed(p, [S.response_created(), S.audio_delta(data)])
    (audio,) = [e for e in evs if isinstance(e, ev.Audio)]
    assert audio.data == data
    assert base64.b64encode(audio.data).decode() == S.audio_delta(data)["delta"]
    assert "bytes=1024" in repr(audio)  # never the samples in a log line


def test_update_session_sends_an_update_with_nulls_for_switched_off_features() -> None:
    p = S.configured()
    p.update_session(SessionSettings(transcription_model="", voice="cedar"))
    (msg,) = p.data_to_send()
    assert msg["session"]["audio"]["input"]["transcription"] is None
    assert msg["session"]["audio"]["output"]["voice"] == "cedar"


def test_send_raw_passes_any_client_event() -> None:
    p = S.configured()
    p.send_raw({"type": "input_audio_buffer.commit"})
    assert p.data_to_send() == [{"type": "input_audio_buffer.commit"}]


@pytest.mark.invalid_client_messages_ok
def test_the_oracle_fixture_can_be_opted_out_of() -> None:
    p = S.configured()
    p.send_raw({"type": "input_audio_buffer.commit", "bogus": 1})
    assert p.data_to_send() == [{"type": "input_audio_buffer.commit", "bogus": 1}]


def test_the_oracle_fixture_rejects_invalid_client_messages(
    _validate_client_messages: list[str],
) -> None:
    from daemon.realtime import validate

    p = S.configured()
    p.send_raw({"type": "input_audio_buffer.commit", "bogus": 1})
    with pytest.raises(validate.ProtocolViolation):
        p.data_to_send()
    assert len(_validate_client_messages) == 1 and "bogus" in _validate_client_messages[0]
    _validate_client_messages.clear()  # recorded violations would fail the test at teardown


def test_the_connection_state_moves_forward_only() -> None:
    p = RealtimeProtocol(SessionSettings())
    assert p.state is ConnectionState.CONNECTING and not p.configured
    with pytest.raises(RuntimeError, match="connection_made"):
        p.receive_event(S.session_updated())  # no server can speak before the socket opens
    p.connection_made()
    assert p.state is ConnectionState.CONFIGURING
    p.receive_event(S.session_updated())
    assert p.state is ConnectionState.OPEN and p.configured
    p.receive_event(S.error("session_expired"))
    assert p.state is ConnectionState.EXPIRING and p.configured
    p.connection_made()  # a second open changes nothing
    assert p.state is ConnectionState.EXPIRING
    p.connection_lost(1006, "")
    assert p.state is ConnectionState.CLOSED and p.closed and not p.configured
    assert p.stop_reason == "session_expired"
    p.receive_event(S.session_updated())  # ignored once closed, never raises
    p.connection_made()
    assert p.state is ConnectionState.CLOSED


def test_the_response_phase_is_named() -> None:
    p = S.configured()
    assert p.response_phase is Phase.IDLE and not p.response_active
    p.create_response()
    assert p.response_phase is Phase.REQUESTED and p.response_active
    S.feed(p, [S.response_created("resp_1")])
    assert p.response_phase is Phase.ACTIVE
    S.feed(p, [S.response_done("resp_1")])
    assert p.response_phase is Phase.IDLE and not p.response_active
