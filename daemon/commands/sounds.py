"""`voicepi sounds`: play the wake, end and error sounds on the configured speaker."""

from __future__ import annotations

import argparse
import sys
import threading
import time

from .. import config, effective
from .common import add_config_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--gap",
        metavar="S",
        type=float,
        default=0.5,
        help="silence between two sounds, seconds (default 0.5)",
    )


class _Finished:
    """Player tracker that wakes the command when a sound has played out."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def on_started(self, item_id: str) -> None:
        pass

    def on_progress(self, item_id: str, samples_played: int) -> None:
        pass

    def on_finished(self, item_id: str) -> None:
        self.done.set()

    def on_drained(self) -> None:
        self.done.set()


def run(args: argparse.Namespace) -> int:
    from ..appliance.wiring import open_configured_player
    from ..sounds import SOURCE_RATE, load_sounds

    cfg = effective.load_or_exit(args.config)  # the profile applied, as run sees it
    try:
        sounds = load_sounds(cfg.sounds)
    except config.ConfigError as exc:
        return config.report_config_error(exc)
    tracker = _Finished()
    try:
        player = open_configured_player(cfg, tracker=tracker)
    except Exception as exc:  # no such device, busy, unwritable file
        print(f"voicepi sounds: cannot open {cfg.audio.output!r}: {exc}", file=sys.stderr)
        return 1
    print(f"speaker {player.name}, volume {cfg.audio.volume} %", flush=True)
    try:
        for name in config.SOUND_NAMES:
            pcm = sounds.get(name)
            if pcm is None:
                print(f"{name}: off", flush=True)
                continue
            ms = len(pcm) * 1000 // SOURCE_RATE
            print(f"{name}: {getattr(cfg.sounds, name)} ({ms} ms)", flush=True)
            tracker.done.clear()
            player.write(f"sound-{name}", pcm.tobytes())
            player.end_of_item(f"sound-{name}")
            # Bounded: a dead output stream must not hang the command.
            if not tracker.done.wait(ms / 1000 + 5.0):
                print(f"voicepi sounds: {name} did not finish playing", file=sys.stderr)
                return 1
            time.sleep(max(0.0, float(args.gap)))
    finally:
        player.close()
    return 0
