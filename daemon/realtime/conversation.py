"""The conversation side of the engine: items, responses, answer audio, tools.

``RealtimeProtocol`` (engine.py) adds the connection state, the local inputs
and the handler table on top; the handlers here are the server events of a
configured session. Each delegates to a small unit that returns what it
causes (``Responses``, ``Playback``, ``History``, ``Tools``) and puts the
returned client events and session events on the two output queues.
"""

from __future__ import annotations

from typing import Any

from daemon import events as ev
from daemon.events import ErrorInfo, Event, HistoryItem

from . import wire as w
from .failures import from_status_details
from .history import History
from .playback import Playback
from .responses import Responses
from .tools import Tools


class Conversation:
    """Output queues, the units, and the conversation's server-event handlers."""

    def __init__(self, *, agent_name: str, playback_tracking: bool) -> None:
        self.agent_name = agent_name
        self._out: list[dict[str, Any]] = []
        self._events: list[Event] = []
        self._responses = Responses()
        self._playback = Playback(tracking=playback_tracking)
        self._history = History()
        self._tools = Tools()

    @property
    def closed(self) -> bool:
        """agent_stopped was emitted: nothing more is queued (engine.py decides)."""
        raise NotImplementedError

    # ================================================================ outputs

    def _send(self, event: dict[str, Any]) -> None:
        if not self.closed:
            self._out.append(event)

    def _send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._send(event)

    def _emit(self, event: Event) -> None:
        if not self.closed:
            self._events.append(event)

    def _emit_all(self, events: list[Event]) -> None:
        for event in events:
            self._emit(event)

    def _error(self, type_: str, message: str, **kw: Any) -> None:
        self._emit(ev.Error(error=ErrorInfo(type=type_, message=message, **kw)))

    def _pump_responses(self) -> None:
        """Start the next queued response if none is active (never two at once)."""
        if not self.closed:
            self._send_all(self._responses.pump())

    # ================================================================ local

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
                self._responses.mark_cancelled(c.response_id)
            self._send(w.truncate(c.item_id, c.played_ms))
        self._emit(ev.AudioInterrupted(item_id=cuts[0].item_id, played_ms=cuts[0].played_ms))
        for c in cuts:
            self._emit_all(
                self._history.update(c.item_id, truncated_ms=c.played_ms, status="incomplete")
            )
        return True

    def _end_response_locally(self) -> None:
        """End the active (or requested) response as if response.done(failed) came."""
        rid, cancel = self._responses.end_locally()
        self._send_all(cancel)
        if rid is not None:
            self._finish_response({"id": rid, "status": "failed"})

    # ================================================================ server: items

    def _on_item(self, e: dict[str, Any]) -> None:
        item = w.obj(e, "item")
        self._item_from_server(item)
        if w.text(item, "type") == "mcp_list_tools":
            self._emit_all(self._tools.mcp_list(item))

    def _on_item_deleted(self, e: dict[str, Any]) -> None:
        self._emit_all(self._history.delete(w.text(e, "item_id")))

    def _on_item_truncated(self, e: dict[str, Any]) -> None:
        ms = w.integer(e, "audio_end_ms")
        self._emit_all(
            self._history.update(w.text(e, "item_id"), truncated_ms=ms, status="incomplete")
        )

    def _on_output_item_added(self, e: dict[str, Any]) -> None:
        h = self._item_from_server(w.obj(e, "item"))
        if h is not None:
            self._responses.track(self._responses.current_or(w.text(e, "response_id")), h.item_id)

    def _on_output_item_done(self, e: dict[str, Any]) -> None:
        item = w.obj(e, "item")
        self._item_from_server(item)
        self._item_finished(item)

    def _item_finished(self, item: dict[str, Any]) -> None:
        """Tool calls, MCP results and approvals complete with their output item."""
        found = self._history.get(w.text(item, "id"))
        self._tool_events(self._tools.item_done(self.agent_name, item, found))

    def _tool_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ev.AgentToolStart):
                self._responses.tool_called(event.call_id)
            self._emit(event)

    def _on_function_call_arguments_done(self, e: dict[str, Any]) -> None:
        call_id, item_id = w.text(e, "call_id"), w.text(e, "item_id")
        name = w.text(e, "name") or self._tools.name_of(call_id)
        if not name and item_id in self._history:
            name = self._history[item_id].name
        arguments = w.text(e, "arguments")
        self._emit_all(
            self._history.update(item_id, arguments=arguments, call_id=call_id, name=name)
        )
        self._tool_events(self._tools.call(self.agent_name, call_id, name, arguments))

    def _item_from_server(self, raw: dict[str, Any]) -> HistoryItem | None:
        """Merge a server item snapshot into the history (stable server ids)."""
        cut = self._playback.was_cut(w.text(raw, "id"))
        item, events = self._history.merge(raw, cut=cut)
        self._emit_all(events)
        return item

    # ---------------------------------------------------------------- responses

    def _on_response_created(self, e: dict[str, Any]) -> None:
        rid = w.text(w.obj(e, "response"), "id")
        stale = self._responses.active_id
        if stale is not None and stale != rid:
            # The server runs one response at a time: a new one means the old one's
            # response.done was lost or comes late. End it now so its audio cannot
            # hold the speaker; its late response.done is then ignored.
            self._responses.supersede(stale)
            self._finish_response({"id": stale, "status": "incomplete"}, pump=False)
        cancel = self._responses.created(rid)
        self._emit(ev.AgentStart(agent=self.agent_name, response_id=rid))
        self._send_all(cancel)

    def _on_audio_delta(self, e: dict[str, Any]) -> None:
        item_id = w.text(e, "item_id")
        rid = self._responses.current_or(w.text(e, "response_id"))
        if self._playback.was_cut(item_id) or self._responses.was_cancelled(rid):
            return  # the speaker was flushed: late audio of a cut answer must not play
        data = w.audio_delta(e)
        if isinstance(data, str):
            self._error("invalid_event", data)
            return
        active = self._responses.active_id
        if active is None or (rid and rid != active):
            # Nothing would ever end it (no response.done of its own): it must not hold
            # the speaker. The server streams audio only inside the active response.
            self._error(
                "invalid_event",
                f"audio for item {item_id[:40]!r} outside the active response: dropped",
            )
            return
        if item_id not in self._history:
            new = HistoryItem(item_id=item_id, kind="message", role="assistant")
            self._emit_all(self._history.upsert(new))
        self._emit_all(self._playback.received(item_id, rid, len(data)))
        self._responses.track(rid, item_id)
        index = w.integer(e, "content_index")
        self._emit(ev.Audio(data=data, item_id=item_id, content_index=index, response_id=rid))

    def _on_audio_done(self, e: dict[str, Any]) -> None:
        self._emit_all(self._playback.audio_done(w.text(e, "item_id")))

    def _on_transcript_delta(self, e: dict[str, Any]) -> None:
        item_id = w.text(e, "item_id")
        self._responses.track(self._responses.current_or(w.text(e, "response_id")), item_id)
        self._emit_all(self._history.assistant_delta(item_id, w.text(e, "delta")))

    def _on_transcript_done(self, e: dict[str, Any]) -> None:
        item_id = w.text(e, "item_id")
        final = w.text(e, "transcript" if "transcript" in e else "text")
        cut = self._playback.was_cut(item_id)
        self._emit_all(self._history.assistant_done(item_id, final, cut=cut))

    def _on_response_done(self, e: dict[str, Any]) -> None:
        response = w.obj(e, "response")
        status = w.text(response, "status")
        if status == "failed":
            # The reason (insufficient_quota, rate limits, server_error) is a failure.
            details = w.obj(response, "status_details")
            self._emit(ev.Error(error=from_status_details(status, details)))
            self._responses.clear_queue()
        if self._responses.was_superseded(w.text(response, "id")):
            return  # already ended when the next response was created
        self._finish_response(response)

    def _finish_response(self, response: dict[str, Any], *, pump: bool = True) -> None:
        rid = self._responses.current_or(w.text(response, "id"))
        for raw in w.array(response, "output"):
            if isinstance(raw, dict):
                h = self._item_from_server(raw)
                if h is not None:
                    self._responses.track(rid, h.item_id)
                self._item_finished(raw)
        texts: list[str] = []
        for item_id in self._responses.finished(rid):
            # A cut or failed answer may skip output_audio.done.
            self._emit_all(self._playback.audio_done(item_id))
            h = self._history.get(item_id)
            if h is None or h.kind != "message" or h.role != "assistant":
                continue
            if h.transcript or self._playback.started(item_id):
                self._emit_all(self._history.assistant_transcript(item_id, h.transcript))
            if h.transcript:
                texts.append(h.transcript)
        status = w.text(response, "status") or "completed"
        output = " ".join(texts)
        self._emit(
            ev.AgentEnd(agent=self.agent_name, output=output, response_id=rid, status=status)
        )
        if pump:
            self._pump_responses()
