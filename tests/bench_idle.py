"""Idle CPU against the wake-word floor: each engine, and `voicepi run` at 16 and 48 kHz.

The floor is the three openWakeWord models (melspectrogram, embedding, hey_jarvis)
invoked directly in this process on pyopen-wakeword's TFLite library, with the
fastest options measured (XNNPACK, one thread) and the least glue: it is what any
openWakeWord detector must pay per 80 ms frame on warm caches. The paced floor is
the same loop given one frame per 80 ms of wall time, as audio arrives: between
frames other work and idle states cool the caches (3.7 MB of weights), and on this
machine it costs about 1.5x the back-to-back floor. A real-time wake path cannot go
below the paced floor; the back-to-back one is the ideal. Every figure is CPU seconds
per second of audio, and every ratio is to a floor measured in this same run.

`voicepi run` runs as a process: the mic is a `file:` WAV at 16 or 48 kHz (the rate
most USB mics run at) holding either the non-wake speech fixtures back to back
(speech present: the wake models run) or digital silence. The speaker is either a
`file:` WAV (its thread writes 20 ms of silence at a time; RSS without any sound
server's client libraries, as with a plain ALSA device) or PulseAudio's null sink
through PortAudio (the real callback path: an idle stream parks after 2 s; libpulse
adds to RSS). The last configuration takes the mic from PulseAudio too (a pipe source
at 16 kHz): both devices through PortAudio and libpulse, as on a Pi running PulseAudio
or PipeWire; the RSS (60 MB) and thread (6) budgets of issue #16 are for it. Figures
come from /proc: the whole process, and its main thread (the asyncio loop: mic blocks,
resampling, the wake word, the appliance). RSS counts file pages (library code) and
anonymous memory; "RSS anonymous" is the part no other process shares and the page
cache cannot take back. With the PulseAudio speaker (the rows issue #16's goals read) each
figure is the median of REPEATS runs, each followed by a floor and by the same run with
``wakeword.batch_frames = 1`` (every frame scored as it arrives): the ratio shows what idle
batching saves. The other daemon figures are one run each. The last row is RSS after a
session: the spoken "hey jarvis" and a question wake the daemon, the simulator answers, the
countdown closes the session.
"""

from __future__ import annotations

import importlib.util
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from daemon.config import WakewordConfig
from daemon.dsp import Resampler
from daemon.wakeword import FRAME_SAMPLES, SAMPLE_RATE, WakeWordDetector
from daemon.wakeword.wav import read_wav
from tests.bench import Row, bench, cpu_seconds
from tests.bench_daemon import (
    CLK_TCK,
    _cpu_seconds,
    _env,
    _start,
    _status,
    _stop,
    _wait_ready,
)
from tests.pulse import PulseServer

ROOT = Path(__file__).resolve().parent.parent
SPEECH = Path(__file__).parent / "fixtures" / "speech"
NOT_WAKE = ("what_time_is_it.wav", "question.wav", "stop.wav", "alexa.wav", "okay_nabu.wav")
SECONDS = 20.0
REPEATS = 3  # interleaved; the median is reported
SETTLE_S = 3.0  # after READY=1: past start-up work
IDLE_S = 10.0
UNIT = "CPU s / audio s"
PULSE_BOTH = "PulseAudio mic and speaker"
FLOOR = "floor: 3 models direct"
PACED = "paced floor: 3 models direct, 1 frame / 80 ms"
PACED_S = 8.0  # of the speech: in real time, so shorter


