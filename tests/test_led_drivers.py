"""gpiozero LED / PWMLED / RGBLED drivers on gpiozero's MockFactory, asserted over time.

Each mock pin keeps its change history; we rebuild the value timeline and compare it
with what patterns.intensity() says, allowing a small start-up lag (the thread that
renders starts after show() returns) and a tolerance for gpiozero's 25 fps fades.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import get_args

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.appliance.gpio import build_leds
from daemon.config import LED_PATTERN_KEYS, Config, ConfigError, LedsConfig, parse
from daemon.vocab import ApplianceState
from hw.leds.drivers import OnOffLedDriver, PwmLedDriver, RgbLedDriver
from hw.leds.patterns import LedInput, Pattern, all_patterns, intensity, pattern_for
from tests.audio_helpers import wait_for

LED_PIN, PWM_PIN, RGB_PINS = 5, 6, (17, 27, 22)
STATES = list(get_args(ApplianceState))  # the one state vocabulary, in its order


class Timeline:
    """A mock pin's value history as (absolute monotonic time, value) steps."""

    def __init__(self, pin: MockPWMPin) -> None:
        self.pin = pin
        pin.clear_states()
        self.start = time.monotonic()

    def steps(self) -> list[tuple[float, float]]:
        t = self.start
        out = []
        for state in list(self.pin.states):
            t += state.timestamp
            out.append((t, float(state.state)))
        return out

    def value_at(self, t: float, steps: list[tuple[float, float]]) -> float:
        value = steps[0][1]
        for when, v in steps:
            if when > t:
                break
            value = v
        return value


def fit_error(
    tl: Timeline, expected: Callable[[float], float], since: float, start: float, end: float
) -> float:
    """Mean |pin - expected| over [start, end] at the best lag of 0..100 ms (late threads)."""
    steps = tl.steps()
    samples = [start + (end - start) * i / 200 for i in range(201)]
    best = 1.0
    for lag_ms in range(0, 101, 2):
        lag = lag_ms / 1000
        err = sum(abs(tl.value_at(t, steps) - expected(t - since - lag)) for t in samples) / len(
            samples
        )
        best = min(best, err)
    return best


def cfg_with(**leds: object) -> Config:
    return dataclasses.replace(Config(), leds=dataclasses.replace(LedsConfig(), **leds))


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


def build_three(factory: MockFactory, brightness: float) -> tuple[object, object, object]:
    led = build_leds(
        cfg_with(driver="led", pins=(LED_PIN,), brightness=brightness), pin_factory=factory
    )
    pwm = build_leds(
        cfg_with(driver="pwmled", pins=(PWM_PIN,), brightness=brightness), pin_factory=factory
    )
    rgb = build_leds(
        cfg_with(driver="rgbled", pins=RGB_PINS, brightness=brightness), pin_factory=factory
    )
    assert isinstance(led, OnOffLedDriver) and isinstance(pwm, PwmLedDriver)
    assert isinstance(rgb, RgbLedDriver)
    return led, pwm, rgb


def led_expected(p: Pattern) -> Callable[[float], float]:
    """An on/off LED: solid on, blinks as patterned, fades become blinks at their period."""
    if p.effect in ("pulse", "breathe"):
        p = dataclasses.replace(p, effect="blink", duty=0.5, level=1.0)
    return lambda t: 1.0 if intensity(p, t) > 0 else 0.0


def check_all(
    factory: MockFactory,
    drivers: tuple[object, ...],
    p: Pattern,
    brightness: float,
    window: float = 0.9,
    since: float | None = None,
) -> None:
    """Show ``p`` and fit every pin; ``since``: when ``p`` first became current, if earlier
    (showing it again is a no-op, so its phase counts from then)."""
    lines = {pin: Timeline(factory.pin(pin)) for pin in (LED_PIN, PWM_PIN, *RGB_PINS)}
    now = time.monotonic()
    since = now if since is None else since
    for d in drivers:
        d.show(p)  # type: ignore[attr-defined]
    time.sleep(window)
    start, end = max(since + 0.05, now), now + window - 0.02
    assert fit_error(lines[LED_PIN], led_expected(p), since, start, end) < 0.06, "LED"
    assert (
        fit_error(
            lines[PWM_PIN], lambda t: min(1.0, intensity(p, t) * brightness), since, start, end
        )
        < 0.05
    ), "PWMLED"
    for pin, channel in zip(RGB_PINS, p.color, strict=True):
        scale = channel / 255 * brightness
        err = fit_error(lines[pin], lambda t, s=scale: intensity(p, t) * s, since, start, end)
        assert err < 0.05, f"RGBLED pin {pin}"


@pytest.mark.parametrize("key", LED_PATTERN_KEYS)
def test_each_pattern_over_time(factory: MockFactory, key: str) -> None:
    drivers = build_three(factory, 0.5)
    try:
        p = next(x for x in all_patterns(LedsConfig()) if x.name == key)
        check_all(factory, drivers, p, 0.5)
    finally:
        for d in drivers:
            d.close()  # type: ignore[attr-defined]


def test_pwmled_full_brightness_uses_gpiozero_pulse(factory: MockFactory) -> None:
    drivers = build_three(factory, 1.0)
    try:
        p = pattern_for(LedInput("thinking"), LedsConfig())
        check_all(factory, drivers, p, 1.0, window=1.3)
        assert drivers[1].device._blink_thread is not None  # type: ignore[attr-defined]
    finally:
        for d in drivers:
            d.close()  # type: ignore[attr-defined]


