"""What the speaker has played of each answer item: a sans-I/O unit.

The engine reports audio it received (bytes) and the player reports samples it
actually played; an interruption cuts every item still sounding at exactly
what was heard, never at elapsed time. Methods return the events they cause
(``audio_start``, ``audio_stopped``), the way the inactivity countdown does.
Units: received audio in bytes of PCM16 mono 24 kHz, played audio in samples,
cuts in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon import events as ev
from daemon.events import Event

from .audio_chunks import BYTES_PER_MS, BYTES_PER_SAMPLE, SAMPLE_RATE


@dataclass
class _Item:
    """An item whose audio the speaker has not finished (the player's view)."""

    item_id: str
    response_id: str
    played: int = 0  # samples actually played, as reported by the player
    audio_done: bool = False  # the server finished sending this item's audio


@dataclass(frozen=True)
class Cut:
    """An item an interruption cut: send conversation.item.truncate at ``played_ms``."""

    item_id: str
    response_id: str
    played_ms: int


class Playback:
    """Received and played audio per item; ``cut()`` says where to truncate.

    ``tracking=False``: no player reports progress, so received audio counts as
    played (an embedder who never reports is not truncated to 0 ms).
    """

    def __init__(self, *, tracking: bool = True) -> None:
        self.tracking = tracking
        self._received: dict[str, int] = {}  # bytes per item
        self._open: set[str] = set()  # audio_start seen, audio_stopped not yet
        self._started: set[str] = set()
        self._playing: dict[str, _Item] = {}
        self._cut: set[str] = set()

    def received_ms(self, item_id: str) -> int:
        """Milliseconds of audio received for ``item_id`` (0 if none)."""
        return self._received.get(item_id, 0) // BYTES_PER_MS

    def started(self, item_id: str) -> bool:
        """Audio of ``item_id`` arrived (``audio_start`` was returned for it)."""
        return item_id in self._started

    def was_cut(self, item_id: str) -> bool:
        """An interruption cut ``item_id``: its late audio must not play."""
        return item_id in self._cut

    def received(self, item_id: str, response_id: str, nbytes: int) -> list[Event]:
        """``nbytes`` of ``item_id``'s audio arrived; ``audio_start`` for its first."""
        out: list[Event] = []
        if item_id not in self._started:
            self._started.add(item_id)
            self._open.add(item_id)
            out.append(ev.AudioStart(item_id=item_id))
        self._received[item_id] = self._received.get(item_id, 0) + nbytes
        p = self._playing.get(item_id)
        if p is None:
            p = self._playing[item_id] = _Item(item_id=item_id, response_id=response_id)
        if not self.tracking:
            p.played = self._received[item_id] // BYTES_PER_SAMPLE
        return out

    def audio_done(self, item_id: str) -> list[Event]:
        """The server sent all of ``item_id``'s audio; ``audio_stopped`` once per item."""
        p = self._playing.get(item_id)
        if p is not None:
            p.audio_done = True
            self._check_fully_played(p)
        if item_id in self._open:
            self._open.discard(item_id)
            return [ev.AudioStopped(item_id=item_id)]
        return []

    def progress(self, item_id: str, samples_played: int) -> None:
        """Cumulative samples of ``item_id`` the speaker has played (never goes back)."""
        p = self._playing.get(item_id)
        if p is None:
            return
        p.played = max(p.played, int(samples_played))
        self._check_fully_played(p)

    def finished(self, item_id: str) -> None:
        """The speaker drained ``item_id``: it can no longer be interrupted."""
        self._playing.pop(item_id, None)

    def _check_fully_played(self, p: _Item) -> None:
        received = self._received.get(p.item_id, 0)
        if p.audio_done and p.played * BYTES_PER_SAMPLE >= received:
            self._playing.pop(p.item_id, None)

    def cut(self) -> list[Cut]:
        """Cut every item still sounding, in order; empty when nothing plays.

        Each cut is at the samples actually played, capped at what the item has.
        """
        playing = list(self._playing.values())
        self._playing.clear()
        cuts: list[Cut] = []
        for p in playing:
            received = self._received.get(p.item_id, 0)
            played_ms = min(p.played * 1000 // SAMPLE_RATE, received // BYTES_PER_MS)
            self._cut.add(p.item_id)
            cuts.append(Cut(item_id=p.item_id, response_id=p.response_id, played_ms=played_ms))
        return cuts
