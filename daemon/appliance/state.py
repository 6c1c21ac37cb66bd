"""The appliance state, derived from facts.

The state is a pure function of what is true right now (mic ready, muted,
session phase, user speaking, response active, speaker playing), so a missed
or reordered event can never leave it stuck: the next fact corrects it.
Transitions, as DESIGN.md draws them:

    starting -> idle -> connecting -> listening <-> thinking <-> speaking -> idle
    listening/thinking <-> working (a tool runs)
    any -> muted -> idle ; any -> error -> idle

``speaking`` runs from the first played sample until the speaker drained,
not from response.created: a tool-only response never speaks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from .. import events as ev
from ..events import StateChanged
from ..vocab import ApplianceState

SessionPhase = Literal["none", "connecting", "connected"]


@dataclass(frozen=True)
class Facts:
    ready: bool = False  # mic frames flow and the wake word model is loaded
    error: str = ""  # non-empty while a device fault lasts (the microphone)
    failure: str = ""  # non-empty while a session's failure is shown (a few seconds)
    muted: bool = False
    session: SessionPhase = "none"
    user_speaking: bool = False
    awaiting_response: bool = False  # the user's turn ended, no answer yet
    response_active: bool = False
    playing: bool = False  # the speaker has unplayed answer audio
    approval_pending: bool = False
    tools_running: int = 0  # function calls whose output is not sent yet


def derive(f: Facts) -> ApplianceState:
    if f.error or f.failure:
        return "error"
    if not f.ready:
        return "starting"
    if f.muted:
        return "muted"
    if f.session == "none":
        return "idle"
    if f.session == "connecting":
        return "connecting"
    if f.playing:
        return "speaking"
    if f.user_speaking:
        return "listening"
    if f.tools_running:
        return "working"
    if f.response_active or f.awaiting_response:
        return "thinking"
    return "listening"


def session_facts(event: ev.Event) -> dict[str, object]:
    """The facts a session event changes: the appliance's one mapping (app.py uses it,
    the liveness property test folds it). A typed failure ends the turn it was in."""
    match event:
        case ev.UserStartedSpeaking():
            return {"user_speaking": True}
        case ev.UserStoppedSpeaking():
            return {"user_speaking": False, "awaiting_response": True}
        case ev.AgentStart():
            return {"response_active": True, "awaiting_response": False}
        case ev.AgentEnd():
            return {"response_active": False, "awaiting_response": False}
        case ev.Error(error=info) if info.kind is not None:
            return {"response_active": False, "awaiting_response": False}
    return {}


class ApplianceStateMachine:
    """Holds the facts; every update returns the StateChanged it caused, if any."""

    def __init__(self) -> None:
        self.facts = Facts()
        self.state: ApplianceState = "starting"

    def update(self, **changes: object) -> list[StateChanged]:
        self.facts = dataclasses.replace(self.facts, **changes)  # type: ignore[arg-type]
        new = derive(self.facts)
        if new == self.state:
            return []
        previous, self.state = self.state, new
        return [StateChanged(state=new, previous=previous)]
