"""APA102 rings over gpiozero's SPI interface: the exact bytes a mock SPI device receives."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockSPIDevice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.appliance.gpio import build_leds
from daemon.config import Config, parse
from hw.leds.apa102 import Apa102Driver, encode
from hw.leds.patterns import LedInput, Pattern, frame, pattern_for

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


def ring(factory: MockFactory, profile: str, **leds: object) -> tuple[Apa102Driver, Capture]:
    capture = Capture(factory)  # before the driver, so the clock pin is the capturing kind
    cfg = parse({"hardware": {"profile": profile}, "leds": leds})
    driver = build_leds(cfg, pin_factory=factory)
    assert isinstance(driver, Apa102Driver)
    return driver, capture


def wait_for(capture: Capture, count: int, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while len(capture.frames) < count and time.monotonic() < end:
        time.sleep(0.01)


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
    driver, capture = ring(factory, "respeaker-4mic", brightness=1.0)
    try:
        solid = Pattern("s", (0, 0, 255))
        driver.show(solid)
        time.sleep(0.3)
        driver.show(solid)  # same pattern again: no-op
        time.sleep(0.1)
        assert len(capture.frames) == 1
        driver.show(Pattern("spin", (0, 255, 0), "spin", 0.6))
        time.sleep(0.6)
        spins = capture.frames[1:]
        assert len(spins) >= 4 and len(set(spins)) >= 4
        greens = [f[6:52:4] for f in spins]  # pixel i's green byte is at 4 + 4i + 2
        heads = {g.index(max(g)) for g in greens}
        assert len(heads) >= 3  # the brightest green pixel moves round
    finally:
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
    driver, capture = ring(factory, "respeaker-2mic", brightness=1.0)
    try:
        cfg = parse({}).leds
        for inp in seq:
            driver.show(pattern_for(inp, cfg))
        final = pattern_for(seq[-1], cfg)
        time.sleep(0.15)
        last = capture.frames[-1]
        pixels = [(last[i + 3], last[i + 2], last[i + 1]) for i in range(4, 16, 4)]
        if not final.animated:
            assert pixels == frame(final, 0.0, 3)
        else:  # some point of the final pattern's own envelope, in its own colour
            candidates = {tuple(frame(final, i / 400 * final.period, 3)) for i in range(401)}
            assert any(
                all(
                    abs(a - b) <= 2
                    for p, q in zip(pixels, c, strict=True)
                    for a, b in zip(p, q, strict=True)
                )
                for c in candidates
            ), (pixels, final)
    finally:
        driver.close()
        factory.reset()
