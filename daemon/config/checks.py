"""Checks that one field's type cannot express: cross-field rules, URLs, LED names.

Called by the loader on every object it builds; each problem is one ConfigError
naming the key path. The agents/tools/MCP cross-checks are in agent_checks.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from daemon.urlpolicy import UrlPolicyError
from daemon.urlpolicy import check_url as policy
from daemon.vocab import LED_EFFECTS, LED_PATTERN_KEYS, SOUND_NAMES

from .agent_checks import check_agents
from .errors import ConfigError
from .schema import AudioConfig, Config, LedsConfig, RealtimeConfig, SoundsConfig, WakewordConfig


def check_object(obj: object, prefix: str) -> None:
    """Cross-field checks that one field's type cannot express."""
    if isinstance(obj, AudioConfig) and obj.input_channel >= obj.input_channels:
        raise ConfigError(
            f"{prefix}.input_channel",
            f"expected a channel below audio.input_channels ({obj.input_channels}), "
            f"got {obj.input_channel}",
        )
    if isinstance(obj, RealtimeConfig):
        check_url(obj.url, f"{prefix}.url")
        if obj.idle_timeout_ms and not 5000 <= obj.idle_timeout_ms <= 30000:
            raise ConfigError(
                f"{prefix}.idle_timeout_ms",
                f"expected 0 (off) or 5000 to 30000 (the API's range), got {obj.idle_timeout_ms}",
            )
    if isinstance(obj, WakewordConfig):
        if not obj.models:
            raise ConfigError(f"{prefix}.models", "expected at least one model")
        for name, value in obj.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{prefix}.thresholds.{name}", f"expected 0 to 1, got {value!r}")
    if isinstance(obj, LedsConfig):
        _check_leds(obj, prefix)
    if isinstance(obj, SoundsConfig):
        for name in SOUND_NAMES:
            value = getattr(obj, name)
            if value not in ("default", "") and not _is_file(value):
                raise ConfigError(
                    f"{prefix}.{name}",
                    f'expected "default", "" or the path of a WAV file, got {value!r} (not found)',
                )
    if isinstance(obj, Config):
        check_agents(obj)  # agents, tools, MCP cross-checks


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _check_leds(obj: LedsConfig, prefix: str) -> None:
    keys = ", ".join(LED_PATTERN_KEYS)
    for name, effect in obj.patterns.items():
        if name not in LED_PATTERN_KEYS:
            raise ConfigError(f"{prefix}.patterns.{name}", f"unknown state (expected {keys})")
        if effect not in LED_EFFECTS:
            raise ConfigError(
                f"{prefix}.patterns.{name}",
                f"expected one of {', '.join(LED_EFFECTS)}, got {effect!r}",
            )
    for name, color in obj.colors.items():
        if name not in LED_PATTERN_KEYS:
            raise ConfigError(f"{prefix}.colors.{name}", f"unknown state (expected {keys})")
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
            raise ConfigError(f"{prefix}.colors.{name}", f'expected "#rrggbb", got {color!r}')


def check_url(url: str, path: str = "realtime.url") -> None:
    """Only wss:// leaves the machine; plain ws:// only to a literal loopback host
    (daemon.urlpolicy has the rule)."""
    try:
        policy(url, path, schemes=("wss", "ws"))
    except UrlPolicyError as exc:
        raise ConfigError(path, str(exc).removeprefix(f"{path}: ")) from None
