"""`voicepi wakeword FILE.wav ...`: score WAV files with the wake word models.

Each file is converted to 16 kHz mono (the channel ``audio.input_channel`` picks,
board profile applied, as the daemon's ``file:`` mic does) and run through the same
detector the daemon uses (thresholds, patience, refractory from the config), so
what this prints is what the speaker would do with that audio. A truncated file
is scored with a warning. numpy is imported here
only, never by `voicepi check-config`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import add_config_argument

TAIL = 16000  # 1 s of silence appended to every file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.wav", help="WAV files (any rate)")
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="model name or .tflite/.onnx path (repeatable; default: wakeword.models)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        metavar="X",
        help="detection threshold for every model (default: wakeword.threshold[s])",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np  # here, not at the top: the CLI imports every command module

    from ..audiofile import WavError, read_audio
    from ..config import ConfigError, load_or_exit, replace, report_config_error
    from ..effective import with_profile
    from ..wakeword import SAMPLE_RATE, WakeWordDetector, model_name
    from ..wakeword.wav import to_16k

    full = with_profile(load_or_exit(args.config))
    channel = full.audio.input_channel  # the channel the daemon listens to, not a mix
    cfg = full.wakeword
    if args.model:
        cfg = replace(cfg, models=tuple(args.model), thresholds={})
    if args.threshold is not None:
        if not 0.0 <= args.threshold <= 1.0:
            print(f"--threshold: expected 0 to 1, got {args.threshold}", file=sys.stderr)
            return 2
        # Per model too: it must also override a microWakeWord model's own cutoff.
        every = {model_name(m): args.threshold for m in cfg.models}
        cfg = replace(cfg, threshold=args.threshold, thresholds=every)
    try:
        detector = WakeWordDetector(cfg)
        detector.load()
    except ConfigError as exc:
        return report_config_error(exc)

    results: list[dict[str, Any]] = []
    status = 0
    for path in args.files:
        try:
            decoded = read_audio(path)
            audio = to_16k(decoded, channel)
        except WavError as exc:
            print(f"voicepi wakeword: {exc}", file=sys.stderr)
            status = 1
            continue
        if decoded.truncated:
            print(f"voicepi wakeword: warning: {decoded.truncation_note()}", file=sys.stderr)
        detector.reset()
        # Followed by silence, as a microphone would be: the score peaks a little
        # after the word ends, and a file that stops right there would hide it.
        detections = detector.process(np.concatenate([audio, np.zeros(TAIL, np.int16)]))
        models = {
            name: {
                "threshold": detector.thresholds[i],
                "peak": round(detector.peaks[name], 4),
                "detections": [round(d.end_seconds, 2) for d in detections if d.model == name],
            }
            for i, name in enumerate(detector.names)
        }
        results.append(
            {"file": path, "seconds": round(len(audio) / SAMPLE_RATE, 2), "models": models}
        )
    detector.close()

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_table(results))
    return status


def format_table(results: list[dict[str, Any]]) -> str:
    header = ("FILE", "SECONDS", "MODEL", "THRESHOLD", "PEAK", "DETECTIONS (s)")
    rows: list[tuple[str, ...]] = []
    for res in results:
        for name, m in res["models"].items():
            times = ", ".join(f"{t:.2f}" for t in m["detections"]) or "-"
            rows.append(
                (
                    res["file"],
                    f"{res['seconds']:.2f}",
                    name,
                    f"{m['threshold']:.2f}",
                    f"{m['peak']:.3f}",
                    times,
                )
            )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
