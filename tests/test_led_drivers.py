"""gpiozero LED / PWMLED / RGBLED drivers on gpiozero's MockFactory: what each pin shows.

No wall clock: where voicepi computes the level itself (a PWMLED below full scale runs
a generator in gpiozero's source thread), the driver reads an injected fake clock and
the pin is sampled at simulated times against ``patterns.intensity``. Where gpiozero's
own blink/pulse thread keeps time, the test checks the on/off and fade times handed to
gpiozero and the ORDER of the values the pin went through (a blink alternates its two
levels; a fade moves in small steps between its floor and peak, turning only there).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any, get_args

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.appliance.gpio import build_leds
from daemon.config import LED_PATTERN_KEYS, Config, ConfigError, LedsConfig, parse
from daemon.vocab import ApplianceState
from hw.leds.drivers import SOURCE_DELAY, OnOffLedDriver, PwmLedDriver, RgbLedDriver
from hw.leds.patterns import LedInput, Pattern, all_patterns, envelope, intensity, pattern_for
from tests.audio_helpers import wait_for
from tests.fakeclock import FakeClock

LED_PIN, PWM_PIN, RGB_PINS = 5, 6, (17, 27, 22)
ALL_PINS = (LED_PIN, PWM_PIN, *RGB_PINS)
STATES = list(get_args(ApplianceState))  # the one state vocabulary, in its order
FPS = 25  # gpiozero's fade frame rate (PWMLED/RGBLED._blink_device)
EPS = 1e-6


def cfg_with(**leds: object) -> Config:
    return dataclasses.replace(Config(), leds=dataclasses.replace(LedsConfig(), **leds))


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


Drivers = tuple[OnOffLedDriver, PwmLedDriver, RgbLedDriver]


def build_three(factory: MockFactory, brightness: float, clock: FakeClock) -> Drivers:
    def build(driver: str, pins: tuple[int, ...]) -> object:
        cfg = cfg_with(driver=driver, pins=pins, brightness=brightness)
        return build_leds(cfg, pin_factory=factory, clock=clock)

    led, pwm, rgb = build("led", (LED_PIN,)), build("pwmled", (PWM_PIN,)), build("rgbled", RGB_PINS)
    assert isinstance(led, OnOffLedDriver) and isinstance(pwm, PwmLedDriver)
    assert isinstance(rgb, RgbLedDriver)
    return led, pwm, rgb


# --------------------------------------------------------------------------- what each pin does


@dataclasses.dataclass(frozen=True)
class Steady:
    """The pin holds ``value``; no gpiozero thread writes it."""

    value: float


@dataclasses.dataclass(frozen=True)
class Threaded:
    """gpiozero's blink thread renders it: ``args`` as handed to gpiozero's
    ``_blink_device``; the pin moves between ``low`` and ``high``, by steps of at most
    ``step`` (a fade) or straight across (``step`` None: a blink)."""

    args: tuple[object, ...]
    low: float
    high: float
    step: float | None


@dataclasses.dataclass(frozen=True)
class Computed:
    """voicepi's generator in gpiozero's source thread: the pin shows ``level(t)``."""

    level: Callable[[float], float]


Render = Steady | Threaded | Computed


def blink_times(p: Pattern) -> tuple[float, float]:
    return p.period * p.duty, p.period * (1 - p.duty)


def fade_step(low: float, high: float, fade: float) -> float:
    # gpiozero fades in int(FPS * fade) frames, then jumps to the end: at most 2 steps
    return 2 * (high - low) / int(FPS * fade) + EPS


def expected_led(p: Pattern, brightness: float) -> Render:
    """An on/off LED: solid on, blinks as patterned, fades become blinks at their period."""
    if p.effect == "off" or p.level <= 0 or brightness <= 0:
        return Steady(0.0)
    if p.effect in ("solid", "spin") or p.period <= 0:
        return Steady(1.0)
    times = blink_times(p) if p.effect == "blink" else (p.period / 2, p.period / 2)
    return Threaded((*times, None), 0.0, 1.0, None)


def expected_pwm(p: Pattern, brightness: float) -> Render:
    peak = min(1.0, p.level * brightness)
    if p.effect == "off" or peak <= 0:
        return Steady(0.0)
    if p.effect in ("solid", "spin") or p.period <= 0:
        return Steady(peak)
    if peak >= 0.999 and envelope(p)[0] == 0:  # full scale: gpiozero's own blink/pulse
        if p.effect == "blink":
            return Threaded((*blink_times(p), 0, 0, None), 0.0, 1.0, None)
        half = p.period / 2
        return Threaded((0, 0, half, half, None), 0.0, 1.0, fade_step(0, 1, half))
    return Computed(lambda t: min(1.0, intensity(p, t) * brightness))


def rgb(p: Pattern, level: float, brightness: float) -> tuple[float, float, float]:
    f = min(1.0, level * brightness) / 255
    r, g, b = p.color
    return (min(1.0, r * f), min(1.0, g * f), min(1.0, b * f))


def expected_rgb(p: Pattern, brightness: float) -> list[Render]:
    """One Render per pin (red, green, blue), with the thread's args for the whole LED."""
    low, high = envelope(p)
    if p.effect == "off" or high <= 0:
        return [Steady(0.0)] * 3
    on = rgb(p, high, brightness)
    if p.effect in ("solid", "spin") or p.period <= 0:
        return [Steady(c) for c in on]
    if p.effect == "blink":
        args = (*blink_times(p), 0, 0, on, (0, 0, 0), None)
        return [Threaded(args, 0.0, c, None) for c in on]
    off = rgb(p, low, brightness)
    half = p.period / 2
    args = (0, 0, half, half, on, off, None)
    return [Threaded(args, lo, hi, fade_step(lo, hi, half)) for lo, hi in zip(off, on, strict=True)]


