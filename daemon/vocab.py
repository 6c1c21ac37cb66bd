"""The shared vocabularies, each written once, below everything that uses them.

Config (the schema's Literals), the event classes, the SDK's SessionSettings,
the LED patterns and ``hw/`` all import their choices from here, so adding a
voice or a state is one edit. Imports nothing from ``daemon``.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

# The Realtime API's PCM16 audio: mono little-endian at 24 kHz, both ways
# (session.update's audio/pcm format); players and sounds take it as input.
PCM_RATE: Final = 24000

# --------------------------------------------------------------------------- realtime options

Voice = Literal[
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"
]
NoiseReduction = Literal["far_field", "near_field", "off"]
TurnDetection = Literal["semantic_vad", "server_vad"]
Eagerness = Literal["auto", "low", "medium", "high"]

# --------------------------------------------------------------------------- tools

ToolPolicy = Literal["always", "never", "ask"]  # tooling.policy: approve, reject, ask
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # the API's function name rule
BUILTIN_TOOL_NAMES = ("get_time", "set_volume", "end_session")  # daemon/agents/builtin.py

# --------------------------------------------------------------------------- appliance

ApplianceState = Literal[
    "starting",
    "idle",
    "connecting",
    "listening",
    "thinking",
    "working",
    "speaking",
    "muted",
    "error",
]
# The states a session is open in (the button and the LED countdown look at them).
IN_SESSION: tuple[ApplianceState, ...] = (
    "connecting",
    "listening",
    "thinking",
    "working",
    "speaking",
)
Gesture = Literal["press", "double", "long"]  # what hw.button recognises
# What a gesture does in a state (daemon/appliance/button_map.py decides).
ButtonAction = Literal[
    "wake", "interrupt", "approve", "reject", "end_session", "mute_toggle", "none"
]
SoundName = Literal["wake", "end", "error"]  # the [sounds] keys; daemon/sounds.py plays them
SOUND_NAMES: tuple[SoundName, ...] = get_args(SoundName)

# What keeps the inactivity countdown from running (daemon/countdown.py). A tool call,
# an approval and an answer item being played are tracked per id: "tool:<call_id>",
# "approval:<approval_id>", "playing:<item_id>" (see busy_cause).
BusyKind = Literal["user_speaking", "response", "tool", "approval", "playing"]


def busy_cause(kind: BusyKind, ident: str = "") -> str:
    """The countdown's cause key: ``kind`` alone, or ``"kind:ident"`` for one of many."""
    return f"{kind}:{ident}" if ident else kind


# --------------------------------------------------------------------------- LEDs

LedEffect = Literal["off", "solid", "blink", "pulse", "breathe", "spin"]
LED_EFFECTS: tuple[LedEffect, ...] = get_args(LedEffect)
# Looks that overlay a state (a countdown running, an approval pending). In display order
# they sit between the session states and muted/error, the order of their precedence.
LED_OVERLAYS = ("countdown", "approval")
_STATES: tuple[str, ...] = get_args(ApplianceState)
_AT = _STATES.index("muted")
# The keys of leds.patterns / leds.colors: every appliance state plus the overlays.
LED_PATTERN_KEYS: tuple[str, ...] = (*_STATES[:_AT], *LED_OVERLAYS, *_STATES[_AT:])