def speech(seconds: float = SECONDS, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speech without the configured wake word (hey_jarvis), back to back, at ``rate``."""
    parts = [read_wav(SPEECH / name)[0] for name in NOT_WAKE]
    out = np.concatenate(parts)
    while len(out) < seconds * SAMPLE_RATE:
        out = np.concatenate([out, *parts])
    out = out[: int(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES]
    return out if rate == SAMPLE_RATE else Resampler(SAMPLE_RATE, rate).process(out)


def frames_of(audio: np.ndarray) -> list[np.ndarray]:
    return [audio[i : i + FRAME_SAMPLES] for i in range(0, len(audio), FRAME_SAMPLES)]


# --------------------------------------------------------------------------- in process


def floor(audio: np.ndarray, paced: bool = False) -> float:
    """The three models per frame, invoked directly (CPU s per audio s); ``paced``: one
    frame per 80 ms of wall time, as a real-time detector receives them (the caches
    cool between frames), rather than back to back."""
    from daemon.wakeword.pyopen import _builtin_dir, _Interpreter, _tflite_lib

    lib, models = _tflite_lib(), _builtin_dir()
    mel = _Interpreter(lib, models / "melspectrogram.tflite", (1, 1760))
    emb = _Interpreter(lib, models / "embedding_model.tflite", (1, 76, 32, 1))
    wake = _Interpreter(lib, models / "hey_jarvis.tflite", None)
    window = np.zeros(2560, np.float32)
    mels = np.zeros((80, 32), np.float32)
    embs = np.zeros((16, 96), np.float32)

    def run() -> None:
        for frame in frames_of(audio):
            window[:-FRAME_SAMPLES] = window[FRAME_SAMPLES:]
            window[-FRAME_SAMPLES:] = frame
            mels[:-8] = mels[8:]
            mels[-8:] = (mel(window[:1760]) / 10 + 2).reshape(8, 32)
            embs[:-1] = embs[1:]
            embs[-1] = emb(mels[:76])
            wake(embs)
            if paced:
                time.sleep(FRAME_SAMPLES / SAMPLE_RATE)

    took = cpu_seconds(run)
    for interp in (mel, emb, wake):
        interp.close()
    return took / (len(audio) / SAMPLE_RATE)


def pyopen_as_shipped(audio: np.ndarray) -> float:
    """pyopen-wakeword's own streaming loop, default interpreter options."""
    from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

    features = OpenWakeWordFeatures.from_builtin()
    model = OpenWakeWord.from_builtin(Model.HEY_JARVIS)

    def run(chunks: list[bytes]) -> None:
        for chunk in chunks:
            for emb in features.process_streaming(chunk):
                for _ in model.process_streaming(emb):
                    pass

    run([bytes(2 * FRAME_SAMPLES)])  # the 8 s autofill, outside the timing
    took = cpu_seconds(lambda: run([f.tobytes() for f in frames_of(audio)]))
    features.close()
    model.close()
    return took / (len(audio) / SAMPLE_RATE)


def detector(audio: np.ndarray, **cfg: object) -> float:
    """voicepi's WakeWordDetector, 80 ms blocks (CPU s per audio s)."""
    det = WakeWordDetector(WakewordConfig(**cfg))  # type: ignore[arg-type]
    det.load()
    blocks = frames_of(audio)
    took = cpu_seconds(lambda: [det.process(b) for b in blocks])
    det.close()
    return took / (len(audio) / SAMPLE_RATE)


def engines() -> dict[str, Callable[[np.ndarray], float]]:
    out: dict[str, Callable[[np.ndarray], float]] = {
        "pyopen-wakeword as shipped (default options)": pyopen_as_shipped,
        "voicepi detector, pyopen-wakeword, gate off": lambda a: detector(a, gate=False),
        "voicepi detector, pyopen-wakeword, gate on": lambda a: detector(a, gate=True),
    }
    if importlib.util.find_spec("pymicro_wakeword") is not None:
        out["voicepi detector, microwakeword"] = lambda a: detector(a, engine="microwakeword")
    if importlib.util.find_spec("openwakeword") and importlib.util.find_spec("onnxruntime"):
        out["voicepi detector, openwakeword (onnx)"] = lambda a: detector(a, engine="openwakeword")
    return out


# --------------------------------------------------------------------------- voicepi run


def _wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def _config(workdir: Path, mic: str, speaker: str, batch_frames: int | None = None) -> Path:
    """The daemon's config: ``batch_frames`` None keeps the default (wakeword.batch_frames)."""
    cfg = workdir / "config.toml"
    batch = "" if batch_frames is None else f"[wakeword]\nbatch_frames = {batch_frames}\n"
    cfg.write_text(
        f"""
[realtime]
url = "ws://127.0.0.1:9/v1/realtime"
[audio]
input = "{mic}"
output = "{speaker}"
[gpio]
pin_factory = "mock"
{batch}""",
        encoding="utf-8",
    )
    return cfg


def _thread_cpu(pid: int) -> float:
    """CPU seconds of the main thread (asyncio loop: the wake path, the appliance)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _task_cpu(pid: int) -> dict[int, float]:
    """CPU seconds by thread id, to the microsecond (the scheduler's ``sum_exec_runtime``
    in /proc/PID/task/TID/sched); empty where the kernel does not show it. /proc/PID/stat
    counts in ticks of 10 ms: 0.001 CPU s/s over a 10 s run, a tenth of a silent figure."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "sched").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("se.sum_exec_runtime"):
                out[int(task.name)] = float(line.split(":")[1]) / 1000.0
    return out


def _cpu_rates(pid: int, seconds: float) -> tuple[float, float]:
    """(process, main thread) CPU s per s over the next ``seconds``: per-thread scheduler
    times when the same threads ran throughout. A thread that came or went (the idle
    speaker's PortAudio thread ends when its stream parks) measures again, once; then
    /proc/PID/stat's ticks."""
    for _ in range(2):
        c0, m0, t0, w0 = _cpu_seconds(pid), _thread_cpu(pid), _task_cpu(pid), time.monotonic()
        time.sleep(seconds)
        c1, m1, t1 = _cpu_seconds(pid), _thread_cpu(pid), _task_cpu(pid)
        wall = time.monotonic() - w0
        if t0 and t0.keys() == t1.keys():
            return (sum(t1.values()) - sum(t0.values())) / wall, (t1[pid] - t0[pid]) / wall
    return (c1 - c0) / wall, (m1 - m0) / wall


def _start_run(
    workdir: Path, cfg: Path, env: dict[str, str], stderr: int
) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """`voicepi run --config cfg` with a NOTIFY_SOCKET this process binds; READY not awaited."""
    notify = str(workdir / "notify.sock")
    Path(notify).unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify)
    return _start(cfg, notify, env, stderr), sock


