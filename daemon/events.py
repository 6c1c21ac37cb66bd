"""The event vocabulary: frozen dataclasses with a ``type`` literal.

Session events are the union of the seed documents (tests/fixtures/seeds: the OpenAI Agents SDK's
TypeScript and Python realtime events and a listener-style library's
lifecycle callbacks); appliance events sit on top. Every consumer style reads
these same objects: ``async for event in session``, ``session.on(name, fn)``
(called with the fields in declaration order, ``type`` left out) and a
listener object with ``on_*`` methods.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from daemon.vocab import ApplianceState, Gesture, SoundName

# --------------------------------------------------------------------------- history


@dataclass(frozen=True, kw_only=True)
class HistoryItem:
    """One conversation item as the session knows it; ids are the server's."""

    item_id: str
    kind: Literal["message", "function_call", "function_call_output", "mcp_call", "other"]
    role: Literal["user", "assistant", "system", "tool"]
    status: Literal["in_progress", "completed", "incomplete"] = "in_progress"
    transcript: str = ""
    truncated_ms: int | None = None  # set when an interruption cut the audio
    name: str = ""  # tool name for calls
    call_id: str = ""
    arguments: str = ""
    output: str = ""


@dataclass(frozen=True, kw_only=True)
class McpTool:
    """A tool an MCP server offers (from its ``mcp_list_tools`` item)."""

    server_label: str
    name: str
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class ErrorInfo:
    """Structured error (the Realtime API's error object): type, message, optional code/param.

    ``kind`` is set on a failure the owner must see (daemon.realtime.failures:
    network, auth, quota, rate_limit, server, config): it ends the session or
    the wake. ``retry_after`` is the seconds a rate limit asks to wait.
    """

    type: str
    message: str
    code: str | None = None
    param: str | None = None
    event_id: str | None = None
    kind: str | None = None
    retry_after: float | None = None


# --------------------------------------------------------------------------- base


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event: ``type`` names it; ``args()`` gives the ``session.on`` arguments."""

    type: str = ""

    def args(self) -> tuple[Any, ...]:
        """Positional arguments for ``session.on`` handlers: fields in order, no type."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "type")


# --------------------------------------------------------------------------- lifecycle


@dataclass(frozen=True, kw_only=True)
class AgentStarting(Event):
    """Run was asked for, before any I/O (show a loading state)."""

    type: Literal["agent_starting"] = "agent_starting"


@dataclass(frozen=True, kw_only=True)
class SessionConnected(Event):
    """The websocket is open and the session configured (session.updated seen)."""

    session_id: str = ""
    model: str = ""
    type: Literal["session_connected"] = "session_connected"


@dataclass(frozen=True, kw_only=True)
class AgentStopped(Event):
    """The session has ended; always the last event. ``reason`` says why."""

    reason: str = "closed"
    code: int | None = None
    type: Literal["agent_stopped"] = "agent_stopped"


@dataclass(frozen=True, kw_only=True)
class AgentStart(Event):
    """An agent starts work on a response."""

    agent: str = ""
    response_id: str = ""
    type: Literal["agent_start"] = "agent_start"


@dataclass(frozen=True, kw_only=True)
class AgentEnd(Event):
    """An agent ended its work on a response; ``output`` is its transcript."""

    agent: str = ""
    output: str = ""
    response_id: str = ""
    status: str = "completed"
    type: Literal["agent_end"] = "agent_end"


@dataclass(frozen=True, kw_only=True)
class AgentHandoff(Event):
    """The conversation moved from one agent to another (a handoff tool ran)."""

    from_agent: str = ""
    to_agent: str = ""
    type: Literal["agent_handoff"] = "agent_handoff"


@dataclass(frozen=True, kw_only=True)
class AgentToolStart(Event):
    """The model called function ``tool``; ``arguments`` is its JSON text. Answer ``call_id``."""

    agent: str = ""
    tool: str = ""
    call_id: str = ""
    arguments: str = ""
    type: Literal["agent_tool_start"] = "agent_tool_start"


@dataclass(frozen=True, kw_only=True)
class AgentToolEnd(Event):
    """Function call ``call_id`` was answered with ``output`` (``is_error`` if it failed)."""

    agent: str = ""
    tool: str = ""
    call_id: str = ""
    output: str = ""
    is_error: bool = False
    type: Literal["agent_tool_end"] = "agent_tool_end"


@dataclass(frozen=True, kw_only=True)
class SubagentStarted(Event):
    """A sub-agent (an agent used as a tool) started."""

    agent_name: str = ""
    type: Literal["subagent_started"] = "subagent_started"


@dataclass(frozen=True, kw_only=True)
class SubagentFinished(Event):
    """A sub-agent (an agent used as a tool) finished."""

    agent_name: str = ""
    type: Literal["subagent_finished"] = "subagent_finished"


