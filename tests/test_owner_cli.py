"""The owner's commands as processes: demo bounds and arguments, the speaker's start-up path.

Real subprocesses and exit codes; the simulator on loopback; WAV files as mic and speaker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.realtime.simulator import Simulator
from tests.test_run_cli import _env, _start

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "fixtures" / "speech"
DEMO_WAV = ROOT / "daemon" / "data" / "demo.wav"


def voicepi(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=timeout,
    )


@pytest.mark.parametrize("pacing", ["clock", "consumer"])
def test_demo_that_nothing_wakes_ends_with_one_line_and_exit_1(pacing: str) -> None:
    # consumer: the bound counts the mic audio the loop took, not the wall clock
    out = voicepi("demo", "--mic", str(SPEECH / "what_time_is_it.wav"), "--mic-pacing", pacing)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.strip().splitlines() == [
        line for line in out.stderr.strip().splitlines() if "nothing woke the speaker" in line
    ], out.stderr
    assert "nothing woke the speaker within" in out.stderr
    assert "answer audio written" not in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_demo_bad_arguments_are_one_line(tmp_path: Path) -> None:
    zero = voicepi("demo", "--inactivity-timeout", "0")
    assert zero.returncode == 2 and "Traceback" not in zero.stderr
    assert "--inactivity-timeout: expected 1 to 3600 seconds, got 0" in zero.stderr
    mic = voicepi("demo", "--mic", str(tmp_path / "missing.wav"))
    assert mic.returncode == 1
    assert mic.stderr.strip() == f"voicepi demo: --mic: {tmp_path / 'missing.wav'}: no such file"
    assert "answer audio written" not in mic.stdout
    bad_out = tmp_path / "no" / "dir" / "x.wav"
    out = voicepi("demo", "--output", str(bad_out))
    assert out.returncode == 1, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("voicepi demo: --output: speaker unavailable") and str(bad_out) in line


def test_demo_takes_the_inactivity_timeout_from_its_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[session]\ninactivity_timeout = 3\n", encoding="utf-8")
    out = voicepi("demo", "--config", str(cfg), "--output", str(tmp_path / "a.wav"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "countdown  3" in out.stdout and "countdown  5" not in out.stdout, out.stdout
    assert "session    closed (inactivity)" in out.stdout


async def test_run_retries_a_missing_speaker_like_the_mic(tmp_path: Path) -> None:
    later = tmp_path / "later"
    async with Simulator() as sim:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[realtime]\nurl = "{sim.url}"\n'
            f'[audio]\ninput = "file:{DEMO_WAV}"\noutput = "file:{later / "out.wav"}"\n'
            '[gpio]\npin_factory = "mock"\n',
            encoding="utf-8",
        )
        d = await _start(cfg)
        try:
            err = await d.wait_for(lambda r: r.get("event") == "error")
            assert err["type"] == "speaker_unavailable", err
            later.mkdir()  # the "card" comes back
            await d.wait_for(lambda r: r.get("event") == "state_changed" and r["state"] == "idle")
            await d.wait_for(lambda r: r.get("event") == "wake_word_detected", 40)
        finally:
            if d.proc.returncode is None:
                d.proc.send_signal(signal.SIGTERM)
        assert await d.finish() == 0
    assert len(d.events("error")) == 1  # reported once, retried quietly
    assert not any("Traceback" in line for line in d.raw), "\n".join(d.raw)


INSTALL = ROOT / "image" / "install.sh"


def _read_key(mode: str, stdin: str | None) -> subprocess.CompletedProcess[str]:
    """install.sh's key step in a real bash, stdin a pipe (or /dev/null), no terminal."""
    return subprocess.run(
        ["bash", "-c", f'source "{INSTALL}"; KEY_FILE=/nonexistent/key; read_key {mode}'],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_install_takes_a_piped_key_without_key_stdin() -> None:
    # README: echo "$KEY" | sudo image/install.sh
    piped = _read_key("ask", "sk-piped-key-123\n")
    assert piped.returncode == 0 and piped.stdout == "sk-piped-key-123", piped.stderr
    assert "no terminal" not in piped.stderr
    nothing = _read_key("ask", None)
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert "none on standard input" in nothing.stderr
    assert _read_key("stdin", " sk-x \n").stdout == "sk-x"
    assert _read_key("stdin", None).returncode == 1
    assert _read_key("none", "sk-ignored\n").stdout == ""


# --------------------------------------------------------------------------- small CLI items


def test_simulator_port_out_of_range_is_a_usage_line() -> None:
    out = voicepi("simulator", "--port", "99999")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--port: expected 0 to 65535, got 99999" in out.stderr


def test_simulator_on_every_address_prints_a_url_the_config_takes() -> None:
    from daemon.config import check_url

    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "simulator", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert url.startswith("ws://127.0.0.1:"), url
    check_url(url)  # raises ConfigError for ws://0.0.0.0


def test_config_keys_as_an_owner_writes_them(tmp_path: Path) -> None:
    import tomllib

    cfg = tmp_path / "c.toml"
    cfg.write_text('[audio]\ninput = 3\n[logging]\nlevel = "DEBUG"\n[realtime]\nvoice = "Cedar"\n')
    out = voicepi("check-config", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    data = tomllib.loads(out.stdout)
    assert data["audio"]["input"] == "3"  # the device with index 3
    assert data["logging"]["level"] == "debug" and data["realtime"]["voice"] == "cedar"
    cfg.write_text("[realtime]\nidle_timeout_ms = 100\n")
    out = voicepi("check-config", "--config", str(cfg))
    assert out.returncode == 78
    assert out.stderr.strip() == (
        "config error: realtime.idle_timeout_ms: expected 0 (off) or 5000 to 30000 "
        "(the API's range), got 100"
    )


def test_session_settings_are_validated() -> None:
    import pytest

    from daemon.realtime.settings import SessionSettings

    with pytest.raises(ValueError, match=r"^voice: expected one of alloy, .*got 'bob'$"):
        SessionSettings(voice="bob")
    with pytest.raises(ValueError, match=r"^speed: expected 0.25 to 1.5, got 5$"):
        SessionSettings(speed=5)
    with pytest.raises(ValueError, match=r"^idle_timeout_ms: expected 0 \(off\) or 5000"):
        SessionSettings(idle_timeout_ms=100)
    assert SessionSettings(voice="cedar", speed=1.2, idle_timeout_ms=6000).voice == "cedar"


def test_help_speaks_to_the_owner() -> None:
    out = voicepi("--help")
    assert out.returncode == 0
    assert "A voice appliance for the Raspberry Pi" in out.stdout
    assert "imported lazily" not in out.stdout and "daemon.commands" not in out.stdout


def test_journal_format_without_journald_says_so_and_keeps_timestamps(
    tmp_path: Path,
) -> None:
    import io
    import logging
    import re

    from daemon import logsetup

    saved = logsetup.JOURNAL_SOCKET, logging.getLogger().handlers[:], logging.getLogger().level
    logsetup.JOURNAL_SOCKET = str(tmp_path / "no-journal-socket")
    buf = io.StringIO()
    try:
        assert logsetup.configure("journal", stream=buf) == "text"
        logging.getLogger("voicepi").info("hello")
    finally:
        logsetup.JOURNAL_SOCKET = saved[0]
        root = logging.getLogger()
        root.handlers[:] = saved[1]
        root.setLevel(saved[2])
    first, second = buf.getvalue().splitlines()
    assert "--log-format journal" in first and "logging as text" in first
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO voicepi: hello$", second), second


def test_python_daemon_beside_voicepi_is_not_silent(tmp_path: Path) -> None:
    """PyPI's python-daemon installs a top-level `daemon` package too (README: Install)."""
    dist = tmp_path / "python_daemon-3.1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: python-daemon\nVersion: 3.1.2\n")
    (dist / "top_level.txt").write_text("daemon\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    out = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "check-config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "python-daemon is installed here too" in line and "'daemon'" in line
