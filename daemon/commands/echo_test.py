"""`voicepi echo-test`: play a test signal on the configured speaker, record the configured
mic through the echo canceller, and report the echo's delay and how much was removed.

The delay is the one the canceller sees: from the reference frame it was given to the
echo of it in the mic (negative means the reference came too late: nothing can cancel
that). Exit status 0 when the echo is reduced by at least ``--min-reduction`` dB after
2 s (or no echo is heard at all), 1 otherwise or when a device cannot be opened.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .. import aec, config
from ..vocab import PCM_RATE
from .common import add_config_argument

SIGNAL_S = 5.0
SOURCE_RATE = PCM_RATE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--seconds",
        type=float,
        default=SIGNAL_S,
        metavar="S",
        help=f"length of the test signal (default {SIGNAL_S:g}; at least 3)",
    )
    parser.add_argument(
        "--min-reduction",
        type=float,
        default=30.0,
        metavar="DB",
        help="echo reduction that passes (default 30)",
    )


def test_signal(seconds: float, rate: int = SOURCE_RATE, seed: int = 12) -> np.ndarray:
    """Speech-band noise (100-3500 Hz) at -16 dBFS: one sharp correlation peak, so the
    delay is unambiguous. int16 mono at ``rate``."""
    n = int(seconds * rate)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spec[(freqs > 3500) | (freqs < 100)] = 0
    x = np.fft.irfft(spec, n)
    x *= 0.16 * 32767 / np.sqrt(np.mean(x**2))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def run(args: argparse.Namespace) -> int:
    cfg = config.load_or_exit(args.config)
    from hw.audio import open_capture

    from ..appliance.wiring import open_configured_player
    from ..config.profiles import apply_profile

    cfg = apply_profile(cfg)
    seconds = max(3.0, float(args.seconds))
    try:
        canceller = aec.EchoCanceller(noise_suppression=cfg.audio.noise_suppression)
    except aec.EchoCancelUnavailable as exc:
        print(f"voicepi echo-test: {exc}", file=sys.stderr)
        return 1
    near: list[np.ndarray] = []
    far: list[np.ndarray] = []
    out: list[np.ndarray] = []

    def monitor(n: np.ndarray, f: np.ndarray, o: np.ndarray) -> None:
        near.append(n.copy())
        far.append(f.copy())
        out.append(o.copy())

    canceller.monitor = monitor
    rates: list[int] = []
    try:
        player = open_configured_player(cfg)
    except Exception as exc:
        print(f"voicepi echo-test: cannot open the speaker: {exc}", file=sys.stderr)
        return 1
    try:
        player.set_reference_tap(canceller.reference, canceller.underflow, canceller.restarted)
        try:

            def on_audio(samples: np.ndarray, _index: int) -> None:
                if rates:  # blocks before open_capture returns are dropped
                    canceller.process(samples, rates[0])

            mic = open_capture(
                cfg.audio.input,
                on_audio=on_audio,
                channels=cfg.audio.input_channels,
                channel=cfg.audio.input_channel,
                rate=cfg.audio.input_rate,
            )
        except Exception as exc:
            print(f"voicepi echo-test: cannot open the microphone: {exc}", file=sys.stderr)
            return 1
        try:
            rates.append(mic.rate)
            # Streams often start with a burst (PulseAudio); let the alignment settle
            # (two 0.5 s windows) on 1.5 s of audio before the test signal.
            deadline = time.monotonic() + 10.0
            while canceller.frames < 150 and time.monotonic() < deadline:
                time.sleep(0.05)
            for frames in (near, far, out):
                frames.clear()
            player.write("echo-test", test_signal(seconds).astype("<i2").tobytes())
            player.end_of_item("echo-test")
            deadline = time.monotonic() + seconds + 5.0
            while not player.is_playing and time.monotonic() < deadline:
                time.sleep(0.05)
            while player.is_playing and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the echo's tail
        finally:
            mic.close()
    finally:
        player.close()
    if len(near) < 100:
        print("voicepi echo-test: no audio from the microphone", file=sys.stderr)
        return 1
    report = aec.measure(np.concatenate(far), np.concatenate(near), np.concatenate(out))
    stats = canceller.stats()
    print(f"speaker {cfg.audio.output!r}, mic {cfg.audio.input!r} at {rates[0]} Hz")
    if report.echo_dbfs < -60.0 or report.correlation < 0.03:  # long runs smear the peak
        print(f"no echo heard (level {report.echo_dbfs:.1f} dBFS): nothing to cancel")
        return 0
    print(f"echo delay: {report.delay_ms:.0f} ms (correlation {report.correlation:.2f})")
    print(
        f"echo level: {report.echo_dbfs:.1f} dBFS, "
        f"after the canceller {report.residual_dbfs:.1f} dBFS"
    )
    print(f"echo reduction: {report.reduction_db:.1f} dB after 2 s (WebRTC AEC3)")
    print(
        f"reference: {stats.reference_underruns} of {stats.frames} frames late, "
        f"{stats.resyncs} resync(s)"
    )
    if report.delay_ms < 0:
        print("the reference reaches the canceller after its echo: it cannot cancel it")
        return 1
    return 0 if report.reduction_db >= args.min_reduction else 1
