"""Energy voice activity detection over the appended audio (sans-I/O).

20 ms frames; a frame is voiced above a dB threshold. Speech starts after a few
voiced frames in a row (its start moved back by the prefix padding, like the
real server's ``audio_start_ms``) and stops after ``silence_ms`` of unvoiced
frames (``audio_end_ms`` includes that silence, as the real server's does).
Times are milliseconds of audio written, never wall time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from daemon import dsp

FRAME_MS = 20
FRAME_BYTES = FRAME_MS * 48  # PCM16 mono 24 kHz


def threshold_to_dbfs(threshold: float) -> float:
    """server_vad's 0..1 threshold as a level: 0.5 -> -40 dBFS (0 -> -70, 1 -> -10)."""
    return -70.0 + 60.0 * max(0.0, min(1.0, threshold))


@dataclass(frozen=True)
class VadEvent:
    kind: Literal["start", "stop"]
    ms: int


class EnergyVad:
    def __init__(
        self,
        *,
        threshold_db: float = -40.0,
        start_frames: int = 3,
        silence_ms: int = 500,
        prefix_ms: int = 300,
    ) -> None:
        self.threshold_db = threshold_db
        self.start_frames = start_frames
        self.silence_ms = silence_ms
        self.prefix_ms = prefix_ms
        self._pending = bytearray()
        self._frames = 0  # whole frames seen
        self._voiced_run = 0
        self._silent_run = 0
        self._floor_ms = 0  # a new utterance never starts before the last one ended
        self.speaking = False

    def configure(self, *, threshold_db: float, silence_ms: int, prefix_ms: int) -> None:
        self.threshold_db = threshold_db
        self.silence_ms = max(FRAME_MS, silence_ms)
        self.prefix_ms = max(0, prefix_ms)

    @property
    def total_ms(self) -> int:
        return self._frames * FRAME_MS

    def reset(self, at_ms: int) -> None:
        """Forget the current utterance (input_audio_buffer.clear / commit)."""
        self.speaking = False
        self._voiced_run = self._silent_run = 0
        self._floor_ms = max(self._floor_ms, at_ms)

    def feed(self, pcm: bytes) -> list[VadEvent]:
        self._pending += pcm
        out: list[VadEvent] = []
        while len(self._pending) >= FRAME_BYTES:
            frame = bytes(self._pending[:FRAME_BYTES])
            del self._pending[:FRAME_BYTES]
            voiced = dsp.rms_dbfs(dsp.pcm16_to_array(frame)) > self.threshold_db
            self._frames += 1
            end_ms = self._frames * FRAME_MS
            if not self.speaking:
                self._voiced_run = self._voiced_run + 1 if voiced else 0
                if self._voiced_run >= self.start_frames:
                    first = end_ms - self._voiced_run * FRAME_MS
                    start = max(self._floor_ms, first - self.prefix_ms, 0)
                    self.speaking = True
                    self._silent_run = 0
                    out.append(VadEvent("start", start))
            else:
                self._silent_run = 0 if voiced else self._silent_run + 1
                if self._silent_run * FRAME_MS >= self.silence_ms:
                    self.speaking = False
                    self._voiced_run = 0
                    self._floor_ms = end_ms
                    out.append(VadEvent("stop", end_ms))
        return out
