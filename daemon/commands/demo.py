"""`voicepi demo`: the whole appliance on embedded defaults, no key and no hardware.

The local simulator plays the OpenAI Realtime API, the bundled WAV ("hey
jarvis", then a question) is the microphone, the answer is written to a WAV at
real-time pace, and the LEDs and button run on gpiozero's mock pins. The run
prints a timeline and exits 0 once the inactivity countdown has closed the
session; 1 with one line when nothing woke it within the mic's length plus 5 s
(of mic audio heard with ``--mic-pacing consumer``), or the --mic or --output file cannot
be used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from .. import config
from .. import events as ev
from ..timeline import line
from .common import add_config_argument

DEMO_QUESTION = "what's the weather like today"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--mic", metavar="WAV", default=None, help="microphone WAV (default: the bundled demo)"
    )
    parser.add_argument(
        "--output",
        metavar="WAV",
        default=None,
        help="where the spoken answer is written (default: a temporary file)",
    )
    parser.add_argument(
        "--mic-pacing",
        choices=("clock", "consumer"),
        default="clock",
        help='"clock": the mic WAV plays in real time and audio the loop cannot keep up with '
        'is dropped, as from a device; "consumer": the WAV waits for the loop, nothing is '
        "dropped (a CPU slower than real time, e.g. under emulation, still hears every word)",
    )
    parser.add_argument(
        "--inactivity-timeout",
        type=_inactivity,
        default=None,
        metavar="S",
        help="seconds of inactivity before the session closes, 1 to 3600 "
        "(default: session.inactivity_timeout from --config, else 7)",
    )


def _inactivity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 1.0 <= value <= 3600.0:  # session.inactivity_timeout's range
        raise argparse.ArgumentTypeError(f"expected 1 to 3600 seconds, got {text}")
    return value


def demo_config(
    base: config.Config, *, url: str, mic: Path, output: Path, idle: float
) -> config.Config:
    """The user's config with the demo's embedded parts swapped in."""
    return dataclasses.replace(
        base,
        realtime=dataclasses.replace(base.realtime, url=url),
        audio=dataclasses.replace(base.audio, input=f"file:{mic}", output=f"file:{output}"),
        session=dataclasses.replace(base.session, inactivity_timeout=idle),
        gpio=dataclasses.replace(base.gpio, pin_factory="mock"),
    )


NO_WAKE_TAIL_S = 5.0  # after the mic's audio ends: the score peaks late, refractory, jitter


def run(args: argparse.Namespace) -> int:
    base = config.load_or_exit(args.config) if args.config else config.Config()
    if args.inactivity_timeout is None:
        args.inactivity_timeout = base.session.inactivity_timeout if args.config else 7.0
    return asyncio.run(_demo(base, args))


async def _demo(base: config.Config, args: argparse.Namespace) -> int:
    from ..appliance.microphone import WAKE_RATE
    from ..appliance.wiring import SpeakerUnavailable, build, open_speaker, run_until_stopped
    from ..audiofile import WavError, read_audio
    from ..effective import effective
    from ..realtime.simulator import Simulator

    with resources.as_file(resources.files("daemon") / "data" / "demo.wav") as bundled:
        mic = Path(args.mic) if args.mic else bundled
        try:
            decoded = read_audio(mic)
        except WavError as exc:
            print(f"voicepi demo: --mic: {exc}", file=sys.stderr)
            return 1
        out_dir = Path(tempfile.mkdtemp(prefix="voicepi-demo-"))
        output = Path(args.output) if args.output else out_dir / "answer.wav"
        closes: list[ev.SessionClosed] = []
        woke = asyncio.Event()
        t0 = time.monotonic()

        def show(event: ev.Event) -> None:
            if isinstance(event, ev.SessionClosed):
                closes.append(event)
            if isinstance(event, ev.WakeWordDetected):
                woke.set()
            text = line(event, time.monotonic() - t0)
            if text is not None:
                print(text, flush=True)

        transcripts = (DEMO_QUESTION,) if args.mic is None else ()
        async with Simulator(transcripts=transcripts) as sim:
            try:
                cfg = effective(
                    demo_config(
                        base, url=sim.url, mic=mic, output=output, idle=args.inactivity_timeout
                    )
                )
            except config.ConfigError as exc:
                config.exit_config_error(exc)
            print(f"voicepi demo: simulator at {sim.url}, microphone {mic}", flush=True)
            try:
                player = await open_speaker(cfg, emit=show, give_up_s=0.0)
            except SpeakerUnavailable as exc:
                print(f"voicepi demo: --output: {exc}", file=sys.stderr)
                return 1
            built = build(
                cfg,
                emit=show,
                max_sessions=1,
                player=player,
                paced_mic=args.mic_pacing == "consumer",
            )
            # Nothing may wake it (a short --mic, a model the WAV does not say): end, not hang.
            bound = len(decoded.frames) / decoded.rate + NO_WAKE_TAIL_S
            app = built.app
            if args.mic_pacing == "consumer":  # mic time, however slow the loop runs

                def heard() -> float:
                    return app.path.wake_total / WAKE_RATE if app.path else 0.0
            else:
                start = time.monotonic()

                def heard() -> float:
                    return time.monotonic() - start

            watch = asyncio.ensure_future(_no_wake(woke, bound, heard, app.request_stop))
            try:
                code = await run_until_stopped(built)
            finally:
                watch.cancel()
    if not woke.is_set():
        models = ", ".join(cfg.wakeword.models)
        with_config = f" --config {args.config}" if args.config else ""
        print(
            f"voicepi demo: nothing woke the speaker within {bound:.1f} s "
            f"({mic}, wake word models: {models}); "
            f"`voicepi wakeword {mic}{with_config}` shows the scores",
            file=sys.stderr,
        )
        return 1
    print(f"voicepi demo: answer audio written to {output}", flush=True)
    if code != 0:
        return code
    if not closes or closes[-1].reason != "inactivity":
        reason = closes[-1].reason if closes else "no session"
        print(f"voicepi demo: expected an inactivity close, got {reason}", file=sys.stderr)
        return 1
    return 0


async def _no_wake(
    woke: asyncio.Event, bound: float, heard: Callable[[], float], stop: Callable[[int], None]
) -> None:
    """stop(1) once ``heard()`` (seconds of mic audio, or of wall time) passes ``bound``
    with nothing woken."""
    while not woke.is_set():
        left = bound - heard()
        if left <= 0:
            stop(1)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woke.wait(), min(left, 0.25))
