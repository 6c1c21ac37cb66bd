"""LEDs: the pattern vocabulary (patterns.py, pure) and the drivers that render it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from daemon.config import Config, ConfigError

from .patterns import LedInput, Pattern, all_patterns, pattern_for

__all__ = [
    "LedDriver",
    "LedInput",
    "Pattern",
    "all_patterns",
    "build_leds",
    "check_leds",
    "pattern_for",
    "resolve_driver",
]


class LedDriver(Protocol):
    def show(self, pattern: Pattern) -> None: ...

    def close(self) -> None: ...


def resolve_driver(cfg: Config) -> str:
    """The driver to use once the profile is applied: "" infers from the pins."""
    driver = cfg.leds.driver
    if driver == "":
        return {1: "led", 3: "rgbled"}.get(len(cfg.leds.pins), "none")
    return driver


def check_leds(cfg: Config) -> None:
    """Pins and pixel count fit the driver (profile applied); raises ConfigError naming the key."""
    driver = resolve_driver(cfg)
    if driver in ("led", "pwmled", "rgbled"):
        want = 3 if driver == "rgbled" else 1
        if len(cfg.leds.pins) != want:
            raise ConfigError(
                "leds.pins",
                f"driver {driver!r} needs {want} pin{'s' if want > 1 else ''}, "
                f"got {list(cfg.leds.pins)}",
            )
    if driver == "apa102" and cfg.leds.count < 1:
        raise ConfigError("leds.count", "expected the number of APA102 pixels (1 or more)")


def build_leds(
    cfg: Config,
    *,
    pin_factory: Any | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LedDriver | None:
    """The configured LED driver (board profile applied), or None when there are no LEDs.

    Raises ConfigError naming the key when pins or counts do not fit the driver.
    """
    from hw.gpio import make_pin_factory
    from hw.profiles import apply_profile

    cfg = apply_profile(cfg)  # idempotent: explicit keys and filled keys both stay
    check_leds(cfg)
    leds = cfg.leds
    driver = resolve_driver(cfg)
    if driver == "none":
        return None
    if pin_factory is None:
        pin_factory = make_pin_factory(cfg.gpio.pin_factory, pwm=driver in ("pwmled", "rgbled"))
    if driver in ("led", "pwmled", "rgbled"):
        from .drivers import build_gpio_driver

        return build_gpio_driver(driver, leds.pins, leds.brightness, pin_factory, clock)
    # apa102
    import gpiozero

    from .apa102 import Apa102Driver

    power = None
    if leds.power_pin >= 0:
        # ReSpeaker 4-mic: the pixels' supply is switched by GPIO5 (active high)
        power = gpiozero.DigitalOutputDevice(
            leds.power_pin, initial_value=True, pin_factory=pin_factory
        )
    try:
        spi = _open_spi(pin_factory, leds.spi_port, leds.spi_device)
    except Exception:
        if power is not None:
            power.close()
        raise
    return Apa102Driver(spi, leds.count, leds.brightness, power=power, clock=clock)


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
