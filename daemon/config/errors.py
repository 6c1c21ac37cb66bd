"""The config error and how the CLI reports it: one line on stderr, exit 78."""

from __future__ import annotations

import sys
import typing

EX_CONFIG = 78  # sysexits.h: the unit must not restart-loop on a bad config


class ConfigError(Exception):
    """A bad key or value, with the dotted path that names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def one_line(text: str) -> str:
    """``text`` with newlines and other control characters escaped (a key may hold them)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def report_config_error(exc: ConfigError) -> int:
    """Print ``config error: <key path>: <message>`` as one line on stderr; returns 78."""
    print(f"config error: {one_line(str(exc))}", file=sys.stderr, flush=True)
    return EX_CONFIG


def exit_config_error(exc: ConfigError) -> typing.NoReturn:
    """``report_config_error`` and exit 78."""
    raise SystemExit(report_config_error(exc))