def _memory(pid: int) -> dict[str, float]:
    """RSS and its anonymous part (MiB), and threads, from /proc."""
    return {
        "rss": _status(pid, "VmRSS") / 1024,
        "anon": _status(pid, "RssAnon") / 1024,
        "threads": _status(pid, "Threads"),
    }


def run_idle(
    workdir: Path,
    rate: int,
    talk: bool,
    speaker: str,
    env: dict[str, str],
    pulse: PulseServer | None = None,
    batch_frames: int | None = None,
) -> dict[str, float]:
    """`voicepi run` idle on a ``rate`` Hz file: mic, or with ``pulse`` on its PulseAudio
    mic (16 kHz; the speech queued into it): CPU s per s (process, main thread), RSS MiB
    and threads. ``batch_frames`` sets wakeword.batch_frames (None: the default)."""
    seconds = SETTLE_S + 2 * IDLE_S + 15.0  # room for a second measurement
    audio = speech(seconds, rate) if talk else np.zeros(int(seconds * rate), np.int16)
    if pulse is None:
        mic = f"file:{_wav(workdir / f'mic-{rate}-{talk}.wav', audio, rate)}"
    else:
        mic = "pulse"
        if talk:
            pulse.play(audio, rate=rate)
    cfg = _config(workdir, mic, speaker, batch_frames)
    proc, sock = _start_run(workdir, cfg, env, subprocess.DEVNULL)
    try:
        _wait_ready(sock, proc)
        time.sleep(SETTLE_S)
        cpu, main = _cpu_rates(proc.pid, IDLE_S)
        return {"cpu": cpu, "main": main, **_memory(proc.pid)}
    finally:
        _stop(proc)
        sock.close()