def test_a_pattern_that_is_wrong_fails_the_fit(factory: MockFactory) -> None:
    """The checker can fail: a thinking pulse does not fit a countdown blink."""
    drivers = build_three(factory, 0.5)
    try:
        shown = pattern_for(LedInput("thinking"), LedsConfig())
        other = pattern_for(LedInput("listening", countdown=3), LedsConfig())
        tl = Timeline(factory.pin(PWM_PIN))
        since = time.monotonic()
        drivers[1].show(shown)  # type: ignore[attr-defined]
        time.sleep(0.8)
        err = fit_error(tl, lambda t: intensity(other, t) * 0.5, since, since + 0.05, since + 0.78)
        assert err > 0.1
    finally:
        for d in drivers:
            d.close()  # type: ignore[attr-defined]


def test_same_pattern_again_is_a_no_op_and_close_turns_off(factory: MockFactory) -> None:
    led, pwm, rgb = build_three(factory, 0.5)
    p = pattern_for(LedInput("listening"), LedsConfig())
    for d in (led, pwm, rgb):
        d.show(p)  # type: ignore[attr-defined]
    tl = Timeline(factory.pin(RGB_PINS[2]))
    rgb.show(p)  # type: ignore[attr-defined]
    rgb.show(dataclasses.replace(p))  # type: ignore[attr-defined]
    # No gpiozero thread is left that could write later, so what is recorded is final.
    assert writers(rgb) == []
    assert len(tl.steps()) == 1  # no write at all
    assert factory.pin(RGB_PINS[2]).state == pytest.approx(0.5)
    blink = pattern_for(LedInput("connecting"), LedsConfig())
    for d in (led, pwm, rgb):
        d.show(blink)  # type: ignore[attr-defined]
        assert writers(d), "a blink runs in a gpiozero thread"
        d.close()  # type: ignore[attr-defined]
    wait_for(lambda: not any(writers(d) for d in (led, pwm, rgb)))
    assert [factory.pin(p).state for p in (LED_PIN, PWM_PIN, *RGB_PINS)] == [0, 0, 0, 0, 0]


def writers(driver: object) -> list[object]:
    """The gpiozero threads (blink/pulse, source) that could still write ``driver``'s pins."""
    device = driver.device  # type: ignore[attr-defined]
    threads = (getattr(device, "_blink_thread", None), getattr(device, "_source_thread", None))
    return [t for t in threads if t is not None]


def test_pins_must_fit_the_driver(factory: MockFactory) -> None:
    with pytest.raises(ConfigError) as info:
        build_leds(cfg_with(driver="rgbled", pins=(17,)), pin_factory=factory)
    assert info.value.path == "leds.pins"
    assert build_leds(Config(), pin_factory=factory) is None  # generic, no pins: no LEDs
    inferred = build_leds(cfg_with(pins=(LED_PIN,)), pin_factory=factory)
    assert isinstance(inferred, OnOffLedDriver)
    inferred.close()


# --------------------------------------------------------------------------- no stuck LEDs

led_inputs = st.builds(
    LedInput,
    state=st.sampled_from(STATES),
    countdown=st.one_of(st.none(), st.integers(1, 5)),
    muted=st.booleans(),
    error=st.booleans(),
    approval_pending=st.booleans(),
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seq=st.lists(
        st.tuples(led_inputs, st.sampled_from([0.0, 0.0, 0.003, 0.02])), min_size=1, max_size=12
    ),
)
def test_any_sequence_ends_in_the_last_pattern(factory: MockFactory, seq: list) -> None:
    cfg = LedsConfig()
    drivers = build_three(factory, 0.5)
    try:
        current, started = None, 0.0
        for inp, pause in seq[:-1]:
            pattern = pattern_for(inp, cfg)
            if pattern != current:
                current, started = pattern, time.monotonic()
            for d in drivers:
                d.show(pattern)  # type: ignore[attr-defined]
            time.sleep(pause)
        final = pattern_for(seq[-1][0], cfg)
        since = started if final == current else None
        check_all(factory, drivers, final, 0.5, window=0.5, since=since)
        assert all(d.pattern == final for d in drivers)  # type: ignore[attr-defined]
    finally:
        for d in drivers:
            d.close()  # type: ignore[attr-defined]
        factory.reset()


# --------------------------------------------------------------------------- voicepi leds


def test_voicepi_leds_walks_every_pattern(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from daemon.commands import leds as command

    conf = tmp_path / "config.toml"
    conf.write_text(
        '[gpio]\npin_factory = "mock"\n[leds]\ndriver = "rgbled"\npins = [17, 27, 22]\n'
    )
    code = command.run(argparse.Namespace(config=str(conf), seconds_per_pattern=0.01))
    out = capsys.readouterr().out
    assert code == 0
    for name in LED_PATTERN_KEYS:
        assert f"\n{name}: " in out


def test_voicepi_leds_bad_pins_is_a_config_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from daemon.commands import leds as command

    conf = tmp_path / "config.toml"
    conf.write_text('[gpio]\npin_factory = "mock"\n[leds]\ndriver = "pwmled"\n')
    assert command.run(argparse.Namespace(config=str(conf), seconds_per_pattern=0)) == 78
    assert "leds.pins" in capsys.readouterr().err


def test_parse_roundtrip_of_leds_config() -> None:
    assert parse({"leds": {"driver": "apa102", "count": 12}}).leds.count == 12
