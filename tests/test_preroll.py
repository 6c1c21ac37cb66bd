"""Pre-roll ring buffer: addressable by absolute sample index, wraps correctly."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from daemon.appliance.preroll import PreRoll


def test_since_returns_the_samples_from_an_index() -> None:
    pr = PreRoll(seconds=1.0, rate=10)
    pr.push(np.arange(7, dtype=np.int16))
    pr.push(np.arange(7, 15, dtype=np.int16))
    assert pr.end_index == 15 and pr.start_index == 5
    assert pr.since(12).tolist() == [12, 13, 14]
    assert pr.since(0).tolist() == list(range(5, 15))  # older samples are gone
    assert pr.since(99).tolist() == []


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=30), st.integers(0, 400))
def test_matches_a_plain_list(blocks: list[int], ask: int) -> None:
    pr = PreRoll(seconds=1.0, rate=37)
    ref: list[int] = []
    for n in blocks:
        chunk = (np.arange(len(ref), len(ref) + n) % 30000).astype(np.int16)
        pr.push(chunk)
        ref.extend(chunk.tolist())
    kept = ref[-37:]
    start = max(ask, len(ref) - len(kept))
    assert pr.since(ask).tolist() == ref[start:]
