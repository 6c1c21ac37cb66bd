"""The real unit on a real systemd: a debootstrapped Debian bookworm (Python 3.11) and
trixie (Python 3.13), each booted under systemd-nspawn, voicepi installed by image/install.sh from this work tree, `voicepi run`
started by voicepi.service against `voicepi simulator` (a second unit), a WAV file as the
microphone, a WAV file as the speaker and gpiozero's mock pins.

Checked: READY and STATUS, journald fields, kill -9 restarts, the watchdog is fed and
trips when the daemon freezes, a config error exits 78 and stays down, reload keeps the
process, stop is clean, the hardening still lets the wake word (TFLite under
MemoryDenyWriteExecute) and group-based device access work, and the installer is
idempotent, installs from a source tree and from a wheel, and uninstalls.

Each Debian rootfs is debootstrapped once (about 70 s) into .cache/nspawn/ and the
dependency wheels are fetched there once by the rootfs's own pip (tests/system/rootfs.py);
each run boots a fresh copy of the rootfs, installs offline and deletes the copy afterwards.
The rootfs is minimal (no compiler, no procps): what a bare image has.
On a machine that cannot run it (not root, no systemd-nspawn) the test fails with the
reason rather than skipping.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .nspawn import Container, why_not_runnable
from .rootfs import SUITES, build_voicepi_wheel, ensure_wheelhouse

# A cold cache (first debootstrap) is part of the first test's setup.
pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
VOICEPI = "/opt/voicepi/venv/bin/voicepi"
DEMO_WAV = "/usr/local/share/voicepi-test/demo.wav"
FAKE_KEY = "sk-test-nspawn-0123456789abcdef"


def free_port() -> int:
    # The container shares the host's network namespace: pick a port free on both.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def good_config(port: int) -> str:
    return f"""\
[realtime]
url = "ws://127.0.0.1:{port}/v1/realtime"

[audio]
input = "file:{DEMO_WAV}"
output = "file:/var/lib/voicepi/out.wav"

[gpio]
pin_factory = "mock"
"""


def simulator_unit(port: int) -> str:
    return f"""\
[Unit]
Description=voicepi realtime simulator (system test)

