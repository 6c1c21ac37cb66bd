"""The one adapter from a player's playback observer to a session.

``hw.audio``'s players report what they played through the ``PlaybackTracker``
protocol (``hw/audio/engine.py``: ``on_started``, ``on_progress``,
``on_finished``, ``on_drained``), called on the audio thread. A session (or an
``AgentRuntime``, which forwards to its session) takes the same facts as
``playback_progress``/``playback_finished`` calls on its event loop.
``SessionTracker`` connects the two: it hops every call onto the loop::

    player = hw.audio.open_player("default", tracker=SessionTracker(session))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class PlaybackReports(Protocol):
    """What takes playback reports on its loop: ``RealtimeSession`` or ``AgentRuntime``."""

    def playback_progress(self, item_id: str, samples_played: int) -> None:
        """Cumulative 24 kHz samples of ``item_id`` played."""

    def playback_finished(self, item_id: str) -> None:
        """``item_id`` played to its end."""


class SessionTracker:
    """A player's ``PlaybackTracker`` reporting to ``target`` on its event loop.

    Create it in the loop that runs the session (or pass ``loop``); RuntimeError
    without a running loop. Every callback returns at once on the audio thread;
    the report runs soon after on the loop, in order. Once the loop is closed,
    reports are dropped (the session is over).
    """

    def __init__(
        self, target: PlaybackReports, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.target = target
        self.loop = loop or asyncio.get_running_loop()

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # closed between the check and the call
                log.debug("playback report after the loop closed: dropped")

    def on_started(self, item_id: str) -> None:
        """The first sample of ``item_id`` sounded (the session learns of audio itself)."""

    def on_progress(self, item_id: str, samples_played: int) -> None:
        """Cumulative 24 kHz samples of ``item_id`` played: the truncation point."""
        self._call(self.target.playback_progress, item_id, samples_played)

    def on_finished(self, item_id: str) -> None:
        """``item_id`` played to its end: it can no longer be interrupted."""
        self._call(self.target.playback_finished, item_id)

    def on_drained(self) -> None:
        """Nothing is queued any more (no session input)."""