def expected_pins(p: Pattern, brightness: float) -> dict[int, Render]:
    return {
        LED_PIN: expected_led(p, brightness),
        PWM_PIN: expected_pwm(p, brightness),
        **dict(zip(RGB_PINS, expected_rgb(p, brightness), strict=True)),
    }


# --------------------------------------------------------------------------- checking a pin


def blink_args(device: Any) -> tuple[object, ...] | None:
    """The timing gpiozero's running blink/pulse thread was started with, if any."""
    thread = getattr(device, "_blink_thread", None)
    return None if thread is None else tuple(thread._args)


def history(factory: MockFactory, pin: int, since: int) -> list[float]:
    """The values ``pin`` changed to after its ``since``-th recorded change."""
    return [float(s.state) for s in list(factory.pin(pin).states)[since:]]


def order_problems(r: Threaded, values: list[float], fresh: bool = False) -> list[str]:
    """What is wrong with ``values`` (in the order the pin took them) for ``r``;
    ``fresh``: recorded from the show on (a blink starts lit, a fade dark)."""
    out: list[str] = []
    lo, hi = min(r.low, r.high), max(r.low, r.high)
    first = r.high if r.step is None else r.low
    if fresh and values and values[0] != pytest.approx(first, abs=r.step or EPS):
        out.append(f"started at {values[0]:.3f}, not {first:.3f}")
    if any(not lo - EPS <= v <= hi + EPS for v in values):
        out.append(f"values outside [{lo:.3f}, {hi:.3f}]: {values}")
    if r.step is None:
        if any(v != pytest.approx(lo) and v != pytest.approx(hi) for v in values):
            out.append(f"a blink between {lo:.3f} and {hi:.3f} went through {values}")
        return out
    for a, b in itertools.pairwise(values):
        if abs(b - a) > r.step:
            out.append(f"a fade jumped {a:.3f} -> {b:.3f} (steps of {r.step:.3f})")
    for a, b, c in zip(values, values[1:], values[2:], strict=False):
        turned = (b - a) * (c - b) < 0
        if turned and b != pytest.approx(lo, abs=r.step) and b != pytest.approx(hi, abs=r.step):
            out.append(f"a fade turned at {b:.3f}, not at {lo:.3f} or {hi:.3f}")
    return out


def seen_enough(r: Threaded, values: list[float], full: bool) -> bool:
    """A blink showed both levels; a fade turned at an end (``full``) or took 3 steps."""
    if r.low == r.high:
        return True  # a dark channel of an RGB LED never changes
    if r.step is None:
        return len(values) >= (2 if full else 1)
    if not full:
        return len(values) >= 3
    return any(
        (b - a) * (c - b) < 0 for a, b, c in zip(values, values[1:], values[2:], strict=False)
    )