def run_after_session(workdir: Path, pulse: PulseServer) -> dict[str, float]:
    """`voicepi run` on the PulseAudio mic and speaker against the simulator: the spoken
    "hey jarvis" and a question wake it, the answer plays, the inactivity countdown
    closes the session; then IDLE_S of idle (after the release that follows a session).
    RSS MiB, anonymous MiB and threads, as ``run_idle``."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "simulator", "--port", "0", "--speech", "tone"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(),
        cwd=ROOT,
    )
    assert sim.stdout is not None
    url = sim.stdout.readline().decode().strip()
    cfg = _config(workdir, "pulse", "pulse")
    cfg.write_text(
        cfg.read_text().replace("ws://127.0.0.1:9/v1/realtime", url)
        + "[session]\ninactivity_timeout = 3\n",
        encoding="utf-8",
    )
    proc, sock = _start_run(workdir, cfg, dict(pulse.env), subprocess.PIPE)
    assert proc.stderr is not None
    drain = threading.Thread(target=proc.stderr.read, daemon=True)
    try:
        _wait_ready(sock, proc)  # the mic is open: what is played now is heard
        pulse.play(SPEECH / "hey_jarvis_then_question.wav")
        for line in proc.stderr:  # the journal's lines: wait for the session to close
            if b'"session_closed"' in line:
                break
        else:
            raise RuntimeError("voicepi run exited before a session closed")
        drain.start()
        time.sleep(IDLE_S)
        return _memory(proc.pid)
    finally:
        _stop(proc)
        _stop(sim)
        sock.close()


def _median_figures(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over ``runs`` of ``run_idle``."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


@bench
def idle() -> list[Row]:
    audio = speech()
    quiet = np.zeros_like(audio)
    floors: list[float] = []
    paced: list[float] = []
    runs: dict[str, list[float]] = {}
    for _ in range(REPEATS):
        floors.append(floor(audio))
        paced.append(floor(audio[: int(PACED_S * SAMPLE_RATE)], paced=True))
        for name, fn in engines().items():
            runs.setdefault(f"{name}: speech", []).append(fn(audio))
        runs.setdefault("voicepi detector, gate on: silence", []).append(detector(quiet))
    daemon: dict[tuple[str, int, bool], dict[str, float]] = {}
    unbatched: dict[tuple[str, int, bool], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="voicepi-bench-") as tmp:
        workdir = Path(tmp)
        with PulseServer(workdir / "pulse") as pulse:
            speakers = {
                "file speaker": (f"file:{workdir / 'speaker.wav'}", {}),
                "PulseAudio speaker": ("pulse", dict(pulse.env)),
            }
            for label, (speaker, env) in speakers.items():
                for rate in (16000, 48000):
                    for talk in (True, False):
                        if speaker != "pulse":
                            daemon[(label, rate, talk)] = run_idle(
                                workdir, rate, talk, speaker, env
                            )
                            floors.append(floor(audio))  # interleaved with the daemon runs too
                            continue
                        # The rows issue #16's goals read: medians of runs interleaved with
                        # the floor and with idle batching turned off (batch_frames = 1).
                        batched, plain = [], []
                        for _ in range(REPEATS):
                            batched.append(run_idle(workdir, rate, talk, speaker, env))
                            floors.append(floor(audio))
                            plain.append(
                                run_idle(workdir, rate, talk, speaker, env, batch_frames=1)
                            )
                        daemon[(label, rate, talk)] = _median_figures(batched)
                        unbatched[(label, rate, talk)] = _median_figures(plain)
            # Both through PortAudio and libpulse, as on a Pi with PulseAudio/PipeWire: the
            # RSS and thread budgets (60 MB, 6) are for this one.
            for talk in (False, True):  # speech last: what is queued plays to the end
                fig = run_idle(workdir, 16000, talk, "pulse", dict(pulse.env), pulse)
                daemon[(PULSE_BOTH, 16000, talk)] = fig
                floors.append(floor(audio))
            after = run_after_session(workdir, pulse)
    base, real_time = statistics.median(floors), statistics.median(paced)
    rows = [
        Row(f"{FLOOR} (XNNPACK, 1 thread)", base, UNIT),
        Row(PACED, real_time, UNIT, FLOOR, base),
    ]
    for name, values in runs.items():
        rows.append(Row(name, statistics.median(values), UNIT, FLOOR, base))
    for (label, rate, talk), fig in daemon.items():
        what = f"voicepi run idle, {rate // 1000} kHz mic, {'speech' if talk else 'silence'}"
        what += f", {label}"
        rows.append(Row(what, fig["cpu"], UNIT, FLOOR, base))
        rows.append(Row(f"{what}: main thread (wake path)", fig["main"], UNIT, FLOOR, base))
        if talk:
            rows.append(Row(f"{what}: main thread", fig["main"], UNIT, PACED, real_time))
        rows.append(Row(f"{what}: RSS", fig["rss"], "MiB"))
        rows.append(Row(f"{what}: RSS anonymous", fig["anon"], "MiB"))
        rows.append(Row(f"{what}: threads", fig["threads"], "threads"))
        if (label, rate, talk) in unbatched:
            one = unbatched[(label, rate, talk)]
            plain = f"{what}, batch_frames = 1"
            rows.append(Row(plain, one["cpu"], UNIT, FLOOR, base))
            rows.append(Row(f"{what} (batch_frames = 4)", fig["cpu"], UNIT, plain, one["cpu"]))
            rows.append(Row(f"{plain}: main thread", one["main"], UNIT, PACED, real_time))
    what = f"voicepi run idle after a session, {PULSE_BOTH}"
    rows.append(Row(f"{what}: RSS", after["rss"], "MiB"))
    rows.append(Row(f"{what}: RSS anonymous", after["anon"], "MiB"))
    rows.append(Row(f"{what}: threads", after["threads"], "threads"))
    return rows
