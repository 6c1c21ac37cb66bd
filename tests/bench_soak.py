"""Soak: back-to-back sessions through the real appliance; resources must stay flat.

Each session: button wake -> connected -> a text turn whose spoken answer plays
through the player -> double press (end_session) -> idle. The microphone is a
`file:` WAV of silence (no audio server needed), the answer goes to a `file:` WAV,
the simulator runs in this process on loopback. The short version runs in
`make test` (tests/test_soak.py), the full one here in `make bench`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon import config
from daemon import events as ev
from daemon.appliance.button_map import button_action
from daemon.realtime.simulator import Simulator
from tests.appliance_harness import Watched, start
from tests.bench import Row, bench
from tests.bench_daemon import silent_wav

FULL_SESSIONS = 200
WARMUP = 3  # sessions before the baseline: first-use allocations are not leaks


@dataclass(frozen=True)
class Usage:
    rss_kb: int
    fds: int
    threads: int  # OS threads of this process (PortAudio's and TFLite's included)
    tasks: int  # asyncio tasks on the loop

    @staticmethod
    def now() -> Usage:
        gc.collect()
        rss = threads = 0
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        return Usage(rss, len(os.listdir("/proc/self/fd")), threads, len(asyncio.all_tasks()))


@dataclass(frozen=True)
class SoakResult:
    sessions: int
    baseline: Usage
    final: Usage
    peak_tasks: int
    python_threads: tuple[int, int]  # threading.active_count() at baseline and end

    @property
    def rss_growth_kb(self) -> int:
        return self.final.rss_kb - self.baseline.rss_kb


def soak_config(url: str, workdir: Path) -> config.Config:
    return config.parse(
        {
            "realtime": {"url": url},
            "audio": {
                "input": f"file:{silent_wav(workdir / 'silence.wav')}",
                "output": f"file:{workdir / 'answers.wav'}",
            },
            "session": {"inactivity_timeout": 30.0},
            "gpio": {"pin_factory": "mock"},
        }
    )


def _gesture(app: Watched, name: str) -> str:
    facts = app.app.sm.facts
    action = button_action(name, app.app.sm.state, facts.approval_pending)
    app.app.button(name, action)
    return action


async def one_session(app: Watched, sim: Simulator, n: int) -> None:
    mark = app.mark()
    assert _gesture(app, "press") == "wake", app.summary()
    await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10, after=mark)
    run = app.app.run_
    assert run is not None
    run.session.send_text(f"soak turn {n}")
    await app.wait(lambda e: isinstance(e, ev.AgentEnd), 10, after=mark)
    await app.wait_state("speaking", 10, after=mark)
    await app.wait_state("listening", 10, after=mark)
    assert _gesture(app, "double") == "end_session", app.summary()
    _, closed = await app.wait(lambda e: isinstance(e, ev.SessionClosed), 10, after=mark)
    assert closed.reason == "button", closed
    await app.wait_state("idle", 10, after=mark)
    # The harness and the simulator keep every event and message: a long soak would
    # measure the test's own records, not the daemon.
    del app.events[:]
    await asyncio.wait_for(sim.sessions[-1].closed.wait(), 10)
    sim.sessions.clear()


async def soak(sessions: int, detector: Any, workdir: Path) -> SoakResult:
    async with Simulator(answer=lambda _: "Okay.", speech="tone", realtime_factor=8.0) as sim:
        app = await start(soak_config(sim.url, workdir), detector)
        try:
            for n in range(WARMUP):
                await one_session(app, sim, n)
            await asyncio.sleep(0.2)
            baseline, py_before = Usage.now(), threading.active_count()
            peak = baseline.tasks
            done = 0
            for n in range(sessions):
                await one_session(app, sim, WARMUP + n)
                done += 1
                peak = max(peak, len(asyncio.all_tasks()))
            await asyncio.sleep(0.5)  # closing handshakes and server handlers finish
            final, py_after = Usage.now(), threading.active_count()
        finally:
            assert await app.stop() == 0
        assert done == sessions
    return SoakResult(sessions, baseline, final, peak, (py_before, py_after))


def run_soak(sessions: int) -> SoakResult:
    from daemon.wakeword import WakeWordDetector

    det = WakeWordDetector(config.Config().wakeword)
    det.load()
    try:
        with tempfile.TemporaryDirectory(prefix="voicepi-soak-") as tmp:
            return asyncio.run(soak(sessions, det, Path(tmp)))
    finally:
        det.close()


@bench
def soak_200() -> list[Row]:
    r = run_soak(FULL_SESSIONS)
    b, f = r.baseline, r.final
    what = f"after {WARMUP} warm-up sessions"
    return [
        Row(
            f"soak: RSS after {r.sessions} sessions",
            f.rss_kb / 1024,
            "MiB",
            f"RSS {what}",
            b.rss_kb / 1024,
        ),
        Row(
            "soak: RSS growth per session",
            r.rss_growth_kb / r.sessions,
            "KiB",
        ),
        Row("soak: open fds at the end", f.fds, "fds", f"fds {what}", b.fds),
        Row("soak: OS threads at the end", f.threads, "threads", f"threads {what}", b.threads),
        Row("soak: asyncio tasks at the end", f.tasks, "tasks", f"tasks {what}", b.tasks),
    ]
