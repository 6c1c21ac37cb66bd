"""What a SIGHUP reload may change live, and what waits for a restart.

Live keys take effect at once or with the next session (the realtime settings
are read when a session starts). Keys that hold an open device or loaded models
keep their old value until restart, and the reload says so by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import Config

# Sections or "section.key" that hold open devices, pins or loaded models.
RESTART_ONLY = (
    "audio.input",
    "audio.output",
    "audio.input_channels",
    "audio.input_channel",
    "audio.input_rate",
    "audio.output_rate",
    "audio.block_ms",
    "audio.jitter_ms",
    "audio.echo_cancel",  # the canceller sits between the open devices
    "audio.noise_suppression",
    "wakeword",
    "gpio",
    "hardware",
    "leds.driver",
    "leds.pins",
    "leds.count",
    "leds.spi_port",
    "leds.spi_device",
    "leds.power_pin",
    "button",
    "sounds",  # loaded (WAV files read) when the daemon starts
)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(flatten(value, key + "."))
        else:
            out[key] = value
    return out


def _restart_only(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESTART_ONLY)


@dataclass(frozen=True)
class ReloadPlan:
    config: Config  # what to run with now
    applied: tuple[str, ...]  # keys changed live
    needs_restart: tuple[str, ...]  # keys changed in the file that wait for a restart


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Merge ``new`` into ``old``: live keys from ``new``, restart-only keys kept from ``old``."""
    before, after = flatten(old), flatten(new)
    changed = [k for k in after if after[k] != before.get(k)]
    applied = tuple(k for k in changed if not _restart_only(k))
    restart = tuple(k for k in changed if _restart_only(k))
    merged = new
    for key in restart:
        merged = _replace(merged, key, before[key])
    return ReloadPlan(config=merged, applied=applied, needs_restart=restart)


def _replace(cfg: Any, dotted: str, value: Any) -> Any:
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: _replace(getattr(cfg, head), rest, value)})
