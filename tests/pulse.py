"""A private PulseAudio server with a virtual microphone and speaker, for real-audio tests.

- ``mic``: module-pipe-source on a FIFO (s16le, 16 kHz, mono), fed by a separate
  feeder process (this file run as a script) that writes WAV frames at real-time
  pace and silence whenever it has nothing to play, so reads never block.
- ``speaker``: module-null-sink; ``record()`` captures its monitor with parec.
- PyAudio sees it through the ALSA ``pulse`` / ``default`` devices
  (libasound2-plugins). PortAudio enumerates devices when a PyAudio instance
  initialises, so create PyAudio objects only after ``start()`` (which also
  exports PULSE_SERVER / XDG_RUNTIME_DIR into this process's environment).

Use through the ``pulse`` fixture in tests/conftest.py, or directly:
``with PulseServer(tmpdir) as pa: pa.play(wav); rec = pa.record(); ...``.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import shutil
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

MIC_RATE = 16000
_START_TIMEOUT = 15.0


class PulseError(RuntimeError):
    pass


class Recording:
    """Raw s16le mono from a PulseAudio source, read live by a thread."""

    def __init__(self, cmd: list[str], env: dict[str, str], rate: int) -> None:
        self.rate = rate
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 8192)
            if not chunk:
                return
            with self._lock:
                self._buf += chunk

    @property
    def frames(self) -> int:
        with self._lock:
            return len(self._buf) // 2

    def samples(self) -> np.ndarray:
        with self._lock:
            usable = len(self._buf) - len(self._buf) % 2
            return np.frombuffer(bytes(self._buf[:usable]), dtype="<i2").astype(np.int16)

    def wait_started(self, timeout: float = 5.0) -> None:
        """Block until audio flows (the stream is connected)."""
        deadline = time.monotonic() + timeout
        while self.frames == 0:
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise PulseError("parec produced no audio")
            time.sleep(0.01)

    def stop(self) -> np.ndarray:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._thread.join(timeout=5)
        return self.samples()


# ALSA's channel order per count. PulseAudio's own default order differs (AIFF), so
# a source left at its default would be remixed for an ALSA client, which blends the
# channels of a mic array instead of passing each through.
_ALSA_CHANNEL_MAPS = {
    1: "mono",
    2: "front-left,front-right",
    4: "front-left,front-right,rear-left,rear-right",
    6: "front-left,front-right,rear-left,rear-right,front-center,lfe",
    8: "front-left,front-right,rear-left,rear-right,front-center,lfe,side-left,side-right",
}


class Feeder:
    """The process that writes queued clips into a pipe source's FIFO at real-time pace."""

    def __init__(self, fifo: Path, clips_dir: Path, *, rate: int, channels: int) -> None:
        self.fifo = fifo
        self.clips_dir = clips_dir
        self.rate = rate
        self.channels = channels
        self._clips = 0
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, __file__, "feed", str(fifo), str(rate), str(channels)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._expect("ready")

    def _command(self, line: str, reply: str) -> str:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(f"{line}\n".encode())
        self._proc.stdin.flush()
        return self._expect(reply)

    def _expect(self, word: str) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line.startswith(word):
            raise PulseError(f"feeder of {self.fifo.name} said {line!r}, expected {word!r}")
        return line

    def play(self, frames: np.ndarray) -> float:
        """Queue int16 samples (interleaved); returns the monotonic time they start."""
        self._clips += 1
        raw = self.clips_dir / f"{self.fifo.stem}-clip{self._clips}.raw"
        raw.write_bytes(np.asarray(frames, dtype="<i2").tobytes())
        return float(self._command(f"play {raw}", "queued").split()[1])

    def clear(self) -> None:
        self._command("clear", "cleared")

    def close(self) -> None:
        if self._proc is not None:
            _end(self._proc)
            self._proc = None


