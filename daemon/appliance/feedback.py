"""The appliance's own outputs besides state: feedback sounds and the LEDs.

``SoundQueue`` plays the wake/end/error sounds as player items of their own (so
answer items keep exact played counts) and knows when they have played out.
``LedOutput`` shows the pattern for the LED inputs, only when they change; a failing
driver is logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import events as ev
from ..sounds import CLOSE_SOUNDS, SOUND_ITEM_PREFIX
from ..vocab import PCM_RATE, SoundName
from .ports import Leds, Speaker

log = logging.getLogger("voicepi.appliance")


class SoundQueue:
    """Feedback sounds (int16 mono at PCM_RATE, by name) queued on ``speaker``.

    ``source(name)`` is the configured source ("default" or a WAV path), for the
    ``sound_played`` event ``emit`` gets. Call ``finished`` for each sound item the
    player finished, ``flushed`` when the player was flushed.
    """

    def __init__(
        self,
        speaker: Speaker,
        sounds: dict[SoundName, np.ndarray],
        source: Callable[[SoundName], str],
        emit: Callable[[ev.Event], None],
    ) -> None:
        self.speaker = speaker
        self.sounds = sounds
        self.source = source
        self.emit = emit
        self._seq = 0
        self._queued: set[str] = set()  # sound items not yet played out
        self._done = asyncio.Event()  # set while no sound is queued
        self._done.set()

    def play(self, name: SoundName) -> None:
        """Queue the feedback sound ``name`` on the speaker (nothing if it is off).

        It is a player item of its own, so answer items keep exact played counts; the
        speaker callbacks keep it away from the session and from the ``speaking`` state.
        """
        pcm = self.sounds.get(name)
        if pcm is None:
            return
        self._seq += 1
        item_id = f"{SOUND_ITEM_PREFIX}{name}-{self._seq}"
        try:
            self.speaker.write(item_id, pcm.tobytes())
            self.speaker.end_of_item(item_id)
        except Exception as exc:  # a failing speaker must not stop the wake or the close
            log.warning("sound %s not played: %s", name, exc)
            return
        self._queued.add(item_id)
        self._done.clear()
        self.emit(
            ev.SoundPlayed(
                name=name, source=self.source(name), duration_ms=len(pcm) * 1000 // PCM_RATE
            )
        )

    def play_close(self, reason: ev.CloseReason) -> None:
        """The end or error sound for a session that closed for ``reason``."""
        name = CLOSE_SOUNDS.get(reason)
        if name is not None:
            self.play(name)

    def finished(self, item_id: str) -> None:
        """The player finished the sound item ``item_id``."""
        self._queued.discard(item_id)
        if not self._queued:
            self._done.set()

    def flushed(self) -> None:
        """The player dropped everything queued."""
        self._queued.clear()
        self._done.set()

    async def let_finish(self) -> None:
        """At shutdown (e.g. the demo's last close), let a queued sound play out, bounded."""
        longest = max((len(p) for p in self.sounds.values()), default=0) / PCM_RATE
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), longest + 1.0)


class LedOutput:
    """The LEDs (may be None) showing ``pattern_for(inputs)``; ``emit`` gets ``led_changed``."""

    def __init__(
        self,
        leds: Leds | None,
        pattern_for: Callable[[dict[str, Any]], Any] | None,
        emit: Callable[[ev.Event], None],
    ) -> None:
        self.leds = leds
        self.pattern_for = pattern_for
        self.emit = emit
        self._key: tuple[Any, ...] | None = None

    def invalidate(self) -> None:
        """Show the pattern again on the next ``show`` (overrides may have changed)."""
        self._key = None

    def show(self, inputs: dict[str, Any]) -> None:
        """The pattern for ``inputs`` (LedInput fields), if they changed since the last."""
        key = tuple(inputs.values())
        if key == self._key or self.pattern_for is None:
            return
        self._key = key
        pattern = self.pattern_for(inputs)
        if self.leds is not None:
            try:
                self.leds.show(pattern)
            except Exception as exc:  # a failing LED driver never takes the speaker down
                log.warning("LED driver failed: %s", exc)
        name = getattr(pattern, "name", str(pattern))
        color = getattr(pattern, "color_hex", "")
        self.emit(ev.LedChanged(pattern=name, color=color))
