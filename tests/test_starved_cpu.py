"""A loop slower than real time (starved CPU): microphone audio is dropped and reported
instead of queued without bound, and signals still reach the loop. Real threads, a real
asyncio loop and real signals; the loop is held busy with an Event, not with sleeps."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading

import numpy as np

from daemon.appliance.handoff import FrameHandoff

BLOCK = 320  # 20 ms at 16 kHz


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

    handoff = FrameHandoff(loop, deliver, dropped, max_samples=5 * BLOCK)
    produced = threading.Event()

    def mic() -> None:  # the audio thread: 100 blocks (2 s) while the loop is stuck
        for i in range(100):
            handoff.put(np.full(BLOCK, i, dtype=np.int16))
        produced.set()

    def stuck() -> None:  # the loop busy elsewhere until the microphone is 2 s ahead
        threading.Thread(target=mic).start()
        produced.wait(10)

    loop.call_soon(stuck)
    while len(got) < 5:
        await asyncio.sleep(0.01)
    assert got == [95, 96, 97, 98, 99]  # the newest 100 ms, in order
    assert lost == [95 * BLOCK] and handoff.dropped_samples == 95 * BLOCK
    assert order[0] == "dropped"  # told about the gap before the audio after it


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