[Service]
ExecStart={VOICEPI} simulator --host 127.0.0.1 --port {port}
Restart=always
RestartSec=1
"""


# The probe runs under voicepi.service's own sandbox (same file, other ExecStart).
PROBE_SCRIPT = f"""\
#!/bin/sh
out=/var/lib/voicepi/probe.txt
{{
  if cat /etc/voicepi-probe/audio-only >/dev/null 2>&1; then echo audio_group=ok; else echo audio_group=denied; fi
  if cat /etc/voicepi-probe/root-only >/dev/null 2>&1; then echo root_file=readable; else echo root_file=denied; fi
  if [ -r "$CREDENTIALS_DIRECTORY/openai-api-key" ]; then echo credential=ok; else echo credential=missing; fi
  if cat /etc/voicepi/credentials/openai-api-key >/dev/null 2>&1; then echo key_source=readable; else echo key_source=denied; fi
  if touch /etc/voicepi/probe 2>/dev/null; then echo etc_write=yes; else echo etc_write=no; fi
  if ls /root >/dev/null 2>&1; then echo home=visible; else echo home=hidden; fi
  {VOICEPI} wakeword --json {DEMO_WAV} >/var/lib/voicepi/wake.json 2>/var/lib/voicepi/wake.err
  echo wake_rc=$?
}} >$out 2>&1
"""


def probe_unit(unit_text: str) -> str:
    """voicepi.service turned into a oneshot that runs the probe."""
    out = []
    for line in unit_text.splitlines():
        key = line.split("=", 1)[0]
        if key in ("ExecReload", "WatchdogSec", "Restart", "RestartSec", "NotifyAccess"):
            continue
        if key == "Type":
            line = "Type=oneshot"
        elif key == "ExecStart":
            line = "ExecStart=/usr/local/bin/voicepi-probe"
        out.append(line)
    return "\n".join(out) + "\n"


def write(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


@pytest.fixture(scope="module", params=SUITES)
def box(request: pytest.FixtureRequest) -> Iterator[Container]:
    reason = why_not_runnable()
    if reason:
        pytest.fail(f"cannot run the systemd-nspawn system test here: {reason}")
    suite: str = request.param
    ct = Container(suite)
    try:
        port = free_port()
        root = ct.root
        write(root, "/etc/voicepi/config.toml", good_config(port))
        write(root, "/etc/systemd/system/voicepi-sim.service", simulator_unit(port))
        # The simulator comes up with the daemon, also when install.sh starts it.
        write(
            root,
            "/etc/systemd/system/voicepi.service.d/10-test.conf",
            "[Unit]\nWants=voicepi-sim.service\nAfter=voicepi-sim.service\n",
        )
        demo = root / DEMO_WAV.lstrip("/")
        demo.parent.mkdir(parents=True)
        demo.write_bytes((REPO / "daemon/data/demo.wav").read_bytes())
        write(root, "/usr/local/bin/voicepi-probe", PROBE_SCRIPT, 0o755)
        write(root, "/etc/voicepi-probe/audio-only", "x\n", 0o640)
        write(root, "/etc/voicepi-probe/root-only", "x\n", 0o600)
        # No network inside: install.sh's pip takes everything from prebuilt wheels (the
        # dependencies cached like the rootfs, voicepi itself fresh from this work tree).
        wheels = ensure_wheelhouse(suite)
        dist = ct.workdir / "dist"
        build_voicepi_wheel(dist, wheels)
        ct.bind(REPO, "/src")
        ct.bind(wheels, "/wheels")
        ct.bind(dist, "/dist")
        ct.env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS="/wheels /dist")
        ct.boot()
        ct.run("chgrp audio /etc/voicepi-probe/audio-only")
        yield ct
    finally:
        ct.close()


@pytest.fixture(scope="module")
def installed(box: Container) -> Container:
    res = box.run("/src/image/install.sh --key-stdin", input=FAKE_KEY + "\n", timeout=360)
    assert "voicepi is running" in res.stdout, res.stdout + res.stderr
    assert FAKE_KEY not in res.stdout + res.stderr
    return box


def journal(box: Container, *matches: str) -> list[dict[str, str]]:
    res = box.run("journalctl --no-pager -o json -u voicepi " + " ".join(matches))
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def test_install_lays_out_user_files_and_key(installed: Container) -> None:
    box = installed
    res = box.run(
        "stat -c '%a %U %G %n' /etc/voicepi/credentials /etc/voicepi/credentials/openai-api-key"
        " /etc/voicepi/config.toml; id voicepi; systemctl is-enabled voicepi"
    )
    lines = res.stdout.splitlines()
    assert lines[0] == "700 root root /etc/voicepi/credentials"
    assert lines[1] == "600 root root /etc/voicepi/credentials/openai-api-key"
    assert lines[2].endswith("/etc/voicepi/config.toml")  # ours, kept as it was
    groups = lines[3]
    for group in ("audio", "gpio", "spi"):
        assert f"({group})" in groups, groups
    assert lines[4] == "enabled"
    assert box.run("cat /etc/voicepi/credentials/openai-api-key").stdout.strip() == FAKE_KEY


def test_ready_with_status(installed: Container) -> None:
    # Type=notify: "active" is reached only through READY=1.
    props = installed.wait_for("voicepi", 90, ActiveState="active", SubState="running")
    status = installed.show("voicepi", "StatusText", "NotifyAccess", "WatchdogUSec")
    # In words, and past startup: idle ("listening for hey jarvis") or already in the
    # session demo.wav's wake word opens ("in session 2 s (listening)").
    assert re.match(r"(listening for \w|in session \d+ s)", status["StatusText"]), status
    assert status["NotifyAccess"] == "main"
    assert status["WatchdogUSec"] in ("30s", "30000000")
    assert int(props["MainPID"]) > 0


def test_journal_has_structured_event_fields(installed: Container) -> None:
    installed.wait_for("voicepi", 90, ActiveState="active")
    deadline = time.monotonic() + 30
    while not (records := journal(installed, "EVENT=state_changed")):
        assert time.monotonic() < deadline, installed.run("journalctl -u voicepi -n 50").stdout
        time.sleep(0.5)
    rec = records[-1]
    assert rec["STATE"] and rec["SYSLOG_IDENTIFIER"] == "voicepi"
    assert rec["PRIORITY"] == "6"
    assert rec["MESSAGE"].startswith("state ")
    # The key never reaches the journal.
    everything = installed.run("journalctl --no-pager -o export").stdout
    assert FAKE_KEY not in everything


def test_journal_has_session_fields(installed: Container) -> None:
    """demo.wav says "hey jarvis, ...": a session with the simulator opens, idles through
    the countdown and closes; each step is a journald record with its fields."""
    deadline = time.monotonic() + 90
    while not journal(installed, "EVENT=session_closed"):
        assert time.monotonic() < deadline, installed.run(
            "journalctl --no-pager -u voicepi -u voicepi-sim -n 60"
        ).stdout
        time.sleep(1)
    wake = journal(installed, "EVENT=wake_word_detected")[-1]
    assert wake["WAKE_WORD"] == "hey_jarvis" and float(wake["SCORE"]) >= 0.5
    counts = journal(installed, "EVENT=user_inactivity_countdown")
    assert {c["REMAINING_SECONDS"] for c in counts} >= {"5", "1"}
    closed = journal(installed, "EVENT=session_closed")[-1]
    assert closed["REASON"] and closed["SESSION_ID"]
    assert all(c["SESSION_ID"] for c in counts)
    for rec in (wake, closed, *counts):
        assert rec["PRIORITY"] in ("4", "6") and rec["SYSLOG_IDENTIFIER"] == "voicepi"


def test_reload_keeps_the_process(installed: Container) -> None:
    before = installed.wait_for("voicepi", 90, ActiveState="active")
    installed.run("systemctl reload voicepi")
    after = installed.wait_for("voicepi", 30, ActiveState="active", SubState="running")
    assert after["MainPID"] == before["MainPID"]


def test_hardening_leaves_wake_word_and_devices_working(installed: Container) -> None:
    box = installed
    unit = box.run("cat /etc/systemd/system/voicepi.service").stdout
    box.run(
        "cat > /etc/systemd/system/voicepi-probe.service && systemctl daemon-reload",
        input=probe_unit(unit),
    )
    res = box.run("systemctl start voicepi-probe", check=False, timeout=120)
    assert res.returncode == 0, box.run("journalctl -n 50 -u voicepi-probe").stdout
    found = dict(
        line.split("=", 1)
        for line in box.run("cat /var/lib/voicepi/probe.txt").stdout.splitlines()
        if "=" in line
    )
    err = box.run("cat /var/lib/voicepi/wake.err", check=False).stdout
    assert found == {
        "audio_group": "ok",  # supplementary groups work under PrivateUsers=yes
        "root_file": "denied",
        "credential": "ok",
        "key_source": "denied",
        "etc_write": "no",
        "home": "hidden",
        "wake_rc": "0",  # TFLite and numpy run under MemoryDenyWriteExecute=yes
    }, err
    json.loads(box.run("cat /var/lib/voicepi/wake.json").stdout)


def test_demo_runs_on_the_installed_venv(installed: Container) -> None:
    """`voicepi demo` (what `make demo` ends in) on this suite's Python."""
    res = installed.run(f"{VOICEPI} demo", timeout=180)
    assert "closed (inactivity)" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]


