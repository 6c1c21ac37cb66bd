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
from collections.abc import Callable, Mapping
from typing import Any

from daemon.realtime import validate
from daemon.vocab import PCM_RATE

from .answers import placeholder_transcript
from .model import (
    BYTES_PER_MS,
    MIN_COMMIT_MS,
    SEMANTIC_SILENCE_MS,
    Input,
    Response,
    SimError,
    default_session,
    merge,
    vad_defaults,
)
from .responding import Responding
from .vad import EnergyVad, threshold_to_dbfs


class SimProtocol(Responding):
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
        self._response: Response | None = None
        self._input = Input()
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
                fmt.get("type") != "audio/pcm" or fmt.get("rate", PCM_RATE) != PCM_RATE
            ):
                raise SimError(
                    f"The simulator supports only audio/pcm at {PCM_RATE} Hz.",
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
        merge(new, {k: v for k, v in update.items() if k != "tools"})
        if td_present:
            if td is None:
                new["audio"]["input"]["turn_detection"] = None
            else:
                merged = vad_defaults(str(td.get("type")))
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
        self._input = Input(prompt=transcript, fresh=True)
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
            self._input = Input(prompt=" ".join(x for x in texts if x), fresh=True)
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

    def _new_input(self) -> Input:
        """Tool results add up until the next response; a new turn starts afresh."""
        if not self._input.fresh or self._input.prompt:
            self._input = Input(fresh=True)
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
