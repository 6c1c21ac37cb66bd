"""`voicepi simulator`: a local OpenAI-Realtime-compatible websocket endpoint."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal


def _fault(spec: str) -> str:
    from daemon.realtime.sim.faults import Faults

    try:
        Faults.parse([spec])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--fault: ")) from None
    return spec


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected 0 to 65535, got {port}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1); with 0.0.0.0 or :: the printed URL is "
        "the loopback one, since realtime.url takes ws:// only to loopback",
    )
    parser.add_argument(
        "--port", type=_port, default=8765, help="TCP port, 0 to 65535; 0 picks a free one"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar="NAME[=SECONDS]",
        help="misbehave on purpose: drop_mid_answer, refuse, silent, garbage, "
        "expire_after=SECONDS, close_after=SECONDS (repeatable)",
    )
    parser.add_argument(
        "--transcript",
        action="append",
        default=[],
        metavar="TEXT",
        help="what the user 'said' in each turn, in order (repeatable; "
        "afterwards a placeholder such as '(1.4 s of speech)')",
    )
    parser.add_argument(
        "--speech",
        choices=("auto", "espeak", "tone"),
        default="auto",
        help="answer voice: espeak-ng if installed (auto), or a tone",
    )
    parser.add_argument(
        "--realtime-factor",
        type=float,
        default=4.0,
        metavar="X",
        help="stream answer audio X times faster than real time (4)",
    )


def run(args: argparse.Namespace) -> int:
    from daemon.realtime.sim import Faults, Simulator

    if not args.realtime_factor > 0:
        raise SystemExit("voicepi simulator: --realtime-factor must be > 0")
    sim = Simulator(
        host=args.host,
        port=args.port,
        faults=Faults.parse(args.fault),
        transcripts=args.transcript,
        speech=args.speech,
        realtime_factor=args.realtime_factor,
    )
    try:
        asyncio.run(_serve(sim))
    except OSError as exc:
        raise SystemExit(
            f"voicepi simulator: cannot listen on {args.host}:{args.port}: {exc}"
        ) from None
    return 0


async def _serve(sim: object) -> None:
    from daemon.realtime.sim import Simulator

    assert isinstance(sim, Simulator)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    print(sim.url, flush=True)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await sim.stop()