# --------------------------------------------------------------------------- audio


@dataclass(frozen=True, kw_only=True)
class Audio(Event):
    """Answer audio to play: PCM16 LE mono 24 kHz."""

    data: bytes = b""
    item_id: str = ""
    content_index: int = 0
    response_id: str = ""
    type: Literal["audio"] = "audio"

    def __repr__(self) -> str:  # keep logs readable: never dump the samples
        return f"Audio(item_id={self.item_id!r}, bytes={len(self.data)})"


@dataclass(frozen=True, kw_only=True)
class AudioStart(Event):
    """The first audio of an item arrived (assistant started responding)."""

    item_id: str = ""
    type: Literal["audio_start"] = "audio_start"


@dataclass(frozen=True, kw_only=True)
class AudioStopped(Event):
    """The server finished sending an item's audio (playback may still drain)."""

    item_id: str = ""
    type: Literal["audio_stopped"] = "audio_stopped"


@dataclass(frozen=True, kw_only=True)
class AudioInterrupted(Event):
    """Playback was cut by the user: stop the speaker now."""

    item_id: str = ""
    played_ms: int = 0
    type: Literal["audio_interrupted"] = "audio_interrupted"


# --------------------------------------------------------------------------- user turn


@dataclass(frozen=True, kw_only=True)
class UserStartedSpeaking(Event):
    """Server VAD heard the user start; ``audio_ms`` into the input buffer."""

    item_id: str = ""
    audio_ms: int = 0
    type: Literal["user_started_speaking"] = "user_started_speaking"


@dataclass(frozen=True, kw_only=True)
class UserStoppedSpeaking(Event):
    """Server VAD heard the user stop; ``audio_ms`` into the input buffer."""

    item_id: str = ""
    audio_ms: int = 0
    type: Literal["user_stopped_speaking"] = "user_stopped_speaking"


@dataclass(frozen=True, kw_only=True)
class UserTranscript(Event):
    """The transcript of the user's turn ``item_id``."""

    transcript: str = ""
    item_id: str = ""
    type: Literal["user_transcript"] = "user_transcript"


@dataclass(frozen=True, kw_only=True)
class AssistantTranscript(Event):
    """The full transcript of answer item ``item_id`` (what was heard, if cut); once per item."""

    transcript: str = ""
    item_id: str = ""
    type: Literal["assistant_transcript"] = "assistant_transcript"


@dataclass(frozen=True, kw_only=True)
class AssistantTranscriptDelta(Event):
    """The next piece of answer item ``item_id``'s transcript."""

    delta: str = ""
    item_id: str = ""
    type: Literal["assistant_transcript_delta"] = "assistant_transcript_delta"


# --------------------------------------------------------------------------- history, tools


@dataclass(frozen=True, kw_only=True)
class HistoryAdded(Event):
    """A new conversation item (``history_updated`` follows with the whole history)."""

    item: HistoryItem
    type: Literal["history_added"] = "history_added"


@dataclass(frozen=True, kw_only=True)
class HistoryUpdated(Event):
    """The whole conversation history, oldest first, after any change."""

    history: tuple[HistoryItem, ...] = ()
    type: Literal["history_updated"] = "history_updated"


@dataclass(frozen=True, kw_only=True)
class ToolApprovalRequested(Event):
    """A tool call waits for approve()/reject(); ``approval_id`` names it."""

    approval_id: str = ""
    agent: str = ""
    tool: str = ""
    arguments: str = ""
    server_label: str = ""  # set for MCP approval requests
    type: Literal["tool_approval_requested"] = "tool_approval_requested"


@dataclass(frozen=True, kw_only=True)
class McpToolsChanged(Event):
    """The MCP tools the active agent can use changed; ``tools`` is all of them."""

    tools: tuple[McpTool, ...] = ()
    type: Literal["mcp_tools_changed"] = "mcp_tools_changed"


@dataclass(frozen=True, kw_only=True)
class McpToolCallCompleted(Event):
    """An MCP tool call finished (``error`` is "" on success); ``item`` is its history item."""

    agent: str = ""
    item: HistoryItem | None = None
    server_label: str = ""
    error: str = ""
    type: Literal["mcp_tool_call_completed"] = "mcp_tool_call_completed"


@dataclass(frozen=True, kw_only=True)
class GuardrailTripped(Event):
    """An output guardrail matched ``message``: playback stopped, the answer was cut."""

    agent: str = ""
    guardrail: str = ""
    message: str = ""  # the transcript that tripped it
    details: dict[str, Any] = field(default_factory=dict)
    type: Literal["guardrail_tripped"] = "guardrail_tripped"


