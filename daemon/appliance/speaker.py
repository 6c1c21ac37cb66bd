"""The speaker side of the appliance: the player's callbacks (hopped onto the loop by
app._SpeakerBridge), playback reports to the session, flushing, and feedback sounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..sounds import is_sound_item
from ..vocab import SoundName, busy_cause
from .core import ApplianceCore
from .parts import SessionRun

if TYPE_CHECKING:
    from .. import events as ev


class SpeakerMixin(ApplianceCore):
    """The appliance's speaker handling (mixed into Appliance)."""

    if TYPE_CHECKING:

        async def _end_session(self, reason: ev.CloseReason) -> None: ...

    def _flush_speaker(self, run: SessionRun) -> None:
        played = self.parts.speaker.flush()
        self.sound_queue.flushed()
        for item_id, samples in played.items():
            if not is_sound_item(item_id):  # a sound is never model output to truncate
                run.session.playback_progress(item_id, samples)
        self._speaker_drained()

    # ================================================================ speaker callbacks
    # The player calls these from its audio thread; ``speaker_callbacks`` hops them here.

    def speaker_started(self, item_id: str) -> None:
        if is_sound_item(item_id):
            self.parts.detector.pause()  # the device must not score its own sounds
            return
        run = self.run_
        if run is None:
            return
        run.items_playing.add(item_id)
        self.parts.detector.pause()
        self._set_busy(busy_cause("playing", item_id), True, playing=True)

    def speaker_progress(self, item_id: str, samples: int) -> None:
        if self.run_ is None or is_sound_item(item_id):
            return
        if self.parts.agents is not None:
            self.parts.agents.playback_progress(item_id, samples)  # forwards to the session
        else:
            self.run_.session.playback_progress(item_id, samples)

    def speaker_finished(self, item_id: str) -> None:
        if is_sound_item(item_id):
            self.sound_queue.finished(item_id)
            return
        if self.run_ is None:
            return
        self.run_.items_playing.discard(item_id)
        self._set_busy(busy_cause("playing", item_id), False)
        if self.parts.agents is not None:
            self.parts.agents.playback_finished(item_id)
        else:
            self.run_.session.playback_finished(item_id)

    def _speaker_drained(self) -> None:
        self.parts.detector.resume(self.cfg.wakeword.speaking_tail)
        if self._end_when_drained:
            self._end_when_drained = False
            if self.run_ is not None:
                self._spawn(self._end_session("end_session"))
        if not self.sm.facts.playing:
            return
        run = self.run_
        for item_id in run.items_playing if run is not None else ():
            self._set_busy(busy_cause("playing", item_id), False)
        if run is not None:
            run.items_playing.clear()
        self._set_busy(busy_cause("playing"), False, playing=False)

    # ================================================================ sounds

    def play_sound(self, name: SoundName) -> None:
        """Queue the feedback sound ``name`` on the speaker (nothing if it is off)."""
        self.sound_queue.play(name)
