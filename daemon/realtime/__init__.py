"""The embeddable realtime session: sans-I/O engine, websocket session, events.

>>> from daemon.realtime import RealtimeSession, SessionSettings
"""

from __future__ import annotations

from daemon import events
from daemon.listener import AgentListener

from .dispatch import EventDispatcher
from .engine import ConnectionState, RealtimeProtocol
from .failures import RealtimeFailure
from .liveness import LivenessBounds
from .responses import Phase
from .session import RealtimeSession
from .settings import SessionSettings
from .toolcalls import ToolRunner
from .tracking import SessionTracker

__all__ = [
    "AgentListener",
    "ConnectionState",
    "EventDispatcher",
    "LivenessBounds",
    "Phase",
    "RealtimeFailure",
    "RealtimeProtocol",
    "RealtimeSession",
    "SessionSettings",
    "SessionTracker",
    "ToolRunner",
    "events",
]
