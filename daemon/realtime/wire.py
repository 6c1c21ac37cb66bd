"""The wire: server event names, beta->GA normalising, defensive field access.

Pure functions over decoded JSON; nothing here keeps state. Server events are
untrusted input, so every accessor returns an empty value of the expected type
instead of raising on a missing key or a value of the wrong type.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

from daemon.events import ErrorInfo

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

# Beta spellings -> GA: the preview API named audio "response.audio.*" and items
# "conversation.item.created"; servers and proxies still on it must work too.
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
    """The string at ``key`` ("" if missing or not a string)."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, str) else ""


def integer(d: Any, key: str) -> int:
    """The int at ``key`` (0 if missing, not an int, or a bool)."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def obj(d: Any, key: str) -> dict[str, Any]:
    """The object at ``key`` ({} if missing or not an object)."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def array(d: Any, key: str) -> list[Any]:
    """The list at ``key`` ([] if missing or not a list)."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, list) else []


def opt_text(d: Any, key: str) -> str | None:
    """The string at ``key``, or None."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, str) else None


def preview(frame: str | bytes, limit: int = 60) -> str:
    """The first ``limit`` characters of a frame, for an error message."""
    shown = repr(frame[:limit])
    return shown + ("..." if len(frame) > limit else "")


def audio_delta(event: dict[str, Any]) -> bytes | str:
    """The PCM of a response.output_audio.delta, or what is wrong with it (a message)."""
    delta = event.get("delta")
    if not isinstance(delta, str):
        return "response.output_audio.delta has no string 'delta'"
    if not text(event, "item_id"):  # audio that could never be truncated must not play
        return "response.output_audio.delta has no 'item_id'"
    try:
        return base64.b64decode(delta, validate=True)
    except (binascii.Error, ValueError):
        return "response.output_audio.delta: 'delta' is not base64"


def decode(frame: str | bytes) -> dict[str, Any] | tuple[str, str]:
    """A server frame as a JSON object, or ``(error type, message)`` saying why not."""
    try:
        raw = frame.decode("utf-8") if isinstance(frame, bytes) else frame
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = f"server frame is not valid JSON ({type(exc).__name__}): {preview(frame)}"
        return ("invalid_frame", why)
    if not isinstance(data, dict):
        kind = type(data).__name__
        return ("invalid_event", f"server event must be a JSON object, got {kind}: {preview(raw)}")
    return data


# --------------------------------------------------------------------------- client events
# What the engine sends, built in one place (GA spelling only).


def append(chunk: bytes) -> dict[str, Any]:
    """input_audio_buffer.append of PCM16 mono 24 kHz ``chunk``."""
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode("ascii")}


def create_item(item: dict[str, Any]) -> dict[str, Any]:
    """conversation.item.create of ``item``."""
    return {"type": "conversation.item.create", "item": item}


def user_text(message: str) -> dict[str, Any]:
    """A user text message item."""
    return create_item(
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": message}]}
    )


def tool_output(call_id: str, output: str) -> dict[str, Any]:
    """The output item answering function call ``call_id``."""
    return create_item({"type": "function_call_output", "call_id": call_id, "output": output})


def truncate(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """conversation.item.truncate of ``item_id``'s audio at ``audio_end_ms``."""
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def error_info(event: dict[str, Any], kind: str | None) -> ErrorInfo:
    """The ErrorInfo of a server ``error`` event (``kind`` from failures.kind_of)."""
    err = obj(event, "error")
    return ErrorInfo(
        type=text(err, "type") or "server_error",
        message=text(err, "message") or "(no message)",
        code=opt_text(err, "code"),
        param=opt_text(err, "param"),
        event_id=opt_text(err, "event_id"),
        kind=kind,
    )