def test_kill_9_is_restarted(installed: Container) -> None:
    before = installed.wait_for("voicepi", 90, ActiveState="active", SubState="running")
    restarts = int(installed.show("voicepi", "NRestarts")["NRestarts"])
    installed.run("systemctl kill --kill-who=main --signal=SIGKILL voicepi")
    deadline = time.monotonic() + 60
    while True:
        now = installed.show("voicepi", "NRestarts", "MainPID", "ActiveState")
        if (
            int(now["NRestarts"]) > restarts
            and now["ActiveState"] == "active"
            and now["MainPID"] not in ("0", before["MainPID"])
        ):
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.25)


def test_watchdog_is_fed_while_running_and_trips_when_frozen(installed: Container) -> None:
    """With a 4 s watchdog the daemon keeps running (it pets it from the audio path);
    frozen with SIGSTOP it stops petting, systemd aborts it and restarts it."""
    box = installed
    dropin = "/etc/systemd/system/voicepi.service.d/20-watchdog.conf"
    box.run(
        f"cat > {dropin} && systemctl daemon-reload && systemctl restart voicepi",
        input="[Service]\nWatchdogSec=4\nTimeoutAbortSec=2\n",
        timeout=120,
    )
    try:
        first = box.wait_for("voicepi", 30, ActiveState="active", SubState="running")
        assert box.show("voicepi", "WatchdogUSec")["WatchdogUSec"] in ("4s", "4000000")
        restarts = box.show("voicepi", "NRestarts")["NRestarts"]
        time.sleep(10)  # 2.5 watchdog periods
        alive = box.show("voicepi", "MainPID", "NRestarts", "ActiveState")
        assert alive == {
            "MainPID": first["MainPID"],
            "NRestarts": restarts,
            "ActiveState": "active",
        }, box.run("journalctl --no-pager -u voicepi -n 30").stdout
        box.run("systemctl kill --kill-who=main --signal=SIGSTOP voicepi")
        deadline = time.monotonic() + 40
        while True:
            now = box.show("voicepi", "NRestarts", "MainPID", "ActiveState")
            if int(now["NRestarts"]) > int(restarts) and now["ActiveState"] == "active":
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.25)
        assert now["MainPID"] != first["MainPID"]
        logged = box.run("journalctl --no-pager -u voicepi -n 200 -o cat").stdout
        assert "Watchdog timeout" in logged, logged[-3000:]
    finally:
        box.run(f"rm -f {dropin} && systemctl daemon-reload")
        box.run("systemctl reset-failed voicepi; systemctl restart voicepi", timeout=120)


