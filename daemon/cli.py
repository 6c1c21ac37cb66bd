"""The `voicepi` command line: subcommands live in ``daemon.commands``, imported lazily
so `voicepi check-config` never pays for numpy, PyAudio or the wake word models."""

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
    "echo-test": "Measure the speaker's echo on the mic and the echo canceller's reduction.",
}


def _module_name(command: str) -> str:
    return "daemon.commands." + command.replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicepi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"voicepi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(_module_name(name))
        module.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(_module_name(args.command))
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
