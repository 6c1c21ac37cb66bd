"""APA102 pixel rings (ReSpeaker 2-mic: 3 pixels, 4-mic: 12) over gpiozero's SPI interface.

Frame (APA102 datasheet; respeaker/pixel_ring's apa102.py, from tinue/APA102_Pi):
32 zero bits, then per pixel 0b111xxxxx (5-bit global brightness), blue, green,
red, then an end frame that clocks the data through the chain (n/2 bits). We
send zeros there, as the vendor driver does, and at least 32 of them: zeros
never light a pixel beyond the configured count, and SK9822 clones need them.

One small thread renders frames: it sleeps until the next show() for steady
patterns and runs at FPS for animated ones; it writes only when a frame changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .patterns import Color, Pattern, frame

log = logging.getLogger("voicepi.leds")

FPS = 30.0
START_FRAME = b"\x00\x00\x00\x00"


def global_brightness(brightness: float) -> int:
    """0..1 -> the 5-bit APA102 global brightness (never 0 unless asked for 0)."""
    if brightness <= 0:
        return 0
    return max(1, min(31, round(brightness * 31)))


def end_frame(count: int) -> bytes:
    return b"\x00" * max(4, (count + 15) // 16)


def encode(pixels: Sequence[Color], brightness5: int) -> bytes:
    """The bytes of one APA102 frame for ``pixels`` given as (r, g, b)."""
    head = 0xE0 | (brightness5 & 0x1F)
    body = bytearray()
    for r, g, b in pixels:
        body += bytes((head, b & 0xFF, g & 0xFF, r & 0xFF))
    return START_FRAME + bytes(body) + end_frame(len(pixels))


class Apa102Driver:
    """A LedDriver for an APA102 chain on ``spi`` (a gpiozero SPI interface)."""

    def __init__(
        self,
        spi: Any,
        count: int,
        brightness: float,
        *,
        power: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spi = spi
        self.count = count
        self.brightness5 = global_brightness(brightness)
        self.power = power  # gpiozero DigitalOutputDevice on the power-enable pin, already on
        self.clock = clock
        self.frames_written = 0
        self._pattern: Pattern | None = None
        self._since = clock()
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="voicepi-apa102", daemon=True)
        self._thread.start()

    @property
    def pattern(self) -> Pattern | None:
        return self._pattern

    def show(self, pattern: Pattern) -> None:
        with self._lock:
            if self._closing or pattern == self._pattern:
                return
            self._pattern = pattern
            self._since = self.clock()
        self._changed.set()

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._changed.set()
        self._thread.join(timeout=2.0)
        try:
            self._write([(0, 0, 0)] * self.count)
        finally:
            if self.power is not None:
                self.power.off()
                self.power.close()
            self.spi.close()

    def _write(self, pixels: list[Color]) -> None:
        self.spi.transfer(list(encode(pixels, self.brightness5)))
        self.frames_written += 1

    def _run(self) -> None:
        last: list[Color] | None = None
        while True:
            self._changed.clear()
            with self._lock:
                if self._closing:
                    return
                pattern, since = self._pattern, self._since
            if pattern is None:
                self._changed.wait()
                continue
            pixels = frame(pattern, self.clock() - since, self.count)
            if pixels != last:
                try:
                    self._write(pixels)
                    last = pixels
                except Exception as exc:  # a flaky bus must not kill the thread
                    log.warning("APA102 write failed: %s", exc)
                    last = None
                    self._changed.wait(1.0)
                    continue
            # steady patterns: sleep until the next show(); animations: next frame
            self._changed.wait(1 / FPS if pattern.animated else None)
