"""The idle daemon's memory cuts (issue #16): each on the real mechanism it relies on."""

from __future__ import annotations

import asyncio
import ctypes
import glob
import mmap
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon import memory
from daemon.polling import next_tick
from hw.audio import watch

ROOT = Path(__file__).resolve().parent.parent


def _mapping_rss_kb(path: Path) -> int:
    """Resident kB of this process's mappings of ``path`` (/proc/self/smaps)."""
    target, inside, total = str(path.resolve()), False, 0
    with open("/proc/self/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
                inside = len(fields) >= 6 and fields[5] == target
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


def test_drop_file_pages_gives_back_a_read_only_mapping_and_the_bytes_stay(
    tmp_path: Path,
) -> None:
    path = tmp_path / "model.bin"
    data = os.urandom(64 * mmap.PAGESIZE)
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        assert m[:] == data  # every page touched: resident
        assert _mapping_rss_kb(path) >= 64 * mmap.PAGESIZE // 1024
        assert memory.drop_file_pages(path) == len(data)
        assert _mapping_rss_kb(path) == 0
        assert m[:] == data  # read again from the page cache


def test_drop_file_pages_leaves_writable_mappings_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.bin"
    path.write_bytes(bytes(4 * mmap.PAGESIZE))
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as m:
        m[0] = 7  # a private change that dropping would lose
        assert memory.drop_file_pages(path) == 0
        assert m[0] == 7


def _mprotect_read_only(m: mmap.mmap) -> None:
    """What the dynamic loader does to a relocated RELRO segment: written, then r--."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    address = ctypes.addressof(ctypes.c_char.from_buffer(m))
    assert libc.mprotect(address, len(m), mmap.PROT_READ) == 0, os.strerror(ctypes.get_errno())


def test_drop_cold_file_pages_unmaps_clean_read_only_pages_and_keeps_private_copies(
    tmp_path: Path,
) -> None:
    clean, relocated = tmp_path / "code.bin", tmp_path / "relro.bin"
    data = os.urandom(32 * mmap.PAGESIZE)
    clean.write_bytes(data)
    relocated.write_bytes(bytes(4 * mmap.PAGESIZE))
    with (
        open(clean, "rb") as f,
        mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as code,
        open(relocated, "r+b") as g,
        mmap.mmap(g.fileno(), 0, access=mmap.ACCESS_COPY) as relro,
    ):
        relro[0] = 7  # a private copy of a page, as a relocation makes
        view = memoryview(relro)  # mprotect needs the buffer's address, then no writes
        try:
            _mprotect_read_only(relro)
            assert code[:] == data
            assert _mapping_rss_kb(clean) >= 32 * mmap.PAGESIZE // 1024
            assert memory.drop_cold_file_pages() >= len(data)
            assert _mapping_rss_kb(clean) == 0
            assert view[0] == 7  # the r-- mapping holding a private page was left alone
            assert code[:] == data  # faulted back from the page cache
        finally:
            view.release()


def test_drop_cold_file_pages_without_proc_drops_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_proc() -> list[tuple[int, int]]:
        raise FileNotFoundError("/proc/self/smaps")

    monkeypatch.setattr(memory, "_clean_read_only_spans", no_proc)
    assert memory.drop_cold_file_pages() == 0  # a chroot without /proc: READY goes on


def test_the_daemon_releases_memory_at_ready_and_after_each_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from daemon import events as ev
    from daemon.commands import run

    released: list[str] = []
    monkeypatch.setattr(memory, "release", lambda: released.append("release") or 0)

    class Notifier:
        def ready(self) -> None:
            released.append("ready")

    wrapped = run._ReleaseAtReady(Notifier())
    wrapped.ready()
    wrapped.ready()  # a reload's READY=1: start-up is long over
    assert released == ["release", "ready", "ready"]

    async def a_session_closes() -> None:
        emit = run.releasing_after_sessions(asyncio.get_running_loop())
        emit(ev.SessionClosed(reason="inactivity"))
        while released.count("release") < 2:
            await asyncio.sleep(0.01)

    monkeypatch.setattr(run, "RELEASE_AFTER_SESSION_S", 0.0)
    asyncio.run(asyncio.wait_for(a_session_closes(), 10))


async def test_watchdogs_poll_on_the_loop_without_a_thread_each() -> None:
    loop = asyncio.get_running_loop()
    calls: list[str] = []
    reported: list[tuple[str, BaseException]] = []
    before = threading.active_count()

    def check() -> BaseException | None:
        calls.append(threading.current_thread().name)
        return RuntimeError("stream died") if len(calls) == 3 else None

    def report(exc: BaseException) -> None:
        reported.append((threading.current_thread().name, exc))

    watch.poll_on(loop)
    try:
        dog = watch.Watchdog(check, report, interval=0.01, name="test-watch")
        assert threading.active_count() == before  # no thread of its own
        while not reported:
            await asyncio.sleep(0.01)
    finally:
        watch.poll_on(None)
    main = threading.current_thread().name
    assert calls == [main] * 3 and [(n, str(e)) for n, e in reported] == [(main, "stream died")]
    dog.stop()
    # Not a guess at timing: the loop runs timers in due order, so once this one fires
    # every tick the watchdog had pending (due within its 10 ms interval) has run.
    await asyncio.sleep(0.05)
    assert len(calls) == 3  # reported once, then no more checks


async def test_loop_watchdogs_poll_on_one_grid_so_their_polls_share_wake_ups() -> None:
    # Idle, each poll wakes the daemon's loop. The mic's watchdog polls at 0.5 s and the
    # speaker's at 1 s (0.05 and 0.1 here): due at multiples of their interval, the
    # slower one's polls run in the same loop iteration as every other of the faster's.
    loop = asyncio.get_running_loop()
    seen: dict[str, list[float]] = {"half": [], "whole": []}

    def check(name: str) -> Callable[[], None]:
        return lambda: seen[name].append(loop.time())

    watch.poll_on(loop)
    try:
        dogs = [watch.Watchdog(check("whole"), print, interval=0.1, name="whole")]
        await asyncio.sleep(0.025)  # started apart, as a mic reopened later would be
        dogs.append(watch.Watchdog(check("half"), print, interval=0.05, name="half"))
    finally:
        watch.poll_on(None)
    while len(seen["half"]) < 7:
        await asyncio.sleep(0.01)
    for dog in dogs:
        dog.stop()
    both = [t for t in seen["whole"] if t > seen["half"][0] - 0.001]  # once both poll
    assert len(both) >= 3, seen
    for t in both:
        assert min(abs(t - h) for h in seen["half"]) < 0.001, (t, seen)


def test_the_next_poll_is_the_next_multiple_of_its_interval() -> None:
    assert next_tick(10.2, 0.5) == 10.5
    assert next_tick(10.5, 0.5) == 11.0  # strictly after: a tick never reruns at once
    assert next_tick(10.2, 1.0) == 11.0 == next_tick(10.7, 0.5)
    with pytest.raises(ValueError, match="positive"):
        next_tick(1.0, 0.0)


async def test_a_stopped_loop_watchdog_checks_no_more() -> None:
    calls: list[int] = []
    watch.poll_on(asyncio.get_running_loop())
    try:
        dog = watch.Watchdog(lambda: calls.append(1) or None, print, interval=0.01, name="w")
    finally:
        watch.poll_on(None)
    while len(calls) < 2:
        await asyncio.sleep(0.01)
    dog.stop()
    seen = len(calls)
    await asyncio.sleep(0.05)  # due after any pending tick: the loop runs timers in order
    assert len(calls) == seen


PROBE = r"""
from hw.audio.devices import list_devices, new_pyaudio
pa = new_pyaudio()
names = [d.name for d in list_devices(pa)]
maps = open("/proc/self/maps").read()
print("a52" if "libasound_module_pcm_a52" in maps else "-", "libavcodec" in maps, names)
pa.terminate()
"""


def test_portaudio_probe_leaves_no_alsa_encoder_plugin_loaded() -> None:
    """PortAudio opens every PCM the ALSA configuration defines; the a52 encoder's module
    maps libavcodec and ~60 libraries (11 MB RSS). None of it stays loaded."""
    if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_a52.so"):
        pytest.skip("no a52 ALSA plugin here (libasound2-plugins)")
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("- False "), out.stdout
