"""Run the real appliance in the test's event loop and watch its events.

Real parts only: PortAudio on the private PulseAudio server (pipe-source mic,
null-sink speaker), the pyopen-wakeword models, the simulator on loopback,
gpiozero's mock pins.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon import config
from daemon import events as ev
from daemon.appliance.wiring import Built, build

SPEECH = Path(__file__).parent / "fixtures" / "speech"


def appliance_config(url: str, **sections: Any) -> config.Config:
    """Pulse devices, the simulator, mock pins; ``sections`` override keys per table."""
    data: dict[str, Any] = {
        "realtime": {"url": url},
        "audio": {"input": "pulse", "output": "pulse"},
        "session": {"inactivity_timeout": 30.0},
        "gpio": {"pin_factory": "mock"},
        # Off unless a test turns them on: most tests measure the answer alone at the sink.
        "sounds": {"wake": "", "end": "", "error": ""},
    }
    for table, keys in sections.items():
        if isinstance(keys, list):  # an array of tables such as [[tools]]
            data[table] = keys
        else:
            data.setdefault(table, {}).update(keys)
    return config.parse(data)


@dataclasses.dataclass
class Watched:
    built: Built
    task: asyncio.Task[int]
    events: list[tuple[float, ev.Event]]
    changed: asyncio.Event

    @property
    def app(self) -> Any:
        return self.built.app

    def of(self, kind: type[ev.Event]) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]

    def timed(self, kind: type[ev.Event]) -> list[tuple[float, Any]]:
        return [(t, e) for t, e in self.events if isinstance(e, kind)]

    def states(self) -> list[str]:
        return [e.state for e in self.of(ev.StateChanged)]

    async def wait(
        self, pred: Callable[[ev.Event], bool], timeout: float = 20.0, *, after: int = 0
    ) -> tuple[float, ev.Event]:
        """The first event (from index ``after``) matching ``pred``; fails with the history."""
        deadline = time.monotonic() + timeout
        while True:
            for t, e in self.events[after:]:
                if pred(e):
                    return t, e
            if self.task.done():
                raise AssertionError(f"appliance exited ({self.task.result()}): {self.summary()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; events: {self.summary()}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def wait_state(self, state: str, timeout: float = 20.0, *, after: int = 0) -> float:
        t, _ = await self.wait(
            lambda e: isinstance(e, ev.StateChanged) and e.state == state, timeout, after=after
        )
        return t

    def mark(self) -> int:
        return len(self.events)

    def summary(self) -> str:
        skip = (ev.Audio, ev.TransportEvent, ev.HistoryUpdated, ev.AssistantTranscriptDelta)
        return ", ".join(
            f"{t:.2f}:{e.type}" + (f"={e.state}" if isinstance(e, ev.StateChanged) else "")
            for t, e in self.events
            if not isinstance(e, skip)
        )

    async def stop(self) -> int:
        self.app.request_stop(0)
        return await asyncio.wait_for(self.task, 20)


async def start(cfg: config.Config, detector: Any, **kwargs: Any) -> Watched:
    events: list[tuple[float, ev.Event]] = []
    changed = asyncio.Event()

    def emit(event: ev.Event) -> None:
        events.append((time.monotonic(), event))
        changed.set()

    from daemon.config.profiles import apply_profile

    built = build(apply_profile(cfg), emit=emit, detector=detector, **kwargs)

    async def main() -> int:
        try:
            return await built.app.run()
        finally:
            built.close()

    watched = Watched(built, asyncio.ensure_future(main()), events, changed)
    await watched.wait_state("idle", 15)
    return watched
