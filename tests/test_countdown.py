"""The inactivity countdown with an injected clock: exact times, cancel, expiry."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon.countdown import Expired, InactivityCountdown
from daemon.events import CountdownCancelled, UserInactivityCountdown


def run_until_expired(cd: InactivityCountdown, now: float) -> list[tuple[float, object]]:
    """Poll exactly at each next_wakeup, as the appliance's timer does."""
    seen: list[tuple[float, object]] = []
    for _ in range(100):
        at = cd.next_wakeup(now)
        if at is None:
            break
        now = at
        for event in cd.poll(now):
            seen.append((now, event))
            if isinstance(event, Expired):
                return seen
    return seen


def test_announces_5_to_1_exactly_one_second_apart_then_expires() -> None:
    cd = InactivityCountdown(timeout=15, countdown=5)
    cd.start(100.0)
    seen = run_until_expired(cd, 100.0)
    announced = [
        (t, e.remaining_seconds) for t, e in seen if isinstance(e, UserInactivityCountdown)
    ]
    assert announced == [(110.0, 5), (111.0, 4), (112.0, 3), (113.0, 2), (114.0, 1)]
    assert isinstance(seen[-1][1], Expired) and seen[-1][0] == 115.0


def test_rounds_up_remaining_seconds() -> None:
    cd = InactivityCountdown(timeout=15, countdown=5)
    cd.start(0.0)
    assert cd.poll(9.5) == []  # 5.5 s left: not yet in the countdown window
    assert cd.poll(10.2) == [UserInactivityCountdown(remaining_seconds=5)]  # 4.8 s left -> 5
    assert cd.poll(10.9) == []  # still 5 (rounded up): announced once
    assert cd.poll(11.0) == [UserInactivityCountdown(remaining_seconds=4)]


def test_late_poll_skips_missed_numbers_never_repeats() -> None:
    cd = InactivityCountdown(timeout=15, countdown=5)
    cd.start(0.0)
    assert cd.poll(12.5) == [UserInactivityCountdown(remaining_seconds=3)]
    assert cd.poll(12.6) == []
    assert cd.poll(13.0) == [UserInactivityCountdown(remaining_seconds=2)]


def test_busy_cancels_a_running_countdown_and_restarts_idle_time() -> None:
    cd = InactivityCountdown(timeout=15, countdown=5)
    cd.start(0.0)
    cd.poll(11.0)
    assert cd.running
    assert cd.set_busy("user_speaking", True, 11.5) == [CountdownCancelled(cause="user_speaking")]
    assert cd.deadline() is None and cd.next_wakeup(12.0) is None
    assert cd.poll(40.0) == []  # busy: never expires
    assert cd.set_busy("user_speaking", False, 50.0) == []
    assert cd.deadline() == 65.0


def test_idle_only_when_every_cause_is_free() -> None:
    cd = InactivityCountdown(timeout=10, countdown=5)
    cd.start(0.0)
    cd.set_busy("response", True, 1.0)
    cd.set_busy("playing", True, 2.0)
    cd.set_busy("response", False, 3.0)
    assert cd.deadline() is None
    cd.set_busy("playing", False, 4.0)
    assert cd.deadline() == 14.0


def test_activity_without_countdown_emits_nothing_but_restarts() -> None:
    cd = InactivityCountdown(timeout=10, countdown=5)
    cd.start(0.0)
    assert cd.activity("button", 3.0) == []
    assert cd.deadline() == 13.0


def test_countdown_longer_than_timeout_is_clamped() -> None:
    cd = InactivityCountdown(timeout=3, countdown=5)
    cd.start(0.0)
    seen = run_until_expired(cd, 0.0)
    assert [e.remaining_seconds for _, e in seen if isinstance(e, UserInactivityCountdown)] == [
        3,
        2,
        1,
    ]


@given(
    timeout=st.floats(min_value=1.0, max_value=120.0),
    countdown=st.integers(min_value=0, max_value=10),
    polls=st.lists(st.floats(min_value=0.0, max_value=200.0), max_size=60),
)
def test_announcements_strictly_decrease_and_expiry_is_at_the_deadline(
    timeout: float, countdown: int, polls: list[float]
) -> None:
    cd = InactivityCountdown(timeout=timeout, countdown=countdown)
    cd.start(0.0)
    last = None
    for now in sorted(polls):
        for event in cd.poll(now):
            if isinstance(event, Expired):
                assert now >= timeout
                return
            assert isinstance(event, UserInactivityCountdown)
            assert 1 <= event.remaining_seconds <= countdown
            assert timeout - now <= event.remaining_seconds < timeout - now + 1
            assert last is None or event.remaining_seconds < last
            last = event.remaining_seconds
