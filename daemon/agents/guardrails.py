"""Output guardrails on the assistant transcript.

A guardrail is a callable ``check(text) -> bool | GuardrailResult`` (sync or
async) or a list of regexes from config. ``GuardrailMonitor`` is sans-I/O: it
is told transcript deltas and final transcripts and says when to check
(every ``every`` characters, and once more at the end of an item so a short
reply is checked too). The runtime acts on a trip.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class GuardrailResult:
    tripped: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class OutputGuardrail:
    name: str
    check: Callable[[str], bool | GuardrailResult | Awaitable[bool | GuardrailResult]] = field(
        repr=False
    )

    async def run(self, text: str) -> GuardrailResult:
        result = self.check(text)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, GuardrailResult):
            return result
        return GuardrailResult(tripped=bool(result))


def output_guardrail(func: Callable[[str], Any] | None = None, *, name: str | None = None) -> Any:
    """Decorator: ``@output_guardrail def no_prices(text): return "$" in text``."""

    def wrap(f: Callable[[str], Any]) -> OutputGuardrail:
        return OutputGuardrail(name=name or f.__name__, check=f)

    return wrap(func) if func is not None else wrap


def regex_guardrail(patterns: Iterable[str], name: str = "blocked_patterns") -> OutputGuardrail:
    """Trips when any pattern (case-insensitive) is found in the transcript."""
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]

    def check(text: str) -> GuardrailResult:
        for rx in compiled:
            m = rx.search(text)
            if m is not None:
                return GuardrailResult(tripped=True, info={"pattern": rx.pattern, "match": m[0]})
        return GuardrailResult(tripped=False)

    return OutputGuardrail(name=name, check=check)


class GuardrailMonitor:
    """When to check: every ``every`` new characters of an item, and at its end."""

    def __init__(self, every: int = 100) -> None:
        if every < 1:
            raise ValueError(f"every: expected >= 1, got {every}")
        self.every = every
        self._text: dict[str, str] = {}
        self._checked: dict[str, int] = {}  # length of the text last checked
        self.tripped: set[str] = set()

    def delta(self, item_id: str, delta: str) -> str | None:
        """Add a delta; the text to check if ``every`` characters came since the last check."""
        if item_id in self.tripped:
            return None
        text = self._text.get(item_id, "") + delta
        self._text[item_id] = text
        if len(text) - self._checked.get(item_id, 0) >= self.every:
            self._checked[item_id] = len(text)
            return text
        return None

    def final(self, item_id: str, transcript: str) -> str | None:
        """The item's transcript is complete; the text to check unless already checked."""
        if item_id in self.tripped:
            return None
        text = transcript or self._text.get(item_id, "")
        self._text.pop(item_id, None)
        if not text or self._checked.pop(item_id, -1) == len(text):
            return None
        return text

    def trip(self, item_id: str) -> None:
        self.tripped.add(item_id)
        self._text.pop(item_id, None)
        self._checked.pop(item_id, None)
