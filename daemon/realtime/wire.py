"""The wire: server event names, beta->GA normalising, defensive field access.

Pure functions over decoded JSON; nothing here keeps state. Server events are
untrusted input, so every accessor returns an empty value of the expected type
instead of raising on a missing key or a value of the wrong type.
"""

from __future__ import annotations

import copy
from typing import Any

# Server event types of the GA API (openai.types.realtime.RealtimeServerEvent).
GA_SERVER_EVENTS = frozenset(
    {
        "conversation.created",
        "conversation.item.added",
        "conversation.item.created",
        "conversation.item.deleted",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "error",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.dtmf_event_received",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "mcp_list_tools.in_progress",
        "output_audio_buffer.cleared",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "rate_limits.updated",
        "response.content_part.added",
        "response.content_part.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.output_text.done",
        "session.created",
        "session.updated",
    }
)

# Beta spellings (PROTOCOL.md) -> GA.
BETA_PREFIXES = (
    ("response.audio_transcript.", "response.output_audio_transcript."),
    ("response.audio.", "response.output_audio."),
    ("response.text.", "response.output_text."),
)
BETA_TYPES = {"conversation.item.created": "conversation.item.added"}
BETA_CONTENT = {"audio": "output_audio", "text": "output_text"}

# --------------------------------------------------------------------------- normalising


def _norm_part(part: Any) -> None:
    # Untrusted: "type" may be any JSON value (a list is unhashable).
    if isinstance(part, dict):
        t = part.get("type")
        if isinstance(t, str) and t in BETA_CONTENT:
            part["type"] = BETA_CONTENT[t]


def _norm_content(content: Any) -> None:
    if isinstance(content, list):
        for part in content:
            _norm_part(part)


def _norm_item(item: Any) -> None:
    if isinstance(item, dict):
        _norm_content(item.get("content"))


def normalise(event: dict[str, Any]) -> dict[str, Any]:
    """A GA-spelled deep copy of a (GA or beta) server event; the input is not changed."""
    out = copy.deepcopy(event)
    t = out.get("type")
    if isinstance(t, str):
        t = BETA_TYPES.get(t, t)
        for old, new in BETA_PREFIXES:
            if t.startswith(old):
                t = new + t[len(old) :]
                break
        out["type"] = t
    _norm_item(out.get("item"))
    _norm_part(out.get("part"))
    response = out.get("response")
    if isinstance(response, dict) and isinstance(response.get("output"), list):
        for item in response["output"]:
            _norm_item(item)
    return out


# --------------------------------------------------------------------------- field access
# Server events are untrusted input: read fields defensively, never KeyError.


def text(d: Any, key: str) -> str:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, str) else ""


def integer(d: Any, key: str) -> int:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def obj(d: Any, key: str) -> dict[str, Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def array(d: Any, key: str) -> list[Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, list) else []


def opt_text(d: Any, key: str) -> str | None:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, str) else None


def preview(frame: str | bytes, limit: int = 60) -> str:
    """The first ``limit`` characters of a frame, for an error message."""
    shown = repr(frame[:limit])
    return shown + ("..." if len(frame) > limit else "")
