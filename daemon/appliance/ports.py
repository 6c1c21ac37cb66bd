"""What the appliance needs from the outside world, as small protocols.

The CLI wires real parts (PyAudio or file audio, pyopen-wakeword, the
websocket session, gpiozero LEDs); tests wire the same real parts on virtual
devices. Nothing here imports hardware modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import numpy as np

from ..events import Event


class Mic(Protocol):
    """A started capture stream; audio arrives through the callbacks given to its factory."""

    @property
    def rate(self) -> int: ...

    def close(self) -> None: ...


# on_audio(mono int16 samples at mic.rate) and on_error(exc), both from any thread
MicFactory = Callable[
    [Callable[[np.ndarray], None], Callable[[BaseException], None]],
    Mic,
]


class Speaker(Protocol):
    """A 24 kHz answer player with per-item played-sample tracking."""

    def write(self, item_id: str, pcm: bytes) -> None: ...

    def end_of_item(self, item_id: str) -> None: ...

    def flush(self) -> dict[str, int]: ...

    def set_volume(self, percent: int) -> None: ...

    def keep_running(self, running: bool) -> None: ...

    @property
    def level_db(self) -> float: ...

    def close(self) -> None: ...


class WakeDetector(Protocol):
    def process(self, samples: np.ndarray) -> list[Any]: ...

    def pause(self) -> None: ...

    def resume(self, tail_seconds: float) -> None: ...

    def reset(self) -> None: ...

    @property
    def near_threshold(self) -> bool: ...


class Session(Protocol):
    """The slice of daemon.realtime.RealtimeSession the appliance drives."""

    async def connect(self) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    def __aiter__(self) -> AsyncIterator[Event]: ...

    def send_audio(self, pcm: bytes) -> None: ...

    def playback_progress(self, item_id: str, samples_played: int) -> None: ...

    def playback_finished(self, item_id: str) -> None: ...

    def interrupt(self) -> None: ...


class Leds(Protocol):
    def show(self, pattern: Any) -> None: ...

    def close(self) -> None: ...


class Notifier(Protocol):
    def ready(self) -> None: ...

    def status(self, text: str) -> None: ...

    def watchdog(self) -> None: ...

    def stopping(self) -> None: ...
