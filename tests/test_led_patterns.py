"""hw/leds/patterns.py: the pure state -> pattern function and its shape over time."""

from __future__ import annotations

import subprocess
import sys

import pytest

from daemon.config import LED_PATTERN_KEYS, ConfigError, LedsConfig, parse
from hw.leds.patterns import (
    DEFAULTS,
    LedInput,
    Pattern,
    all_patterns,
    envelope,
    frame,
    intensity,
    pattern_for,
    pattern_key,
)

CFG = LedsConfig()


@pytest.mark.parametrize(
    ("state", "effect"),
    [
        ("idle", "off"),
        ("connecting", "blink"),  # the wake flash
        ("listening", "solid"),
        ("thinking", "pulse"),
        ("working", "spin"),  # a tool runs: not listening (solid blue)
        ("speaking", "breathe"),
        ("muted", "solid"),
        ("error", "pulse"),
        ("starting", "breathe"),
    ],
)
def test_default_vocabulary(state: str, effect: str) -> None:
    p = pattern_for(LedInput(state), CFG)
    assert (p.name, p.effect) == (state, effect)


def test_muted_and_error_are_red_and_error_is_fast() -> None:
    muted = pattern_for(LedInput("muted"), CFG)
    error = pattern_for(LedInput("error"), CFG)
    assert muted.color == error.color == (255, 0, 0)
    assert 0 < error.period < pattern_for(LedInput("thinking"), CFG).period


def test_countdown_blinks_once_per_second_in_session_only() -> None:
    p = pattern_for(LedInput("listening", countdown=3), CFG)
    assert (p.name, p.effect, p.period) == ("countdown", "blink", 1.0)
    # the same pattern for every remaining second: the blink keeps its rhythm
    assert pattern_for(LedInput("listening", countdown=2), CFG) == p
    assert pattern_for(LedInput("idle", countdown=3), CFG).name == "idle"


def test_precedence_error_muted_approval_countdown() -> None:
    assert pattern_key(LedInput("speaking", 2, muted=True, error=True, approval_pending=True)) == (
        "error"
    )
    assert pattern_key(LedInput("speaking", 2, muted=True, approval_pending=True)) == "muted"
    assert pattern_key(LedInput("speaking", 2, approval_pending=True)) == "approval"
    assert pattern_key(LedInput("speaking", 2)) == "countdown"
    assert pattern_key(LedInput("no-such-state")) == "idle"


def test_approval_is_distinct_from_every_other_pattern() -> None:
    approval = pattern_for(LedInput("thinking", approval_pending=True), CFG)
    others = [p for p in all_patterns(CFG) if p.name != "approval"]
    assert all(
        (p.effect, p.color, p.period) != (approval.effect, approval.color, approval.period)
        for p in others
    )


def test_overrides_change_effect_and_colour() -> None:
    cfg = parse(
        {
            "leds": {
                "patterns": {"thinking": "spin", "idle": "solid"},
                "colors": {"thinking": "#102030", "idle": "#050505"},
            }
        }
    ).leds
    thinking = pattern_for(LedInput("thinking"), cfg)
    assert (thinking.effect, thinking.color, thinking.color_hex) == (
        "spin",
        (16, 32, 48),
        "#102030",
    )
    assert thinking.period > 0
    idle = pattern_for(LedInput("idle"), cfg)
    assert (idle.effect, idle.color) == ("solid", (5, 5, 5))
    # switched off: black whatever the colour says
    off = pattern_for(
        LedInput("listening"), parse({"leds": {"patterns": {"listening": "off"}}}).leds
    )
    assert off.color_hex == "#000000"


@pytest.mark.parametrize(
    ("leds", "path"),
    [
        ({"patterns": {"thinkin": "pulse"}}, "leds.patterns.thinkin"),
        ({"patterns": {"thinking": "strobe"}}, "leds.patterns.thinking"),
        ({"colors": {"idle": "blue"}}, "leds.colors.idle"),
    ],
)
def test_bad_overrides_are_config_errors(leds: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse({"leds": leds})
    assert info.value.path == path


def test_all_patterns_cover_the_vocabulary_once() -> None:
    names = [p.name for p in all_patterns(CFG)]
    assert names == list(LED_PATTERN_KEYS) == list(DEFAULTS)


def test_blink_follows_period_and_duty() -> None:
    p = Pattern("x", (255, 0, 0), "blink", 1.0, duty=0.3)
    assert [intensity(p, t) for t in (0.0, 0.29, 0.31, 0.99, 1.05)] == [1, 1, 0, 0, 1]


def test_pulse_and_breathe_are_triangles_within_their_envelope() -> None:
    pulse = Pattern("p", (0, 0, 255), "pulse", 1.0, level=0.8)
    assert intensity(pulse, 0.0) == 0.0
    assert intensity(pulse, 0.5) == pytest.approx(0.8)
    assert intensity(pulse, 0.25) == pytest.approx(0.4)
    breathe = Pattern("b", (0, 0, 255), "breathe", 2.0)
    low, high = envelope(breathe)
    values = [intensity(breathe, i / 50) for i in range(200)]
    assert min(values) == pytest.approx(low) and low > 0
    assert max(values) == pytest.approx(high, abs=0.02)


def test_spin_moves_a_lit_arc_round_the_ring() -> None:
    p = Pattern("s", (0, 255, 0), "spin", 1.2)
    first = frame(p, 0.0, 12)
    later = frame(p, 0.3, 12)  # a quarter turn
    assert first != later
    assert max(first) == (0, 255, 0) and min(first) == (0, 0, 0)
    assert later.index(max(later)) == 3
    assert frame(Pattern("l", (1, 2, 3)), 5.0, 3) == [(1, 2, 3)] * 3


def test_patterns_import_without_gpiozero() -> None:
    code = (
        "import sys; sys.modules['gpiozero'] = None\n"
        "from hw.leds.patterns import LedInput, pattern_for\n"
        "from daemon.config import LedsConfig\n"
        "import hw.leds\n"
        "print(pattern_for(LedInput('listening'), LedsConfig()).color_hex)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "#0000ff"
