"""The response queue: at most one model response at a time, in a named phase.

A sans-I/O unit: methods return the client events to send (``response.create``,
``response.cancel``) and the engine queues them. Phases: ``IDLE`` (nothing
asked or running), ``REQUESTED`` (a response.create was sent, response.created
not yet seen) and ``ACTIVE`` (response.created seen, response.done not yet).
Asked-for responses wait in a queue while one is requested or active; tool
outputs ask for one response once every pending call is answered.
"""

from __future__ import annotations

import enum
from typing import Any

# How many sent response.create payloads to remember for re-queueing after a
# conversation_already_has_active_response error (they are answered quickly).
_SENT_CREATES_KEPT = 16
# How many superseded response ids to remember (their late response.done is ignored).
_SUPERSEDED_KEPT = 16


class Phase(enum.Enum):
    """Where the current response is."""

    IDLE = "idle"
    REQUESTED = "requested"
    ACTIVE = "active"


class Responses:
    """The response queue and the active response's bookkeeping."""

    def __init__(self) -> None:
        self.phase = Phase.IDLE
        self.active_id: str | None = None  # set in ACTIVE
        self.awaiting_answer = False  # the user's turn ended; the server will answer
        self._requested: dict[str, Any] | None = None  # set in REQUESTED
        self._queue: list[dict[str, Any]] = []
        self._sent: dict[str, dict[str, Any]] = {}  # event_id -> response.create params
        self._seq = 0
        self._cancel_on_create = False
        self._want_tool_response = False
        self._pending_calls: set[str] = set()
        self._cancelled: set[str] = set()  # response ids whose late audio must not play
        self._items: dict[str, list[str]] = {}  # response id -> item ids, in order
        self._superseded: list[str] = []  # ended by a newer response.created (newest last)

    @property
    def busy(self) -> bool:
        """A response is requested or active: no other may be created."""
        return self.phase is not Phase.IDLE

    def was_cancelled(self, response_id: str) -> bool:
        """``response_id`` was cancelled or cut: its late audio must not play."""
        return response_id in self._cancelled

    def mark_cancelled(self, response_id: str) -> None:
        """The user cut ``response_id``'s audio (the server may still finish it)."""
        self._cancelled.add(response_id)

    def current_or(self, response_id: str) -> str:
        """``response_id`` if the event named one, else the active response's id ("" if none)."""
        return response_id or (self.active_id or "")

    # ---------------------------------------------------------------- asking

    def request(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue a response.create with ``params``; returns it to send if nothing is busy."""
        self._queue.append(params)
        return self.pump()

    def clear_queue(self) -> None:
        """Drop every queued request (the user asked for silence, or a response failed)."""
        self._queue.clear()
        self._want_tool_response = False

    def tool_called(self, call_id: str) -> None:
        """A function call started: no tool response until it is answered."""
        self._pending_calls.add(call_id)

    def tool_answered(self, call_id: str) -> list[dict[str, Any]]:
        """A call's output was sent; one response follows once every call is answered."""
        self._pending_calls.discard(call_id)
        self._want_tool_response = True
        return self.pump()

    def pump(self) -> list[dict[str, Any]]:
        """The next response.create to send, if none is busy (never two at once)."""
        if self.busy:
            return []
        if self._queue:
            params = self._queue.pop(0)
            if not self._pending_calls:
                self._want_tool_response = False  # this response sees the outputs too
        elif self._want_tool_response and not self._pending_calls:
            params = {}
            self._want_tool_response = False
        else:
            return []
        self._seq += 1
        event_id = f"voicepi_create_{self._seq}"
        msg: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if params:
            msg["response"] = params
        self.phase = Phase.REQUESTED
        self._requested = params
        self._sent[event_id] = params
        while len(self._sent) > _SENT_CREATES_KEPT:
            del self._sent[next(iter(self._sent))]
        return [msg]

    def retry(self, event_id: str) -> None:
        """Our response.create lost a race with a server-created response: ask again later."""
        params = self._sent.pop(event_id, None)
        if params is None:
            return
        if self._requested is params:
            self._requested = None
            self.phase = Phase.IDLE
        self._queue.insert(0, params)

    # ---------------------------------------------------------------- stopping

    def cancel(self) -> list[dict[str, Any]]:
        """Cancel the active response (returned to send), or a requested one once created."""
        if self.active_id is not None:
            self._cancelled.add(self.active_id)
            return [{"type": "response.cancel", "response_id": self.active_id}]
        if self._requested is not None:
            self._cancel_on_create = True
        return []

    def end_locally(self) -> tuple[str | None, list[dict[str, Any]]]:
        """Give up the current response as if response.done(failed) came.

        Returns the active response's id (the caller finishes it with ``finished``)
        and its response.cancel; a merely requested one is cancelled once created.
        """
        self.awaiting_answer = False
        self.clear_queue()
        rid = self.active_id
        if rid is not None:
            self._cancelled.add(rid)  # late audio of it must not play
            return rid, [{"type": "response.cancel", "response_id": rid}]
        if self._requested is not None:
            self._requested = None
            self.phase = Phase.IDLE
            self._cancel_on_create = True  # if it is created after all, cancel it
        return None, []

    # ---------------------------------------------------------------- server side

    def created(self, response_id: str) -> list[dict[str, Any]]:
        """response.created: ACTIVE; returns a response.cancel if it was cancelled early."""
        self.phase = Phase.ACTIVE
        self.active_id = response_id
        self._requested = None
        self.awaiting_answer = False
        self._items.setdefault(response_id, [])
        if self._cancel_on_create:
            self._cancel_on_create = False
            return self.cancel()
        return []

    def supersede(self, response_id: str) -> None:
        """A newer response.created ended ``response_id`` before its response.done."""
        self._superseded.append(response_id)
        del self._superseded[:-_SUPERSEDED_KEPT]

    def was_superseded(self, response_id: str) -> bool:
        """``response_id`` was already ended by a newer response (its late done is ignored)."""
        if response_id and response_id in self._superseded:
            self._superseded.remove(response_id)
            return True
        return False

    def track(self, response_id: str, item_id: str) -> None:
        """Remember which items a response produced (for agent_end and its cleanup)."""
        if response_id and item_id:
            items = self._items.setdefault(response_id, [])
            if item_id not in items:
                items.append(item_id)

    def finished(self, response_id: str) -> list[str]:
        """The response ended: IDLE if it was the active one; returns its item ids."""
        items = self._items.pop(response_id, [])
        if self.active_id == response_id or not response_id:
            self.active_id = None
            self.phase = Phase.REQUESTED if self._requested is not None else Phase.IDLE
        self._cancelled.discard(response_id)
        return items
