"""The conversation history as the session knows it: a sans-I/O unit.

Items are keyed by the server's ids and kept in arrival order. Each change
returns the events it causes (``history_added`` for a new item, then
``history_updated`` with the whole history), the way the inactivity countdown
returns its announcements; the engine puts them on the stream.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from daemon import events as ev
from daemon.events import Event, HistoryItem

from . import wire as w

_STATUSES = ("in_progress", "completed", "incomplete")
_ROLES = ("user", "assistant", "system")


class History:
    """Conversation items by server id, in order; every change returns its events."""

    def __init__(self) -> None:
        self._items: dict[str, HistoryItem] = {}
        self._transcripts_done: set[str] = set()

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __getitem__(self, item_id: str) -> HistoryItem:
        return self._items[item_id]

    def get(self, item_id: str) -> HistoryItem | None:
        """The item with server id ``item_id``, or None."""
        return self._items.get(item_id)

    def snapshot(self) -> tuple[HistoryItem, ...]:
        """Every item, oldest first (what ``history_updated`` carries)."""
        return tuple(self._items.values())

    def upsert(self, item: HistoryItem) -> list[Event]:
        """Add or replace ``item``; no events when nothing changed."""
        old = self._items.get(item.item_id)
        if old == item:
            return []
        self._items[item.item_id] = item
        out: list[Event] = []
        if old is None:
            out.append(ev.HistoryAdded(item=item))
        out.append(ev.HistoryUpdated(history=self.snapshot()))
        return out

    def update(self, item_id: str, **changes: Any) -> list[Event]:
        """Change fields of a known item; an unknown id is ignored (no events)."""
        old = self._items.get(item_id)
        if old is None:
            return []
        return self.upsert(dataclasses.replace(old, **changes))

    def delete(self, item_id: str) -> list[Event]:
        """Drop an item (conversation.item.deleted); unknown ids are ignored."""
        if self._items.pop(item_id, None) is None:
            return []
        return [ev.HistoryUpdated(history=self.snapshot())]

    def merge(
        self, raw: dict[str, Any], *, cut: bool = False
    ) -> tuple[HistoryItem | None, list[Event]]:
        """Merge a server item snapshot; returns the item as now known (None without an id).

        ``cut``: the user interrupted this item's audio, so its transcript stays what
        was heard and its status stays incomplete whatever the server says later.
        """
        item_id = w.text(raw, "id")
        if not item_id:
            return None, []
        old = self._items.get(item_id)
        t = w.text(raw, "type")
        fields: dict[str, Any] = {}
        if t == "message":
            role = w.text(raw, "role")
            fields["kind"] = "message"
            fields["role"] = role if role in _ROLES else "assistant"
            parts = [
                w.text(c, "transcript") or w.text(c, "text")
                for c in w.array(raw, "content")
                if isinstance(c, dict)
            ]
            transcript = "".join(p for p in parts if p)
            if transcript:
                fields["transcript"] = transcript
        elif t == "function_call":
            fields.update(kind="function_call", role="assistant")
            for key in ("name", "call_id", "arguments"):
                if w.text(raw, key):
                    fields[key] = w.text(raw, key)
        elif t == "function_call_output":
            fields.update(kind="function_call_output", role="tool")
            for key in ("call_id", "output"):
                if w.text(raw, key):
                    fields[key] = w.text(raw, key)
        elif t == "mcp_call":
            fields.update(kind="mcp_call", role="assistant")
            for key in ("name", "arguments", "output"):
                if w.text(raw, key):
                    fields[key] = w.text(raw, key)
        else:
            fields.update(kind="other", role="system")
        status = w.text(raw, "status")
        if status in _STATUSES:
            fields["status"] = status
        if old is None:
            item = HistoryItem(item_id=item_id, **fields)
        else:
            if old.truncated_ms is not None or cut:
                # Keep what the user heard; a cut item stays incomplete.
                fields.pop("transcript", None)
                fields["status"] = "incomplete"
            item = dataclasses.replace(old, **fields)
        events = self.upsert(item)
        return self._items[item_id], events

    # ---------------------------------------------------------------- transcripts

    def user_transcript(self, item_id: str, transcript: str) -> list[Event]:
        """The user's turn was transcribed: record it, then ``user_transcript``."""
        out: list[Event] = []
        if item_id:
            old = self._items.get(item_id)
            if old is None:
                new = HistoryItem(
                    item_id=item_id, kind="message", role="user", transcript=transcript
                )
            else:
                new = dataclasses.replace(old, transcript=transcript)
            out += self.upsert(new)
        out.append(ev.UserTranscript(transcript=transcript, item_id=item_id))
        return out

    def assistant_delta(self, item_id: str, delta: str) -> list[Event]:
        """A piece of the answer's transcript: append it, then ``assistant_transcript_delta``."""
        out: list[Event] = []
        old = self._items.get(item_id)
        if item_id and old is None:
            out += self.upsert(
                HistoryItem(item_id=item_id, kind="message", role="assistant", transcript=delta)
            )
        elif old is not None:
            out += self.upsert(dataclasses.replace(old, transcript=old.transcript + delta))
        out.append(ev.AssistantTranscriptDelta(delta=delta, item_id=item_id))
        return out

    def assistant_done(self, item_id: str, final: str, *, cut: bool) -> list[Event]:
        """The answer's full transcript (``final``; what was heard if ``cut``)."""
        out: list[Event] = []
        old = self._items.get(item_id)
        if cut and old is not None:
            spoken = old.transcript  # what was received before the cut
        else:
            spoken = final or (old.transcript if old else "")
            if old is not None and spoken:
                out += self.upsert(dataclasses.replace(old, transcript=spoken))
        return out + self.assistant_transcript(item_id, spoken)

    def assistant_transcript(self, item_id: str, transcript: str) -> list[Event]:
        """``assistant_transcript`` for ``item_id``, at most once per item."""
        if item_id in self._transcripts_done:
            return []
        self._transcripts_done.add(item_id)
        return [ev.AssistantTranscript(transcript=transcript, item_id=item_id)]
