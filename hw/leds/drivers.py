"""gpiozero LED, PWMLED and RGBLED drivers.

Animations run in gpiozero's own background threads: ``blink``/``pulse`` where
they can render the pattern, else a ``source`` generator (gpiozero's source
thread) for levels gpiozero's pulse cannot scale (PWMLED at brightness < 1,
breathe's floor). ``show`` returns at once; the same pattern again is a no-op.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .patterns import Pattern, envelope, intensity

Clock = Callable[[], float]
SOURCE_DELAY = 0.02  # 50 updates per second for generator-driven fades


class _GpioDriver:
    """Shared no-op check, locking and close for single-device drivers."""

    def __init__(self, device: Any, brightness: float, clock: Clock) -> None:
        self.device = device
        self.brightness = brightness
        self.clock = clock
        self._pattern: Pattern | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def pattern(self) -> Pattern | None:
        """The pattern being shown (None before the first show)."""
        return self._pattern

    def show(self, pattern: Pattern) -> None:
        with self._lock:
            if self._closed or pattern == self._pattern:
                return
            self._pattern = pattern
            self._stop_source()
            self._render(pattern)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop_source()
            self.device.off()
            self.device.close()

    def _stop_source(self) -> None:
        if getattr(self.device, "source", None) is not None:
            self.device.source = None

    def _render(self, pattern: Pattern) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _wave(self, pattern: Pattern, factor: float) -> Iterator[float]:
        """Intensity over time for gpiozero's source thread (clock-based: no drift).

        The phase counts from now (``show``), not from the thread's first read, which
        a loaded machine may run late.
        """
        return _samples(pattern, factor, self.clock, self.clock())


def _samples(pattern: Pattern, factor: float, clock: Clock, start: float) -> Iterator[float]:
    """min(1, intensity(pattern, clock() - start) * factor), read at each next()."""
    while True:
        yield min(1.0, max(0.0, intensity(pattern, clock() - start) * factor))


class OnOffLedDriver(_GpioDriver):
    """gpiozero LED: on/off only. Fades become blinks at the pattern's period."""

    def _render(self, p: Pattern) -> None:
        led = self.device
        if p.effect == "off" or p.level <= 0 or self.brightness <= 0:
            led.off()
        elif p.effect in ("solid", "spin") or p.period <= 0:
            led.on()
        elif p.effect == "blink":
            led.blink(on_time=p.period * p.duty, off_time=p.period * (1 - p.duty))
        else:  # pulse, breathe: an on/off LED can only blink in their rhythm
            led.blink(on_time=p.period / 2, off_time=p.period / 2)


class PwmLedDriver(_GpioDriver):
    """gpiozero PWMLED: levels, blinks and fades, scaled by brightness."""

    def _render(self, p: Pattern) -> None:
        led = self.device
        peak = min(1.0, p.level * self.brightness)
        low, _high = envelope(p)
        if p.effect == "off" or peak <= 0:
            led.off()
        elif p.effect in ("solid", "spin") or p.period <= 0:
            led.value = peak
        elif peak >= 0.999 and low == 0:
            # full scale: gpiozero's own blink/pulse threads render it as is
            if p.effect == "blink":
                led.blink(on_time=p.period * p.duty, off_time=p.period * (1 - p.duty))
            else:
                led.pulse(fade_in_time=p.period / 2, fade_out_time=p.period / 2)
        else:
            led.source_delay = SOURCE_DELAY
            led.source = self._wave(p, self.brightness)


class RgbLedDriver(_GpioDriver):
    """gpiozero RGBLED: colours, blinks and fades (on/off colours carry brightness)."""

    def _rgb(self, pattern: Pattern, level: float) -> tuple[float, float, float]:
        f = min(1.0, level * self.brightness) / 255
        r, g, b = pattern.color
        return (min(1.0, r * f), min(1.0, g * f), min(1.0, b * f))

    def _render(self, p: Pattern) -> None:
        rgb = self.device
        low, high = envelope(p)
        if p.effect == "off" or high <= 0:
            rgb.off()
        elif p.effect in ("solid", "spin") or p.period <= 0:
            rgb.color = self._rgb(p, high)
        elif p.effect == "blink":
            rgb.blink(
                on_time=p.period * p.duty,
                off_time=p.period * (1 - p.duty),
                on_color=self._rgb(p, high),
                off_color=(0, 0, 0),
            )
        else:
            rgb.pulse(
                fade_in_time=p.period / 2,
                fade_out_time=p.period / 2,
                on_color=self._rgb(p, high),
                off_color=self._rgb(p, low),
            )


def build_gpio_driver(
    kind: str,
    pins: tuple[int, ...],
    brightness: float,
    pin_factory: Any,
    clock: Clock = time.monotonic,
) -> _GpioDriver:
    """``kind`` is "led", "pwmled" or "rgbled"; pins were checked by the caller."""
    import gpiozero

    if kind == "led":
        return OnOffLedDriver(gpiozero.LED(pins[0], pin_factory=pin_factory), brightness, clock)
    if kind == "pwmled":
        return PwmLedDriver(gpiozero.PWMLED(pins[0], pin_factory=pin_factory), brightness, clock)
    if kind == "rgbled":
        device = gpiozero.RGBLED(*pins[:3], pwm=True, pin_factory=pin_factory)
        return RgbLedDriver(device, brightness, clock)
    raise ValueError(f"unknown LED driver {kind!r}")
