"""Shared pytest fixtures (several owners; keep additions small and separate)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# --------------------------------------------------------------------------- environment
# Owner: platforms. A suite run by systemd (a unit, `systemd-nspawn CMD`, a container's
# service) inherits its notify socket and watchdog: libsystemd and every daemon the tests
# start would talk to that manager. Tests set these themselves where they test them.
for _name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
    os.environ.pop(_name, None)


# --------------------------------------------------------------------------- pulse audio
# Owner: audio layer (tests/pulse.py).
@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private PulseAudio server: pipe-source ``mic`` (16 kHz) and null sink ``speaker``.

    Its environment (PULSE_SERVER, XDG_RUNTIME_DIR) is exported for the session,
    so PyAudio instances created afterwards see the ALSA ``pulse`` device.
    A missing pulseaudio fails the test with the reason; nothing is skipped.
    """
    from tests.pulse import PulseError, PulseServer

    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    try:
        server.start()
    except PulseError as exc:
        pytest.fail(f"PulseAudio test server unavailable: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pulse_mic(pulse: Any) -> Iterator[Any]:
    """The session's server with the mic loaded and silent before and after the test."""
    if pulse.mic_module is None:
        pulse.load_mic()
    pulse.silence()
    yield pulse
    if pulse.mic_module is None:
        pulse.load_mic()
    pulse.silence()


@pytest.fixture(scope="session")
def detector() -> Iterator[Any]:
    """The default wake word models, loaded once for every appliance test."""
    from daemon import config
    from daemon.wakeword import WakeWordDetector

    det = WakeWordDetector(config.Config().wakeword)
    det.load()
    yield det
    det.close()


# --------------------------------------------------------------------------- realtime oracle
@pytest.fixture(autouse=True)
def _validate_client_messages(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """Every client event the engine produces must pass the protocol oracle.

    Violations raise where they happen and also fail the test at teardown (a
    raise inside a transport task could otherwise be swallowed). Opt out with
    ``@pytest.mark.invalid_client_messages_ok``. Yields the list of violations.
    """
    from daemon.realtime import validate
    from daemon.realtime.engine import RealtimeProtocol

    violations: list[str] = []
    if request.node.get_closest_marker("invalid_client_messages_ok") or not validate.available():
        yield violations
        return
    original = RealtimeProtocol.data_to_send

    def checked(self: RealtimeProtocol) -> list[dict[str, Any]]:
        out = original(self)
        for msg in out:
            try:
                validate.check_client(msg)
            except validate.ProtocolViolation as exc:
                violations.append(f"{msg.get('type')!r}: {exc} (param={exc.param})")
                raise
        return out

    monkeypatch.setattr(RealtimeProtocol, "data_to_send", checked)
    yield violations
    assert not violations, f"invalid client messages: {violations}"


@pytest.fixture(autouse=True)
def _strict_simulators(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every simulator a test starts checks each message it sends against the server
    event types (fault-mode garbage excepted), and the test fails on any violation."""
    from daemon.realtime.sim.server import Simulator

    made: list[Any] = []
    original = Simulator.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("strict", True)
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Simulator, "__init__", init)
    yield made
    bad = [v for sim in made for v in sim.violations]
    assert not bad, f"the simulator sent invalid server events: {bad}"
