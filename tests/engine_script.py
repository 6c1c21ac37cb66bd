"""Scripted realtime server events for engine and session tests.

Every builder returns a GA server event checked by the protocol oracle, so
scripts stay realistic; ``beta()`` rewrites one into the beta spelling.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from daemon import events as ev
from daemon.realtime import validate
from daemon.realtime.engine import RealtimeProtocol
from daemon.realtime.settings import SessionSettings

_ids = itertools.count(1)


def _ev(event: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("event_id", f"event_{next(_ids)}")
    validate.check_server(event)
    return event


def pcm(ms: int, value: int = 1000) -> bytes:
    """``ms`` milliseconds of a constant PCM16 sample (48 bytes per ms)."""
    return value.to_bytes(2, "little", signed=True) * (ms * 24)


def _session_event(kind: str, session_id: str) -> dict[str, Any]:
    session = {
        "type": "realtime",
        "id": session_id,
        "object": "realtime.session",
        "model": "gpt-realtime",
    }
    return _ev({"type": kind, "session": session})


def session_created(session_id: str = "sess_1") -> dict[str, Any]:
    return _session_event("session.created", session_id)


def session_updated(session_id: str = "sess_1") -> dict[str, Any]:
    return _session_event("session.updated", session_id)


def speech_started(item_id: str = "item_user1", ms: int = 100) -> dict[str, Any]:
    return _ev(
        {"type": "input_audio_buffer.speech_started", "item_id": item_id, "audio_start_ms": ms}
    )


def speech_stopped(item_id: str = "item_user1", ms: int = 900) -> dict[str, Any]:
    return _ev(
        {"type": "input_audio_buffer.speech_stopped", "item_id": item_id, "audio_end_ms": ms}
    )


def committed(item_id: str = "item_user1") -> dict[str, Any]:
    return _ev({"type": "input_audio_buffer.committed", "item_id": item_id})


def user_item_added(item_id: str = "item_user1") -> dict[str, Any]:
    return _ev(
        {
            "type": "conversation.item.added",
            "item": {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        }
    )


def user_transcript(item_id: str = "item_user1", text: str = "what time is it") -> dict[str, Any]:
    return _ev(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": text,
            "usage": {"type": "duration", "seconds": 1.0},
        }
    )


def response_created(rid: str = "resp_1") -> dict[str, Any]:
    return _ev(
        {
            "type": "response.created",
            "response": {
                "id": rid,
                "object": "realtime.response",
                "status": "in_progress",
                "output": [],
            },
        }
    )


def assistant_item(
    item_id: str, status: str = "in_progress", transcript: str | None = None
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if transcript is not None:
        content.append({"type": "output_audio", "transcript": transcript})
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def output_item_added(rid: str = "resp_1", item_id: str = "item_a1") -> dict[str, Any]:
    return _ev(
        {
            "type": "response.output_item.added",
            "response_id": rid,
            "output_index": 0,
            "item": assistant_item(item_id),
        }
    )


def conversation_item_added(item_id: str = "item_a1") -> dict[str, Any]:
    return _ev({"type": "conversation.item.added", "item": assistant_item(item_id)})


def audio_delta(data: bytes, rid: str = "resp_1", item_id: str = "item_a1") -> dict[str, Any]:
    return _ev(
        {
            "type": "response.output_audio.delta",
            "response_id": rid,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(data).decode(),
        }
    )


def audio_done(rid: str = "resp_1", item_id: str = "item_a1") -> dict[str, Any]:
    return _ev(
        {
            "type": "response.output_audio.done",
            "response_id": rid,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
        }
    )


def transcript_delta(text: str, rid: str = "resp_1", item_id: str = "item_a1") -> dict[str, Any]:
    return _ev(
        {
            "type": "response.output_audio_transcript.delta",
            "response_id": rid,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": text,
        }
    )


def transcript_done(text: str, rid: str = "resp_1", item_id: str = "item_a1") -> dict[str, Any]:
    return _ev(
        {
            "type": "response.output_audio_transcript.done",
            "response_id": rid,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "transcript": text,
        }
    )


def output_item_done(
    rid: str = "resp_1", item_id: str = "item_a1", transcript: str = "", status: str = "completed"
) -> dict[str, Any]:
    return _ev(
        {
            "type": "response.output_item.done",
            "response_id": rid,
            "output_index": 0,
            "item": assistant_item(item_id, status, transcript),
        }
    )


def response_done(
    rid: str = "resp_1",
    status: str = "completed",
    output: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "id": rid,
        "object": "realtime.response",
        "status": status,
        "output": output or [],
    }
    if status == "cancelled":
        response["status_details"] = {"type": "cancelled", "reason": "turn_detected"}
    return _ev({"type": "response.done", "response": response})


def error(code: str | None, message: str = "boom", event_id: str | None = None) -> dict[str, Any]:
    return _ev(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": None,
                "event_id": event_id,
            },
        }
    )


def server_error(message: str = "The server had an error.") -> dict[str, Any]:
    """An ``error`` of type server_error (seen mid-answer with no response.done after it)."""
    return _ev(
        {
            "type": "error",
            "error": {"type": "server_error", "code": None, "message": message, "param": None},
        }
    )


def response_failed(
    rid: str = "resp_1", code: str = "insufficient_quota", type_: str = "insufficient_quota"
) -> dict[str, Any]:
    """``response.done`` with status failed and its ``status_details.error``."""
    response = {
        "id": rid,
        "object": "realtime.response",
        "status": "failed",
        "status_details": {"type": "failed", "error": {"type": type_, "code": code}},
        "output": [],
    }
    return _ev({"type": "response.done", "response": response})


def function_call_item(item_id: str, call_id: str, name: str, args: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "completed",
        "name": name,
        "call_id": call_id,
        "arguments": args,
    }


def function_call(
    rid: str = "resp_1",
    item_id: str = "item_f1",
    call_id: str = "call_1",
    name: str = "get_time",
    args: str = '{"tz": "UTC"}',
) -> list[dict[str, Any]]:
    """The events of one function call output item."""
    item = function_call_item(item_id, call_id, name, args)
    added = dict(item, status="in_progress", arguments="")
    return [
        _ev(
            {
                "type": "response.output_item.added",
                "response_id": rid,
                "output_index": 0,
                "item": added,
            }
        ),
        _ev(
            {
                "type": "response.function_call_arguments.delta",
                "response_id": rid,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "delta": args,
            }
        ),
        _ev(
            {
                "type": "response.function_call_arguments.done",
                "response_id": rid,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "name": name,
                "arguments": args,
            }
        ),
        _ev(
            {
                "type": "response.output_item.done",
                "response_id": rid,
                "output_index": 0,
                "item": item,
            }
        ),
    ]


def answer(
    rid: str = "resp_1", item_id: str = "item_a1", text: str = "It is noon.", ms: int = 100
) -> list[dict[str, Any]]:
    """A complete audio answer: ``ms`` of audio in 20 ms deltas, transcript, done."""
    out = [response_created(rid), output_item_added(rid, item_id), conversation_item_added(item_id)]
    words = text.split(" ")
    for i in range(ms // 20):
        out.append(audio_delta(pcm(20), rid, item_id))
        if i < len(words):
            out.append(
                transcript_delta(words[i] + (" " if i < len(words) - 1 else ""), rid, item_id)
            )
    for j in range(ms // 20, len(words)):
        out.append(transcript_delta(words[j] + (" " if j < len(words) - 1 else ""), rid, item_id))
    out += [
        audio_done(rid, item_id),
        transcript_done(text, rid, item_id),
        output_item_done(rid, item_id, text),
        response_done(rid, output=[assistant_item(item_id, "completed", text)]),
    ]
    return out


_BETA = (
    ("response.output_audio_transcript.", "response.audio_transcript."),
    ("response.output_audio.", "response.audio."),
    ("response.output_text.", "response.text."),
)


def beta(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in the beta spelling (types and assistant content types)."""
    import copy

    out = copy.deepcopy(event)
    t = out["type"]
    if t == "conversation.item.added":
        t = "conversation.item.created"
    for new, old in _BETA:
        if t.startswith(new):
            t = old + t[len(new) :]
    out["type"] = t
    items = [out.get("item"), *list((out.get("response") or {}).get("output") or [])]
    for item in items:
        if isinstance(item, dict):
            for part in item.get("content") or []:
                if part.get("type") in ("output_audio", "output_text"):
                    part["type"] = part["type"].removeprefix("output_")
    return out


# --------------------------------------------------------------------------- driving


def configured(settings: SessionSettings | None = None, **kw: Any) -> RealtimeProtocol:
    """An engine past connection_made + session.created/updated, outputs drained."""
    p = RealtimeProtocol(settings or SessionSettings(), **kw)
    p.connection_made()
    p.receive_event(session_created())
    p.receive_event(session_updated())
    p.data_to_send()
    p.events_received()
    return p


def feed(p: RealtimeProtocol, events: list[dict[str, Any]]) -> list[ev.Event]:
    for e in events:
        p.receive_event(e)
    return p.events_received()


def types(events: list[ev.Event], *, raw: bool = False) -> list[str]:
    """Event type names, without transport_event and history noise unless ``raw``."""
    skip = () if raw else ("transport_event", "history_added", "history_updated")
    return [e.type for e in events if e.type not in skip]


def sent_types(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in msgs]
