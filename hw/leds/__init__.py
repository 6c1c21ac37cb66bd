"""LEDs: the pattern vocabulary (patterns.py, pure) and the drivers that render it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from .patterns import LedInput, LedStyle, Pattern, all_patterns, pattern_for

__all__ = [
    "LedDriver",
    "LedInput",
    "LedStyle",
    "Pattern",
    "all_patterns",
    "build_leds",
    "pattern_for",
]


class LedDriver(Protocol):
    """Any LED driver (drivers.py: OnOffLedDriver, PwmLedDriver, RgbLedDriver; apa102.py):
    ``show`` a Pattern (animated ones keep running until the next), ``close`` when done."""

    def show(self, pattern: Pattern) -> None: ...

    def close(self) -> None: ...


def build_leds(
    driver: str,
    *,
    pins: tuple[int, ...] = (),
    count: int = 0,
    spi_port: int = 0,
    spi_device: int = 1,
    power_pin: int = -1,
    brightness: float = 0.5,
    pin_factory: Any | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LedDriver | None:
    """The LED driver ``driver`` ("led", "pwmled", "rgbled", "apa102" or "none": None).

    ``pins``: one GPIO for led/pwmled, three (r, g, b) for rgbled; ``count`` APA102
    pixels on SPI ``spi_port``/``spi_device``, their supply switched by ``power_pin``
    (-1: none); ``brightness`` 0..1. ``pin_factory`` None is gpiozero's default. The
    caller has checked pins and count against the driver (daemon.config.profiles).
    Raises what gpiozero raises (pins busy, no SPI) and ValueError for an unknown driver.
    """
    if driver == "none":
        return None
    if driver in ("led", "pwmled", "rgbled"):
        from .drivers import build_gpio_driver

        return build_gpio_driver(driver, pins, brightness, pin_factory, clock)
    if driver != "apa102":
        raise ValueError(f"unknown LED driver {driver!r}")
    import gpiozero

    from .apa102 import Apa102Driver

    power = None
    if power_pin >= 0:
        # ReSpeaker 4-mic: the pixels' supply is switched by GPIO5 (active high)
        power = gpiozero.DigitalOutputDevice(power_pin, initial_value=True, pin_factory=pin_factory)
    try:
        spi = _open_spi(pin_factory, spi_port, spi_device)
    except Exception:
        if power is not None:
            power.close()
        raise
    return Apa102Driver(spi, count, brightness, power=power, clock=clock)


def _open_spi(pin_factory: Any | None, port: int, device: int) -> Any:
    import gpiozero

    if pin_factory is None:
        gpiozero.Device.ensure_pin_factory()  # what constructing any device would do
        pin_factory = gpiozero.Device.pin_factory
    elif gpiozero.Device.pin_factory is None:
        # gpiozero 2.0's software SPI bus builds its Device base with the default
        # factory even when handed one; lend it ours (a mock or an explicit choice)
        gpiozero.Device.pin_factory = pin_factory
    return pin_factory.spi(port=port, device=device)
