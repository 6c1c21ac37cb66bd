"""daemon.notify against a real AF_UNIX datagram socket, through the real systemd-python."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.notify import Notifier, watchdog_interval


class Clock:
    def __init__(self) -> None:
        self.us = 1_000_000

    def __call__(self) -> int:
        return self.us


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on the socket."""
    out = []
    sock.settimeout(0.2)
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            return out


def test_ready_status_watchdog_stopping(
    notify_socket: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, env = notify_socket
    # libsystemd reads NOTIFY_SOCKET from the real environment.
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    env = {**env, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    n = Notifier(env, clock_us=Clock())
    assert n.enabled and n.watchdog_interval == 30.0
    n.ready("idle, listening for hey_jarvis")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=idle, listening for hey_jarvis"
    n.status("connecting")
    assert sock.recv(4096).decode() == "STATUS=connecting"
    n.watchdog()
    assert sock.recv(4096).decode() == "WATCHDOG=1"
    n.stopping()
    assert sock.recv(4096).decode() == "STOPPING=1"
    assert received(sock) == []
    assert n.sent == 4


def test_reloading_carries_monotonic_usec(
    notify_socket: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, env = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    clock = Clock()
    clock.us = 123_456_789
    n = Notifier(env, clock_us=clock)
    n.reloading("reloading config")
    assert sock.recv(4096).decode() == (
        "RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading config"
    )
    n.ready()
    assert sock.recv(4096).decode() == "READY=1"
    n.status("reloading config")  # already shown with RELOADING: not resent
    n.status("listening for hey jarvis")
    assert received(sock) == ["STATUS=listening for hey jarvis"]


def test_default_clock_is_clock_monotonic(
    notify_socket: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    sock, env = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(env).reloading()
    fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


def test_watchdog_is_rate_limited_to_a_third_of_the_interval(
    notify_socket: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, env = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    clock = Clock()
    n = Notifier({**env, "WATCHDOG_USEC": "3000000"}, clock_us=clock)
    for _ in range(100):  # 100 audio frames of 20 ms = 2 s
        n.watchdog()
        clock.us += 20_000
    assert received(sock) == ["WATCHDOG=1", "WATCHDOG=1"]  # at 0 s and at 1 s
    n.watchdog(force=True)
    assert received(sock) == ["WATCHDOG=1"]


def test_status_text_cannot_inject_assignments(
    notify_socket: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, env = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    n = Notifier(env)
    n.status("bad\nREADY=1")
    assert sock.recv(4096).decode() == "STATUS=bad READY=1"
    n.status("bad\nREADY=1")  # unchanged status is not resent
    assert received(sock) == []


def test_no_op_without_notify_socket() -> None:
    n = Notifier({"WATCHDOG_USEC": "30000000"})
    assert not n.enabled
    assert n.watchdog_interval is None
    n.ready("x")
    n.status("x")
    n.watchdog()
    n.reloading()
    n.stopping()
    n.extend_timeout(30)
    assert not n.notify("READY=1")
    assert n.sent == 0


def test_vanished_socket_does_not_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # libsystemd reads the real environment: point it at the vanished socket as well, not
    # at whatever manager runs the suite.
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.enabled
    n.ready()  # libsystemd reports the failure; the daemon keeps running
    assert not n.notify("READY=1") and n.sent == 0


def test_extend_timeout(
    notify_socket: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, env = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    Notifier(env).extend_timeout(45)
    assert sock.recv(4096).decode() == "EXTEND_TIMEOUT_USEC=45000000"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # someone else's
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env, pid=4242) == expected


def test_a_stalled_notify_reader_never_blocks_the_caller(
    notify_socket: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: nobody reads the socket and its queue is full; sending must return at once
    (the daemon sends from its event loop) instead of blocking until the reader wakes."""
    sock, env = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        for _ in range(100_000):
            filler.sendto(b"X" * 512, env["NOTIFY_SOCKET"])
    filler.close()
    # In a child process: libsystemd's blocking send held the GIL, freezing every thread.
    script = (
        "from daemon.notify import Notifier\n"
        "n = Notifier()\n"
        "n.watchdog(force=True)\n"
        "n.status('still here')\n"
        "print(getattr(n, 'dropped', None), n.sent)\n"
    )
    child_env = {**os.environ, **env, "WATCHDOG_USEC": "30000000"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the notify send blocked on the stalled reader")
    assert done.stdout.split() == ["2", "0"], done.stderr
    n = Notifier(env)
    # Once the reader catches up, messages flow again.
    received(sock)
    n.status("caught up")
    assert sock.recv(4096).decode() == "STATUS=caught up"
