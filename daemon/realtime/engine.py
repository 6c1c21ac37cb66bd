"""Sans-I/O realtime protocol engine.

Modelled on the ``websockets`` protocol objects: server frames and local
inputs (mic audio, played-sample counts, interrupts, tool outputs) go in,
client events to send (``data_to_send``) and session events
(``events_received``) come out. No sockets, no clocks, no asyncio: the
transport in session.py only pumps, and tests drive this with scripts.

Input accepts GA and beta spellings (normalised to GA); output is GA only.
Nothing a server sends makes this raise: bad frames become ``error`` events.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any

from daemon import events as ev
from daemon.events import ErrorInfo, Event, HistoryItem, McpTool

from . import wire as w
from .audio_chunks import Chunker
from .failures import from_status_details, kind_of
from .history import History
from .playback import Playback
from .settings import SessionSettings
from .wire import GA_SERVER_EVENTS, normalise

__all__ = ["GA_SERVER_EVENTS", "RealtimeProtocol", "normalise"]

log = logging.getLogger(__name__)


# How many sent response.create payloads to remember for re-queueing after a
# conversation_already_has_active_response error (they are answered quickly).
_SENT_CREATES_KEPT = 16


class RealtimeProtocol:
    """The realtime conversation as a state machine; see the module docstring."""

    def __init__(
        self,
        settings: SessionSettings,
        *,
        agent_name: str = "assistant",
        playback_tracking: bool = True,
    ) -> None:
        self.settings = settings
        self.agent_name = agent_name
        self.session_id = ""
        self.configured = False
        self.closed = False
        self.stop_reason: str | None = None
        self._connected = False
        self._out: list[dict[str, Any]] = []
        self._events: list[Event] = []
        self._mic = Chunker()
        # responses
        self._active_response: str | None = None
        self._requested: dict[str, Any] | None = None  # sent response.create awaiting created
        self._create_queue: list[dict[str, Any]] = []
        self._sent_creates: dict[str, dict[str, Any]] = {}
        self._create_seq = 0
        self._cancel_on_create = False
        self._want_tool_response = False
        self._interrupted_responses: set[str] = set()
        self._response_items: dict[str, list[str]] = {}
        # audio
        self._playback = Playback(tracking=playback_tracking)
        self._transcript_done: set[str] = set()
        # history and tools
        self._history = History()
        self._calls: dict[str, str] = {}  # call_id -> tool name
        self._calls_started: set[str] = set()
        self._calls_pending: set[str] = set()
        self._approvals_seen: set[str] = set()
        self._mcp_calls_seen: set[str] = set()
        self._mcp_tools: dict[str, tuple[McpTool, ...]] = {}
        self._mcp_tools_shown: tuple[McpTool, ...] = ()
        # MCP server labels of the active agent (set by daemon.agents before a
        # handoff's update_session); None shows every server's tools.
        self.mcp_server_labels: frozenset[str] | None = None
        self._approval_seq = 0
        self._expired = False
        self._awaiting_answer = False  # the user's turn ended; the server will answer

    def __repr__(self) -> str:
        return (
            f"RealtimeProtocol(session_id={self.session_id!r}, configured={self.configured}, "
            f"response_active={self.response_active}, closed={self.closed})"
        )

    # ================================================================ state

    @property
    def response_active(self) -> bool:
        return self._active_response is not None or self._requested is not None

    @property
    def expecting_server(self) -> bool:
        """An answer is expected or arriving: the server should be sending (liveness.py).

        True from the user's turn end (server VAD creates the response) or a sent
        response.create until response.done, an error that ends it, or a timeout.
        """
        if self.closed or not self.configured:
            return False
        return self._awaiting_answer or self.response_active

    @property
    def history(self) -> tuple[HistoryItem, ...]:
        return self._history.snapshot()

    def audio_ms_received(self, item_id: str) -> int:
        return self._playback.received_ms(item_id)

    # ================================================================ outputs

    def data_to_send(self) -> list[dict[str, Any]]:
        """Client events to send, in order (nothing until connection_made)."""
        if not self._connected:
            return []
        out, self._out = self._out, []
        return out

    def events_received(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def _send(self, event: dict[str, Any]) -> None:
        if not self.closed:
            self._out.append(event)

    def _emit(self, event: Event) -> None:
        if not self.closed:
            self._events.append(event)

    def _emit_all(self, events: list[Event]) -> None:
        for event in events:
            self._emit(event)

    def _error(self, type_: str, message: str, **kw: Any) -> None:
        self._emit(ev.Error(error=ErrorInfo(type=type_, message=message, **kw)))

    # ================================================================ connection

    def connection_made(self) -> None:
        """The socket is open: the session.update goes first, before anything queued."""
        if self.closed or self._connected:
            return
        self._connected = True
        self._out.insert(0, self.settings.session_update())

    def connection_lost(
        self,
        code: int | None,
        reason: str = "",
        *,
        by_client: bool = False,
        error: ErrorInfo | None = None,
    ) -> None:
        """The socket is gone: emit agent_stopped once, then ignore everything.

        An unexpected loss is one typed ``error`` first: ``error`` when the transport
        knows why (e.g. frame_too_large), else a generic ``network`` connection_lost.
        """
        if self.closed:
            return
        if by_client:
            stop = "client_closed"
        elif self._expired or code == 1001 or "maximum duration" in reason.lower():
            stop = "session_expired"
        elif code == 1000:
            stop = "closed"
        else:
            stop = "connection_lost"
            why = f"the connection was lost (close code {code}{', ' + reason if reason else ''})"
            generic = ErrorInfo(
                type="network_error", message=why, code="connection_lost", kind="network"
            )
            self._emit(ev.Error(error=error or generic))
        self._stop(stop, code)

    def connection_failed(self, error: ErrorInfo | None = None) -> None:
        """The socket never opened (or the session was never configured): ``error``
        (a typed failure, failures.py) then agent_stopped(reason="connect_failed")."""
        if not self.closed:
            if error is not None:
                self._emit(ev.Error(error=error))
            self._stop("connect_failed", None)

    def link_dead(self, message: str) -> None:
        """The link stopped carrying data (liveness.py said so): a typed ``network``
        failure, then agent_stopped(reason="connection_lost"). The transport aborts
        the socket next."""
        if self.closed:
            return
        self._emit(
            ev.Error(
                error=ErrorInfo(
                    type="network_error", message=message, code="connection_lost", kind="network"
                )
            )
        )
        self._stop("connection_lost", None)

    def response_timed_out(self, seconds: float) -> None:
        """The link is alive but the awaited answer sent nothing for ``seconds``.

        A ``server`` failure: a started response is cancelled and ended (agent_end
        status "failed", its audio stopped); a requested or awaited one (server VAD
        always answers a turn) stops being awaited.
        """
        if self.closed:
            return
        what = "the response stalled" if self.response_active else "no response to the user's turn"
        self._emit(
            ev.Error(
                error=ErrorInfo(
                    type="server_error",
                    message=f"{what}: nothing from the server for {seconds:g} s",
                    code="response_timeout",
                    kind="server",
                )
            )
        )
        self._end_response_locally()

    def _end_response_locally(self) -> None:
        """End the active (or requested) response as if response.done(failed) came."""
        self._awaiting_answer = False
        self._create_queue.clear()
        self._want_tool_response = False
        rid = self._active_response
        if rid is not None:
            self._send({"type": "response.cancel", "response_id": rid})
            self._interrupted_responses.add(rid)  # late audio of it must not play
            self._finish_response({"id": rid, "status": "failed"})
        elif self._requested is not None:
            self._requested = None
            self._cancel_on_create = True  # if it is created after all, cancel it

    def _stop(self, reason: str, code: int | None) -> None:
        self._emit(ev.AgentStopped(reason=reason, code=code))
        self.closed = True
        self.stop_reason = reason
        self._out.clear()
        self._mic.clear()
        self._create_queue.clear()

    # ================================================================ local inputs

    def send_audio(self, pcm: bytes) -> None:
        """Mic audio (PCM16 LE mono 24 kHz); sent in 20 ms appends once configured."""
        if self.closed:
            return
        self._mic.write(pcm)
        if self.configured:
            self._flush_mic()

    def flush_audio(self) -> None:
        """Send the partial chunk left over (e.g. before a manual commit)."""
        if self.configured and not self.closed:
            self._flush_mic()
            rest = self._mic.rest()
            if rest:
                self._append(rest)

    def _flush_mic(self) -> None:
        for chunk in self._mic.chunks():
            self._append(chunk)

    def _append(self, chunk: bytes) -> None:
        self._send(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode("ascii")}
        )

    def playback_progress(self, item_id: str, samples_played: int) -> None:
        """Cumulative samples of ``item_id`` the speaker has actually played."""
        if not self.closed:
            self._playback.progress(item_id, samples_played)

    def playback_finished(self, item_id: str) -> None:
        """The speaker drained ``item_id``: it can no longer be interrupted."""
        self._playback.finished(item_id)

    def interrupt(self) -> None:
        """Local barge-in (button): truncate what plays, cancel the active response."""
        if self.closed:
            return
        self._interrupt_playback()
        # The user asked for silence: nothing queued may start talking again.
        self._create_queue.clear()
        self._want_tool_response = False
        self._cancel_response()

    def _cancel_response(self) -> None:
        if self._active_response is not None:
            self._interrupted_responses.add(self._active_response)
            self._send({"type": "response.cancel", "response_id": self._active_response})
        elif self._requested is not None:
            self._cancel_on_create = True  # cancel it as soon as it has an id

    def _interrupt_playback(self) -> bool:
        """Truncate every item still playing; True if anything was.

        audio_interrupted goes out before the history_updated that records the
        cut: the speaker must be flushed first, the bookkeeping can follow.
        """
        cuts = self._playback.cut()
        if not cuts:
            return False
        for c in cuts:
            if c.response_id:
                self._interrupted_responses.add(c.response_id)
            self._send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": c.item_id,
                    "content_index": 0,
                    "audio_end_ms": c.played_ms,
                }
            )
        self._emit(ev.AudioInterrupted(item_id=cuts[0].item_id, played_ms=cuts[0].played_ms))
        for c in cuts:
            self._update(c.item_id, truncated_ms=c.played_ms, status="incomplete")
        return True

    def create_response(self, **response: Any) -> None:
        """Ask for a response; queued until no response is active."""
        if self.closed:
            return
        self._create_queue.append(response)
        self._pump_responses()

    def send_text(self, text: str) -> None:
        """A user text message, then a response to it."""
        self._send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        self.create_response()

    def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        """Answer a function call; one response.create follows once all calls are answered."""
        if self.closed:
            return
        self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )
        self._calls_pending.discard(call_id)
        self._emit(
            ev.AgentToolEnd(
                agent=self.agent_name,
                tool=self._calls.get(call_id, ""),
                call_id=call_id,
                output=output,
                is_error=is_error,
            )
        )
        self._want_tool_response = True
        self._pump_responses()

    def approve_tool(self, approval_id: str, approve: bool = True) -> None:
        """Answer an MCP approval request (tool_approval_requested), then respond."""
        if self.closed:
            return
        self._approval_seq += 1
        self._send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "mcp_approval_response",
                    "id": f"voicepi_mcpr_{self._approval_seq}",
                    "approval_request_id": approval_id,
                    "approve": approve,
                },
            }
        )
        self.create_response()

    def update_session(self, settings: SessionSettings) -> None:
        previous, self.settings = self.settings, settings
        if self._connected:
            self._send(settings.session_update(previous=previous))
        self._mcp_tools_changed()  # e.g. a handoff to an agent with other MCP servers

    def send_raw(self, event: dict[str, Any]) -> None:
        """Escape hatch: any client event, sent as is (in order)."""
        self._send(dict(event))

    def _pump_responses(self) -> None:
        """Start the next queued response if none is active (never two at once)."""
        if self.response_active or self.closed:
            return
        if self._create_queue:
            params = self._create_queue.pop(0)
            if not self._calls_pending:
                self._want_tool_response = False  # this response sees the outputs too
        elif self._want_tool_response and not self._calls_pending:
            params = {}
            self._want_tool_response = False
        else:
            return
        self._create_seq += 1
        event_id = f"voicepi_create_{self._create_seq}"
        msg: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if params:
            msg["response"] = params
        self._requested = params
        self._sent_creates[event_id] = params
        while len(self._sent_creates) > _SENT_CREATES_KEPT:
            del self._sent_creates[next(iter(self._sent_creates))]
        self._send(msg)

    # ================================================================ server input

    def receive_text(self, frame: str | bytes) -> None:
        """One websocket frame from the server; never raises."""
        if self.closed:
            return
        try:
            text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            self._error(
                "invalid_frame",
                f"server frame is not valid JSON ({type(exc).__name__}): {w.preview(frame)}",
            )
            return
        if not isinstance(data, dict):
            self._error(
                "invalid_event",
                f"server event must be a JSON object, got {type(data).__name__}: {w.preview(text)}",
            )
            return
        self.receive_event(data)

    def receive_event(self, event: dict[str, Any]) -> None:
        """A decoded server event (GA or beta spelling); never raises."""
        if self.closed:
            return
        try:
            self._receive(event)
        except Exception as exc:  # untrusted input must never end the session
            log.debug("malformed server event", exc_info=True)
            self._error(
                "invalid_event",
                f"could not handle server event {w.text(event, 'type')!r}: "
                f"{type(exc).__name__}: {exc}",
            )

    def _receive(self, raw: dict[str, Any]) -> None:
        if not isinstance(raw, dict):
            kind = type(raw).__name__
            self._error("invalid_event", f"server event must be an object, got {kind}")
            return
        event = w.normalise(raw)
        self._emit(ev.TransportEvent(data=event))
        t = event.get("type")
        if not isinstance(t, str):
            self._error("invalid_event", "server event has no string 'type'")
            return
        handler = self._HANDLERS.get(t)
        if handler is not None:
            handler(self, event)
        elif t not in w.GA_SERVER_EVENTS:
            self._error("unknown_event", f"unknown server event type {t!r}")

    # ---------------------------------------------------------------- session

    def _on_session_created(self, e: dict[str, Any]) -> None:
        self.session_id = w.text(w.obj(e, "session"), "id") or self.session_id

    def _on_session_updated(self, e: dict[str, Any]) -> None:
        self.session_id = w.text(w.obj(e, "session"), "id") or self.session_id
        if self.configured:
            return
        self.configured = True
        self._emit(
            ev.SessionConnected(
                session_id=self.session_id,
                model=w.text(w.obj(e, "session"), "model") or self.settings.model,
            )
        )
        # Pre-roll said while connecting goes out now, in order.
        self._flush_mic()
        self._pump_responses()

    def _on_error(self, e: dict[str, Any]) -> None:
        err = w.obj(e, "error")
        code = w.opt_text(err, "code")
        # A server_error, quota, rate limit or auth error is a failure (failures.py);
        # most other errors (commit_empty, cancel_not_active) leave the session as it was.
        kind = kind_of(w.opt_text(err, "type"), code)
        info = ErrorInfo(
            type=w.text(err, "type") or "server_error",
            message=w.text(err, "message") or "(no message)",
            code=code,
            param=w.opt_text(err, "param"),
            event_id=w.opt_text(err, "event_id"),
            kind=kind,
        )
        if kind is not None:
            # No response.done may follow (seen with server_error mid-answer): end it here.
            self._emit(ev.Error(error=info))
            self._end_response_locally()
            return
        if code == "session_expired":
            self._expired = True
        elif code == "conversation_already_has_active_response":
            # Our response.create lost a race with a server-created response: retry later.
            params = self._sent_creates.pop(info.event_id or "", None)
            if params is not None:
                if self._requested is params:
                    self._requested = None
                self._create_queue.insert(0, params)
        self._emit(ev.Error(error=info))

    # ---------------------------------------------------------------- user turn

    def _on_speech_started(self, e: dict[str, Any]) -> None:
        self._awaiting_answer = False
        self._emit(
            ev.UserStartedSpeaking(
                item_id=w.text(e, "item_id"), audio_ms=w.integer(e, "audio_start_ms")
            )
        )
        if self._interrupt_playback() and not self.settings.interrupt_response:
            self._cancel_response()  # the server keeps going on its own: stop it

    def _on_speech_stopped(self, e: dict[str, Any]) -> None:
        self._awaiting_answer = self.settings.create_response
        self._emit(
            ev.UserStoppedSpeaking(
                item_id=w.text(e, "item_id"), audio_ms=w.integer(e, "audio_end_ms")
            )
        )

    def _on_transcription_completed(self, e: dict[str, Any]) -> None:
        item_id = w.text(e, "item_id")
        transcript = w.text(e, "transcript")
        if item_id:
            old = self._history.get(item_id)
            if old is None:
                self._upsert(
                    HistoryItem(item_id=item_id, kind="message", role="user", transcript=transcript)
                )
            else:
                self._upsert(dataclasses.replace(old, transcript=transcript))
        self._emit(ev.UserTranscript(transcript=transcript, item_id=item_id))

    def _on_transcription_failed(self, e: dict[str, Any]) -> None:
        err = w.obj(e, "error")
        self._emit(
            ev.Error(
                error=ErrorInfo(
                    type=w.text(err, "type") or "transcription_failed",
                    message=w.text(err, "message") or "input audio transcription failed",
                    code=w.opt_text(err, "code"),
                    param=w.opt_text(err, "param"),
                )
            )
        )

    # ---------------------------------------------------------------- conversation items

    def _on_item(self, e: dict[str, Any]) -> None:
        item = w.obj(e, "item")
        self._item_from_server(item)
        if w.text(item, "type") == "mcp_list_tools":
            self._mcp_list(item)

    def _on_item_deleted(self, e: dict[str, Any]) -> None:
        self._emit_all(self._history.delete(w.text(e, "item_id")))

    def _on_item_truncated(self, e: dict[str, Any]) -> None:
        self._update(
            w.text(e, "item_id"), truncated_ms=w.integer(e, "audio_end_ms"), status="incomplete"
        )

    def _track(self, rid: str, item_id: str) -> None:
        """Remember which items a response produced (for agent_end and its cleanup)."""
        if rid and item_id:
            items = self._response_items.setdefault(rid, [])
            if item_id not in items:
                items.append(item_id)

    def _on_output_item_added(self, e: dict[str, Any]) -> None:
        h = self._item_from_server(w.obj(e, "item"))
        if h is not None:
            self._track(w.text(e, "response_id") or (self._active_response or ""), h.item_id)

    def _on_output_item_done(self, e: dict[str, Any]) -> None:
        item = w.obj(e, "item")
        self._item_from_server(item)
        self._item_finished(item)

    def _item_finished(self, item: dict[str, Any]) -> None:
        """Tool calls, MCP results and approvals complete with their output item."""
        t = w.text(item, "type")
        if t == "function_call" and w.text(item, "status") != "incomplete":
            self._tool_call(
                w.text(item, "call_id"), w.text(item, "name"), w.text(item, "arguments")
            )
        elif t == "mcp_call":
            item_id = w.text(item, "id")
            if item_id and item_id not in self._mcp_calls_seen:
                self._mcp_calls_seen.add(item_id)
                err = item.get("error")
                if isinstance(err, dict):
                    error = w.text(err, "message") or w.text(err, "type") or "error"
                else:
                    error = err if isinstance(err, str) else ""
                self._emit(
                    ev.McpToolCallCompleted(
                        agent=self.agent_name,
                        item=self._history.get(item_id),
                        server_label=w.text(item, "server_label"),
                        error=error,
                    )
                )
        elif t == "mcp_approval_request":
            approval_id = w.text(item, "id")
            if approval_id and approval_id not in self._approvals_seen:
                self._approvals_seen.add(approval_id)
                self._emit(
                    ev.ToolApprovalRequested(
                        approval_id=approval_id,
                        agent=self.agent_name,
                        tool=w.text(item, "name"),
                        arguments=w.text(item, "arguments"),
                        server_label=w.text(item, "server_label"),
                    )
                )
        elif t == "mcp_list_tools":
            self._mcp_list(item)

    def _mcp_list(self, item: dict[str, Any]) -> None:
        label = w.text(item, "server_label")
        raw_tools = item.get("tools")
        if not isinstance(raw_tools, list):
            return
        tools = tuple(
            McpTool(
                server_label=label, name=w.text(t, "name"), description=w.text(t, "description")
            )
            for t in raw_tools
            if isinstance(t, dict)
        )
        if self._mcp_tools.get(label) != tools:
            self._mcp_tools[label] = tools
            self._mcp_tools_changed()

    def _mcp_tools_changed(self) -> None:
        """mcp_tools_changed with the tools of the active agent's servers (all if unset)."""
        labels = self.mcp_server_labels
        every = tuple(
            t
            for ts in self._mcp_tools.values()
            for t in ts
            if labels is None or t.server_label in labels
        )
        if every != self._mcp_tools_shown:
            self._mcp_tools_shown = every
            self._emit(ev.McpToolsChanged(tools=every))

    def _on_function_call_arguments_done(self, e: dict[str, Any]) -> None:
        call_id = w.text(e, "call_id")
        item_id = w.text(e, "item_id")
        name = w.text(e, "name") or self._calls.get(call_id, "")
        if not name and item_id in self._history:
            name = self._history[item_id].name
        self._update(item_id, arguments=w.text(e, "arguments"), call_id=call_id, name=name)
        self._tool_call(call_id, name, w.text(e, "arguments"))

    def _tool_call(self, call_id: str, name: str, arguments: str) -> None:
        if not call_id or call_id in self._calls_started:
            return
        self._calls[call_id] = name
        self._calls_started.add(call_id)
        self._calls_pending.add(call_id)
        self._emit(
            ev.AgentToolStart(
                agent=self.agent_name, tool=name, call_id=call_id, arguments=arguments
            )
        )

    # ---------------------------------------------------------------- responses

    def _on_response_created(self, e: dict[str, Any]) -> None:
        rid = w.text(w.obj(e, "response"), "id")
        self._active_response = rid
        self._requested = None
        self._awaiting_answer = False
        self._response_items.setdefault(rid, [])
        self._emit(ev.AgentStart(agent=self.agent_name, response_id=rid))
        if self._cancel_on_create:
            self._cancel_on_create = False
            self._cancel_response()

    def _on_audio_delta(self, e: dict[str, Any]) -> None:
        item_id = w.text(e, "item_id")
        rid = w.text(e, "response_id") or (self._active_response or "")
        if self._playback.was_cut(item_id) or rid in self._interrupted_responses:
            return  # the speaker was flushed: late audio of a cut answer must not play
        delta = e.get("delta")
        if not isinstance(delta, str):
            self._error("invalid_event", "response.output_audio.delta has no string 'delta'")
            return
        if not item_id:  # audio that could never be truncated must not play
            self._error("invalid_event", "response.output_audio.delta has no 'item_id'")
            return
        try:
            data = base64.b64decode(delta, validate=True)
        except (binascii.Error, ValueError):
            self._error("invalid_event", "response.output_audio.delta: 'delta' is not base64")
            return
        active = self._active_response
        if active is None or (rid and rid != active):
            # Nothing would ever end it (no response.done of its own): it must not hold
            # the speaker. The server streams audio only inside the active response.
            self._error(
                "invalid_event",
                f"audio for item {item_id[:40]!r} outside the active response: dropped",
            )
            return
        if item_id not in self._history:
            self._upsert(HistoryItem(item_id=item_id, kind="message", role="assistant"))
        self._emit_all(self._playback.received(item_id, rid, len(data)))
        self._track(rid, item_id)
        self._emit(
            ev.Audio(
                data=data,
                item_id=item_id,
                content_index=w.integer(e, "content_index"),
                response_id=rid,
            )
        )

    def _on_audio_done(self, e: dict[str, Any]) -> None:
        self._emit_all(self._playback.audio_done(w.text(e, "item_id")))

    def _on_transcript_delta(self, e: dict[str, Any]) -> None:
        item_id = w.text(e, "item_id")
        delta = w.text(e, "delta")
        self._track(w.text(e, "response_id") or (self._active_response or ""), item_id)
        old = self._history.get(item_id)
        if item_id and old is None:
            self._upsert(
                HistoryItem(item_id=item_id, kind="message", role="assistant", transcript=delta)
            )
        elif old is not None:
            self._upsert(dataclasses.replace(old, transcript=old.transcript + delta))
        self._emit(ev.AssistantTranscriptDelta(delta=delta, item_id=item_id))

    def _on_transcript_done(self, e: dict[str, Any]) -> None:
        item_id = w.text(e, "item_id")
        key = "transcript" if "transcript" in e else "text"
        old = self._history.get(item_id)
        if self._playback.was_cut(item_id) and old is not None:
            text = old.transcript  # what was received before the cut
        else:
            text = w.text(e, key) or (old.transcript if old else "")
            if old is not None and text:
                self._upsert(dataclasses.replace(old, transcript=text))
        self._assistant_transcript(item_id, text)

    def _assistant_transcript(self, item_id: str, text: str) -> None:
        if item_id in self._transcript_done:
            return
        self._transcript_done.add(item_id)
        self._emit(ev.AssistantTranscript(transcript=text, item_id=item_id))

    def _on_response_done(self, e: dict[str, Any]) -> None:
        response = w.obj(e, "response")
        status = w.text(response, "status")
        if status == "failed":
            # The reason (insufficient_quota, rate limits, server_error) is a failure.
            self._emit(
                ev.Error(error=from_status_details(status, w.obj(response, "status_details")))
            )
            self._create_queue.clear()
            self._want_tool_response = False
        self._finish_response(response)

    def _finish_response(self, response: dict[str, Any]) -> None:
        rid = w.text(response, "id") or (self._active_response or "")
        for raw in w.array(response, "output"):
            if isinstance(raw, dict):
                h = self._item_from_server(raw)
                if h is not None:
                    self._track(rid, h.item_id)
                self._item_finished(raw)
        item_ids = self._response_items.pop(rid, [])
        texts: list[str] = []
        for item_id in item_ids:
            # A cut or failed answer may skip output_audio.done.
            self._emit_all(self._playback.audio_done(item_id))
            h = self._history.get(item_id)
            if h is None or h.kind != "message" or h.role != "assistant":
                continue
            if h.transcript or self._playback.started(item_id):
                self._assistant_transcript(item_id, h.transcript)
            if h.transcript:
                texts.append(h.transcript)
        if self._active_response == rid or not rid:
            self._active_response = None
        self._interrupted_responses.discard(rid)
        self._emit(
            ev.AgentEnd(
                agent=self.agent_name,
                output=" ".join(texts),
                response_id=rid,
                status=w.text(response, "status") or "completed",
            )
        )
        self._pump_responses()

    # ---------------------------------------------------------------- history

    def _upsert(self, item: HistoryItem) -> None:
        self._emit_all(self._history.upsert(item))

    def _update(self, item_id: str, **changes: Any) -> None:
        self._emit_all(self._history.update(item_id, **changes))

    def _item_from_server(self, raw: dict[str, Any]) -> HistoryItem | None:
        """Merge a server item snapshot into the history (stable server ids)."""
        cut = self._playback.was_cut(w.text(raw, "id"))
        item, events = self._history.merge(raw, cut=cut)
        self._emit_all(events)
        return item

    _HANDLERS: dict[str, Callable[[RealtimeProtocol, dict[str, Any]], None]] = {}


