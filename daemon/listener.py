"""Listener-style consumption: subclass and override ``on_*`` methods.

The methods and signatures are those of a listener interface voicepi adopts
(tests/fixtures/seeds/003), so listeners written for it work unchanged.

Every method is an async no-op. ``dispatch`` maps one event to the seed's
method and signature; events the seed has no method for go to ``on_event``.
"""

from __future__ import annotations

from . import events as ev
from .events import ErrorInfo

AgentError = ErrorInfo  # the seed's name for the structured error


class AgentListener:
    """Subclass and override the ``on_*`` methods you need; pass it as ``listener=``.

    Every method is an awaited no-op by default, called in event order from the
    session's dispatch task; one that raises becomes an ``error`` (``listener_error``).
    """

    async def on_agent_starting(self) -> None:
        """Called when run() is invoked, before any I/O."""

    async def on_agent_session_connected(self) -> None:
        """Called once the websocket session is established and configured."""

    async def on_agent_stopped(self) -> None:
        """Called after the session has fully shut down."""

    async def on_agent_error(self, error: AgentError) -> None:
        """Called when the session or the Realtime API reports an error."""

    async def on_agent_interrupted(self) -> None:
        """Called when the user interrupts the assistant's answer."""

    async def on_assistant_started_responding(self) -> None:
        """Called when the assistant begins streaming an audio response."""

    async def on_assistant_stopped_responding(self) -> None:
        """Called when the assistant has finished streaming its audio response."""

    async def on_assistant_transcript(self, transcript: str) -> None:
        """Called with the complete transcript of an answer."""

    async def on_assistant_transcript_delta(self, delta: str) -> None:
        """Called with each partial assistant transcript chunk."""

    async def on_subagent_started(self, agent_name: str) -> None:
        """Called when a subagent (handoff target) starts."""

    async def on_subagent_finished(self, agent_name: str) -> None:
        """Called when a subagent finishes."""

    async def on_user_inactivity_countdown(self, remaining_seconds: int) -> None:
        """Called at remaining_seconds = 5, 4, 3, 2, 1 before an idle session closes."""

    async def on_user_started_speaking(self) -> None:
        """Called when VAD detects that the user started speaking."""

    async def on_user_stopped_speaking(self) -> None:
        """Called when VAD detects that the user stopped speaking."""

    async def on_user_transcript(self, transcript: str) -> None:
        """Called with the final transcript of a user turn."""

    async def on_event(self, event: ev.Event) -> None:
        """Called for every event the methods above do not cover."""


async def dispatch(listener: AgentListener, event: ev.Event) -> None:
    """Call the listener method that matches ``event`` (exceptions propagate)."""
    match event:
        case ev.AgentStarting():
            await listener.on_agent_starting()
        case ev.SessionConnected():
            await listener.on_agent_session_connected()
        case ev.AgentStopped():
            await listener.on_agent_stopped()
        case ev.Error(error=error):
            await listener.on_agent_error(error)
        case ev.AudioInterrupted():
            await listener.on_agent_interrupted()
        case ev.AudioStart():
            await listener.on_assistant_started_responding()
        case ev.AudioStopped():
            await listener.on_assistant_stopped_responding()
        case ev.AssistantTranscript(transcript=text):
            await listener.on_assistant_transcript(text)
        case ev.AssistantTranscriptDelta(delta=delta):
            await listener.on_assistant_transcript_delta(delta)
        case ev.SubagentStarted(agent_name=name):
            await listener.on_subagent_started(name)
        case ev.SubagentFinished(agent_name=name):
            await listener.on_subagent_finished(name)
        case ev.UserInactivityCountdown(remaining_seconds=remaining):
            await listener.on_user_inactivity_countdown(remaining)
        case ev.UserStartedSpeaking():
            await listener.on_user_started_speaking()
        case ev.UserStoppedSpeaking():
            await listener.on_user_stopped_speaking()
        case ev.UserTranscript(transcript=text):
            await listener.on_user_transcript(text)
        case _:
            await listener.on_event(event)