# --------------------------------------------------------------------------- errors, raw


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    """Something failed; ``error`` says what (with ``kind`` set: a failure that ends the
    answer or the session)."""

    error: ErrorInfo
    type: Literal["error"] = "error"


@dataclass(frozen=True, kw_only=True)
class TransportEvent(Event):
    """Every raw server event as decoded (and normalised to GA names)."""

    data: dict[str, Any] = field(default_factory=dict)
    type: Literal["transport_event"] = "transport_event"

    def __repr__(self) -> str:
        return f"TransportEvent({self.data.get('type')!r})"


# --------------------------------------------------------------------------- inactivity


@dataclass(frozen=True, kw_only=True)
class UserInactivityCountdown(Event):
    """Fires at remaining_seconds = 5, 4, 3, 2, 1 before an idle session closes."""

    remaining_seconds: int = 0
    type: Literal["user_inactivity_countdown"] = "user_inactivity_countdown"


@dataclass(frozen=True, kw_only=True)
class CountdownCancelled(Event):
    """Activity stopped a running countdown."""

    cause: str = ""
    type: Literal["countdown_cancelled"] = "countdown_cancelled"


# --------------------------------------------------------------------------- appliance

CloseReason = Literal[
    "inactivity", "button", "end_session", "max_duration", "server_closed", "error", "shutdown"
]


@dataclass(frozen=True, kw_only=True)
class WakeWordDetected(Event):
    """The wake word model ``model`` scored ``score`` (0-1) over its threshold."""

    model: str = ""
    score: float = 0.0
    type: Literal["wake_word_detected"] = "wake_word_detected"


@dataclass(frozen=True, kw_only=True)
class StateChanged(Event):
    """The appliance state changed from ``previous`` to ``state`` (the LEDs follow it)."""

    state: ApplianceState = "starting"
    previous: ApplianceState = "starting"
    type: Literal["state_changed"] = "state_changed"


@dataclass(frozen=True, kw_only=True)
class ButtonPressed(Event):
    """A button ``gesture`` and the ``action`` it was mapped to in the current state."""

    gesture: Gesture = "press"
    action: str = ""
    type: Literal["button"] = "button"


@dataclass(frozen=True, kw_only=True)
class SessionClosed(Event):
    """The appliance closed its session; ``reason`` says why."""

    reason: CloseReason = "inactivity"
    type: Literal["session_closed"] = "session_closed"


@dataclass(frozen=True, kw_only=True)
class LedChanged(Event):
    """The LEDs now show ``pattern`` in ``color``."""

    pattern: str = ""
    color: str = ""
    type: Literal["led_changed"] = "led_changed"


@dataclass(frozen=True, kw_only=True)
class SoundPlayed(Event):
    """A feedback sound was queued on the speaker (not model output); ``source`` is
    "default" (built-in tone) or the WAV path."""

    name: SoundName = "wake"
    source: str = "default"
    duration_ms: int = 0
    type: Literal["sound_played"] = "sound_played"


def _event_types() -> dict[str, type[Event]]:
    """Every event class above by its ``type`` name, in declaration order."""
    out: dict[str, type[Event]] = {}
    for cls in Event.__subclasses__():
        name = cls.__dataclass_fields__["type"].default
        assert isinstance(name, str) and name not in out, cls
        out[name] = cls
    return out


# The vocabulary, built from the classes themselves (one list: the definitions above).
EVENT_TYPES: dict[str, type[Event]] = _event_types()

# Other spellings the seeds use for the same events; ``session.on`` accepts them.
ALIASES: dict[str, str] = {
    # The Python Agents SDK's names (tests/fixtures/seeds/002) for events the TypeScript
    # SDK (and this vocabulary) names otherwise; code ported from it keeps working.
    "audio_end": "audio_stopped",
    "tool_start": "agent_tool_start",
    "tool_end": "agent_tool_end",
    "handoff": "agent_handoff",
    "raw_model_event": "transport_event",
}


def canonical(name: str) -> str:
    """The vocabulary name for an event name or one of its aliases; KeyError if unknown."""
    name = ALIASES.get(name, name)
    if name not in EVENT_TYPES:
        raise KeyError(name)
    return name


def to_log_fields(event: Event) -> dict[str, Any]:
    """Flat, JSON-friendly fields for log records (``event`` plus the data)."""
    out: dict[str, Any] = {"event": event.type}
    for f in dataclasses.fields(event):
        if f.name == "type":
            continue
        value = getattr(event, f.name)
        if isinstance(value, bytes):
            out["bytes"] = len(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update({k: v for k, v in dataclasses.asdict(value).items() if v not in (None, "")})
        elif isinstance(value, tuple):
            out[f.name] = len(value)
        else:
            out[f.name] = value
    return out
