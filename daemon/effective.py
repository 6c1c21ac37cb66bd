"""The one validation path: what `check-config`, `run`, SIGHUP reloads and `demo` accept.

``config.parse`` checks each key on its own; ``effective`` then applies the board
profile and runs every check that needs the wider system: wake-word model names,
files, duplicates and per-model thresholds, LED pins for the driver, agent tool
names and ``${credential:NAME}`` references. Nothing is loaded or opened (no
models, audio or GPIO), so it is cheap enough for `check-config`. Because all four
callers go through here, they cannot disagree about a config.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from . import config
from .config import Config, ConfigError
from .config.profiles import apply_profile, check_leds


def with_profile(cfg: Config) -> Config:
    """``cfg`` with its board profile's values filled in (idempotent)."""
    return apply_profile(cfg)


def effective(cfg: Config, *, environ: Mapping[str, str] | None = None) -> Config:
    """The config the daemon would run, profile applied; raises ConfigError naming the key.

    ``environ`` (default ``os.environ``) is where ``${credential:NAME}`` is looked up,
    with ``$CREDENTIALS_DIRECTORY`` as the daemon does.
    """
    from .agents import AgentRuntime
    from .wakeword import WakeWordDetector

    cfg = with_profile(cfg)
    WakeWordDetector(cfg.wakeword)  # model names, files, duplicates, thresholds; loads nothing
    check_leds(cfg)
    AgentRuntime.from_config(cfg, environ=environ)  # agent tools, credentials
    return cfg


def load(path: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (see ``config.load``) and return its effective config; raises ConfigError."""
    return effective(config.load(path), environ=environ)


def load_or_exit(path: Path | str | None = None) -> Config:
    """``load`` for the CLI: a bad config prints one line and exits 78."""
    try:
        return load(path)
    except ConfigError as exc:
        config.exit_config_error(exc)
