"""The asyncio side of liveness: runs ``Liveness``'s verdicts against a websocket.

``Liveness`` (liveness.py) decides from the times it is told; ``LinkWatch``
tells it, sleeps until its next deadline (or until ``kick()`` says the bounds
changed), pings a quiet server, and reports a dead link or a stalled answer to
the session through callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection

from .liveness import Liveness

log = logging.getLogger("daemon.realtime.session")


class LinkWatch:
    """Watches one connection until ``closed()``; ``run`` is its task."""

    def __init__(
        self,
        liveness: Liveness,
        clock: Callable[[], float],
        *,
        closed: Callable[[], bool],
        expecting: Callable[[], bool],
        dead: Callable[[str], None],
        timed_out: Callable[[float], None],
    ) -> None:
        self.liveness = liveness
        self._clock = clock
        self._closed = closed
        self._expecting = expecting
        self._dead = dead
        self._timed_out = timed_out
        self._kick = asyncio.Event()
        self.pings: set[asyncio.Task[None]] = set()  # cancelled when the session ends

    def kick(self) -> None:
        """Check again now: whether an answer is expected changed (so did the bounds)."""
        self._kick.set()

    async def run(self, ws: ClientConnection) -> None:
        """Ping a quiet server, end a dead link (``dead``, then abort), give up a lost
        answer (``timed_out``)."""
        live = self.liveness
        while not self._closed():
            now = self._clock()
            expecting = self._expecting()
            verdict, wake_at = live.check(now, expecting)
            if verdict == "ping":
                task = asyncio.get_running_loop().create_task(self._ping(ws))
                self.pings.add(task)
                task.add_done_callback(self.pings.discard)
            elif verdict == "dead":
                silent = now - live.last_heard
                what = "during an answer" if expecting else "while listening"
                log.warning("link dead: no frame or pong for %.1f s %s", silent, what)
                self._dead(f"the link is dead: no data from the server for {silent:.1f} s {what}")
                ws.transport.abort()  # no closing handshake can pass a dead link
                return
            elif verdict == "response_timeout":
                self._timed_out(live.bounds.response_timeout)
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), max(0.0, wake_at - self._clock()))

    async def _ping(self, ws: ClientConnection) -> None:
        # On a dead link ping() itself may wait behind a full send buffer; the
        # deadline is counted from when it was due, not from when it left.
        with contextlib.suppress(Exception):
            pong = await ws.ping()
            await pong
            self.liveness.pong(self._clock())
