"""Websocket details of the session's transport: the model query, a redacting logger.

websockets logs request headers and every frame at DEBUG; ``RedactingLogger``
keeps the API key out of that log and leaves out the audio frames (50 a
second), whose ``transport_event`` records already say what matters.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Largest server message accepted (websockets max_size). The largest legitimate event
# measured against the simulator is session.updated echoing 120 tools with 1 KB
# descriptions and 8 KB of instructions: 178 KB; audio deltas are 6.6 KB. 4 MiB is 23
# times that, and still holds a retrieved 40 s input audio item. A bigger frame is refused
# from its header (no 50 MB buffered): an `error` (frame_too_large), then agent_stopped.
MAX_FRAME_BYTES = 4 * 1024 * 1024


def with_model(url: str, model: str) -> str:
    """``url`` with ``?model=`` appended unless it already names one."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "model" for k, _ in query) or not model:
        return url
    query.append(("model", model))
    return urlunsplit(parts._replace(query=urlencode(query)))


_AUDIO_FRAMES = (
    b'"input_audio_buffer.append"',
    b'"response.output_audio.delta"',
    b'"response.audio.delta"',
)


def _is_audio_frame(frame: Any) -> bool:
    """A websockets Frame carrying audio (bulk base64), by its first bytes."""
    head = bytes(getattr(frame, "data", b"")[:160])
    return any(marker in head for marker in _AUDIO_FRAMES)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs request headers at DEBUG; the key must not reach any log."""

    def __init__(self, logger: logging.Logger, secret: str | None) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def _clean(self, value: Any) -> Any:
        if self._secret and isinstance(value, str) and self._secret in value:
            return value.replace(self._secret, "***")
        return value

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log with the key replaced by ``***``; audio frames are left out."""
        if self.isEnabledFor(level):
            if msg in ("> %s", "< %s") and args and _is_audio_frame(args[0]):
                return  # 50 mic frames a second: transport_event records say what matters
            clean = tuple(self._clean(a) for a in args)
            self.logger.log(level, self._clean(msg), *clean, **kwargs)
