"""sd_notify(3) for the daemon: READY, STATUS, WATCHDOG, RELOADING, STOPPING.

Sends datagrams to $NOTIFY_SOCKET itself, like sd_notify(3) but never blocking: the
appliance calls it from its event loop, and a notify reader that stalls (a full socket
buffer) must not freeze the countdown, so a datagram that does not fit is dropped and
counted (``dropped``) instead. A no-op (every call returns False) when NOTIFY_SOCKET is
unset, so the same code runs under systemd, in a terminal and in tests. What the states
mean is the daemon's business (READY once the model is loaded and microphone frames flow;
WATCHDOG only from the audio path); this module only speaks the protocol.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

Sender = Callable[[str], bool]


def _monotonic_us() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def socket_sender(address: str) -> Sender | None:
    """A non-blocking sender to NOTIFY_SOCKET ``address`` (a path, or ``@name`` for the
    abstract namespace); None for an address it cannot use (e.g. vsock:)."""
    if address.startswith("@"):
        target = "\0" + address[1:]
    elif address.startswith("/"):
        target = address
    else:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)

    def send(message: str) -> bool:
        # systemd's end has SO_PASSCRED: the kernel adds our pid for NotifyAccess=main.
        sock.sendto(message.encode("utf-8", "replace"), target)
        return True

    return send


def _one_line(text: str) -> str:
    # A newline would start a new assignment: "STATUS=x\nREADY=1" must not be possible.
    return " ".join(text.splitlines()).strip()


def watchdog_interval(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """WatchdogSec= in seconds from WATCHDOG_USEC, or None when the watchdog is off or
    meant for another process (WATCHDOG_PID), like sd_watchdog_enabled(3)."""
    raw = environ.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 1_000_000


class Notifier:
    """The daemon's side of Type=notify.

    ``environ``, ``send`` and ``clock_us`` (CLOCK_MONOTONIC in microseconds) are
    injectable for tests; by default they are os.environ, a non-blocking datagram socket
    to $NOTIFY_SOCKET and the real monotonic clock.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        send: Sender | None = None,
        clock_us: Callable[[], int] = _monotonic_us,
    ) -> None:
        env = os.environ if environ is None else environ
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self.watchdog_interval = watchdog_interval(env) if self.enabled else None
        self._send: Sender | None = None
        if self.enabled:
            self._send = send if send is not None else socket_sender(env["NOTIFY_SOCKET"])
            self.enabled = self._send is not None
        self._clock_us = clock_us
        self._last_pet_us: int | None = None
        self._last_status = ""
        self.sent = 0
        self.dropped = 0  # datagrams the stalled reader had no room for

    def notify(self, *assignments: str) -> bool:
        """Send raw ``KEY=value`` assignments in one datagram; False when not under systemd."""
        if self._send is None or not assignments:
            return False
        try:
            ok = self._send("\n".join(assignments))
        except BlockingIOError:
            # The reader stalls and its buffer is full: drop it rather than block the loop.
            self.dropped += 1
            return False
        except OSError:
            # A vanished notify socket must never take the daemon down.
            return False
        self.sent += ok
        return ok

    # The named messages return None (the appliance's Notifier port); ``sent`` counts the
    # datagrams systemd accepted, for diagnostics and tests.

    def ready(self, status: str | None = None) -> None:
        """READY=1: startup (or a reload) is complete."""
        self._send_with_status(["READY=1"], status)

    def status(self, text: str) -> None:
        """STATUS=...: the line `systemctl status voicepi` shows. Repeats are not resent."""
        field = self._status_field(text)
        if field != self._last_status:
            self._last_status = field
            self.notify(field)

    def watchdog(self, *, force: bool = False) -> None:
        """WATCHDOG=1, at most every third of the interval (call it from every audio frame).

        Without WatchdogSec= nothing is sent."""
        if self.watchdog_interval is None:
            return
        now = self._clock_us()
        min_gap = int(self.watchdog_interval * 1_000_000 / 3)
        if not force and self._last_pet_us is not None and now - self._last_pet_us < min_gap:
            return
        if self.notify("WATCHDOG=1"):
            self._last_pet_us = now

    def reloading(self, status: str | None = None) -> None:
        """RELOADING=1 with MONOTONIC_USEC (as systemd >= 253 wants); call ready() when the
        new config is applied (or the old one kept)."""
        self._send_with_status(["RELOADING=1", f"MONOTONIC_USEC={self._clock_us()}"], status)

    def stopping(self, status: str | None = None) -> None:
        """STOPPING=1: shutdown has begun."""
        self._send_with_status(["STOPPING=1"], status)

    def extend_timeout(self, seconds: float) -> None:
        """EXTEND_TIMEOUT_USEC: ask for more start/stop time (slow model loading)."""
        self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def _send_with_status(self, fields: list[str], status: str | None) -> None:
        if status is not None:
            field = self._status_field(status)
            self._last_status = field
            fields.append(field)
        self.notify(*fields)

    def _status_field(self, text: str) -> str:
        return "STATUS=" + _one_line(text)
