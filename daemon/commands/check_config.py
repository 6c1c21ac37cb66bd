"""`voicepi check-config`: validate and print the effective config, secrets redacted."""

from __future__ import annotations

import argparse
import sys

from .. import config
from .common import add_config_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    cfg = config.load_or_exit(args.config)
    print(config.to_toml(cfg), end="")
    try:
        key = config.api_key()
    except config.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return config.EX_CONFIG
    print(f"# api key: {'set' if key else 'not set'}")
    return 0
