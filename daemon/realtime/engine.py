"""Sans-I/O realtime protocol engine.

Modelled on the ``websockets`` protocol objects: server frames and local
inputs (mic audio, played-sample counts, interrupts, tool outputs) go in,
client events to send (``data_to_send``) and session events
(``events_received``) come out. No sockets, no clocks, no asyncio: the
transport in session.py only pumps, and tests drive this with scripts.

Input accepts GA and beta spellings (normalised to GA); output is GA only.
Nothing a server sends makes this raise: bad frames become ``error`` events.

The engine keeps the connection state, the local inputs and the handler
table; ``conversation.py`` holds the conversation's handlers, which delegate
to small units that return what they cause: ``wire`` (names, normalising,
field access, client events), ``responses`` (the response queue),
``playback`` (played samples, truncation), ``history`` (items, transcripts)
and ``tools`` (calls, MCP).

After ``agent_stopped`` (state ``CLOSED``) every input is ignored and returns
None, ``data_to_send`` returns ``[]`` and ``events_received`` returns what was
left, ending with ``agent_stopped``; nothing raises. Feeding server events
before ``connection_made`` raises ``RuntimeError`` (no server can speak yet).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from daemon import events as ev
from daemon.events import ErrorInfo, Event, HistoryItem

from . import wire as w
from .audio_chunks import Chunker
from .conversation import Conversation
from .failures import kind_of
from .responses import Phase
from .settings import SessionSettings
from .wire import GA_SERVER_EVENTS, normalise

__all__ = ["GA_SERVER_EVENTS", "ConnectionState", "Phase", "RealtimeProtocol", "normalise"]

log = logging.getLogger(__name__)


class ConnectionState(enum.Enum):
    """Where the connection is; only ever moves forward (``CLOSED`` is final)."""

    CONNECTING = "connecting"  # no socket yet: client events wait
    CONFIGURING = "configuring"  # socket open, session.update sent, session.updated not yet
    OPEN = "open"  # configured: mic audio and responses flow
    EXPIRING = "expiring"  # configured, and the server said the session expired
    CLOSED = "closed"  # agent_stopped emitted: every input is ignored


_CONFIGURED = (ConnectionState.OPEN, ConnectionState.EXPIRING)


class RealtimeProtocol(Conversation):
    """The realtime conversation as a state machine; see the module docstring."""

    def __init__(
        self,
        settings: SessionSettings,
        *,
        agent_name: str = "assistant",
        playback_tracking: bool = True,
    ) -> None:
        super().__init__(agent_name=agent_name, playback_tracking=playback_tracking)
        self.settings = settings
        self.session_id = ""
        self.state = ConnectionState.CONNECTING
        self.stop_reason: str | None = None
        self._mic = Chunker()

    def __repr__(self) -> str:
        return (
            f"RealtimeProtocol(session_id={self.session_id!r}, state={self.state.value}, "
            f"response={self._responses.phase.value})"
        )

    # ================================================================ state

    @property
    def configured(self) -> bool:
        """session.updated was seen and the session has not ended (OPEN or EXPIRING)."""
        return self.state in _CONFIGURED

    @property
    def closed(self) -> bool:
        """agent_stopped was emitted; every input is ignored from now on."""
        return self.state is ConnectionState.CLOSED

    @property
    def response_active(self) -> bool:
        """A response is requested or being created: another one would wait."""
        return self._responses.busy

    @property
    def response_phase(self) -> Phase:
        """Where the current response is: IDLE, REQUESTED or ACTIVE."""
        return self._responses.phase

    @property
    def expecting_server(self) -> bool:
        """An answer is expected or arriving: the server should be sending (liveness.py).

        True from the user's turn end (server VAD creates the response) or a sent
        response.create until response.done, an error that ends it, or a timeout.
        """
        if self.state not in _CONFIGURED:
            return False
        return self._responses.awaiting_answer or self.response_active

    @property
    def history(self) -> tuple[HistoryItem, ...]:
        """Every conversation item, oldest first."""
        return self._history.snapshot()

    def audio_ms_received(self, item_id: str) -> int:
        """Milliseconds of answer audio received for ``item_id`` (0 if none)."""
        return self._playback.received_ms(item_id)

    @property
    def mcp_server_labels(self) -> frozenset[str] | None:
        """MCP servers whose tools ``mcp_tools_changed`` shows (None: every server)."""
        return self._tools.mcp_server_labels

    def set_agent(self, name: str, mcp_server_labels: frozenset[str] | None) -> None:
        """Name the agent later events carry and the MCP servers whose tools it sees.

        Call before ``update_session`` on a handoff: that reports the agent's tools.
        """
        self.agent_name = name
        self._tools.mcp_server_labels = mcp_server_labels

    # ================================================================ outputs

    def data_to_send(self) -> list[dict[str, Any]]:
        """Client events to send, in order (nothing until connection_made or once closed)."""
        if self.state is ConnectionState.CONNECTING:
            return []
        out, self._out = self._out, []
        return out

    def events_received(self) -> list[Event]:
        """Session events since the last call, in order (``agent_stopped`` is the last ever)."""
        out, self._events = self._events, []
        return out

    # ================================================================ connection

    def connection_made(self) -> None:
        """The socket is open: the session.update goes first, before anything queued."""
        if self.state is not ConnectionState.CONNECTING:
            return
        self.state = ConnectionState.CONFIGURING
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
        expired = self.state is ConnectionState.EXPIRING
        if by_client:
            stop = "client_closed"
        elif expired or code == 1001 or "maximum duration" in reason.lower():
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
        self._error("network_error", message, code="connection_lost", kind="network")
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
        self._error(
            "server_error",
            f"{what}: nothing from the server for {seconds:g} s",
            code="response_timeout",
            kind="server",
        )
        self._end_response_locally()

    def _stop(self, reason: str, code: int | None) -> None:
        self._emit(ev.AgentStopped(reason=reason, code=code))
        self.state = ConnectionState.CLOSED
        self.stop_reason = reason
        self._out.clear()
        self._mic.clear()
        self._responses.clear_queue()

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
        self._send(w.append(chunk))

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
        self._responses.clear_queue()
        self._send_all(self._responses.cancel())

    def create_response(self, **response: Any) -> None:
        """Ask for a response; queued until no response is active."""
        if self.closed:
            return
        self._send_all(self._responses.request(response))

    def send_text(self, text: str) -> None:
        """A user text message, then a response to it."""
        self._send(w.user_text(text))
        self.create_response()

    def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        """Answer a function call; one response.create follows once all calls are answered."""
        if self.closed:
            return
        self._send(w.tool_output(call_id, output))
        self._emit(
            ev.AgentToolEnd(
                agent=self.agent_name,
                tool=self._tools.name_of(call_id),
                call_id=call_id,
                output=output,
                is_error=is_error,
            )
        )
        self._send_all(self._responses.tool_answered(call_id))

    def approve_tool(self, approval_id: str, approve: bool = True) -> None:
        """Answer an MCP approval request (tool_approval_requested), then respond."""
        if self.closed:
            return
        item = self._tools.approval_response(approval_id, approve)
        self._send(w.create_item(item))
        self.create_response()

    def update_session(self, settings: SessionSettings) -> None:
        """New settings: a session.update with what changed (once connected)."""
        previous, self.settings = self.settings, settings
        if self.state is not ConnectionState.CONNECTING:
            self._send(settings.session_update(previous=previous))
        self._emit_all(self._tools.mcp_changed())  # e.g. a handoff to other MCP servers

    def send_raw(self, event: dict[str, Any]) -> None:
        """Escape hatch: any client event, sent as is (in order)."""
        self._send(dict(event))

    # ================================================================ server input

    def receive_text(self, frame: str | bytes) -> None:
        """One websocket frame from the server; never raises on its content.

        RuntimeError before ``connection_made`` (a transport bug); ignored once closed.
        """
        if self.closed:
            return
        self._check_open()
        data = w.decode(frame)
        if isinstance(data, tuple):
            self._error(*data)
        else:
            self.receive_event(data)

    def receive_event(self, event: dict[str, Any]) -> None:
        """A decoded server event (GA or beta spelling); never raises on its content.

        RuntimeError before ``connection_made`` (a transport bug); ignored once closed.
        """
        if self.closed:
            return
        self._check_open()
        try:
            self._receive(event)
        except Exception as exc:  # untrusted input must never end the session
            log.debug("malformed server event", exc_info=True)
            self._error(
                "invalid_event",
                f"could not handle server event {w.text(event, 'type')!r}: "
                f"{type(exc).__name__}: {exc}",
            )

    def _check_open(self) -> None:
        if self.state is ConnectionState.CONNECTING:
            raise RuntimeError("server event before connection_made(): no socket is open yet")

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
        if self.state is not ConnectionState.CONFIGURING:
            return
        self.state = ConnectionState.OPEN
        model = w.text(w.obj(e, "session"), "model") or self.settings.model
        self._emit(ev.SessionConnected(session_id=self.session_id, model=model))
        # Pre-roll said while connecting goes out now, in order.
        self._flush_mic()
        self._pump_responses()

    def _on_error(self, e: dict[str, Any]) -> None:
        err = w.obj(e, "error")
        # A server_error, quota, rate limit or auth error is a failure (failures.py);
        # most other errors (commit_empty, cancel_not_active) leave the session as it was.
        kind = kind_of(w.opt_text(err, "type"), w.opt_text(err, "code"))
        info = w.error_info(e, kind)
        code = info.code
        if kind is not None:
            # No response.done may follow (seen with server_error mid-answer): end it here.
            self._emit(ev.Error(error=info))
            self._end_response_locally()
            return
        if code == "session_expired":
            if self.state is ConnectionState.OPEN:
                self.state = ConnectionState.EXPIRING  # the close that follows is an expiry
        elif code == "conversation_already_has_active_response":
            # Our response.create lost a race with a server-created response: retry later.
            self._responses.retry(info.event_id or "")
        self._emit(ev.Error(error=info))

    # ---------------------------------------------------------------- user turn

    def _on_speech_started(self, e: dict[str, Any]) -> None:
        self._responses.awaiting_answer = False
        item_id, ms = w.text(e, "item_id"), w.integer(e, "audio_start_ms")
        self._emit(ev.UserStartedSpeaking(item_id=item_id, audio_ms=ms))
        if self._interrupt_playback() and not self.settings.interrupt_response:
            self._send_all(self._responses.cancel())  # the server goes on by itself: stop it

    def _on_speech_stopped(self, e: dict[str, Any]) -> None:
        self._responses.awaiting_answer = self.settings.create_response
        item_id, ms = w.text(e, "item_id"), w.integer(e, "audio_end_ms")
        self._emit(ev.UserStoppedSpeaking(item_id=item_id, audio_ms=ms))

    def _on_transcription_completed(self, e: dict[str, Any]) -> None:
        item_id, transcript = w.text(e, "item_id"), w.text(e, "transcript")
        self._emit_all(self._history.user_transcript(item_id, transcript))

    def _on_transcription_failed(self, e: dict[str, Any]) -> None:
        err = w.obj(e, "error")
        self._error(
            w.text(err, "type") or "transcription_failed",
            w.text(err, "message") or "input audio transcription failed",
            code=w.opt_text(err, "code"),
            param=w.opt_text(err, "param"),
        )

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
