"""A cached debootstrapped Debian rootfs for the nspawn system test.

``python -m tests.system.rootfs`` builds it ahead of time. The cache lives in the work
tree's .cache/ (git-ignored; VOICEPI_CACHE_DIR moves it) and is reused while the suite and
package list it was built from stay the same.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SUITE = "bookworm"
# Everything image/install.sh would apt-get, so installing needs no apt network access here.
INCLUDE = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-venv",
    "python3-dev",
    "python3-pip",
    "gcc",
    "libc6-dev",
    "pkg-config",
    "portaudio19-dev",
    "libsystemd-dev",
    "libasound2-plugins",
    "alsa-utils",
    "ca-certificates",
    "procps",
    "python3-spidev",
)
DEFAULT_MIRROR = "http://deb.debian.org/debian"


REPO = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    explicit = os.environ.get("VOICEPI_CACHE_DIR")
    return Path(explicit) if explicit else REPO / ".cache" / "nspawn"


def mirror() -> str:
    """The Debian mirror this machine's apt already uses (same reachability)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for url in re.findall(r"(https?://\S+/debian)/?(?:\s|$)", text):
            if "security" not in url:
                return str(url)
    return DEFAULT_MIRROR


def _stamp() -> str:
    return hashlib.sha256(f"{SUITE} {','.join(INCLUDE)}".encode()).hexdigest()[:16]


def ensure_rootfs(log: object = sys.stderr) -> Path:
    """The base rootfs directory, debootstrapped once (about a minute) and reused."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / f"rootfs-{SUITE}"
    stamp = root / ".voicepi-rootfs"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs must not debootstrap into one dir
        if stamp.is_file() and stamp.read_text().strip() == _stamp():
            return root
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
        tmp = cache / f"rootfs-{SUITE}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(INCLUDE)}",
            SUITE,
            str(tmp),
            mirror(),
        ]
        print("building rootfs:", " ".join(cmd), file=log)  # type: ignore[call-overload]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"debootstrap failed ({res.returncode}):\n{res.stdout[-3000:]}")
        (tmp / "var/cache/apt/archives").mkdir(parents=True, exist_ok=True)
        subprocess.run(["find", str(tmp / "var/cache/apt/archives"), "-name", "*.deb", "-delete"])
        (tmp / ".voicepi-rootfs").write_text(_stamp() + "\n")
        tmp.rename(root)
        return root


def _deps_stamp() -> str:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    return hashlib.sha256(f"{sys.version_info[:2]} {text}".encode()).hexdigest()[:16]


def ensure_wheelhouse(log: object = sys.stderr) -> Path:
    """Wheels of voicepi's dependencies and build backend, made once with the host's pip.

    The container's pip installs from them with --no-index: the test needs no network,
    and the compiled ones (PyAudio, systemd-python) fit because host and container are
    both Debian bookworm with Python 3.11."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    wheels = cache / f"wheels-{_deps_stamp()}"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (wheels / ".complete").is_file():
            return wheels
        for old in cache.glob("wheels-*"):
            shutil.rmtree(old, ignore_errors=True)
        tmp = cache / "wheels.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(tmp)]
        cmd += [str(REPO), "setuptools>=77", "wheel"]
        print("building wheelhouse:", " ".join(cmd), file=log)  # type: ignore[call-overload]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"pip wheel failed ({res.returncode}):\n{res.stderr[-3000:]}")
        for own in tmp.glob("voicepi-*.whl"):
            own.unlink()  # built fresh for every run by build_voicepi_wheel
        (tmp / ".complete").write_text("")
        tmp.rename(wheels)
        return wheels


def build_voicepi_wheel(out: Path, wheelhouse: Path) -> Path:
    """A wheel of the work tree as it is now, built offline against the wheelhouse."""
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"]
    cmd += ["--find-links", str(wheelhouse), "--wheel-dir", str(out), str(REPO)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"building the voicepi wheel failed:\n{res.stderr[-3000:]}")
    (wheel,) = out.glob("voicepi-*.whl")
    return wheel


if __name__ == "__main__":
    print(ensure_rootfs())
    print(ensure_wheelhouse())
