"""The arm64 check (`make arm64-check`, root, not part of `make test`): voicepi on a
debootstrapped arm64 Debian run through qemu-user-static and binfmt_misc, outside systemd
(qemu-user emulates neither the unit's namespacing nor its credentials).

For each suite: a minimal arm64 rootfs (cached like the nspawn test's), a venv with system
site packages as install.sh makes it, ``pip install`` of this work tree from the index (so
the wheels are the real aarch64 ones; the report lists each and where it came from), then
``voicepi wakeword --json`` on the speech fixtures (every model's peak within 0.01 of the
x86 scores in tests/fixtures/speech/scores.json) and ``voicepi demo --mic-pacing consumer``
(its WAV mic waits for the emulated loop: nothing dropped, the session closes). Prints the
times.

    sudo .venv/bin/python -m tests.system.arm64_check [bookworm] [trixie]
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .rootfs import REPO, _host_pip_access, ensure_rootfs

ARCH = "arm64"
TOLERANCE = 0.01
FIXTURES = REPO / "tests" / "fixtures" / "speech"

SCRIPT = """\
set -e
python3 -c 'import platform; print("machine", platform.machine())'
python3 -m venv --system-site-packages /opt/voicepi/venv
mkdir /tmp/src
tar -C /src --exclude=./.git --exclude=./.venv --exclude=./.cache -cf - . | tar -C /tmp/src -xf -
start=$(date +%s)
/opt/voicepi/venv/bin/python -m pip --disable-pip-version-check --no-cache-dir install \
    --quiet --report /out/pip-report.json /tmp/src
echo "install_seconds $(( $(date +%s) - start ))"
cd /fixtures
start=$(date +%s)
/opt/voicepi/venv/bin/voicepi wakeword --json \
    --model okay_nabu --model hey_jarvis --model hey_mycroft --model alexa --model hey_rhasspy \
    *.wav > /out/scores.json
echo "wakeword_seconds $(( $(date +%s) - start ))"
start=$(date +%s)
# Emulation scores far slower than real time: a real-time mic would drop the audio the loop
# cannot keep up with (by design, as on any board that slow), so the demo's WAV mic waits for
# the loop instead (--mic-pacing consumer): the same appliance path, deterministic at any speed.
timeout 3600 /opt/voicepi/venv/bin/voicepi demo --mic-pacing consumer > /out/demo.txt 2>&1 \
    || echo "demo_failed $?"
echo "demo_seconds $(( $(date +%s) - start ))"
"""


def peaks(records: list[dict[str, object]]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for rec in records:
        models = rec["models"]
        assert isinstance(models, dict)
        for model, result in models.items():
            out[(Path(str(rec["file"])).name, model)] = float(result["peak"])
    return out


def check(suite: str) -> list[str]:
    """Run the check on ``suite``; the problems found (empty: passed)."""
    t0 = time.monotonic()
    base = ensure_rootfs(suite, arch=ARCH)
    t_rootfs = time.monotonic() - t0
    work = Path(tempfile.mkdtemp(prefix=f"voicepi-{ARCH}-", dir="/var/tmp"))
    try:
        root = work / "rootfs"
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(root)], check=True)
        out = work / "out"
        out.mkdir()
        for mount_point in ("src", "fixtures", "out"):
            (root / mount_point).mkdir(exist_ok=True)
        (root / "etc/ssl/host-ca.crt").touch()
        cmd = [
            "systemd-nspawn",
            "--register=no",
            "--keep-unit",
            "--quiet",
            f"--directory={root}",
            f"--bind-ro={REPO}:/src",
            f"--bind-ro={FIXTURES}:/fixtures",
            f"--bind={out}:/out",
            *_host_pip_access(),
            "/bin/sh",
            "-c",
            SCRIPT,
        ]
        t1 = time.monotonic()
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
        t_run = time.monotonic() - t1
        print(res.stdout, end="")
        if res.returncode != 0:
            return [f"{suite}: the run failed ({res.returncode}):\n{res.stderr[-3000:]}"]
        problems: list[str] = []
        if "machine aarch64" not in res.stdout:
            problems.append(f"{suite}: not emulated aarch64: {res.stdout[:200]}")
        demo = (out / "demo.txt").read_text()
        if "demo_failed" in res.stdout or "closed (inactivity)" not in demo:
            problems.append(f"{suite}: voicepi demo did not close the session:\n{demo[-2000:]}")
        if "CPU too slow" in demo:  # a paced mic loses nothing, however slow the CPU
            problems.append(f"{suite}: voicepi demo dropped microphone audio:\n{demo[-2000:]}")
        want = {
            key: score
            for key, score in peaks(json.loads((FIXTURES / "scores.json").read_text())).items()
            if (FIXTURES / key[0]).is_file()  # scores.json also holds daemon/data/demo.wav
        }
        got = peaks(json.loads((out / "scores.json").read_text()))
        worst = 0.0
        for key, score in want.items():
            if key not in got:
                problems.append(f"{suite}: no arm64 score for {key}")
                continue
            worst = max(worst, abs(got[key] - score))
        if worst > TOLERANCE:
            problems.append(f"{suite}: wake word scores differ from x86 by up to {worst:.4f}")
        report = json.loads((out / "pip-report.json").read_text())
        print(f"{suite}/{ARCH}: rootfs {t_rootfs:.0f} s (cached when ~0), run {t_run:.0f} s")
        print(f"{suite}/{ARCH}: largest score difference from x86 {worst:.4f}")
        for line in demo.splitlines():  # the demo's milestones, with its own clock
            if any(key in line for key in ("wake word", "user ", "closed (", "answer audio")):
                print(f"  demo: {line.strip()}")
        for item in report["install"]:
            url = item.get("download_info", {}).get("url", "?")
            print(
                f"  {item['metadata']['name']} {item['metadata']['version']}: {url.rsplit('/', 1)[-1]}"
            )
        return problems
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    if platform.machine() == "aarch64":
        print("already on aarch64: run the test suite instead", file=sys.stderr)
        return 2
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").is_file():
        print(
            "no aarch64 binfmt_misc entry: apt-get install qemu-user-static (with systemd or"
            " binfmt-support to register it)",
            file=sys.stderr,
        )
        return 2
    problems: list[str] = []
    for suite in argv or ["bookworm", "trixie"]:
        problems += check(suite)
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
