"""A loop slower than real time (starved CPU): microphone audio is dropped and reported
instead of queued without bound, and signals still reach the loop. Real threads, a real
asyncio loop and real signals; the loop is held busy with an Event, not with sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from daemon.appliance.handoff import FrameHandoff

BLOCK = 320  # 20 ms at 16 kHz
SPEECH = Path(__file__).resolve().parent / "fixtures" / "speech"


async def test_backlog_is_dropped_and_reported_not_queued() -> None:
    loop = asyncio.get_running_loop()
    got: list[int] = []
    order: list[str] = []
    lost: list[int] = []

    def deliver(samples: np.ndarray) -> None:
        got.append(int(samples[0]))
        order.append("block")

    def dropped(n: int) -> None:
        lost.append(n)
        order.append("dropped")

    handoff = FrameHandoff(loop, deliver, dropped, max_samples=5 * BLOCK, batch_samples=2 * BLOCK)
    produced = threading.Event()

    def mic() -> None:  # the audio thread: 100 blocks (2 s) while the loop is stuck
        for i in range(100):
            handoff.put(np.full(BLOCK, i, dtype=np.int16))
        produced.set()

    def stuck() -> None:  # the loop busy elsewhere until the microphone is 2 s ahead
        threading.Thread(target=mic).start()
        produced.wait(10)
        loop.call_soon_threadsafe(order.append, "stop")  # e.g. SIGTERM's callback

    loop.call_soon(stuck)
    while len(got) < 5:
        await asyncio.sleep(0.01)
    assert got == [95, 96, 97, 98, 99]  # the newest 100 ms, in order
    assert lost == [95 * BLOCK] and handoff.dropped_samples == 95 * BLOCK
    assert order[0] == "dropped"  # told about the gap before the audio after it
    # Two blocks per callback: the stop ran before the rest of the backlog.
    assert order == ["dropped", "block", "block", "stop", "block", "block", "block"]


async def test_a_paced_mic_waits_for_the_loop_and_nothing_is_dropped() -> None:
    """``wait``: the producer (a file: mic's own thread) blocks while the backlog is full,
    so a loop slower than real time still gets every block, in order."""
    loop = asyncio.get_running_loop()
    got: list[int] = []
    lost: list[int] = []
    handoff = FrameHandoff(
        loop, lambda s: got.append(int(s[0])), lost.append, 5 * BLOCK, 2 * BLOCK, wait=True
    )
    produced = threading.Event()
    mic = threading.Thread(
        target=lambda: (
            [handoff.put(np.full(BLOCK, i, dtype=np.int16)) for i in range(100)] and produced.set()
        )
    )

    def stuck() -> None:  # the loop busy elsewhere: the producer must stop at the cap
        mic.start()
        assert not produced.wait(0.5)  # still waiting for room (no drop)
        assert handoff._queued <= 5 * BLOCK

    loop.call_soon(stuck)
    while len(got) < 100:
        await asyncio.sleep(0.01)
    assert got == list(range(100)) and lost == [] and handoff.dropped_samples == 0
    mic.join(5)


async def test_closing_a_paced_handoff_releases_the_waiting_mic() -> None:
    loop = asyncio.get_running_loop()
    handoff = FrameHandoff(loop, lambda s: None, lambda n: None, BLOCK, wait=True)
    released = threading.Event()

    def mic() -> None:
        handoff.put(np.zeros(BLOCK, dtype=np.int16))
        handoff.put(np.zeros(BLOCK, dtype=np.int16))  # waits: the loop is not draining
        released.set()

    def closing() -> None:  # on the loop, as Appliance does before mic.close()
        threading.Thread(target=mic).start()
        assert not released.wait(0.3)
        handoff.close()
        assert released.wait(5)

    loop.call_soon(closing)
    await asyncio.sleep(0)
    assert released.is_set()
    handoff.put(np.zeros(BLOCK, dtype=np.int16))  # after close: ignored, not a drop
    assert handoff.dropped_samples == 0


SIGNAL_CHILD = r"""
import asyncio, signal, threading, sys
from daemon.commands.run import install_signal_handlers

async def main():
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    install_signal_handlers(loop, {signal.SIGTERM: stopped.set})
    flooded = threading.Event()

    def flood():  # an audio thread's call_soon_threadsafe fills the loop's self-pipe
        for _ in range(300_000):
            loop.call_soon_threadsafe(lambda: None)
        flooded.set()

    def stuck():
        threading.Thread(target=flood).start()
        flooded.wait(60)
        print("flooded", flush=True)
        sys.stdin.readline()  # the parent sends SIGTERM now, then a line

    loop.call_soon(stuck)
    await asyncio.wait_for(stopped.wait(), 60)
    print("stopped", flush=True)

asyncio.run(main())
"""


def test_sigterm_reaches_a_loop_whose_self_pipe_is_full() -> None:
    """asyncio's add_signal_handler passes the signal through the self-pipe: full, it printed
    "Exception ignored when trying to write to the signal wakeup fd: BlockingIOError" and
    the stop was lost."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    child = subprocess.Popen(
        [sys.executable, "-c", SIGNAL_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "flooded"
        child.send_signal(signal.SIGTERM)
        child.stdin.write("\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err[-2000:]
    assert out.strip() == "stopped"
    assert "BlockingIOError" not in err


# --------------------------------------------------------------------------- a CPU quota

QUOTA_PERCENT = 2  # of one core: under what the wake word needs on speech (3-5 %, `make bench`)
TIMEOUT_STOP_SEC = 15  # voicepi.service's TimeoutStopSec=


class CpuQuota:
    """A cgroup capped at ``percent`` of one core: cgroup v2 ``cpu.max`` where the cpu
    controller is on the unified hierarchy, else the v1 cpu controller's CFS quota. (With
    systemd as PID 1 a transient scope would do the same; this machine may have none.)"""

    def __init__(self, percent: int) -> None:
        period = 100_000
        quota = period * percent // 100
        name = f"voicepi-test-{os.getpid()}"
        v2 = Path("/sys/fs/cgroup")
        v1 = Path("/sys/fs/cgroup/cpu")
        unified = v2 / "cgroup.controllers"
        if unified.is_file() and "cpu" in unified.read_text().split():
            self.parent = v2
            controls = (v2 / "cgroup.subtree_control").read_text().split()
            if "cpu" not in controls:
                (v2 / "cgroup.subtree_control").write_text("+cpu")
            self.path = v2 / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{quota} {period}")
        elif (v1 / "cpu.cfs_quota_us").is_file():
            self.parent = v1
            self.path = v1 / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(period))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            pytest.fail("no cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us) here")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))  # every thread of the process

    def close(self) -> None:
        for pid in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (self.parent / "cgroup.procs").write_text(pid)
        self.path.rmdir()


