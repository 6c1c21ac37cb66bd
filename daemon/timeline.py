"""A readable, time-stamped line per event: what `voicepi demo` prints."""

from __future__ import annotations

from . import events as ev

_QUIET = (ev.Audio, ev.TransportEvent, ev.HistoryAdded, ev.HistoryUpdated, ev.AgentStarting)


def describe(event: ev.Event) -> str | None:
    """The event as a short phrase, or None for events a person need not see."""
    match event:
        case _ if isinstance(event, _QUIET):
            return None
        case ev.StateChanged(state=state, previous=previous):
            return f"state      {previous} -> {state}"
        case ev.WakeWordDetected(model=model, score=score):
            return f"wake word  {model} (score {score:.2f})"
        case ev.LedChanged(pattern=pattern, color=color):
            return f"leds       {pattern}" + (f" {color}" if color else "")
        case ev.SessionConnected(model=model):
            return f"session    connected ({model})" if model else "session    connected"
        case ev.UserStartedSpeaking():
            return "user       started speaking"
        case ev.UserStoppedSpeaking():
            return "user       stopped speaking"
        case ev.UserTranscript(transcript=text):
            return f'user       "{text}"'
        case ev.AssistantTranscriptDelta():
            return None
        case ev.AssistantTranscript(transcript=text):
            return f'assistant  "{text}"'
        case ev.AgentStart():
            return None  # the audio_start line says the same for a spoken answer
        case ev.AgentEnd(status=status):
            return f"assistant  response {status}"
        case ev.AudioStart():
            return "assistant  started responding"
        case ev.AudioStopped():
            return "assistant  finished streaming audio"
        case ev.AudioInterrupted(played_ms=ms):
            return f"assistant  interrupted after {ms} ms"
        case ev.UserInactivityCountdown(remaining_seconds=n):
            return f"countdown  {n}"
        case ev.CountdownCancelled(cause=cause):
            return f"countdown  cancelled ({cause})"
        case ev.SessionClosed(reason=reason):
            return f"session    closed ({reason})"
        case ev.AgentStopped(reason=reason):
            return f"session    stopped ({reason})"
        case ev.ButtonPressed(gesture=gesture, action=action):
            return f"button     {gesture} -> {action}"
        case ev.AgentToolStart(tool=tool, arguments=args):
            return f"tool       {tool}({args})"
        case ev.AgentToolEnd(tool=tool, output=output):
            return f"tool       {tool} -> {output}"
        case ev.SoundPlayed(name=name, duration_ms=ms):
            return f"sound      {name} ({ms} ms)"
        case ev.Error(error=err):
            return f"error      {err.type}: {err.message}"
    return f"{event.type:<10} " + ", ".join(f"{a}" for a in event.args())


def line(event: ev.Event, seconds: float) -> str | None:
    text = describe(event)
    return None if text is None else f"{seconds:7.2f}s  {text}"
