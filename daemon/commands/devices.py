"""`voicepi devices`: the PortAudio capture and playback devices, defaults marked.

The names (or parts of them) and indexes listed here are what audio.input and
audio.output accept.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Literal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    from hw.audio.devices import list_devices, new_pyaudio

    try:
        pa = new_pyaudio()
    except Exception as exc:  # PortAudio could not start at all
        print(f"voicepi devices: cannot initialise PortAudio: {exc}", file=sys.stderr)
        return 1
    try:
        devices = list_devices(pa)
    finally:
        pa.terminate()
    if args.json:
        rows: list[dict[str, Any]] = [
            {
                "index": d.index,
                "name": d.name,
                "input_channels": d.input_channels,
                "output_channels": d.output_channels,
                "default_rate": d.default_rate,
                "host_api": d.host_api,
                "default_input": d.default_input,
                "default_output": d.default_output,
            }
            for d in devices
        ]
        print(json.dumps(rows, indent=2))
        return 0
    sections: tuple[tuple[str, Literal["input", "output"]], ...] = (
        ("Capture devices", "input"),
        ("Playback devices", "output"),
    )
    for title, direction in sections:
        usable = [d for d in devices if d.channels(direction) > 0]
        print(f"{title}:")
        if not usable:
            print("  (none)")
        for d in usable:
            mark = "*" if getattr(d, f"default_{direction}") else " "
            channels = d.channels(direction)
            api = f"  [{d.host_api}]" if d.host_api else ""
            print(f" {mark} {d.index:>3}  {d.name:<32} {channels:>2} ch  {d.default_rate} Hz{api}")
    print("* = default. Use a name (or part of one) or an index in audio.input / audio.output.")
    return 0
