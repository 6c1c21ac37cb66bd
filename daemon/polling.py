"""The grid the idle daemon's health polls run on.

Each poll wakes the asyncio loop; idle, polls were 7 of its 9 wake-ups a second. Polls
due at multiples of their interval on the loop's clock (0.5 s and 1 s) fall in the same
loop iteration: one wake-up instead of one each. Imports nothing from ``daemon``.
"""

from __future__ import annotations

import math


def next_tick(now: float, interval: float) -> float:
    """The first multiple of ``interval`` (seconds) after ``now`` (the loop's
    ``time()``): when a poll of that interval is next due. Raises ValueError unless
    ``interval`` is positive."""
    if interval <= 0:
        raise ValueError(f"a poll interval must be positive, got {interval}")
    return (math.floor(now / interval) + 1) * interval
