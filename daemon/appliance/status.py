"""What the appliance tells its owner: the systemd STATUS line and the start-up summary.

Both are derived from the appliance's state and parts, with no state of their own.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..config import Config
from .state import Facts


def status_text(
    state: str,
    facts: Facts,
    wake_names: tuple[str, ...],
    session_started: float | None,
    clock: Callable[[], float],
) -> str:
    """The STATUS= line for ``state``: what is listened for, the fault being retried, or
    how long the session (started at ``session_started`` on ``clock``, None: none) runs."""
    if state == "idle":
        names = " or ".join(n.replace("_", " ") for n in wake_names)
        return f"listening for {names}"
    if state == "muted":
        return "muted"
    if state == "error" and facts.error:
        return f"{facts.error}, retrying"
    if state == "error":
        return facts.failure
    if state == "starting":
        return "starting"
    if session_started is not None:
        secs = int(clock() - session_started)
        return f"in session {secs} s ({state})"
    return state


def log_startup_summary(
    log: logging.Logger,
    cfg: Config,
    *,
    mic: Any,
    speaker: Any,
    detector: Any,
    wake_names: tuple[str, ...],
    api_key_found: bool | None,
) -> None:
    """One info record of what started: the first thing to read in a bug report.

    Devices are described by their ``name``/``rate``/``channels`` attributes when they
    have them (the configured names otherwise); the key only as found or not.
    """
    from .. import __version__

    names = getattr(detector, "names", wake_names)
    thresholds = getattr(detector, "thresholds", ())
    wake = ", ".join(
        f"{n}>={t:g}" if isinstance(t, float) else n
        for n, t in itertools.zip_longest(names, thresholds[: len(names)])
    )
    rt = cfg.realtime
    key = {True: "found", False: "not found", None: "not needed"}[api_key_found]
    log.info(
        "voicepi %s ready: mic %r %s Hz %s ch; speaker %r %s Hz %s ch; wake %s; "
        "realtime %s model %s; barge-in %s; API key %s",
        __version__,
        getattr(mic, "name", cfg.audio.input),
        getattr(mic, "rate", "?"),
        getattr(mic, "channels", "?"),
        getattr(speaker, "name", cfg.audio.output),
        getattr(speaker, "rate", "?"),
        getattr(speaker, "channels", 1),
        wake,
        urlsplit(rt.url).netloc,
        rt.model,
        cfg.audio.barge_in,
        key,
    )
