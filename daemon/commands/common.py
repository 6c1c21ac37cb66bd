"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="config file (default /etc/voicepi/config.toml; missing means all defaults)",
    )