async def test_stop_within_timeout_stop_sec_under_a_cpu_quota(tmp_path: Path) -> None:
    """At 2 % of a core the wake word cannot keep up with speech: old microphone audio is
    dropped and reported, and SIGTERM still stops the daemon cleanly within TimeoutStopSec
    (under qemu emulation, before these fixes, a SIGINT took 14 minutes and spammed
    BlockingIOError)."""
    from tests.test_run_cli import _start, _write_config

    if os.geteuid() != 0:
        pytest.fail("the CPU quota test needs root (it creates a cgroup)")
    import wave

    from hw.audio.files import load_mono
    from tests.appliance_harness import SPEECH
    from tests.test_run_cli import DEMO_WAV

    # Speech without the wake word, for minutes: the wake path works on every block (the
    # gate open), as in a room where people talk. (demo.wav ends in silence after 5 s, and
    # in silence the gated wake word kept up even at 4 %.)
    question, _ = load_mono(SPEECH / "question.wav", rate=16000)
    talk = tmp_path / "talk.wav"
    with wave.open(str(talk), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.tile(question, 180 * 16000 // len(question) + 1).astype("<i2").tobytes())
    cfg = _write_config(
        tmp_path / "config.toml", "ws://127.0.0.1:9/v1/realtime", tmp_path / "o.wav"
    )
    cfg.write_text(cfg.read_text().replace(str(DEMO_WAV), str(talk)))
    d = await _start(cfg)
    quota = None
    try:
        await d.wait_for(lambda r: r.get("event") == "state_changed" and r["state"] == "idle", 60)
        quota = CpuQuota(QUOTA_PERCENT)
        quota.add(d.proc.pid)
        dropped = await d.wait_for(lambda r: "dropped" in str(r.get("msg", "")), 120)
        assert dropped["level"] == "warning", dropped
        d.proc.send_signal(signal.SIGTERM)
        code = await d.finish(timeout=TIMEOUT_STOP_SEC)
    finally:
        if d.proc.returncode is None:
            d.proc.kill()
            await d.proc.wait()
        if quota is not None:
            quota.close()
    assert code == 0, "\n".join(d.raw[-30:])
    text = "\n".join(d.raw)
    assert "BlockingIOError" not in text and "Traceback" not in text, text[-3000:]


async def test_held_blocks_wake_the_loop_once_per_batch_in_order() -> None:
    """``hold_samples`` (idle batching): the loop is woken only once that much audio
    waits, then gets the batch in order as one array; 0 takes the next block at once."""
    loop = asyncio.get_running_loop()
    got: list[list[int]] = []
    handoff = FrameHandoff(
        loop, lambda s: got.append(s[::BLOCK].tolist()), lambda n: None, 8 * BLOCK, BLOCK
    )
    handoff.hold_samples = int(3.5 * BLOCK)
    for i in range(3):
        handoff.put(np.full(BLOCK, i, dtype=np.int16))
        await asyncio.sleep(0)
        assert got == [] and not handoff._scheduled  # no wake-up yet
    handoff.put(np.full(BLOCK, 3, dtype=np.int16))
    while not got:
        await asyncio.sleep(0)
    assert got == [[0, 1, 2, 3]]  # one callback, though batch_samples is one block
    handoff.hold_samples = 0
    handoff.put(np.full(BLOCK, 4, dtype=np.int16))
    while len(got) < 2:
        await asyncio.sleep(0)
    assert got == [[0, 1, 2, 3], [4]] and handoff.dropped_samples == 0
