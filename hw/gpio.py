"""The gpiozero pin factory named by config `gpio.pin_factory`."""

from __future__ import annotations

from typing import Any

from daemon.config import ConfigError


def make_pin_factory(name: str, *, pwm: bool = False) -> Any | None:
    """A gpiozero pin factory, or None to let gpiozero pick its default.

    "mock" is gpiozero's MockFactory; ``pwm`` makes its pins MockPWMPin (PWMLED,
    RGBLED need PWM; the mock SPI used for APA102 needs plain MockPin).
    """
    if name == "":
        return None
    if name == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin) if pwm else MockFactory()
    try:
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        if name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
        if name == "pigpio":
            from gpiozero.pins.pigpio import PiGPIOFactory

            return PiGPIOFactory()
        if name == "native":
            from gpiozero.pins.native import NativeFactory

            return NativeFactory()
    except (ImportError, OSError, RuntimeError) as exc:
        raise ConfigError("gpio.pin_factory", f"cannot use {name!r} here: {exc}") from None
    raise ConfigError("gpio.pin_factory", f"unknown pin factory {name!r}")
