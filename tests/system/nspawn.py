"""Boot a throwaway copy of the cached Debian rootfs under systemd-nspawn and run commands
inside it through nsenter on the container's PID 1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .rootfs import ensure_rootfs

TOOLS = ("systemd-nspawn", "nsenter", "debootstrap", "tar")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def why_not_runnable() -> str | None:
    """The reason this machine cannot run the system test, or None."""
    if os.geteuid() != 0:
        return "the nspawn system test needs root (systemd-nspawn, debootstrap)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (make deps installs them)"
    container = Path("/run/systemd/container")
    if container.is_file():
        # systemd-nspawn and similar managers say so here; nesting a booted container
        # fails with obscure mount errors.
        kind = container.read_text().strip() or "a container"
        return f"the suite runs inside {kind}: run the system test on the host"
    return None


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def _ns_pid(pid: int) -> list[str]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return line.split()[1:]
    except OSError:
        pass
    return []


class Container:
    """A booted copy of the cached ``suite`` rootfs (see rootfs.SUITES)."""

    def __init__(self, suite: str = "bookworm", workdir: Path | None = None) -> None:
        self.suite = suite
        base = ensure_rootfs(suite)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="voicepi-nspawn-", dir="/var/tmp"))
        self.root = self.workdir / "rootfs"
        self.log_path = self.workdir / "console.log"
        # cp -a keeps owners and modes; --reflink makes it instant where the fs can.
        subprocess.run(
            ["cp", "-a", "--reflink=auto", str(base), str(self.root)], check=True, timeout=300
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid1 = 0
        self.binds: list[str] = []
        self.env: dict[str, str] = {}

    # -------------------------------------------------------------- lifecycle

    def bind(self, host: Path, inside: str, *, read_only: bool = True) -> None:
        self.binds.append(f"--bind{'-ro' if read_only else ''}={host}:{inside}")

    def boot(self, timeout: float = 60) -> None:
        cmd = [
            "systemd-nspawn",
            "--register=no",
            "--keep-unit",
            "--quiet",
            "--console=pipe",
            f"--directory={self.root}",
            f"--machine=voicepi-test-{os.getpid()}",
            *self.binds,
            "--boot",
        ]
        log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the container
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not self.pid1:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"systemd-nspawn exited {self.proc.returncode}:\n{self.console()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"no container PID 1 after {timeout} s:\n{self.console()}")
            self.pid1 = self._find_pid1()
            time.sleep(0.1)
        while True:
            res = self.run("systemctl is-system-running --wait", check=False, timeout=timeout)
            state = res.stdout.strip()
            if state in ("running", "degraded"):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"container did not finish booting ({state}):\n{self.console()}")
            time.sleep(0.5)

    def _find_pid1(self) -> int:
        assert self.proc is not None
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            ns = _ns_pid(pid)
            if len(ns) >= 2 and ns[-1] == "1":
                return pid
            todo += _children(pid)
        return 0

    def console(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if self.pid1:
                self.run("systemctl poweroff --no-block", check=False, timeout=10)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -------------------------------------------------------------- commands

    def run(
        self,
        script: str,
        *,
        check: bool = True,
        timeout: float = 60,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside the booted container (as its root)."""
        environ = {"PATH": PATH, "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
        environ.update(self.env)
        environ.update(env or {})
        cmd: Sequence[str] = [
            "nsenter",
            f"--target={self.pid1}",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--root",
            "--wd",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in environ.items()),
            "/bin/sh",
            "-c",
            script,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
        if check and res.returncode != 0:
            raise AssertionError(
                f"inside the container, `{script}` exited {res.returncode}:\n"
                f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            )
        return res

    def show(self, unit: str, *props: str) -> dict[str, str]:
        res = self.run(f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
        return dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)

    def wait_for(self, unit: str, timeout: float, **expected: str) -> dict[str, str]:
        """Poll `systemctl show` until every property has its expected value."""
        deadline = time.monotonic() + timeout
        while True:
            props = self.show(unit, *expected, "ActiveState", "SubState", "Result", "MainPID")
            if all(props.get(k) == v for k, v in expected.items()):
                return props
            if time.monotonic() > deadline:
                status = self.run(
                    f"systemctl status --no-pager {unit}; journalctl -n 40 -u {unit}", check=False
                )
                raise AssertionError(
                    f"{unit}: wanted {expected}, have {props}\n{status.stdout[-4000:]}"
                )
            time.sleep(0.25)