class PipeSource:
    """An extra module-pipe-source (any channel count) with its own feeder process.

    ``play`` takes interleaved frames, shape (n, channels), at the source's rate.
    """

    def __init__(self, server: PulseServer, name: str, *, channels: int, rate: int) -> None:
        if channels not in _ALSA_CHANNEL_MAPS:
            raise ValueError(f"pipe source channels must be one of {sorted(_ALSA_CHANNEL_MAPS)}")
        self.server = server
        self.name = name
        self.channels = channels
        self.rate = rate
        self.fifo = server.runtime / f"{name}.fifo"
        out = server.pactl(
            "load-module",
            "module-pipe-source",
            f"source_name={name}",
            f"file={self.fifo}",
            "format=s16le",
            f"rate={rate}",
            f"channels={channels}",
            f"channel_map={_ALSA_CHANNEL_MAPS[channels]}",
        )
        self.module: int | None = int(out.strip())
        self._feeder = Feeder(self.fifo, server.root, rate=rate, channels=channels)

    def play(self, frames: np.ndarray) -> float:
        """Queue int16 frames (n, channels); returns the monotonic time they start."""
        data = np.asarray(frames, dtype="<i2")
        if data.ndim != 2 or data.shape[1] != self.channels:
            raise ValueError(f"expected frames of shape (n, {self.channels}), got {data.shape}")
        return self._feeder.play(data)

    def close(self) -> None:
        self._feeder.close()
        if self.module is not None and self.server.running:
            self.server.pactl("unload-module", str(self.module))
        self.module = None

    def __enter__(self) -> PipeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PulseServer:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.runtime = self.root / "run"
        self.fifo = self.runtime / "mic.fifo"
        self.log_path = self.root / "pulseaudio.log"
        self.env: dict[str, str] = {}
        self.mic_module: int | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._feeder: Feeder | None = None
        self._saved_env: dict[str, str | None] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PulseServer:
        exe = shutil.which("pulseaudio")
        if exe is None:
            raise PulseError("pulseaudio is not installed (apt-get install pulseaudio)")
        for tool in ("pactl", "parec"):
            if shutil.which(tool) is None:
                raise PulseError(f"{tool} is not installed (apt-get install pulseaudio-utils)")
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        client_conf = self.root / "client.conf"
        client_conf.write_text("autospawn = no\n")  # a dead server must not respawn elsewhere
        self.env = {
            "XDG_RUNTIME_DIR": str(self.runtime),
            "PULSE_RUNTIME_PATH": str(self.runtime / "pulse"),
            "PULSE_SERVER": f"unix:{self.runtime}/pulse/native",
            "PULSE_CLIENTCONFIG": str(client_conf),
        }
        server_env = {**os.environ, **self.env, "HOME": str(self.root)}
        server_env.pop("PULSE_SERVER")  # the server must not try to be its own client
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        self._server = subprocess.Popen(
            [
                exe,
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--system=no",
                "-n",
                "--log-target=stderr",
                "--load=module-native-protocol-unix auth-anonymous=1",
                "--load=module-null-sink sink_name=speaker",
                "--load=module-always-sink",
            ],
            env=server_env,
            stdout=log,
            stderr=log,
        )
        log.close()
        self._export_env()
        deadline = time.monotonic() + _START_TIMEOUT
        while self._pactl("info", check=False).returncode != 0:
            if self._server.poll() is not None or time.monotonic() > deadline:
                text = self.log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise PulseError(f"pulseaudio did not start:\n{text}")
            time.sleep(0.05)
        self.load_mic()
        self._pactl("set-default-sink", "speaker")
        self._start_feeder()
        return self

    def _export_env(self) -> None:
        for key, value in self.env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def stop(self) -> None:
        if self._feeder is not None:
            self._feeder.close()
            self._feeder = None
        if self._server is not None:
            _end(self._server)
            self._server = None
        for key, old in self._saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        self._saved_env.clear()

    def __enter__(self) -> PulseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    # ------------------------------------------------------------------ pactl

    def _pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env}
        proc = subprocess.run(["pactl", *args], env=env, capture_output=True, text=True, timeout=10)
        if check and proc.returncode != 0:
            raise PulseError(f"pactl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def pactl(self, *args: str) -> str:
        return self._pactl(*args).stdout

    # ------------------------------------------------------------------ microphone

    def load_mic(self) -> int:
        """(Re)create the pipe source ``mic`` and make it the default source."""
        out = self.pactl(
            "load-module",
            "module-pipe-source",
            "source_name=mic",
            f"file={self.fifo}",
            "format=s16le",
            f"rate={MIC_RATE}",
            "channels=1",
        )
        self.mic_module = int(out.strip())
        self.pactl("set-default-source", "mic")
        return self.mic_module

    def unload_mic(self) -> None:
        """Remove the microphone, as if its USB cable were pulled."""
        if self.mic_module is None:
            raise PulseError("the mic is not loaded")
        self.pactl("unload-module", str(self.mic_module))
        self.mic_module = None

    @contextlib.contextmanager
    def mic_removed(self) -> Iterator[None]:
        self.unload_mic()
        try:
            yield
        finally:
            if self.mic_module is None:
                self.load_mic()

    def add_source(self, name: str, *, channels: int, rate: int = MIC_RATE) -> PipeSource:
        """A further pipe source, e.g. a multi-channel mic array; close() removes it."""
        return PipeSource(self, name, channels=channels, rate=rate)

    @contextlib.contextmanager
    def default_source(self, name: str) -> Iterator[None]:
        """Make ``name`` the default source (what ALSA's pulse device records) for a while."""
        self.pactl("set-default-source", name)
        try:
            yield
        finally:
            if self.running:
                self._pactl("set-default-source", "mic", check=False)

    @contextlib.contextmanager
    def room(self, *, echo_latency_ms: int = 40, echo_volume: int = 100) -> Iterator[str]:
        """A room where the speaker is heard: null sink ``room`` mixes the speaker's
        output (module-loopback from ``speaker.monitor``, ``echo_latency_ms`` late,
        at ``echo_volume`` percent) with the ``mic`` pipe source (the user); its
        monitor is the default source for a while. Yields the source's name."""
        modules = [
            self.pactl("load-module", "module-null-sink", "sink_name=room").strip(),
        ]
        try:
            for source, latency in (("speaker.monitor", echo_latency_ms), ("mic", 10)):
                modules.append(
                    self.pactl(
                        "load-module",
                        "module-loopback",
                        f"source={source}",
                        "sink=room",
                        f"latency_msec={latency}",
                        "source_dont_move=true",
                        "sink_dont_move=true",
                    ).strip()
                )
            index = ""
            for line in self.pactl("list", "sink-inputs").splitlines():
                line = line.strip()
                if line.startswith("Sink Input #"):
                    index = line.removeprefix("Sink Input #")
                elif line == f"Owner Module: {modules[1]}":
                    self.pactl("set-sink-input-volume", index, f"{echo_volume}%")
            with self.default_source("room.monitor"):
                yield "room.monitor"
        finally:
            for module in reversed(modules):
                if self.running:
                    self._pactl("unload-module", module, check=False)

    def _start_feeder(self) -> None:
        self._feeder = Feeder(self.fifo, self.root, rate=MIC_RATE, channels=1)

    def play(self, wav: Path | str | np.ndarray, *, rate: int = MIC_RATE) -> float:
        """Queue a WAV file (any format) or int16 samples at ``rate`` into the mic.

        Returns the feeder's time.monotonic() when the first frame was written
        (the clock is system-wide, so it compares with this process's).
        Earlier queued clips play first; silence follows the last.
        """
        from hw.audio.files import load_mono

        if isinstance(wav, np.ndarray):
            samples = np.asarray(wav, dtype=np.int16)
            if rate != MIC_RATE:
                from daemon.dsp import Resampler

                samples = Resampler(rate, MIC_RATE).process(samples)
        else:
            samples, _ = load_mono(wav, rate=MIC_RATE)
        assert self._feeder is not None
        return self._feeder.play(samples)

    def silence(self) -> None:
        """Drop whatever is queued in the mic; silence from the next 10 ms on."""
        assert self._feeder is not None
        self._feeder.clear()

    # ------------------------------------------------------------------ speaker

    def record(self, *, rate: int = 24000, device: str = "speaker.monitor") -> Recording:
        """Start recording ``device`` as raw mono s16le; returns once audio flows."""
        rec = Recording(
            [
                "parec",
                f"--device={device}",
                "--raw",
                "--format=s16le",
                f"--rate={rate}",
                "--channels=1",
                "--latency-msec=10",
            ],
            {**os.environ, **self.env},
            rate,
        )
        rec.wait_started()
        return rec


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- signals


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.rint(np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


def chirp_noise(seconds: float, rate: int, seed: int = 1, amplitude: float = 0.3) -> np.ndarray:
    """Band-limited (below 3.5 kHz) noise: a signal with one sharp correlation peak."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spec[(freqs > 3500) | (freqs < 100)] = 0
    x = np.fft.irfft(spec, n)
    x *= amplitude * 32767 / np.max(np.abs(x))
    return np.rint(x).astype(np.int16)


def best_lag(haystack: np.ndarray, needle: np.ndarray) -> tuple[int, float]:
    """(offset of ``needle`` in ``haystack``, normalised correlation at that offset).

    The correlation is taken at the best *fractional* offset: a chain of
    resamplers (PulseAudio's, ours) delays a signal by some part of a sample
    that depends on how the streams' phases happened to line up, and at the
    nearest whole sample a half-sample shift alone costs a 3.5 kHz-wide signal
    about 0.035 of correlation. The offset returned is the nearest whole sample.
    """
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(h) + len(n))))
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)
    corr = corr[: len(h) - len(n) + 1]
    if len(corr) == 0:
        return 0, 0.0
    lag = int(np.argmax(corr))
    frac = _fractional_peak(h, n, lag)
    aligned = _aligned(h, lag, frac, len(n))
    denom = np.linalg.norm(aligned) * np.linalg.norm(n)
    lag_near = min(len(h) - len(n), max(0, lag + round(frac)))
    return lag_near, float(np.dot(aligned, n) / denom) if denom else 0.0


def _aligned(h: np.ndarray, lag: int, frac: float, length: int) -> np.ndarray:
    """``h`` at positions lag + frac + 0..length-1, by band-limited (spectral) interpolation
    of a zero-padded window, so the shift neither wraps around nor smears."""
    pad = 64
    lo, hi = lag - pad, lag + length + pad
    window = np.zeros(hi - lo)
    src = h[max(0, lo) : min(len(h), hi)]
    window[max(0, lo) - lo : max(0, lo) - lo + len(src)] = src
    size = 1 << int(np.ceil(np.log2(2 * len(window))))
    spec = np.fft.rfft(window, size) * np.exp(2j * np.pi * np.fft.rfftfreq(size) * frac)
    return np.fft.irfft(spec, size)[pad : pad + length]


def _fractional_peak(h: np.ndarray, n: np.ndarray, lag: int) -> float:
    """The sub-sample offset (within +-1 of ``lag``) where the correlation peaks."""

    def score(f: float) -> float:
        return float(np.dot(_aligned(h, lag, f, len(n)), n))

    grid = np.linspace(-1.0, 1.0, 33)
    best = int(np.argmax([score(f) for f in grid]))
    lo, hi = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    for _ in range(12):  # golden-section search between the grid neighbours
        a = hi - (hi - lo) / 1.618034
        b = lo + (hi - lo) / 1.618034
        if score(a) > score(b):
            hi = b
        else:
            lo = a
    return float((lo + hi) / 2)


def active_span(x: np.ndarray, rate: int, threshold_db: float = -40.0) -> tuple[int, int] | None:
    """(first, last+1) sample of the part louder than ``threshold_db`` in 1 ms windows."""
    win = max(1, rate // 1000)
    usable = len(x) - len(x) % win
    if usable == 0:
        return None
    frames = x[:usable].astype(np.float64).reshape(-1, win) / 32768.0
    level = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-12)
    loud = np.flatnonzero(level > threshold_db)
    if len(loud) == 0:
        return None
    return int(loud[0] * win), int((loud[-1] + 1) * win)


# --------------------------------------------------------------------------- feeder process


def _queued(fd: int) -> int:
    """Bytes written into a pipe and not yet read."""
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


def _feed(fifo: str, rate: int = MIC_RATE, channels: int = 1) -> None:
    """Write queued raw s16le clips into the FIFO at real-time pace, silence otherwise.

    Commands on stdin: ``play RAWFILE`` (queue a clip), ``clear`` (drop the queue).
    Survives the FIFO disappearing (mic module unloaded) by reopening it.
    """

    tick = 0.01
    frame_bytes = int(rate * tick) * 2 * channels
    silence = bytes(frame_bytes)
    pending = bytearray()
    fd = -1

    def reopen() -> int:
        try:
            new = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return -1
        return new  # stays non-blocking: a reader that stops reading must not stall us

    print("ready", flush=True)
    stdin = sys.stdin.buffer
    due = time.monotonic()
    while True:
        wait = max(0.0, due - time.monotonic())
        readable, _, _ = select.select([stdin], [], [], wait)
        if readable:
            line = stdin.readline()
            if not line:
                return  # the test process went away
            cmd, _, arg = line.decode().strip().partition(" ")
            if cmd == "play":
                start_at = due if not pending else due + len(pending) / (2 * channels) / rate
                pending += Path(arg).read_bytes()
                print(f"queued {start_at:.6f}", flush=True)
            elif cmd == "clear":
                pending.clear()
                print("cleared", flush=True)
            continue
        if pending:
            chunk = bytes(pending[:frame_bytes]).ljust(frame_bytes, b"\0")
            del pending[:frame_bytes]
        else:
            chunk = silence
        if fd < 0:
            fd = reopen()
        # PulseAudio reads the pipe only while someone records, then drains it at once:
        # silence left queued meanwhile would arrive as a burst ahead of the next clip.
        # So silence is written only into an (almost) empty pipe, as a live mic would.
        if fd >= 0 and (chunk is not silence or _queued(fd) < 2 * frame_bytes):
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    pass  # pipe full (source not reading): drop, as a live mic would
                elif exc.errno == errno.EPIPE:
                    os.close(fd)  # the source went away: reopen when it is back
                    fd = -1
                else:
                    raise
        due += tick
        if time.monotonic() - due > 0.5:  # suspended: resync rather than burst
            due = time.monotonic()


if __name__ == "__main__":
    if len(sys.argv) in (3, 5) and sys.argv[1] == "feed":
        _feed(sys.argv[2], *(int(a) for a in sys.argv[3:]))
    else:
        print("usage: python tests/pulse.py feed FIFO [RATE CHANNELS]", file=sys.stderr)
        sys.exit(2)
