"""The gpiozero pin factory by name (config `gpio.pin_factory` names it)."""

from __future__ import annotations

from typing import Any


class PinFactoryError(ValueError):
    """The named pin factory is unknown or cannot run here (no GPIO chip, library missing)."""


def make_pin_factory(name: str, *, pwm: bool = False) -> Any | None:
    """A gpiozero pin factory, or None to let gpiozero pick its default.

    "mock" is gpiozero's MockFactory; ``pwm`` makes its pins MockPWMPin (PWMLED,
    RGBLED need PWM; the mock SPI used for APA102 needs plain MockPin). Raises
    PinFactoryError naming the factory.
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
        raise PinFactoryError(f"cannot use {name!r} here: {exc}") from None
    raise PinFactoryError(f"unknown pin factory {name!r}")
