"""The simulated server's side of one realtime connection (sans-I/O).

Client frames and the current time go in (``receive_text(frame, now)``,
``advance(now)``); server events come out (``data_to_send()``). Answers are
streamed on a schedule: ``next_deadline()`` says when ``advance`` has audio to
send next. No sockets, no clocks, no asyncio: the websocket server in
server.py only pumps. Shapes follow the GA types of the `openai` package.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.realtime import validate

from .answers import placeholder_transcript
from .vad import EnergyVad, threshold_to_dbfs

BYTES_PER_MS = 48  # PCM16 mono 24 kHz
MIN_COMMIT_MS = 100  # the real server refuses to commit less
PCM_FORMAT = {"type": "audio/pcm", "rate": 24000}
SEMANTIC_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 250}

# A fixed tool list for every MCP server (filtered by allowed_tools).
MCP_TOOLS: tuple[dict[str, Any], ...] = (
    {
        "name": "search",
        "description": "Search the simulated knowledge base.",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
    {
        "name": "add",
        "description": "Add two numbers.",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
)


def _vad_defaults(kind: str) -> dict[str, Any]:
    if kind == "server_vad":
        return {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "idle_timeout_ms": None,
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }


def default_session(session_id: str, model: str) -> dict[str, Any]:
    """The session the real server starts with (as sent in session.created)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are a helpful voice assistant (simulated).",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "truncation": "auto",
        "audio": {
            "input": {
                "format": dict(PCM_FORMAT),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": _vad_defaults("server_vad"),
            },
            "output": {"format": dict(PCM_FORMAT), "voice": "marin", "speed": 1.0},
        },
    }


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


