"""LED patterns: a pure function of the appliance's state, and their shape over time.

No gpiozero here: the appliance, `voicepi leds` and the tests use this module
anywhere. Drivers (drivers.py, apa102.py) render a Pattern; ``intensity`` and
``frame`` say what a pattern looks like at time ``t`` after it started, so a
pixel ring thread and the tests share one definition.

Default vocabulary (DESIGN.md, in the spirit of Home Assistant Voice PE):
idle off, wake (connecting) fast flash, listening solid, thinking pulse,
working (a tool runs) violet spin, speaking breathe, countdown blink once
per second, muted red, error red fast pulse, approval pending a fast magenta
blink. Precedence when several facts hold: error > muted > approval >
countdown > state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from daemon.vocab import IN_SESSION, LED_EFFECTS, LED_PATTERN_KEYS, LedEffect

Effect = LedEffect
Color = tuple[int, int, int]

# breathe never goes fully dark: a speaking speaker stays visibly lit
BREATHE_FLOOR = 0.25
# spin: the lit arc's length as a fraction of the ring
SPIN_TAIL = 0.5

# Period used when an override switches a state to an effect its default lacks.
EFFECT_PERIODS: dict[str, float] = {
    "off": 0.0,
    "solid": 0.0,
    "blink": 1.0,
    "pulse": 1.0,
    "breathe": 2.0,
    "spin": 1.2,
}


class LedStyle(Protocol):
    """The per-key overrides: ``patterns`` maps a key to an effect name, ``colors`` to
    "#rrggbb" (config's ``[leds]`` section is one; the loader checked both)."""

    @property
    def patterns(self) -> Mapping[str, str]: ...

    @property
    def colors(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class LedInput:
    """What the LEDs show is a function of exactly these facts."""

    state: str
    countdown: int | None = None
    muted: bool = False
    error: bool = False
    approval_pending: bool = False


@dataclass(frozen=True)
class Pattern:
    """One look: an effect in a colour.

    period: seconds per cycle (blink on+off, pulse/breathe up+down, one spin turn).
    duty: blink's on fraction of the period. level: peak intensity (0..1) before
    the configured brightness.
    """

    name: str
    color: Color
    effect: Effect = "solid"
    period: float = 0.0
    duty: float = 0.5
    level: float = 1.0

    @property
    def color_hex(self) -> str:
        r, g, b = self.color
        return f"#{r:02x}{g:02x}{b:02x}"

    @property
    def animated(self) -> bool:
        return self.effect in ("blink", "pulse", "breathe", "spin") and self.period > 0


OFF = (0, 0, 0)

DEFAULTS: dict[str, Pattern] = {
    "starting": Pattern("starting", (255, 255, 255), "breathe", 3.0, level=0.3),
    "idle": Pattern("idle", OFF, "off"),
    "connecting": Pattern("connecting", (0, 255, 255), "blink", 0.25),
    "listening": Pattern("listening", (0, 0, 255)),
    "thinking": Pattern("thinking", (0, 128, 255), "pulse", 1.0),
    "working": Pattern("working", (128, 0, 255), "spin", 1.2),  # a tool runs
    "speaking": Pattern("speaking", (0, 255, 128), "breathe", 2.0),
    "countdown": Pattern("countdown", (255, 140, 0), "blink", 1.0),
    "approval": Pattern("approval", (255, 0, 255), "blink", 0.5, duty=0.3),
    "muted": Pattern("muted", (255, 0, 0)),
    "error": Pattern("error", (255, 0, 0), "pulse", 0.4),
}
assert tuple(DEFAULTS) == LED_PATTERN_KEYS
assert set(EFFECT_PERIODS) == set(LED_EFFECTS)


def parse_color(text: str) -> Color:
    """ "#rrggbb" -> (r, g, b); the config loader has already checked the form."""
    value = int(text.lstrip("#"), 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def pattern_key(inp: LedInput) -> str:
    """Which vocabulary entry the facts select."""
    if inp.error or inp.state == "error":
        return "error"
    if inp.muted or inp.state == "muted":
        return "muted"
    if inp.approval_pending:
        return "approval"
    if inp.countdown is not None and inp.state in IN_SESSION:
        return "countdown"
    if inp.state in DEFAULTS:
        return inp.state
    return "idle"  # an unknown state shows nothing rather than something wrong


def styled(key: str, cfg: LedStyle) -> Pattern:
    """The default pattern for ``key`` with the config's overrides applied."""
    base = DEFAULTS[key]
    effect = cfg.patterns.get(key, base.effect)
    if effect != base.effect:
        base = replace(base, effect=effect, period=EFFECT_PERIODS[effect], duty=0.5)  # type: ignore[arg-type]
    if key in cfg.colors:
        base = replace(base, color=parse_color(cfg.colors[key]))
    elif base.effect != "off" and base.color == OFF:
        base = replace(base, color=(255, 255, 255))  # idle switched on without a colour
    if base.effect == "off":
        base = replace(base, color=OFF)
    return base


def pattern_for(inp: LedInput, cfg: LedStyle) -> Pattern:
    return styled(pattern_key(inp), cfg)


def all_patterns(cfg: LedStyle) -> list[Pattern]:
    """Every pattern of the vocabulary, in display order (for `voicepi leds`)."""
    return [styled(key, cfg) for key in LED_PATTERN_KEYS]


# --------------------------------------------------------------------------- shape over time


def _triangle(phase: float) -> float:
    """0 -> 1 -> 0 over one period, starting dark (as gpiozero's pulse does)."""
    return 2 * phase if phase < 0.5 else 2 * (1 - phase)


def envelope(pattern: Pattern) -> tuple[float, float]:
    """(lowest, highest) intensity the pattern reaches."""
    if pattern.effect == "off":
        return 0.0, 0.0
    if pattern.effect in ("solid", "spin") or pattern.period <= 0:
        return pattern.level, pattern.level
    if pattern.effect == "breathe":
        return pattern.level * BREATHE_FLOOR, pattern.level
    return 0.0, pattern.level


def intensity(pattern: Pattern, t: float) -> float:
    """Overall intensity (0..level) at ``t`` seconds after the pattern started."""
    effect = pattern.effect
    if effect == "off":
        return 0.0
    if effect in ("solid", "spin") or pattern.period <= 0:
        return pattern.level  # spin's overall light is steady; frame() moves it
    phase = (t % pattern.period) / pattern.period
    if effect == "blink":
        return pattern.level if phase < pattern.duty else 0.0
    low, high = envelope(pattern)
    return low + (high - low) * _triangle(phase)


def scale(color: Color, factor: float) -> Color:
    r, g, b = color
    return (round(r * factor), round(g * factor), round(b * factor))


def frame(pattern: Pattern, t: float, count: int) -> list[Color]:
    """Per-pixel colours of a ``count``-pixel ring at time ``t``."""
    if pattern.effect != "spin" or pattern.period <= 0 or count <= 1:
        return [scale(pattern.color, intensity(pattern, t))] * count
    head = (t % pattern.period) / pattern.period * count
    tail = max(1.0, count * SPIN_TAIL)
    out: list[Color] = []
    for i in range(count):
        behind = (head - i) % count  # how far pixel i trails the head
        weight = max(0.0, 1.0 - behind / tail) if behind < tail else 0.0
        out.append(scale(pattern.color, pattern.level * weight))
    return out
