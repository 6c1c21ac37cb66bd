"""The `voicepi` command line.

Subcommands live in ``daemon.commands``, imported lazily so `voicepi check-config` never
pays for PyAudio or the wake word models.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

COMMANDS: dict[str, str] = {
    "run": "Run the daemon (what the systemd unit starts).",
    "demo": "Run the appliance end to end on the simulator, a WAV mic and mock pins.",
    "simulator": "Serve a local OpenAI-Realtime-compatible websocket endpoint.",
    "devices": "List audio capture and playback devices.",
    "check-config": "Validate the config and print the effective values, secrets redacted.",
    "wakeword": "Score WAV files with the wake word models.",
    "leds": "Walk through every LED pattern on the configured hardware.",
    "sounds": "Play the wake, end and error sounds on the configured speaker.",
    "echo-test": "Measure the speaker's echo on the mic and the echo canceller's reduction.",
}


def _module_name(command: str) -> str:
    return "daemon.commands." + command.replace("-", "_")


DESCRIPTION = (
    "A voice appliance for the Raspberry Pi: wake word, OpenAI Realtime voice sessions, "
    "the answer on the speaker, LEDs and a button."
)
EPILOG = (
    "`voicepi COMMAND --help` shows a command's options. The config is "
    "/etc/voicepi/config.toml (`voicepi check-config` validates it); the README documents "
    "every key, flag, event and exit code."
)
# Distributions that install a top-level ``daemon`` package too: in one environment with
# voicepi, one overwrites the other's files. Looked up by name (a full
# packages_distributions() scan costs ~0.3 s on every command).
CLASHING_DISTRIBUTIONS = ("python-daemon",)


def import_name_clash() -> str | None:
    """One line naming an installed distribution that also provides ``daemon``, else None."""
    from importlib.metadata import PackageNotFoundError, distribution

    for name in CLASHING_DISTRIBUTIONS:
        try:
            distribution(name)
        except PackageNotFoundError:
            continue
        return (
            f"voicepi: {name} is installed here too and also provides the top-level "
            "'daemon' package, so one overwrites the other; install voicepi in a venv "
            "of its own (image/install.sh does)"
        )
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicepi", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"voicepi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(_module_name(name))
        module.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .memory import limit_native_threads

    limit_native_threads()  # before numpy's first import (some commands' modules import it)
    parser = build_parser()
    args = parser.parse_args(argv)
    clash = import_name_clash()
    if clash is not None:
        print(clash, file=sys.stderr)
        return 1
    module = importlib.import_module(_module_name(args.command))
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
