"""Cached debootstrapped Debian rootfs (bookworm, trixie) for the nspawn system tests.

``python -m tests.system.rootfs [SUITE...]`` builds them ahead of time. The cache lives in
the work tree's .cache/ (git-ignored; VOICEPI_CACHE_DIR moves it); each rootfs and wheelhouse
is named by a hash of what it was built from, so work trees with other package lists share
the cache without rebuilding each other's.
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

SUITES = ("bookworm", "trixie")  # Python 3.11 and 3.13
# Everything image/install.sh would apt-get, so installing needs no apt network access here.
# No compiler, no procps: what a minimal image has.
INCLUDE = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-venv",
    "python3-pyaudio",
    "python3-systemd",
    "libasound2-plugins",
    "alsa-utils",
    "ca-certificates",
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


def _stamp(suite: str, arch: str = "") -> str:
    key = f"{suite} {','.join(INCLUDE)}" + (f" {arch}" if arch else "")
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def ensure_rootfs(suite: str = "bookworm", log: object = sys.stderr, *, arch: str = "") -> Path:
    """The base rootfs directory of ``suite``, debootstrapped once (about a minute) and
    reused; never modified afterwards (containers boot copies). ``arch`` (e.g. "arm64")
    builds a foreign one, which runs through qemu-user-static and binfmt_misc."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    name = f"rootfs-{suite}-{arch + '-' if arch else ''}{_stamp(suite, arch)}"
    root = cache / name
    stamp = root / ".voicepi-rootfs"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap at a time on this machine
        if stamp.is_file() and stamp.read_text().strip() == _stamp(suite, arch):
            return root
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
        tmp = cache / f"{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        cmd = [
            "debootstrap",
            "--variant=minbase",
            *([f"--arch={arch}"] if arch else []),
            f"--include={','.join(INCLUDE)}",
            suite,
            str(tmp),
            mirror(),
        ]
        print("building rootfs:", " ".join(cmd), file=log)  # type: ignore[call-overload]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"debootstrap failed ({res.returncode}):\n{res.stdout[-3000:]}")
        (tmp / "var/cache/apt/archives").mkdir(parents=True, exist_ok=True)
        subprocess.run(["find", str(tmp / "var/cache/apt/archives"), "-name", "*.deb", "-delete"])
        (tmp / ".voicepi-rootfs").write_text(_stamp(suite, arch) + "\n")
        tmp.rename(root)
        return root


def _deps_stamp(suite: str) -> str:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    return hashlib.sha256(f"{_stamp(suite)} {text}".encode()).hexdigest()[:16]


# Runs inside the rootfs (its own Python, not the host's): resolve voicepi's dependencies as
# install.sh's venv will (system site packages: PyAudio and systemd-python are Debian's),
# then download exactly those wheels plus the build backend.
WHEELHOUSE_SCRIPT = """\
set -e
python3 -m venv --system-site-packages /tmp/venv
mkdir /tmp/src  # pip builds in-tree; /src is read-only
tar -C /src --exclude=./.git --exclude=./.venv --exclude=./.cache -cf - . | tar -C /tmp/src -xf -
pip="/tmp/venv/bin/python -m pip --disable-pip-version-check --no-cache-dir"
$pip install --quiet --dry-run --report /tmp/report.json /tmp/src
/tmp/venv/bin/python - >/tmp/reqs.txt <<'PY'
import json
for item in json.load(open("/tmp/report.json"))["install"]:
    meta = item["metadata"]
    if meta["name"] != "voicepi":
        print(f"{meta['name']}=={meta['version']}")
PY
$pip download --quiet --only-binary=:all: --no-deps --dest /wheels -r /tmp/reqs.txt
$pip download --quiet --only-binary=:all: --dest /wheels 'setuptools>=77' wheel
"""


HOST_CA = "/etc/ssl/host-ca.crt"


def _host_pip_access() -> list[str]:
    """systemd-nspawn options that let pip inside reach the index the way the host's does:
    the host's CA bundle (a TLS-inspecting proxy's CA lives there) and its pip config."""
    opts: list[str] = []
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        opts += [f"--bind-ro={bundle}:{HOST_CA}", f"--setenv=PIP_CERT={HOST_CA}"]
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        if os.environ.get(name, "").startswith("http"):
            opts.append(f"--setenv={name}={os.environ[name]}")
    return opts


def ensure_wheelhouse(suite: str = "bookworm", log: object = sys.stderr) -> Path:
    """Wheels of voicepi's dependencies and build backend for ``suite``'s Python, fetched
    once by pip inside a read-only run of the rootfs (network shared with the host).

    The container's install.sh then installs from them with --no-index: the test needs no
    network, and the wheels fit the container's Python whatever the host runs."""
    root = ensure_rootfs(suite, log)
    cache = cache_dir()
    wheels = cache / f"wheels-{suite}-{_deps_stamp(suite)}"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (wheels / ".complete").is_file():
            return wheels
        tmp = cache / f"wheels-{suite}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        # Mount points: the rootfs itself stays read-only.
        (root / "src").mkdir(exist_ok=True)
        (root / "wheels").mkdir(exist_ok=True)
        (root / HOST_CA.lstrip("/")).touch()
        cmd = [
            "systemd-nspawn",
            "--register=no",
            "--keep-unit",
            "--quiet",
            "--read-only",
            "--tmpfs=/tmp",
            f"--directory={root}",
            f"--bind-ro={REPO}:/src",
            f"--bind={tmp}:/wheels",
            *_host_pip_access(),
            "/bin/sh",
            "-c",
            WHEELHOUSE_SCRIPT,
        ]
        print(f"building the {suite} wheelhouse in its rootfs", file=log)  # type: ignore[call-overload]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(
                f"pip in the {suite} rootfs failed ({res.returncode}):\n{res.stderr[-3000:]}"
            )
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
    for name in sys.argv[1:] or SUITES:
        print(ensure_rootfs(name))
        print(ensure_wheelhouse(name))