class SimError(Exception):
    """A client event the real server would answer with an ``error`` event."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


@dataclass
class _Speaking:
    """The assistant audio item being streamed."""

    item: dict[str, Any]
    output_index: int
    pcm: bytes
    words: list[str]
    start: float
    chunk_bytes: int
    sent: int = 0
    chunks_sent: int = 0
    words_sent: int = 0

    @property
    def n_chunks(self) -> int:
        return max(1, math.ceil(len(self.pcm) / self.chunk_bytes))

    @property
    def transcript(self) -> str:
        return " ".join(self.words[: self.words_sent])


@dataclass
class _Response:
    id: str
    output: list[dict[str, Any]] = field(default_factory=list)
    speaking: _Speaking | None = None


@dataclass
class _Input:
    """What the next response answers: the latest user turn or tool results."""

    prompt: str = ""
    tool_outputs: list[tuple[str, str]] = field(default_factory=list)  # (name, output)
    approvals: list[tuple[str, bool]] = field(default_factory=list)  # (request id, approve)
    fresh: bool = False  # something arrived since the last response


class SimProtocol:
    """One simulated realtime session; see the module docstring."""

    def __init__(
        self,
        *,
        session_id: str,
        model: str = "gpt-realtime",
        synthesize: Callable[[str], bytes],
        answer: Callable[[str], str],
        next_transcript: Callable[[], str | None] = lambda: None,
        function_calls: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
        realtime_factor: float = 4.0,
        chunk_ms: int = 100,
        validate_client: bool = True,
    ) -> None:
        if not realtime_factor > 0:
            raise ValueError(f"realtime_factor: expected > 0, got {realtime_factor!r}")
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms: expected > 0, got {chunk_ms!r}")
        self.session_id = session_id
        self.synthesize = synthesize
        self.answer = answer
        self.next_transcript = next_transcript
        self.function_calls = dict(function_calls or {})
        self.realtime_factor = realtime_factor
        self.chunk_bytes = chunk_ms * BYTES_PER_MS
        self.validate_client = validate_client and validate.available()
        self.session = default_session(session_id, model)
        # what tests inspect
        self.client_messages: list[dict[str, Any]] = []
        self.audio_in = bytearray()
        self.user_items: list[tuple[str, bytes]] = []
        self.truncates: list[dict[str, Any]] = []
        self.audio_out_started = False  # an assistant audio delta went out (voice is fixed)
        # state
        self._out: list[dict[str, Any]] = []
        self._seq = 0
        self._tag = session_id.removeprefix("sess_")[:8]
        self._vad = EnergyVad()
        self._speech_item: str | None = None  # item id of the utterance in progress
        self._speech_start_ms = 0
        self._buffer_start = 0  # byte offset of the uncommitted input audio
        self._last_item: str | None = None
        self._items: dict[str, dict[str, Any]] = {}
        self._item_audio: dict[str, int] = {}  # assistant audio bytes per item
        self._response: _Response | None = None
        self._input = _Input()
        self._calls: dict[str, str] = {}  # call_id -> function name
        self._approvals: dict[str, dict[str, Any]] = {}  # mcp_approval_request items
        self._mcp_listed: set[str] = set()
        self._configure_vad()

    # ================================================================ I/O surface

    def connection_made(self) -> None:
        self._emit({"type": "session.created", "session": copy.deepcopy(self.session)})
        self._emit(
            {
                "type": "conversation.created",
                "conversation": {"id": f"conv_{self._tag}", "object": "realtime.conversation"},
            }
        )

    def data_to_send(self) -> list[dict[str, Any]]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When ``advance`` has the next audio chunk to send (None: nothing scheduled)."""
        r = self._response
        if r is None or r.speaking is None:
            return None
        s = r.speaking
        return (
            s.start + s.chunks_sent * (s.chunk_bytes / BYTES_PER_MS / 1000) / self.realtime_factor
        )

    @property
    def response_active(self) -> bool:
        return self._response is not None

    def receive_text(self, frame: str | bytes, now: float) -> None:
        """One client frame. Bad ones get an ``error`` event; the session goes on."""
        try:
            text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
            msg = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError):
            self._error("We could not parse the JSON body of your request.", code="invalid_json")
            return
        if not isinstance(msg, dict):
            self._error("The event must be a JSON object.", code="invalid_json")
            return
        self.receive_event(msg, now)

    def receive_event(self, msg: dict[str, Any], now: float) -> None:
        self.client_messages.append(msg)
        event_id = msg.get("event_id") if isinstance(msg.get("event_id"), str) else None
        if self.validate_client:
            try:
                validate.check_client(msg)
            except validate.ProtocolViolation as exc:
                self._error(str(exc), code=exc.code, param=exc.param, event_id=event_id)
                return
        handler = _HANDLERS.get(str(msg.get("type")))
        try:
            if handler is None:
                raise SimError(
                    f"Invalid value: '{msg.get('type')}'. The simulator does not support it.",
                    code="invalid_value",
                    param="type",
                )
            handler(self, msg, now)
        except SimError as exc:
            self._error(str(exc), code=exc.code, param=exc.param, event_id=event_id)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Without the oracle a malformed event lands here: answer, never crash.
            self._error(
                f"Invalid event: {type(exc).__name__}: {exc}",
                code="invalid_value",
                event_id=event_id,
            )

    def advance(self, now: float) -> None:
        """Send the audio chunks due by ``now``; finish the response after the last one."""
        r = self._response
        while r is not None and r.speaking is not None:
            due = self.next_deadline()
            if due is None or due > now:
                return
            s = r.speaking
            self._send_chunk(r, s)
            if s.sent >= len(s.pcm):
                self._finish_speaking(r, "completed")
                self._finish_response(r, "completed")
                r = self._response

    # ================================================================ helpers

    def _emit(self, event: dict[str, Any]) -> None:
        self._seq += 1
        self._out.append({"event_id": f"event_{self._tag}{self._seq:05d}", **event})

    def _new_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_{self._tag}{self._seq:05d}"

    def _error(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        self._emit(
            {
                "type": "error",
                "error": {
                    "type": type_,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    def _turn_detection(self) -> dict[str, Any] | None:
        td = self.session["audio"]["input"].get("turn_detection")
        return td if isinstance(td, dict) else None

    def _configure_vad(self) -> None:
        td = self._turn_detection()
        if td is None:
            return
        if td.get("type") == "server_vad":
            self._vad.configure(
                threshold_db=threshold_to_dbfs(float(td.get("threshold") or 0.5)),
                silence_ms=int(td.get("silence_duration_ms") or 500),
                prefix_ms=int(td.get("prefix_padding_ms") or 300),
            )
        else:
            eagerness = str(td.get("eagerness") or "auto")
            self._vad.configure(
                threshold_db=threshold_to_dbfs(0.5),
                silence_ms=SEMANTIC_SILENCE_MS.get(eagerness, 500),
                prefix_ms=300,
            )

    def _add_item(self, item: dict[str, Any], *, done: bool = True) -> None:
        """conversation.item.added (and .done) for an item in the conversation."""
        self._items[item["id"]] = item
        previous, self._last_item = self._last_item, item["id"]
        self._emit(
            {
                "type": "conversation.item.added",
                "previous_item_id": previous,
                "item": copy.deepcopy(item),
            }
        )
        if done:
            self._emit(
                {
                    "type": "conversation.item.done",
                    "previous_item_id": previous,
                    "item": copy.deepcopy(item),
                }
            )

    # ================================================================ session

    def _on_session_update(self, msg: dict[str, Any], now: float) -> None:
        update = msg["session"]
        if update.get("type") != "realtime":
            raise SimError(
                "The simulator serves realtime sessions only.",
                code="invalid_value",
                param="session.type",
            )
        audio = update.get("audio") or {}
        fmt_in = (audio.get("input") or {}).get("format")
        fmt_out = (audio.get("output") or {}).get("format")
        for fmt, path in ((fmt_in, "input"), (fmt_out, "output")):
            if isinstance(fmt, dict) and (
                fmt.get("type") != "audio/pcm" or fmt.get("rate", 24000) != 24000
            ):
                raise SimError(
                    "The simulator supports only audio/pcm at 24000 Hz.",
                    code="invalid_value",
                    param=f"session.audio.{path}.format",
                )
        voice = (audio.get("output") or {}).get("voice")
        if (
            voice is not None
            and self.audio_out_started
            and voice != self.session["audio"]["output"]["voice"]
        ):
            raise SimError(
                "Cannot update a conversation's voice if assistant audio is present.",
                code="cannot_update_voice",
                param="session.audio.output.voice",
            )
        new = copy.deepcopy(self.session)
        td_present = isinstance(audio.get("input"), dict) and "turn_detection" in audio["input"]
        td = audio["input"]["turn_detection"] if td_present else None
        _merge(new, {k: v for k, v in update.items() if k != "tools"})
        if td_present:
            if td is None:
                new["audio"]["input"]["turn_detection"] = None
            else:
                merged = _vad_defaults(str(td.get("type")))
                merged.update(td)
                new["audio"]["input"]["turn_detection"] = merged
        if "tools" in update:
            # Echo tools without their secrets, as the real server does.
            new["tools"] = [
                {k: v for k, v in t.items() if k not in ("headers", "authorization")}
                for t in update["tools"] or []
            ]
        self.session = new
        self._configure_vad()
        self._emit({"type": "session.updated", "session": copy.deepcopy(self.session)})
        self._list_mcp_tools(update.get("tools") or [])

    def _list_mcp_tools(self, tools: list[dict[str, Any]]) -> None:
        for tool in tools:
            if tool.get("type") != "mcp":
                continue
            label = str(tool.get("server_label"))
            if label in self._mcp_listed:
                continue
            self._mcp_listed.add(label)
            item_id = self._new_id("mcpl")
            item: dict[str, Any] = {
                "id": item_id,
                "type": "mcp_list_tools",
                "server_label": label,
                "tools": [],
            }
            self._add_item(item, done=False)
            self._emit({"type": "mcp_list_tools.in_progress", "item_id": item_id})
            if "fail" in str(tool.get("server_url") or ""):
                self._emit({"type": "mcp_list_tools.failed", "item_id": item_id})
                self._emit({"type": "conversation.item.done", "item": copy.deepcopy(item)})
                continue
            item["tools"] = [copy.deepcopy(t) for t in self._mcp_tools(tool)]
            self._emit({"type": "mcp_list_tools.completed", "item_id": item_id})
            self._emit({"type": "conversation.item.done", "item": copy.deepcopy(item)})

    @staticmethod
    def _mcp_tools(tool: Mapping[str, Any]) -> list[dict[str, Any]]:
        allowed = tool.get("allowed_tools")
        if isinstance(allowed, dict):
            allowed = allowed.get("tool_names")
        if isinstance(allowed, list):
            return [t for t in MCP_TOOLS if t["name"] in allowed]
        return list(MCP_TOOLS)

    # ================================================================ input audio

    def _on_append(self, msg: dict[str, Any], now: float) -> None:
        try:
            pcm = base64.b64decode(msg["audio"], validate=True)
        except (binascii.Error, ValueError):
            raise SimError(
                "Invalid 'audio'. Expected base64-encoded audio bytes.",
                code="invalid_value",
                param="audio",
            ) from None
        self.audio_in += pcm
        if self._turn_detection() is None:
            self._vad.feed(pcm)  # keep the VAD's clock in step with the buffer
            return
        for event in self._vad.feed(pcm):
            if event.kind == "start":
                self._speech_started(event.ms)
            else:
                self._speech_stopped(event.ms, now)

    def _speech_started(self, ms: int) -> None:
        item_id = self._new_id("item")
        self._speech_item = item_id
        self._speech_start_ms = ms
        self._emit(
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": item_id}
        )
        td = self._turn_detection() or {}
        if self._response is not None and td.get("interrupt_response", True):
            self._cancel(self._response, "turn_detected")

    def _speech_stopped(self, ms: int, now: float) -> None:
        item_id = self._speech_item or self._new_id("item")
        self._speech_item = None
        self._emit(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": item_id}
        )
        pcm = bytes(self.audio_in[self._speech_start_ms * BYTES_PER_MS : ms * BYTES_PER_MS])
        self._buffer_start = ms * BYTES_PER_MS
        self._commit(item_id, pcm)
        td = self._turn_detection() or {}
        if td.get("create_response", True) and self._response is None:
            self._respond(now)

    def _commit(self, item_id: str, pcm: bytes) -> None:
        """A user audio item: committed, added, transcribed."""
        previous = self._last_item
        self._emit(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        self.user_items.append((item_id, pcm))
        self._add_item(
            {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            }
        )
        seconds = len(pcm) / BYTES_PER_MS / 1000
        transcript = self.next_transcript() or placeholder_transcript(seconds)
        self._input = _Input(prompt=transcript, fresh=True)
        if self.session["audio"]["input"].get("transcription"):
            self._emit(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item_id,
                    "content_index": 0,
                    "delta": transcript,
                }
            )
            self._emit(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": transcript,
                    "usage": {"type": "duration", "seconds": round(seconds, 3)},
                }
            )

    def _on_commit(self, msg: dict[str, Any], now: float) -> None:
        pcm = bytes(self.audio_in[self._buffer_start :])
        if len(pcm) < MIN_COMMIT_MS * BYTES_PER_MS:
            raise SimError(
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has "
                f"{len(pcm) / BYTES_PER_MS:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        self._buffer_start = len(self.audio_in)
        self._vad.reset(len(self.audio_in) // BYTES_PER_MS)
        item_id, self._speech_item = self._speech_item or self._new_id("item"), None
        self._commit(item_id, pcm)

    def _on_clear(self, msg: dict[str, Any], now: float) -> None:
        self._buffer_start = len(self.audio_in)
        self._vad.reset(len(self.audio_in) // BYTES_PER_MS)
        self._speech_item = None
        self._emit({"type": "input_audio_buffer.cleared"})

    # ================================================================ conversation items

    def _on_item_create(self, msg: dict[str, Any], now: float) -> None:
        item = copy.deepcopy(msg["item"])
        item.setdefault("id", self._new_id("item"))
        if item["id"] in self._items:
            raise SimError(
                f"Item with id '{item['id']}' already exists.",
                code="invalid_value",
                param="item.id",
            )
        t = item.get("type")
        if t == "message" and item.get("role") == "user":
            texts = [c.get("text") or "" for c in item.get("content", []) if isinstance(c, dict)]
            self._input = _Input(prompt=" ".join(x for x in texts if x), fresh=True)
        elif t == "function_call_output":
            name = self._calls.get(str(item.get("call_id")), "function")
            self._new_input().tool_outputs.append((name, str(item.get("output"))))
        elif t == "mcp_approval_response":
            request_id = str(item.get("approval_request_id"))
            if request_id not in self._approvals:
                raise SimError(
                    f"Approval request '{request_id}' not found.",
                    code="invalid_value",
                    param="item.approval_request_id",
                )
            self._new_input().approvals.append((request_id, bool(item.get("approve"))))
        if t in ("message", "function_call_output", "function_call"):
            item.setdefault("object", "realtime.item")
            item.setdefault("status", "completed")
        self._add_item(item)

    def _new_input(self) -> _Input:
        """Tool results add up until the next response; a new turn starts afresh."""
        if not self._input.fresh or self._input.prompt:
            self._input = _Input(fresh=True)
        return self._input

    def _on_item_truncate(self, msg: dict[str, Any], now: float) -> None:
        item_id, end_ms = msg["item_id"], msg["audio_end_ms"]
        record = {
            "item_id": item_id,
            "content_index": msg["content_index"],
            "audio_end_ms": end_ms,
            "accepted": False,
        }
        self.truncates.append(record)
        item = self._items.get(item_id)
        if item is None or item.get("type") != "message" or item.get("role") != "assistant":
            raise SimError(
                f"Invalid 'item_id': no assistant message item with id '{item_id}'.",
                code="invalid_value",
                param="item_id",
            )
        if msg["content_index"] != 0:
            raise SimError(
                "Invalid 'content_index': the item has one audio content part (index 0).",
                code="invalid_value",
                param="content_index",
            )
        have_ms = self._item_audio.get(item_id, 0) // BYTES_PER_MS
        record["item_audio_ms"] = have_ms
        if end_ms > have_ms:
            raise SimError(
                f"Audio content of {have_ms}ms is already shorter than {end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
            )
        record["accepted"] = True
        self._item_audio[item_id] = end_ms * BYTES_PER_MS
        self._emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": end_ms,
            }
        )

    def _on_item_retrieve(self, msg: dict[str, Any], now: float) -> None:
        item = self._items.get(msg["item_id"])
        if item is None:
            raise SimError(
                f"Item with id '{msg['item_id']}' not found.", code="invalid_value", param="item_id"
            )
        self._emit({"type": "conversation.item.retrieved", "item": copy.deepcopy(item)})

    def _on_item_delete(self, msg: dict[str, Any], now: float) -> None:
        if self._items.pop(msg["item_id"], None) is None:
            raise SimError(
                f"Item with id '{msg['item_id']}' not found.", code="invalid_value", param="item_id"
            )
        self._emit({"type": "conversation.item.deleted", "item_id": msg["item_id"]})

    # ================================================================ responses

    def _on_response_create(self, msg: dict[str, Any], now: float) -> None:
        if self._response is not None:
            raise SimError(
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
            )
        self._respond(now)

    def _on_response_cancel(self, msg: dict[str, Any], now: float) -> None:
        r = self._response
        wanted = msg.get("response_id")
        if r is None or (wanted and wanted != r.id):
            raise SimError(
                "Cancellation failed: no active response found", code="response_cancel_not_active"
            )
        self._cancel(r, "client_cancelled")

    def _respond(self, now: float) -> None:
        """Start the response to what came in since the last one."""
        inp, self._input = self._input, _Input()
        r = self._begin_response()
        if inp.approvals:
            request_id, approve = inp.approvals[-1]
            request = self._approvals.pop(request_id)
            if approve:
                output = self._mcp_call(r, request, approval_request_id=request_id)
                self._speak(r, self.answer(f"tool {request['name']} returned: {output}"), now)
            else:
                self._speak(r, f"Okay, I will not use {request['name']}.", now)
            return
        if inp.tool_outputs:
            prompt = "; ".join(f"tool {n} returned: {o}" for n, o in inp.tool_outputs)
            self._speak(r, self.answer(prompt), now)
            return
        lower = inp.prompt.lower()
        for keyword, (name, arguments) in self.function_calls.items():
            if inp.prompt and keyword.lower() in lower:
                self._function_call(r, name, arguments)
                self._finish_response(r, "completed")
                return
        mcp = [t for t in self.session.get("tools") or [] if t.get("type") == "mcp"]
        if mcp and "mcp" in lower:
            self._mcp_turn(r, mcp[0], inp.prompt, now)
            return
        self._speak(r, self.answer(inp.prompt or "(nothing)"), now)

    def _begin_response(self) -> _Response:
        r = _Response(id=self._new_id("resp"))
        self._response = r
        self._emit({"type": "response.created", "response": self._response_body(r, "in_progress")})
        self._emit(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {"name": "tokens", "limit": 400000, "remaining": 399000, "reset_seconds": 0.15},
                ],
            }
        )
        return r

    def _response_body(
        self, r: _Response, status: str, reason: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": r.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": copy.deepcopy(r.output) if status != "in_progress" else [],
            "conversation_id": f"conv_{self._tag}",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {
                "output": {
                    "format": dict(PCM_FORMAT),
                    "voice": self.session["audio"]["output"]["voice"],
                }
            },
            "usage": None,
            "metadata": None,
        }
        if status == "cancelled":
            body["status_details"] = {"type": "cancelled", "reason": reason}
        elif status == "completed":
            body["status_details"] = None
        if status != "in_progress":
            # Roughly what the real server counts: ~20 audio tokens per second.
            audio_ms = (
                sum(self._item_audio.get(str(i.get("id")), 0) for i in r.output) // BYTES_PER_MS
            )
            out_tokens = audio_ms // 50 + 1
            body["usage"] = {
                "total_tokens": 100 + out_tokens,
                "input_tokens": 100,
                "output_tokens": out_tokens,
            }
        return body

    def _finish_response(self, r: _Response, status: str, reason: str | None = None) -> None:
        self._emit({"type": "response.done", "response": self._response_body(r, status, reason)})
        if self._response is r:
            self._response = None

    def _cancel(self, r: _Response, reason: str) -> None:
        if r.speaking is not None:
            self._finish_speaking(r, "incomplete")
        self._finish_response(r, "cancelled", reason)

    def _output_item(self, r: _Response, item: dict[str, Any]) -> int:
        index = len(r.output)
        r.output.append(item)
        self._emit(
            {
                "type": "response.output_item.added",
                "response_id": r.id,
                "output_index": index,
                "item": copy.deepcopy(item),
            }
        )
        self._add_item(item, done=False)
        return index

    def _output_item_done(self, r: _Response, index: int) -> None:
        item = r.output[index]
        self._emit(
            {
                "type": "response.output_item.done",
                "response_id": r.id,
                "output_index": index,
                "item": copy.deepcopy(item),
            }
        )
        self._emit({"type": "conversation.item.done", "item": copy.deepcopy(item)})

    # ---------------------------------------------------------------- spoken answers

    def _speak(self, r: _Response, text: str, now: float) -> None:
        words = text.split() or ["..."]
        item: dict[str, Any] = {
            "id": self._new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        index = self._output_item(r, item)
        self._emit(
            {
                "type": "response.content_part.added",
                "response_id": r.id,
                "item_id": item["id"],
                "output_index": index,
                "content_index": 0,
                "part": {"type": "audio", "transcript": ""},
            }
        )
        pcm = self.synthesize(" ".join(words))
        pcm = pcm[: len(pcm) // 2 * 2] or b"\0\0"
        self._item_audio[item["id"]] = 0
        r.speaking = _Speaking(
            item=item,
            output_index=index,
            pcm=pcm,
            words=words,
            start=now,
            chunk_bytes=self.chunk_bytes,
        )
        self.advance(now)  # the first chunk goes out at once

    def _send_chunk(self, r: _Response, s: _Speaking) -> None:
        chunk = s.pcm[s.sent : s.sent + s.chunk_bytes]
        s.sent += len(chunk)
        s.chunks_sent += 1
        base = {
            "response_id": r.id,
            "item_id": s.item["id"],
            "output_index": s.output_index,
            "content_index": 0,
        }
        target = math.ceil(s.chunks_sent * len(s.words) / s.n_chunks)
        if target > s.words_sent:
            delta = " ".join(s.words[s.words_sent : target])
            if s.words_sent:
                delta = " " + delta
            s.words_sent = target
            self._emit({"type": "response.output_audio_transcript.delta", **base, "delta": delta})
        self._emit(
            {
                "type": "response.output_audio.delta",
                **base,
                "delta": base64.b64encode(chunk).decode("ascii"),
            }
        )
        self._item_audio[s.item["id"]] = self._item_audio.get(s.item["id"], 0) + len(chunk)
        self.audio_out_started = True

    def _finish_speaking(self, r: _Response, status: str) -> None:
        s = r.speaking
        assert s is not None
        r.speaking = None
        transcript = s.transcript
        base = {
            "response_id": r.id,
            "item_id": s.item["id"],
            "output_index": s.output_index,
            "content_index": 0,
        }
        self._emit({"type": "response.output_audio.done", **base})
        self._emit(
            {"type": "response.output_audio_transcript.done", **base, "transcript": transcript}
        )
        self._emit(
            {
                "type": "response.content_part.done",
                **base,
                "part": {"type": "audio", "transcript": transcript},
            }
        )
        s.item["status"] = status
        s.item["content"] = [{"type": "output_audio", "transcript": transcript}]
        self._output_item_done(r, s.output_index)

    # ---------------------------------------------------------------- function calls

    def _function_call(self, r: _Response, name: str, arguments: dict[str, Any]) -> None:
        call_id = self._new_id("call")
        self._calls[call_id] = name
        args = json.dumps(arguments)
        item = {
            "id": self._new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        index = self._output_item(r, item)
        base = {
            "response_id": r.id,
            "item_id": item["id"],
            "output_index": index,
            "call_id": call_id,
        }
        self._emit({"type": "response.function_call_arguments.delta", **base, "delta": args})
        self._emit(
            {
                "type": "response.function_call_arguments.done",
                **base,
                "name": name,
                "arguments": args,
            }
        )
        item.update(status="completed", arguments=args)
        self._output_item_done(r, index)

    # ---------------------------------------------------------------- MCP

    def _mcp_turn(self, r: _Response, server: dict[str, Any], prompt: str, now: float) -> None:
        tools = self._mcp_tools(server)
        if not tools:
            self._speak(r, "That MCP server offers no tools I may use.", now)
            return
        tool = tools[0]["name"]
        args = {"query": prompt} if tool == "search" else {"a": 2, "b": 3}
        request = {
            "id": self._new_id("mcpr"),
            "type": "mcp_approval_request",
            "server_label": str(server.get("server_label")),
            "name": tool,
            "arguments": json.dumps(args),
        }
        if self._needs_approval(server, tool):
            self._approvals[request["id"]] = request
            index = self._output_item(r, request)
            self._output_item_done(r, index)
            self._finish_response(r, "completed")
            return
        output = self._mcp_call(r, request, approval_request_id=None)
        self._speak(r, self.answer(f"tool {tool} returned: {output}"), now)

    @staticmethod
    def _needs_approval(server: Mapping[str, Any], tool: str) -> bool:
        policy = server.get("require_approval")
        if policy is None or policy == "always":
            return True
        if policy == "never":
            return False
        if isinstance(policy, dict):
            never = (policy.get("never") or {}).get("tool_names") or []
            return tool not in never
        return True

    def _mcp_call(
        self, r: _Response, request: dict[str, Any], *, approval_request_id: str | None
    ) -> str:
        """An mcp_call output item, run at once; returns its output (or error text)."""
        args = str(request["arguments"])
        item: dict[str, Any] = {
            "id": self._new_id("mcp"),
            "type": "mcp_call",
            "server_label": request["server_label"],
            "name": request["name"],
            "arguments": "",
        }
        if approval_request_id:
            item["approval_request_id"] = approval_request_id
        index = self._output_item(r, item)
        base = {"response_id": r.id, "item_id": item["id"], "output_index": index}
        self._emit({"type": "response.mcp_call_arguments.delta", **base, "delta": args})
        self._emit({"type": "response.mcp_call_arguments.done", **base, "arguments": args})
        self._emit(
            {"type": "response.mcp_call.in_progress", "item_id": item["id"], "output_index": index}
        )
        item["arguments"] = args
        parsed = json.loads(args)
        if "fail" in args.lower():
            message = f"{request['name']} failed (simulated)"
            item["error"] = {"type": "tool_execution_error", "message": message}
            self._emit(
                {"type": "response.mcp_call.failed", "item_id": item["id"], "output_index": index}
            )
            self._output_item_done(r, index)
            return message
        if request["name"] == "add":
            output = str(parsed.get("a", 0) + parsed.get("b", 0))
        else:
            output = f"Simulated result for {parsed.get('query', '')!r}."
        item["output"] = output
        self._emit(
            {"type": "response.mcp_call.completed", "item_id": item["id"], "output_index": index}
        )
        self._output_item_done(r, index)
        return output


_HANDLERS: dict[str, Callable[[SimProtocol, dict[str, Any], float], None]] = {
    "session.update": SimProtocol._on_session_update,
    "input_audio_buffer.append": SimProtocol._on_append,
    "input_audio_buffer.commit": SimProtocol._on_commit,
    "input_audio_buffer.clear": SimProtocol._on_clear,
    "conversation.item.create": SimProtocol._on_item_create,
    "conversation.item.truncate": SimProtocol._on_item_truncate,
    "conversation.item.retrieve": SimProtocol._on_item_retrieve,
    "conversation.item.delete": SimProtocol._on_item_delete,
    "response.create": SimProtocol._on_response_create,
    "response.cancel": SimProtocol._on_response_cancel,
}
