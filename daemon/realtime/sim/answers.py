"""What the simulated model says: a small, demo-friendly default."""

from __future__ import annotations

import re
from datetime import datetime

_PLACEHOLDER = re.compile(r"^\((\d+(?:\.\d+)?) s of speech\)$")


def placeholder_transcript(seconds: float) -> str:
    """The user transcript when no scripted one is left."""
    return f"({seconds:.1f} s of speech)"


def default_answer(prompt: str, now: datetime) -> str:
    """A useful reply for a demo: the time, a greeting, or what was heard."""
    text = prompt.lower()
    m = _PLACEHOLDER.match(prompt.strip())
    tool = re.match(r"^tool (\S+) returned: (.*)$", prompt, re.S)
    if tool:  # a follow-up to a function or MCP call: read the result out
        return f"The {tool.group(1)} tool says: {tool.group(2).strip()[:200]}"
    # Most specific first: "what's the weather like today" is about weather, not the date.
    if "weather" in text:
        return "I am only a simulator, so I cannot look outside. It is always sunny on loopback."
    if "time" in text:
        return f"It is {now.hour}:{now.minute:02d}."
    if "date" in text or re.search(r"\b(day|today)\b", text):
        return f"Today is {now:%A, %B} {now.day}."
    if re.search(r"\b(hello|hi|hey)\b", text):
        return "Hello! I am the voicepi simulator. Ask me what time it is."
    if "stop" in text or "goodbye" in text or "bye" in text:
        return "Goodbye!"
    if m:
        return (
            f"I heard {m.group(1)} seconds of speech. This is the voicepi simulator: "
            "try asking what time it is."
        )
    return f"You said: {prompt.strip()[:200]}"