RealtimeProtocol._HANDLERS = {
    "session.created": RealtimeProtocol._on_session_created,
    "session.updated": RealtimeProtocol._on_session_updated,
    "error": RealtimeProtocol._on_error,
    "input_audio_buffer.speech_started": RealtimeProtocol._on_speech_started,
    "input_audio_buffer.speech_stopped": RealtimeProtocol._on_speech_stopped,
    "conversation.item.input_audio_transcription.completed": (
        RealtimeProtocol._on_transcription_completed
    ),
    "conversation.item.input_audio_transcription.failed": RealtimeProtocol._on_transcription_failed,
    "conversation.item.added": RealtimeProtocol._on_item,
    "conversation.item.done": RealtimeProtocol._on_item,
    "conversation.item.retrieved": RealtimeProtocol._on_item,
    "conversation.item.deleted": RealtimeProtocol._on_item_deleted,
    "conversation.item.truncated": RealtimeProtocol._on_item_truncated,
    "response.created": RealtimeProtocol._on_response_created,
    "response.output_item.added": RealtimeProtocol._on_output_item_added,
    "response.output_item.done": RealtimeProtocol._on_output_item_done,
    "response.function_call_arguments.done": RealtimeProtocol._on_function_call_arguments_done,
    "response.output_audio.delta": RealtimeProtocol._on_audio_delta,
    "response.output_audio.done": RealtimeProtocol._on_audio_done,
    "response.output_audio_transcript.delta": RealtimeProtocol._on_transcript_delta,
    "response.output_audio_transcript.done": RealtimeProtocol._on_transcript_done,
    "response.output_text.delta": RealtimeProtocol._on_transcript_delta,
    "response.output_text.done": RealtimeProtocol._on_transcript_done,
    "response.done": RealtimeProtocol._on_response_done,
}
