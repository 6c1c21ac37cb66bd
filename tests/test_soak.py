"""Short soak (issue 7): 30 back-to-back sessions through the real appliance, no leaks.

The full 200-session run with its figures is in `make bench` (tests/bench_soak.py).
Limits are generous on purpose: they catch a clear leak (an fd, a thread or a task
per session; megabytes per session), not allocator noise.
"""

from __future__ import annotations

from pathlib import Path

from daemon.wakeword import WakeWordDetector
from tests.bench_soak import soak

SESSIONS = 30


async def test_30_sessions_leave_fds_threads_tasks_and_memory_flat(
    detector: WakeWordDetector, tmp_path: Path
) -> None:
    r = await soak(SESSIONS, detector, tmp_path)
    b, f = r.baseline, r.final
    assert f.fds <= b.fds + 2, f"fds leak: {b.fds} -> {f.fds}"
    assert f.threads <= b.threads + 2, f"thread leak: {b.threads} -> {f.threads}"
    assert r.python_threads[1] <= r.python_threads[0] + 1, r.python_threads
    assert f.tasks <= b.tasks + 1, f"asyncio task leak: {b.tasks} -> {f.tasks}"
    # Each session moves a few hundred kB of audio; keeping it would be MBs per session.
    assert r.rss_growth_kb < 40 * 1024, f"RSS grew {r.rss_growth_kb} kB over {SESSIONS} sessions"