def test_config_error_exits_78_and_is_not_restarted(installed: Container) -> None:
    box = installed
    good = box.run("cat /etc/voicepi/config.toml").stdout
    box.run("printf '[realtime]\\nvoice = \"bob\"\\n' > /etc/voicepi/config.toml")
    try:
        box.run("systemctl restart voicepi", check=False, timeout=60)
        props = box.wait_for("voicepi", 30, ActiveState="failed")
        assert box.show("voicepi", "ExecMainStatus")["ExecMainStatus"] == "78"
        restarts = box.show("voicepi", "NRestarts")["NRestarts"]
        time.sleep(5)  # longer than RestartSec=3
        again = box.show("voicepi", "ActiveState", "NRestarts")
        assert again == {"ActiveState": "failed", "NRestarts": restarts}, props
        logged = box.run("journalctl --no-pager -u voicepi -n 30").stdout
        assert "realtime.voice" in logged
    finally:
        box.run("cat > /etc/voicepi/config.toml", input=good)
        box.run("systemctl reset-failed voicepi; systemctl start voicepi", timeout=120)
    box.wait_for("voicepi", 90, ActiveState="active")


def test_stop_is_clean(installed: Container) -> None:
    invocation = installed.wait_for("voicepi", 90, ActiveState="active", SubState="running")
    invocation_id = installed.show("voicepi", "InvocationID")["InvocationID"]
    installed.run("systemctl stop voicepi", timeout=60)
    props = installed.show("voicepi", "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    # Exited by itself with 0 (code 1 = CLD_EXITED), not killed after TimeoutStopSec.
    assert props == {
        "ActiveState": "inactive",
        "Result": "success",
        "ExecMainCode": "1",
        "ExecMainStatus": "0",
    }, invocation
    # No error records and no traceback on the way down.
    logged = installed.run(
        f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={invocation_id}"
    ).stdout
    assert "Traceback" not in logged, logged
    errors = installed.run(
        f"journalctl --no-pager -o cat -p err _SYSTEMD_INVOCATION_ID={invocation_id}"
    ).stdout
    assert errors.strip() == "", errors
    installed.run("systemctl start voicepi", timeout=120)


def test_ready_without_a_key(installed: Container) -> None:
    """Issue 17: a missing key file must not stop the unit (LoadCredential= alone fails
    with 243/CREDENTIALS): it reaches READY, warns where it looked, and a wake (demo.wav
    says "hey jarvis") is an auth error, not a traceback."""
    box = installed
    good = box.run("cat /etc/voicepi/config.toml").stdout
    key = "/etc/voicepi/credentials/openai-api-key"
    box.run(f"mv {key} /root/key.saved")
    # A real (non-loopback) URL: the key is needed, and no connection is ever tried.
    box.run(
        "cat > /etc/voicepi/config.toml",
        input=good.replace(
            next(line for line in good.splitlines() if line.startswith("url")),
            'url = "wss://api.openai.com/v1/realtime"',
        ),
    )
    try:
        box.run("systemctl restart voicepi", timeout=120)
        props = box.wait_for("voicepi", 90, ActiveState="active", SubState="running")
        invocation = box.show("voicepi", "InvocationID")["InvocationID"]
        deadline = time.monotonic() + 90
        while not journal(box, f"_SYSTEMD_INVOCATION_ID={invocation}", "EVENT=error"):
            assert time.monotonic() < deadline, box.run("journalctl -u voicepi -n 60").stdout
            time.sleep(1)
        err = journal(box, f"_SYSTEMD_INVOCATION_ID={invocation}", "EVENT=error")[-1]
        assert err.get("KIND") == "auth" and err.get("CODE") == "missing_api_key", err
        logged = box.run(f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={invocation}").stdout
        assert "no OpenAI API key: looked for the systemd credential openai-api-key" in logged
        assert "API key not found" in logged  # the start-up summary
        assert "Traceback" not in logged, logged
        assert box.show("voicepi", "MainPID")["MainPID"] == props["MainPID"]
    finally:
        box.run(f"mv /root/key.saved {key}")
        box.run("cat > /etc/voicepi/config.toml", input=good)
        box.run("systemctl reset-failed voicepi; systemctl restart voicepi", timeout=120)
    box.wait_for("voicepi", 90, ActiveState="active")


def test_second_install_keeps_config_and_key(installed: Container) -> None:
    box = installed
    before = box.run("md5sum /etc/voicepi/config.toml /etc/voicepi/credentials/openai-api-key")
    # This time from the wheel, not the source tree.
    res = box.run("/src/image/install.sh --no-key --source /dist/voicepi-*.whl", timeout=360)
    assert "kept /etc/voicepi/config.toml" in res.stdout
    assert "kept the API key" in res.stdout
    after = box.run("md5sum /etc/voicepi/config.toml /etc/voicepi/credentials/openai-api-key")
    assert before.stdout == after.stdout
    box.wait_for("voicepi", 90, ActiveState="active", SubState="running")


def test_uninstall_then_purge(installed: Container) -> None:
    box = installed
    box.run("/src/image/install.sh --uninstall", timeout=120)
    left = box.run(
        "ls /etc/systemd/system/voicepi.service /opt/voicepi /etc/sysusers.d/voicepi.conf"
        " /etc/tmpfiles.d/voicepi.conf 2>&1; systemctl is-active voicepi",
        check=False,
    ).stdout
    assert left.count("No such file") == 4, left
    assert left.strip().endswith("inactive")
    assert box.run("test -s /etc/voicepi/credentials/openai-api-key", check=False).returncode == 0
    box.run("/src/image/install.sh --uninstall --purge", timeout=120)
    assert box.run("test -e /etc/voicepi || id voicepi", check=False).returncode != 0
