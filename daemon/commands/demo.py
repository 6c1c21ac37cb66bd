"""`voicepi demo`: the whole appliance on embedded defaults, no key and no hardware.

The local simulator plays the OpenAI Realtime API, the bundled WAV ("hey
jarvis", then a question) is the microphone, the answer is written to a WAV at
real-time pace, and the LEDs and button run on gpiozero's mock pins. The run
prints a timeline and exits 0 once the inactivity countdown has closed the
session.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
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
        "--inactivity-timeout",
        type=float,
        default=7.0,
        metavar="S",
        help="seconds of inactivity before the session closes (default 7)",
    )


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


def run(args: argparse.Namespace) -> int:
    base = config.load_or_exit(args.config) if args.config else config.Config()
    return asyncio.run(_demo(base, args))


async def _demo(base: config.Config, args: argparse.Namespace) -> int:
    from ..appliance.wiring import build, run_until_stopped
    from ..effective import effective
    from ..realtime.simulator import Simulator

    with resources.as_file(resources.files("daemon") / "data" / "demo.wav") as bundled:
        mic = Path(args.mic) if args.mic else bundled
        out_dir = Path(tempfile.mkdtemp(prefix="voicepi-demo-"))
        output = Path(args.output) if args.output else out_dir / "answer.wav"
        closes: list[ev.SessionClosed] = []
        t0 = time.monotonic()

        def show(event: ev.Event) -> None:
            if isinstance(event, ev.SessionClosed):
                closes.append(event)
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
            built = build(cfg, emit=show, max_sessions=1)
            code = await run_until_stopped(built)
    print(f"voicepi demo: answer audio written to {output}", flush=True)
    if code != 0:
        return code
    if not closes or closes[-1].reason != "inactivity":
        reason = closes[-1].reason if closes else "no session"
        print(f"voicepi demo: expected an inactivity close, got {reason}", file=sys.stderr)
        return 1
    return 0