def check_pins(
    factory: MockFactory,
    drivers: Drivers,
    p: Pattern,
    brightness: float,
    clock: FakeClock,
    *,
    marks: dict[int, int],
    since: float,
    full: bool = True,
    fresh: bool = False,
    timeout: float = 10.0,
) -> list[str]:
    """Problems with what every pin did since ``marks`` (recorded-change counts);
    ``since``: the fake clock's elapsed time when ``p`` became current (the computed
    phase counts from then). ``full``: a whole blink cycle, a fade to its turn, 1.5
    computed periods (else a glimpse of each); ``fresh``: ``marks`` were taken before
    the show. ``timeout`` bounds the (real) wait for gpiozero's threads."""
    expected = expected_pins(p, brightness)
    devices = {LED_PIN: drivers[0].device, PWM_PIN: drivers[1].device}
    devices.update(dict.fromkeys(RGB_PINS, drivers[2].device))
    problems: list[str] = []
    threaded = {pin: r for pin, r in expected.items() if isinstance(r, Threaded)}
    for pin, r in expected.items():
        got = blink_args(devices[pin])
        want = r.args if isinstance(r, Threaded) else None
        if got != want:
            problems.append(f"pin {pin}: gpiozero blink thread {got}, expected {want}")
        source = devices[pin].source if pin == PWM_PIN else None
        if isinstance(r, Computed) != (source is not None):
            problems.append(f"pin {pin}: source {source}, expected {r}")
        if isinstance(r, Steady) and factory.pin(pin).state != pytest.approx(r.value):
            problems.append(f"pin {pin}: {factory.pin(pin).state}, expected {r.value}")
    if isinstance(pwm := expected[PWM_PIN], Computed) and drivers[1].device.source is not None:
        assert drivers[1].device.source_delay == SOURCE_DELAY
        period = p.period
        for k in range(13 if full else 5):  # eighths of a period: a blink's edges fall on them
            t = since + k * period / 8 + period / 100  # just past the edge, not on it
            clock.set(t)
            clock.read_twice()
            got, want = factory.pin(PWM_PIN).state, pwm.level(t - since)
            if got != pytest.approx(want, abs=1e-9):
                problems.append(f"PWMLED at t={t - since:.3f}: {got}, expected {want}")
    if not until(
        lambda: all(
            seen_enough(r, history(factory, pin, marks[pin]), full) for pin, r in threaded.items()
        ),
        timeout,
    ):
        problems.append("gpiozero's threads did not go through the expected changes")
    for pin, r in threaded.items():
        problems += [
            f"pin {pin}: {x}" for x in order_problems(r, history(factory, pin, marks[pin]))
        ]
    return problems


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until true (True) or ``timeout`` real seconds pass (False)."""
    try:
        wait_for(predicate, timeout)
    except AssertionError:
        return False
    return True


def show(factory: MockFactory, drivers: Drivers, p: Pattern, fresh: bool = False) -> dict[int, int]:
    """Show ``p`` on all three; the change counts after (every later change is ``p``'s),
    or, ``fresh`` (no gpiozero thread runs yet, so nothing else writes), before."""
    before = {pin: len(factory.pin(pin).states) for pin in ALL_PINS}
    for d in drivers:
        d.show(p)
    return before if fresh else {pin: len(factory.pin(pin).states) for pin in ALL_PINS}


def close_all(drivers: Drivers, clock: FakeClock) -> None:
    clock.close()
    for d in drivers:
        d.close()


@pytest.mark.parametrize("key", LED_PATTERN_KEYS)
def test_each_pattern(factory: MockFactory, key: str) -> None:
    clock = FakeClock()
    drivers = build_three(factory, 0.5, clock)
    try:
        p = next(x for x in all_patterns(LedsConfig()) if x.name == key)
        marks = show(factory, drivers, p, fresh=True)
        problems = check_pins(factory, drivers, p, 0.5, clock, marks=marks, since=0.0, fresh=True)
        assert problems == []
    finally:
        close_all(drivers, clock)


def test_pwmled_full_brightness_uses_gpiozero_pulse(factory: MockFactory) -> None:
    clock = FakeClock()
    drivers = build_three(factory, 1.0, clock)
    try:
        p = pattern_for(LedInput("thinking"), LedsConfig())
        marks = show(factory, drivers, p, fresh=True)
        problems = check_pins(factory, drivers, p, 1.0, clock, marks=marks, since=0.0, fresh=True)
        assert problems == []
        assert isinstance(expected_pwm(p, 1.0), Threaded)
        assert blink_args(drivers[1].device) == (0, 0, 0.5, 0.5, None)
    finally:
        close_all(drivers, clock)


@pytest.mark.parametrize("brightness", [0.5, 1.0])
def test_a_pattern_that_is_wrong_fails_the_check(factory: MockFactory, brightness: float) -> None:
    """The checker can fail: a thinking pulse is not a countdown blink (PWM, RGB pins)."""
    clock = FakeClock()
    drivers = build_three(factory, brightness, clock)
    try:
        shown = pattern_for(LedInput("thinking"), LedsConfig())
        other = pattern_for(LedInput("listening", countdown=3), LedsConfig())
        marks = show(factory, drivers, shown, fresh=True)
        problems = check_pins(
            factory, drivers, other, brightness, clock, marks=marks, since=0.0, timeout=1.0
        )
        assert any(x.startswith("pin 6:") or x.startswith("PWMLED") for x in problems)
        for pin in RGB_PINS[1:]:  # red is dark in both
            assert any(x.startswith(f"pin {pin}:") for x in problems), (pin, problems)
        # An on/off LED blinks a pulse at its period: thinking and countdown look alike.
        assert not any(x.startswith(f"pin {LED_PIN}:") for x in problems)
        # and the order check alone rejects a fade as a blink
        wait_for(lambda: len(history(factory, RGB_PINS[2], marks[RGB_PINS[2]])) >= 3)
        fade = history(factory, RGB_PINS[2], marks[RGB_PINS[2]])
        blink = expected_rgb(other, brightness)[2]
        assert isinstance(blink, Threaded) and order_problems(blink, fade)
    finally:
        close_all(drivers, clock)


def test_the_computed_wave_is_sampled_against_the_pattern(factory: MockFactory) -> None:
    """The PWMLED's own wave is sampled on the fake clock: its phase counts from the show,
    even when gpiozero's source thread first reads the clock later; a phase error shows."""
    clock = FakeClock()
    drivers = build_three(factory, 0.5, clock)
    try:
        shown = pattern_for(LedInput("speaking"), LedsConfig())
        clock.hold()  # gpiozero's source thread cannot read the clock before the show did
        marks = show(factory, drivers, shown, fresh=True)
        clock.set(0.3)
        clock.release()
        clock.read_twice()
        # The phase counts from the show (t=0), not from the thread's first read (t=0.3).
        assert check_pins(factory, drivers, shown, 0.5, clock, marks=marks, since=0.0) == []
        # the same wave a third of a period late is caught
        wrong_phase = check_pins(factory, drivers, shown, 0.5, clock, marks=marks, since=0.6)
        assert any(x.startswith("PWMLED at") for x in wrong_phase), wrong_phase
    finally:
        close_all(drivers, clock)


def test_same_pattern_again_is_a_no_op_and_close_turns_off(factory: MockFactory) -> None:
    led, pwm, rgb_led = drivers = build_three(factory, 0.5, FakeClock())
    p = pattern_for(LedInput("listening"), LedsConfig())
    show(factory, drivers, p)
    before = len(factory.pin(RGB_PINS[2]).states)
    rgb_led.show(p)
    rgb_led.show(dataclasses.replace(p))
    # No gpiozero thread is left that could write later, so what is recorded is final.
    assert writers(rgb_led) == []
    assert len(factory.pin(RGB_PINS[2]).states) == before  # no write at all
    assert factory.pin(RGB_PINS[2]).state == pytest.approx(0.5)
    blink = pattern_for(LedInput("connecting"), LedsConfig())
    for d in drivers:
        d.show(blink)
        assert writers(d), "a blink runs in a gpiozero thread"
        d.close()
    wait_for(lambda: not any(writers(d) for d in drivers))
    assert [factory.pin(p).state for p in ALL_PINS] == [0, 0, 0, 0, 0]
    del led, pwm


def writers(driver: Any) -> list[object]:
    """The gpiozero threads (blink/pulse, source) that could still write ``driver``'s pins."""
    device = driver.device
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
    clock = FakeClock()
    drivers = build_three(factory, 0.5, clock)
    try:
        current, started = None, 0.0
        for inp, pause in seq[:-1]:
            pattern = pattern_for(inp, cfg)
            if pattern != current:
                current, started = pattern, clock.elapsed
            for d in drivers:
                d.show(pattern)
            clock.set(clock.elapsed + pause)
            # A real pause on purpose (nothing waits on it): shows land at varied points
            # of gpiozero's own threads, including before a new one wrote anything.
            time.sleep(pause)
        final = pattern_for(seq[-1][0], cfg)
        since = started if final == current else clock.elapsed
        marks = show(factory, drivers, final)
        problems = check_pins(
            factory, drivers, final, 0.5, clock, marks=marks, since=since, full=False
        )
        assert problems == []
        assert all(d.pattern == final for d in drivers)
    finally:
        close_all(drivers, clock)
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
