"""`voicepi run` as a process: start-up time to READY=1, idle CPU, RSS and threads.

The bench binds a unix datagram socket and passes it as NOTIFY_SOCKET, as systemd
does for Type=notify, and times READY=1 from the spawn. The microphone is a `file:`
WAV of silence (the wake word scores every 80 ms frame of it, as it would in a quiet
room), so idle CPU is the real idle cost. Figures come from /proc.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from tests.bench import Row, bench

ROOT = Path(__file__).resolve().parent.parent
IDLE_SECONDS = 10.0
STARTS = 3
CLK_TCK = os.sysconf("SC_CLK_TCK")


def silent_wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(2 * int(seconds * rate)))
    return path


def _env(notify: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    env.pop("OPENAI_API_KEY", None)
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify
    return env


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _config(workdir: Path) -> Path:
    cfg = workdir / "config.toml"
    cfg.write_text(
        f"""
[realtime]
url = "ws://127.0.0.1:9/v1/realtime"
[audio]
input = "file:{silent_wav(workdir / "silence.wav")}"
output = "file:{workdir / "out.wav"}"
[gpio]
pin_factory = "mock"
""",
        encoding="utf-8",
    )
    return cfg


def _start(
    cfg: Path,
    notify: str,
    env: dict[str, str] | None = None,
    stderr: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """`voicepi run --config cfg` reporting to ``notify``; ``env`` adds variables (a
    PulseAudio server's), ``stderr`` PIPE reads its journal lines."""
    return subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "run", "--config", str(cfg), "--log-format", "json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**_env(notify), **(env or {})},
        cwd=ROOT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    """Seconds until READY=1 arrives (monotonic, from just before the spawn)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        if b"READY=1" in data.split(b"\n"):
            return time.monotonic()
        if proc.poll() is not None:
            break
    raise RuntimeError(f"voicepi run never sent READY=1 (exit {proc.poll()})")


def _baseline_start() -> tuple[float, int]:
    """Wall time of `python -c 'import numpy'`, and the RSS (kB) of such a process idle."""
    t = time.monotonic()
    subprocess.run([sys.executable, "-c", "import numpy"], check=True, env=_env())
    took = time.monotonic() - t
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import numpy, sys; sys.stdout.write('x\\n'); sys.stdout.flush();"
            " import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    rss = _status(proc.pid, "VmRSS")
    proc.kill()
    proc.wait()
    return took, rss


def _bare_wakeword_cpu(seconds: float = 10.0) -> float:
    """CPU s per audio s of a bare pyopen-wakeword loop over silence (one model)."""
    from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

    features = OpenWakeWordFeatures.from_builtin()
    model = OpenWakeWord.from_builtin(Model.HEY_JARVIS)
    frame = np.zeros(1280, dtype=np.int16).tobytes()

    def step() -> None:
        for emb in features.process_streaming(frame):
            for _ in model.process_streaming(emb):
                pass

    step()  # the 8 s autofill, outside the timing
    start = time.process_time()
    for _ in range(int(seconds / 0.08)):
        step()
    return (time.process_time() - start) / seconds


@bench
def daemon_process() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="voicepi-bench-") as tmp:
        workdir = Path(tmp)
        cfg = _config(workdir)
        notify = str(workdir / "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify)
        try:
            starts: list[float] = []
            idle_cpu = rss = threads = 0.0
            for n in range(STARTS):
                t0 = time.monotonic()
                proc = _start(cfg, notify)
                try:
                    starts.append(_wait_ready(sock, proc) - t0)
                    if n == 0:
                        time.sleep(2.0)  # past start-up work (model warm-up, first frames)
                        c0, w0 = _cpu_seconds(proc.pid), time.monotonic()
                        time.sleep(IDLE_SECONDS)
                        idle_cpu = (_cpu_seconds(proc.pid) - c0) / (time.monotonic() - w0)
                        rss = _status(proc.pid, "VmRSS") / 1024
                        threads = _status(proc.pid, "Threads")
                finally:
                    _stop(proc)
        finally:
            sock.close()
    base_start, base_rss = _baseline_start()
    bare = _bare_wakeword_cpu()
    return [
        Row(
            "voicepi run: start-up to READY=1 (median of 3)",
            statistics.median(starts),
            "s",
            "python -c 'import numpy'",
            base_start,
        ),
        Row(
            f"voicepi run: idle CPU ({IDLE_SECONDS:g} s, file: mic)",
            idle_cpu,
            "CPU s / s",
            "bare pyopen-wakeword loop per audio s",
            bare,
        ),
        Row("voicepi run: idle RSS", rss, "MiB", "python -c 'import numpy' RSS", base_rss / 1024),
        Row("voicepi run: OS threads idle", threads, "threads"),
    ]
