"""APA102 rings over gpiozero's SPI interface: the exact bytes a mock SPI device receives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockSPIDevice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.appliance.gpio import build_leds
from daemon.config import Config, parse
from hw.leds.apa102 import Apa102Driver, encode
from hw.leds.patterns import LedInput, Pattern, frame, pattern_for
from tests import audio_helpers
from tests.fakeclock import FakeClock

# SPI0 pins (gpiozero's SPI_HARDWARE_PINS): SCLK 11, MOSI 10, CE1 7 (ReSpeaker: device 1)
CLOCK, MOSI, CE1 = 11, 10, 7


class Capture(MockSPIDevice):  # type: ignore[misc]
    """Collects each whole transfer (select low .. select high) as bytes."""

    def __init__(self, factory: MockFactory) -> None:
        super().__init__(CLOCK, MOSI, select_pin=CE1, pin_factory=factory)
        self.frames: list[bytes] = []

    def on_select(self) -> None:
        if self.select_pin.state == self.select_high:
            self.on_start()
        elif self.rx_buf:
            bits = [int(b) for b in self.rx_buf]
            self.frames.append(
                bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
            )
            self.rx_buf = []


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def ring(
    factory: MockFactory, profile: str, clock: FakeClock | None = None, **leds: object
) -> tuple[Apa102Driver, Capture]:
    capture = Capture(factory)  # before the driver, so the clock pin is the capturing kind
    cfg = parse({"hardware": {"profile": profile}, "leds": leds})
    driver = build_leds(cfg, pin_factory=factory, clock=clock or FakeClock())
    assert isinstance(driver, Apa102Driver)
    return driver, capture


def wait_for(capture: Capture, count: int, timeout: float = 3.0) -> None:
    audio_helpers.wait_for(lambda: len(capture.frames) >= count, timeout)


def frame_at(clock: FakeClock, capture: Capture, t: float) -> tuple[bytes, float]:
    """The frame the render thread wrote at ``t`` fake seconds after the show (it reads
    the clock, writes that frame if it changed, waits a frame, reads again), and ``t``
    as the driver computes it (clock() - start, in floating point)."""
    clock.set(t)
    clock.read_twice()
    return capture.frames[-1], (clock.start + t) - clock.start


def test_three_pixels_exact_bytes(factory: MockFactory) -> None:
    driver, capture = ring(factory, "respeaker-2mic", brightness=1.0)
    try:
        driver.show(Pattern("t", (0x12, 0x34, 0x56)))
        wait_for(capture, 1)
        pixel = bytes([0xFF, 0x56, 0x34, 0x12])  # 0xE0|31, blue, green, red
        assert capture.frames[-1] == b"\x00" * 4 + pixel * 3 + b"\x00" * 4
    finally:
        driver.close()


def test_twelve_pixels_with_power_pin_and_brightness(factory: MockFactory) -> None:
    driver, capture = ring(factory, "respeaker-4mic", brightness=0.5)
    assert factory.pin(5).state == 1  # GPIO5 powers the 4-mic ring
    try:
        cfg = parse({"leds": {"colors": {"listening": "#ff8000"}}}).leds
        driver.show(pattern_for(LedInput("listening"), cfg))
        wait_for(capture, 1)
        pixel = bytes([0xE0 | 16, 0x00, 0x80, 0xFF])  # round(0.5 * 31) = 16
        assert capture.frames[-1] == b"\x00" * 4 + pixel * 12 + b"\x00" * 4
    finally:
        driver.close()
    # close: every pixel dark, then the ring's power off
    assert capture.frames[-1] == b"\x00" * 4 + bytes([0xF0, 0, 0, 0]) * 12 + b"\x00" * 4
    assert factory.pin(5).state == 0


def test_encode_is_the_datasheet_frame() -> None:
    assert encode([(1, 2, 3)], 31) == bytes([0, 0, 0, 0, 0xFF, 3, 2, 1, 0, 0, 0, 0])
    assert len(encode([(0, 0, 0)] * 100, 1)) == 4 + 400 + 7  # end frame >= n/2 bits


def test_steady_pattern_is_written_once_spin_keeps_moving(factory: MockFactory) -> None:
    clock = FakeClock()
    driver, capture = ring(factory, "respeaker-4mic", clock, brightness=1.0)
    try:
        solid = Pattern("s", (0, 0, 255))
        driver.show(solid)
        wait_for(capture, 1)
        driver.show(solid)  # same pattern again: no-op
        spin = Pattern("spin", (0, 255, 0), "spin", 0.6)
        driver.show(spin)
        wait_for(capture, 2)
        # One solid frame, then the spin's: the render thread is sequential, so a rewrite
        # of the steady frame would sit between them.
        assert capture.frames[0] == encode(frame(solid, 0.0, 12), 31)
        assert capture.frames[1] == encode(frame(spin, 0.0, 12), 31)
        heads = set()
        for k in range(1, 9):  # the spin at eighths of its period, on the fake clock
            t = k * 0.6 / 8
            got, t = frame_at(clock, capture, t)
            assert got == encode(frame(spin, t, 12), 31), k
            greens = got[6:52:4]  # pixel i's green byte is at 4 + 4i + 2
            heads.add(greens.index(max(greens)))
        assert len(heads) >= 7  # the brightest green pixel moves round
    finally:
        clock.close()
        driver.close()


def test_no_ring_for_usb_array_or_generic() -> None:
    assert build_leds(parse({"hardware": {"profile": "respeaker-usb-v2"}})) is None
    assert build_leds(Config()) is None


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seq=st.lists(
        st.builds(
            LedInput,
            state=st.sampled_from(["idle", "listening", "thinking", "speaking", "muted", "error"]),
            countdown=st.one_of(st.none(), st.integers(1, 5)),
            muted=st.booleans(),
            approval_pending=st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_ring_ends_in_the_last_pattern(factory: MockFactory, seq: list[LedInput]) -> None:
    clock = FakeClock()
    driver, capture = ring(factory, "respeaker-2mic", clock, brightness=1.0)
    try:
        cfg = parse({}).leds
        for inp in seq:
            driver.show(pattern_for(inp, cfg))
        final = pattern_for(seq[-1], cfg)
        # The fake clock stands still during the shows: the final pattern's phase is 0.
        if not final.animated:
            want = encode(frame(final, 0.0, 3), 31)
            audio_helpers.wait_for(lambda: bool(capture.frames) and capture.frames[-1] == want)
        else:
            for at in (0.0, 0.3 * final.period, 0.7 * final.period):
                got, t = frame_at(clock, capture, at)
                assert got == encode(frame(final, t, 3), 31), (t, final)
    finally:
        clock.close()
        driver.close()
        factory.reset()
