"""What the appliance is built from (Parts) and what it keeps about a running session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .. import events as ev
from ..vocab import SoundName
from .ports import Leds, MicFactory, Notifier, Session, Speaker, WakeDetector


class AgentsPort(Protocol):
    def approve(self) -> bool: ...

    def reject(self) -> bool: ...

    def playback_progress(self, item_id: str, samples_played: int) -> None: ...

    def playback_finished(self, item_id: str) -> None: ...


@dataclass
class Parts:
    """Everything the appliance drives, wired by the CLI or a test."""

    open_mic: MicFactory
    speaker: Speaker
    detector: WakeDetector
    new_session: Callable[[], Session]
    emit: Callable[[ev.Event], None]
    notifier: Notifier
    leds: Leds | None = None
    led_pattern: Callable[[dict[str, Any]], Any] | None = None  # LedInput fields -> pattern
    clock: Callable[[], float] = time.monotonic
    wake_names: tuple[str, ...] = ("hey_jarvis",)
    # daemon.agents.AgentRuntime: approvals, and playback reports for end_session.
    agents: AgentsPort | None = None
    api_key_found: bool | None = None  # for the start-up summary (never the key itself)
    # Feedback sounds by name (daemon.sounds.load_sounds): int16 mono at 24 kHz.
    sounds: dict[SoundName, np.ndarray] = field(default_factory=dict)
    # The mic's thread may wait for the loop instead of its audio being dropped when the
    # loop falls behind (FrameHandoff ``wait``): only a file: mic, whose thread is its own.
    paced_mic: bool = False


@dataclass
class SessionRun:
    """One session from the wake to its close (the appliance's ``run_``)."""

    session: Session
    started: float
    task: asyncio.Task[None] | None = None
    close_reason: ev.CloseReason | None = None
    connected: bool = False
    items_playing: set[str] = field(default_factory=set)
    tools_running: set[str] = field(default_factory=set)  # call ids
    failure: ev.ErrorInfo | None = None  # the typed failure that ends this session
