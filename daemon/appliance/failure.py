"""A failed wake or session on display: the error state for ERROR_HOLD_S, then idle.

Sans-I/O: times are passed in. Also remembers a rate limit's Retry-After, so a wake
before it is over fails at once without a connection attempt.
"""

from __future__ import annotations

import dataclasses
import math

from .. import events as ev

ERROR_HOLD_S = 3.0  # a session failure shows the error state and LED this long, then idle


class FailureHold:
    """The failure shown until ``until`` (None: none), and a Retry-After to respect."""

    def __init__(self) -> None:
        self.until: float | None = None
        # A rate limit's Retry-After: wakes before this fail at once, no connection attempt.
        self.retry_at: float | None = None
        self.retry_info: ev.ErrorInfo | None = None

    def hold(self, info: ev.ErrorInfo, now: float, *, remember_retry: bool = True) -> None:
        """Start the failure's display time; remember a rate limit's Retry-After."""
        if remember_retry and info.kind == "rate_limit" and info.retry_after:
            self.retry_at = now + info.retry_after
            self.retry_info = dataclasses.replace(info, retry_after=None)
        self.until = now + ERROR_HOLD_S

    def expired(self, now: float) -> bool:
        """True once a held failure's display time is over (then call ``clear``)."""
        return self.until is not None and now >= self.until

    def clear(self) -> None:
        """No failure on display any more (a new wake, or its time is over)."""
        self.until = None

    def refusal(self, now: float) -> ev.ErrorInfo | None:
        """The error for a wake at ``now`` while the server asked us to wait, or None."""
        if self.retry_at is None or now >= self.retry_at or not self.retry_info:
            return None
        left = self.retry_at - now
        return dataclasses.replace(
            self.retry_info,
            message=f"{self.retry_info.message} (retry in {math.ceil(left)} s)",
            retry_after=round(left, 1),
        )

    @staticmethod
    def text(info: ev.ErrorInfo) -> str:
        """The state's failure text, e.g. "network error (connect_failed)"."""
        return f"{info.kind or 'session'} error ({info.code or info.type})"
