"""Is the link alive? Pure bookkeeping, the clock passed in (sans-I/O like the engine).

The realtime API streams ``response.output_audio.delta`` every few tens of
milliseconds while it answers, and starts an answer within a second or two of
the user's turn; while the user is listening or thinking it sends nothing. So
server silence means different things by what the session waits for
(``RealtimeProtocol.expecting_server``):

- an answer expected or arriving: ``answer_silence`` (3 s) without a frame is
  suspicious; a ping then checks the link;
- listening (nothing expected): a ping after ``listen_silence`` (5 s) of quiet;
- either way, a ping not answered within ``pong_timeout`` (2 s) means the link
  is dead (a Wi-Fi that stops forwarding sends no FIN and no RST);
- a link that answers pings but whose started answer goes ``response_timeout``
  (15 s) without an event is a server that lost the response.

So a dead link is found within 3 + 2 s during an answer and 5 + 2 s while
listening. ``check`` says what to do now and when to ask again; the transport
(session.py) only pumps: it pings, aborts the socket, and sleeps until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["ok", "ping", "dead", "response_timeout"]


@dataclass(frozen=True)
class LivenessBounds:
    """Seconds; see the module docstring for the reasoning."""

    answer_silence: float = 3.0
    listen_silence: float = 5.0
    pong_timeout: float = 2.0
    response_timeout: float = 15.0

    def __post_init__(self) -> None:
        for name in ("answer_silence", "listen_silence", "pong_timeout", "response_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected seconds > 0, got {getattr(self, name)!r}")


class Liveness:
    """Feed it ``frame``/``pong`` as they arrive; call ``check`` when it asked to be."""

    def __init__(self, bounds: LivenessBounds, now: float) -> None:
        self.bounds = bounds
        self.last_frame = now  # the last server event
        self.last_heard = now  # the last server event or pong
        self.ping_sent: float | None = None
        self._expect_since: float | None = None
        self._timed_out = False
        self.pongs = 0  # pongs received (for tests and the bench)

    def frame(self, now: float) -> None:
        """A server frame arrived."""
        self.last_frame = self.last_heard = now
        self.ping_sent = None
        self._timed_out = False

    def pong(self, now: float) -> None:
        """The answer to our ping arrived: the link carries data both ways."""
        self.last_heard = now
        self.ping_sent = None
        self.pongs += 1

    def check(self, now: float, expecting: bool) -> tuple[Verdict, float]:
        """What to do at ``now`` and when to call again (an absolute time on the same clock).

        ``ping``: send one now (the verdict is given once per ping). ``dead``: end the
        session as connection_lost. ``response_timeout``: give the answer up (once per
        silence).
        """
        b = self.bounds
        if not expecting:
            self._expect_since = None
        elif self._expect_since is None:
            self._expect_since = now
        if self.ping_sent is not None and now >= self.ping_sent + b.pong_timeout:
            return "dead", now
        if expecting and not self._timed_out:
            assert self._expect_since is not None
            give_up = max(self.last_frame, self._expect_since) + b.response_timeout
            if now >= give_up:
                self._timed_out = True
                return "response_timeout", now
        silence = b.answer_silence if expecting else b.listen_silence
        if self.ping_sent is None:
            ping_at = self.last_heard + silence
            if now >= ping_at:
                self.ping_sent = now
                return "ping", now + b.pong_timeout
            deadlines = [ping_at]
        else:
            deadlines = [self.ping_sent + b.pong_timeout]
        if expecting and not self._timed_out:
            assert self._expect_since is not None
            deadlines.append(max(self.last_frame, self._expect_since) + b.response_timeout)
        return "ok", min(deadlines)
