"""Config -> the ``hw`` GPIO parts: the pin factory, the LEDs and the button.

``hw`` takes plain values (pins, counts, seconds, names); this is the one place
that reads them out of the config (board profile applied first) and turns a bad
value into a ConfigError naming the key. ``hw`` is imported inside the functions:
``daemon`` never imports ``hw`` at module level.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import Config, ConfigError
from ..config.profiles import apply_profile, check_leds, led_driver
from ..vocab import Gesture

if TYPE_CHECKING:
    from hw.button import GestureButton
    from hw.leds import LedDriver


def open_pin_factory(cfg: Config, *, pwm: bool = False) -> Any | None:
    """The gpiozero pin factory ``gpio.pin_factory`` names (None: gpiozero's default);
    raises ConfigError("gpio.pin_factory") when it is unknown or cannot run here."""
    from hw.gpio import PinFactoryError, make_pin_factory

    try:
        return make_pin_factory(cfg.gpio.pin_factory, pwm=pwm)
    except PinFactoryError as exc:
        raise ConfigError("gpio.pin_factory", str(exc)) from None


def build_leds(
    cfg: Config,
    *,
    pin_factory: Any | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LedDriver | None:
    """The configured LED driver (board profile applied), or None when there are no LEDs.

    Raises ConfigError naming the key when pins or counts do not fit the driver, and
    what gpiozero raises when the pins cannot be opened.
    """
    from hw import leds as hw_leds

    cfg = apply_profile(cfg)  # idempotent: explicit keys and filled keys both stay
    check_leds(cfg)
    driver = led_driver(cfg)
    if driver == "none":
        return None
    if pin_factory is None:
        pin_factory = open_pin_factory(cfg, pwm=driver in ("pwmled", "rgbled"))
    leds = cfg.leds
    return hw_leds.build_leds(
        driver,
        pins=leds.pins,
        count=leds.count,
        spi_port=leds.spi_port,
        spi_device=leds.spi_device,
        power_pin=leds.power_pin,
        brightness=leds.brightness,
        pin_factory=pin_factory,
        clock=clock,
    )


def build_button(
    cfg: Config,
    on_gesture: Callable[[Gesture], None],
    *,
    pin_factory: Any | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> GestureButton | None:
    """The configured button (board profile applied), or None when there is none.

    ``on_gesture`` gets "press", "double" or "long" on the button's thread. Raises
    ConfigError("gpio.pin_factory") and what gpiozero raises for a busy pin.
    """
    from hw.button import GestureButton

    button = apply_profile(cfg).button
    if button.pin < 0:
        return None
    if pin_factory is None:
        pin_factory = open_pin_factory(cfg)
    return GestureButton(
        button.pin,
        on_gesture,
        pull_up=button.pull_up,
        bounce_time=button.bounce_time,
        double_press_window=button.double_press_window,
        long_press=button.long_press,
        pin_factory=pin_factory,
        clock=clock,
    )
