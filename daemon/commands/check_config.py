"""`voicepi check-config`: validate and print the effective config, secrets redacted.

It validates through ``daemon.effective``, the path `run`, SIGHUP and `demo` use, so
it accepts exactly what they accept; the printed TOML is valid input again.
"""

from __future__ import annotations

import argparse

from .. import config, effective
from .common import add_config_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    cfg = effective.load_or_exit(args.config)
    print(config.to_toml(cfg), end="")
    try:
        key, source = config.find_api_key()
    except config.ConfigError as exc:  # a malformed key: named by where it is, never shown
        config.exit_config_error(exc)
    # Whether, and where, never the value.
    found = f"found ({source})" if key else f"not found (looked for {config.API_KEY_PLACES})"
    print(f"# API key: {found}")
    return 0
