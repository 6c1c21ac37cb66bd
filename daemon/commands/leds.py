"""`voicepi leds`: walk through every LED pattern on the configured hardware (wiring check)."""

from __future__ import annotations

import argparse
import sys
import time

from .. import config
from .common import add_config_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--seconds-per-pattern",
        metavar="S",
        type=float,
        default=3.0,
        help="how long each pattern is shown (default 3)",
    )


def run(args: argparse.Namespace) -> int:
    cfg = config.load_or_exit(args.config)
    seconds = max(0.0, float(args.seconds_per_pattern))
    from hw.leds import all_patterns

    from ..appliance.gpio import build_leds
    from ..config.profiles import apply_profile, led_driver

    cfg = apply_profile(cfg)
    try:
        leds = build_leds(cfg)
    except config.ConfigError as exc:
        return config.report_config_error(exc)
    except Exception as exc:  # no GPIO/SPI on this machine, pins busy, no permission
        print(f"voicepi leds: cannot open the LEDs: {exc}", file=sys.stderr)
        return 1
    if leds is None:
        print(f"no LEDs configured (profile {cfg.hardware.profile}, leds.driver none)")
        return 0
    print(f"driver {led_driver(cfg)}, profile {cfg.hardware.profile}", flush=True)
    try:
        for pattern in all_patterns(cfg.leds):
            print(f"{pattern.name}: {pattern.effect} {pattern.color_hex}", flush=True)
            leds.show(pattern)
            time.sleep(seconds)
    finally:
        leds.close()
    return 0
