"""Echo cancellation figures (issue #12): the canceller's CPU per audio second and echo
reduction in a simulated room, and the real appliance in the PulseAudio room (speaker
looped into the mic 40 ms late) against the simulator's energy VAD: self-interruptions
over answers nobody talks over, and the user's "stop" 2 s into answers."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from daemon import aec, config
from daemon import events as ev
from tests.bench import Row, bench

ANSWERS = 20
OFF_ANSWERS = 3  # the baseline without the canceller: every answer interrupts itself
PARKED_ANSWERS = 10  # each a new session after the speaker parked


class LivekitBackend:
    """livekit's AudioProcessingModule (WebRTC APM, AEC3) behind ``aec.Backend``: the
    binding the issue compared with pywebrtc-audio. Bench only (10.6 MB plus protobuf)."""

    def __init__(self, noise_suppression: bool) -> None:
        from livekit import rtc

        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=True, noise_suppression=noise_suppression
        )

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        rtc = self._rtc
        self._apm.process_reverse_stream(rtc.AudioFrame(far.tobytes(), aec.RATE, 1, len(far)))
        frame = rtc.AudioFrame(near.tobytes(), aec.RATE, 1, len(near))
        self._apm.process_stream(frame)  # in place
        return np.frombuffer(frame.data, dtype=np.int16).copy()


def _binding(backend: Any) -> tuple[float, float]:
    """(CPU s per audio s of the binding alone, echo reduction after 2 s) in the simulated
    room (40 ms, decaying impulse response) through EchoCanceller with ``backend``."""
    from tests.test_aec import SimClock, _run_room

    clock = SimClock()
    canceller = aec.EchoCanceller(backend=backend, clock=clock)
    frames: list[tuple[np.ndarray, np.ndarray]] = []
    canceller.monitor = lambda near, far, _out: frames.append((near.copy(), far.copy()))
    heard, out = _run_room(canceller, 10.0, delay_ms=40, clock=clock)
    reduction = 10 * np.log10(
        np.mean(heard[32000:].astype(float) ** 2) / (np.mean(out[32000:].astype(float) ** 2) + 1e-9)
    )
    # CPU of the binding alone: the same near/far frames through a fresh instance.
    fresh = backend(False)
    start = time.process_time()
    for near, far in frames:
        fresh.process(near, far)
    cpu = (time.process_time() - start) / (len(frames) / 100)
    return cpu, float(reduction)


@bench
def echo_canceller_cpu() -> list[Row]:
    cpu, reduction = _binding(aec.pywebrtc_backend)
    try:
        lk: tuple[float | None, float | None] = _binding(LivekitBackend)
    except ImportError:  # livekit is not a dependency: the comparison needs it installed
        lk = (None, None)
    return [
        Row(
            "echo: AEC3 CPU per audio second, pywebrtc-audio (x86)",
            cpu,
            "s/s",
            "livekit APM",
            lk[0],
        ),
        Row(
            "echo: reduction after 2 s, simulated room 40 ms, pywebrtc-audio",
            reduction,
            "dB",
            "livekit APM",
            lk[1],
        ),
    ]


async def _ask(app: Any, pulse: Any) -> None:
    """Ask the question (after "hey jarvis" when idle, as is in a listening session) and
    wait until the answer plays."""
    from tests.appliance_harness import SPEECH

    mark = app.mark()
    woke = app.app.sm.state == "idle"
    pulse.play(SPEECH / ("hey_jarvis_then_question.wav" if woke else "question.wav"))
    await app.wait_state("speaking", 60, after=mark)


def _tally(result: dict[str, Any], app: Any, mark: int, starved: bool) -> Any:
    """Count one answer (and a starved one) in ``result``, with the played ms of its first
    interruption since ``mark`` (None: it played to its end); returns that interruption."""
    first = next((e for _, e in app.events[mark:] if isinstance(e, ev.AudioInterrupted)), None)
    result["answers"] += 1
    result["starved"] += starved
    result.setdefault("played_ms", []).append(None if first is None else first.played_ms)
    return first


async def _answers(pulse: Any, det: Any, echo_cancel: str, n: int, user: bool) -> dict[str, Any]:
    from daemon.realtime.simulator import Simulator
    from hw.audio.files import load_mono
    from tests.appliance_harness import SPEECH, start
    from tests.test_echo_room import LONG_ANSWER, QUESTION, _config

    stop, _ = load_mono(SPEECH / "stop.wav", rate=16000)
    late_stop = np.concatenate((np.zeros(2 * 16000, dtype=np.int16), stop))
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    result: dict[str, Any] = {"self": 0, "barge": 0, "answers": 0, "starved": 0, "self_fed": 0}
    async with Simulator(
        transcripts=[QUESTION, "stop"] * (n + 2), answer=lambda _: LONG_ANSWER
    ) as s:
        with pulse.room(echo_latency_ms=40):
            app = await start(_config(s.url, echo_cancel), det)
            if app.built.echo is not None and not user:
                app.built.echo.monitor = lambda a, b, c: frames.append((a.copy(), b.copy(), c))
            try:
                for _ in range(n):
                    await _ask(app, pulse)
                    mark = app.mark()
                    speaker = app.app.parts.speaker
                    before = speaker.output_underflows
                    if user:
                        pulse.play(late_stop)
                    await app.wait_state("listening", 60, after=mark)
                    # A starved CPU runs the speaker dry: the device sounds silence the
                    # reference never held. Counted apart, as test_echo_room does.
                    starved = speaker.output_underflows != before
                    first = _tally(result, app, mark, starved)
                    # Before 1.5 s, or with nobody talking, an interruption is the echo.
                    if first is not None and (not user or first.played_ms < 1500):
                        result["self"] += 1
                        result["self_fed"] += not starved
                    elif first is not None:
                        result["barge"] += 1
                    pulse.silence()
            finally:
                await app.stop()
    if frames:
        near, far, out = (np.concatenate([f[i] for f in frames]) for i in range(3))
        result["report"] = aec.measure(far, near, out)
    return result


async def _answers_after_park(pulse: Any, det: Any, n: int) -> dict[str, Any]:
    """Each answer in a new session, asked once the idle speaker has parked: the wake
    restarts the stream (the wake chime first) and the canceller places its reference
    by the DAC times. The first session learns the room and is not counted."""
    from daemon.realtime.simulator import Simulator
    from tests.appliance_harness import start
    from tests.test_echo_room import LONG_ANSWER, QUESTION, _config, _until_parked

    result: dict[str, Any] = {"self": 0, "answers": 0, "starved": 0, "self_fed": 0}
    async with Simulator(transcripts=[QUESTION] * (n + 2), answer=lambda _: LONG_ANSWER) as s:
        with pulse.room(echo_latency_ms=40):
            app = await start(_config(s.url, "on", wake_sound=True), det)
            speaker = app.app.parts.speaker
            try:
                for i in range(n + 1):
                    await _until_parked(speaker)
                    before = speaker.output_underflows
                    await _ask(app, pulse)
                    mark = app.mark()
                    await app.wait_state("listening", 60, after=mark)
                    app.app.end_session()
                    await app.wait(lambda e: isinstance(e, ev.SessionClosed), 30, after=mark)
                    if i == 0:
                        continue
                    starved = speaker.output_underflows != before
                    if _tally(result, app, mark, starved) is not None:
                        result["self"] += 1
                        result["self_fed"] += not starved
            finally:
                await app.stop()
    return result


@bench
def echo_room() -> list[Row]:
    from daemon.wakeword import WakeWordDetector
    from tests.pulse import PulseServer

    det = WakeWordDetector(config.Config().wakeword)
    det.load()
    with tempfile.TemporaryDirectory(prefix="voicepi-bench-echo-") as tmp:
        pulse = PulseServer(Path(tmp)).start()
        try:
            quiet = asyncio.run(_answers(pulse, det, "on", ANSWERS, user=False))
            talk = asyncio.run(_answers(pulse, det, "on", ANSWERS, user=True))
            off = asyncio.run(_answers(pulse, det, "off", OFF_ANSWERS, user=False))
            parked = asyncio.run(_answers_after_park(pulse, det, PARKED_ANSWERS))
        finally:
            pulse.stop()
            det.close()
    for name, res in (("quiet", quiet), ("talk", talk), ("off", off), ("parked", parked)):
        print(f"echo room {name}: interrupted at (ms)", res.get("played_ms"), file=sys.stderr)
    report = quiet.get("report")
    rows = [
        Row(
            f"echo room: self-interruptions per answer, AEC3 on ({quiet['answers']} answers)",
            quiet["self"] / max(1, quiet["answers"]),
            "per answer",
            f"AEC off ({off['answers']} answers)",
            off["self"] / max(1, off["answers"]),
        ),
        Row(
            "echo room: of them in answers the speaker played without an underflow",
            quiet["self_fed"],
            "answers",
            "answers with a speaker underflow (quiet + talk)",
            quiet["starved"] + talk["starved"],
        ),
        Row(
            f"echo room: self-interruptions per answer, the first of a session after the "
            f"speaker parked ({parked['answers']} sessions)",
            parked["self"] / max(1, parked["answers"]),
            "per answer",
            "answers in one running session",
            quiet["self"] / max(1, quiet["answers"]),
        ),
        Row(
            "echo room: of them in answers the speaker played without an underflow",
            parked["self_fed"],
            "answers",
            "answers with a speaker underflow",
            parked["starved"],
        ),
        Row(
            f"echo room: user 'stop' 2 s in detected, AEC3 on ({talk['answers']} answers)",
            talk["barge"] / max(1, talk["answers"]),
            "fraction",
        ),
    ]
    if report is not None:
        rows.append(Row("echo room: reduction after 2 s", report.reduction_db, "dB"))
        rows.append(Row("echo room: echo delay seen by the canceller", report.delay_ms, "ms"))
    return rows


WAKE_ANSWERS = 10
# The answer itself says the wake word: the worst case for scoring while speaking.
WAKE_IN_ANSWER = (
    "The weather today is mild with a light breeze. Hey Jarvis. If you need me again, "
    "just say hey jarvis and ask, and I will tell you about tomorrow as well."
)


async def _wake_scores(
    pulse: Any, det: Any, scorer: Any, *, user: bool
) -> list[tuple[float, float, bool]]:
    """Per answer in the room (AEC3 on): the wake word's peak score on what the mic heard
    and on what the canceller let through, from the answer's start to its end, and
    whether the speaker underflowed meanwhile. With
    ``user`` the answer is plain and the user says "hey jarvis" 2 s in; without, the
    answer says "hey jarvis" twice and nobody talks."""
    from daemon.realtime.simulator import Simulator
    from hw.audio.files import load_mono
    from tests.appliance_harness import SPEECH, appliance_config, start
    from tests.test_echo_room import LONG_ANSWER, QUESTION

    hey, _ = load_mono(SPEECH / "hey_jarvis.wav", rate=16000)
    late_hey = np.concatenate((np.zeros(2 * 16000, dtype=np.int16), hey))
    frames: list[tuple[np.ndarray, np.ndarray]] = []
    peaks: list[tuple[float, float, bool]] = []
    answer = LONG_ANSWER if user else WAKE_IN_ANSWER
    async with Simulator(transcripts=[QUESTION] * (WAKE_ANSWERS + 2), answer=lambda _: answer) as s:
        with pulse.room(echo_latency_ms=40):
            # Button barge-in: the server's VAD must not cut the answer the user talks over.
            cfg = appliance_config(
                s.url,
                audio={"echo_cancel": "on", "barge_in": "button"},
                realtime={"turn_detection": "server_vad"},
            )
            app = await start(cfg, det)
            assert app.built.echo is not None
            app.built.echo.monitor = lambda a, b, c: frames.append((a.copy(), c.copy()))
            try:
                for _ in range(WAKE_ANSWERS):
                    await _ask(app, pulse)
                    first = len(frames)
                    mark = app.mark()
                    before = app.app.parts.speaker.output_underflows
                    if user:
                        pulse.play(late_hey)
                    await app.wait_state("listening", 60, after=mark)
                    got = frames[first:]
                    pair = []
                    for i in (0, 1):
                        scorer.reset()
                        scorer.process(np.concatenate([f[i] for f in got]))
                        pair.append(scorer.peaks["hey_jarvis"])
                    starved = app.app.parts.speaker.output_underflows != before
                    peaks.append((pair[0], pair[1], starved))
                    pulse.silence()
            finally:
                await app.stop()
    return peaks


@bench
def echo_room_wake_word() -> list[Row]:
    """Item 2 of issue #12: may wake-word scoring stay on while the device speaks?"""
    from daemon.wakeword import WakeWordDetector
    from tests.pulse import PulseServer

    det = WakeWordDetector(config.Config().wakeword)
    det.load()
    scorer = WakeWordDetector(config.Config().wakeword)  # the app's own keeps its state
    scorer.load()
    threshold = det.thresholds[det.names.index("hey_jarvis")]
    with tempfile.TemporaryDirectory(prefix="voicepi-bench-wake-") as tmp:
        pulse = PulseServer(Path(tmp)).start()
        try:
            said = asyncio.run(_wake_scores(pulse, det, scorer, user=False))
            user = asyncio.run(_wake_scores(pulse, det, scorer, user=True))
        finally:
            pulse.stop()
            det.close()
            scorer.close()
    n = len(said)
    print("wake peaks (mic, after AEC3, underflow):", said, user, file=sys.stderr)
    return [
        Row(
            f"echo room: answer saying 'hey jarvis', peak score after AEC3 (median of {n})",
            float(np.median([c for _, c, _ in said])),
            "score",
            "the mic before AEC3",
            float(np.median([m for m, _, _ in said])),
        ),
        Row(
            f"echo room: answers whose own 'hey jarvis' would wake it, AEC3 on (of {n})",
            sum(c >= threshold for _, c, _ in said),
            "answers",
            "of them with a speaker underflow",
            sum(c >= threshold and u for _, c, u in said),
        ),
        Row(
            f"echo room: user's 'hey jarvis' 2 s into the answer detected (of {len(user)})",
            sum(c >= threshold for _, c, _ in user),
            "answers",
            "peak score, median",
            float(np.median([c for _, c, _ in user])),
        ),
    ]
