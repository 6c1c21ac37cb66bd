"""Logging: ``--log-format text|json|journal`` and one record per event.

- text: a readable line on stderr.
- json: one JSON object per line on stderr; events carry ``event`` plus their data.
- journal: structured journald records (PRIORITY, MESSAGE, EVENT, STATE, SESSION_ID,
  ...) so `journalctl -u voicepi EVENT=wake_word_detected` works. The default when
  stderr is the journal stream systemd set up (JOURNAL_STREAM).

``audio`` events are never logged; chatty ones (raw transport events, transcript
deltas, history and LED changes) only at debug level.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import importlib
import json
import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any, Literal, TextIO

from .events import Event, to_log_fields

LogFormat = Literal["text", "json", "journal"]
FORMATS: tuple[LogFormat, ...] = ("text", "json", "journal")
IDENTIFIER = "voicepi"
EVENT_LOGGER = "voicepi.events"

# Never logged: answer audio is bulk data, not an event anyone reads.
SILENT_EVENTS = frozenset({"audio"})
# An operator reads state, wake, session, transcripts and errors at info. Per-frame and
# per-history detail is debug: history_* (every transcript delta changes the history),
# led_changed (a pure function of state_changed) and the raw transport events.
DEBUG_EVENTS = frozenset(
    {
        "transport_event",
        "assistant_transcript_delta",
        "history_added",
        "history_updated",
        "led_changed",
    }
)
_ELIDE_CHARS = 120  # raw transport strings longer than this (base64 audio) show their size
WARNING_EVENTS = frozenset({"guardrail_tripped"})
ERROR_EVENTS = frozenset({"error"})

# syslog priorities as journald wants them in PRIORITY=.
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
# Field names journald (or libsystemd) gives a meaning of their own; event data using
# them is renamed with a VOICEPI_ prefix rather than silently changing that meaning.
_RESERVED = frozenset(
    {
        "MESSAGE",
        "MESSAGE_ID",
        "PRIORITY",
        "CODE_FILE",
        "CODE_LINE",
        "CODE_FUNC",
        "ERRNO",
        "INVOCATION_ID",
        "USER_INVOCATION_ID",
        "SYSLOG_FACILITY",
        "SYSLOG_IDENTIFIER",
        "SYSLOG_PID",
        "SYSLOG_TIMESTAMP",
        "SYSLOG_RAW",
        "DOCUMENTATION",
        "TID",
        "UNIT",
        "USER_UNIT",
        "OBJECT_PID",
        "LOGGER",
    }
)
# JSON keys every record has; event data with these names gets a data_ prefix.
_JSON_BASE = ("ts", "level", "logger", "msg")

_context: dict[str, Any] = {}

# --------------------------------------------------------------------------- free-text caps
# A 50 MB transcript delta or a 1 MB tool argument must not become one log line: every
# string field of an event record is cut to LOG_FIELD_CHARS, every message to
# LOG_MESSAGE_CHARS, with a note saying how long it was.
LOG_FIELD_CHARS = 1000
LOG_MESSAGE_CHARS = 4000


def cap_text(text: str, limit: int = LOG_FIELD_CHARS) -> str:
    """``text`` cut to ``limit`` characters plus "... (N chars)" when longer."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} chars)"


def cap_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Event log fields with long strings (and long nested data, as JSON) cut."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, str):
            value = cap_text(value)
        elif isinstance(value, dict | list | tuple):
            text = json.dumps(value, default=str, sort_keys=True)
            if len(text) > LOG_FIELD_CHARS:
                value = cap_text(text)
        out[key] = value
    return out


class CapMessages(logging.Filter):
    """Cuts every record's message (any logger: tool errors quote arguments) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > LOG_MESSAGE_CHARS:
            record.msg, record.args = cap_text(message, LOG_MESSAGE_CHARS), ()
        return True


# --------------------------------------------------------------------------- pure parts


def event_level(event_type: str, fields: Mapping[str, Any] | None = None) -> int:
    """The logging level an event is recorded at."""
    if event_type in ERROR_EVENTS:
        return logging.ERROR
    if event_type in WARNING_EVENTS:
        return logging.WARNING
    if event_type == "session_closed" and fields and fields.get("reason") == "error":
        return logging.WARNING
    if event_type in DEBUG_EVENTS:
        return logging.DEBUG
    return logging.INFO


def event_fields(event: Event) -> dict[str, Any]:
    """``to_log_fields`` with what an operator needs from the tuple-valued events:
    MCP tool names (not a count), the history's size and newest item, and raw transport
    events with bulk strings (audio deltas) replaced by their length."""
    fields = to_log_fields(event)
    if event.type == "mcp_tools_changed":
        tools = getattr(event, "tools", ())
        fields["tools"] = [f"{t.server_label}.{t.name}" for t in tools]
    elif event.type == "history_updated":
        history = getattr(event, "history", ())
        fields["items"] = fields.pop("history", len(history))
        if history:
            last = history[-1]
            fields["last"] = f"{last.item_id} {last.role or last.kind} {last.status}".strip()
    elif event.type == "transport_event":
        data = getattr(event, "data", {})
        fields.pop("data", None)
        fields["server_event"] = data.get("type", "?")
        for key, value in data.items():
            if key == "type":
                continue
            if isinstance(value, str) and len(value) > _ELIDE_CHARS:
                value = f"<{len(value)} chars>"
            fields[f"data_{key}" if key in fields else key] = value
    return fields


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else _plain(value)
    text = " ".join(text.splitlines())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(value: Any) -> str:
    """A field value as text: journald fields and the text format share this."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def describe(fields: Mapping[str, Any]) -> str:
    """A readable one-line message for an event's log fields (``event`` plus data)."""
    name = str(fields.get("event", "?"))
    f = fields
    if name == "state_changed":
        return f"state {f.get('previous', '?')} -> {f.get('state', '?')}"
    if name == "wake_word_detected":
        score = f.get("score")
        shown = f"{score:.3f}" if isinstance(score, int | float) else "?"
        return f"wake word {f.get('model', '?')} detected (score {shown})"
    if name == "user_inactivity_countdown":
        return f"inactivity countdown: {f.get('remaining_seconds', '?')}"
    if name == "session_closed":
        return f"session closed ({f.get('reason', '?')})"
    if name == "error":
        return f"error: {f.get('type', '?')}: {_short(f.get('message', ''))}"
    rest = []
    for key, value in f.items():
        if key == "event" or value in ("", None):
            continue
        shown = _short(value)
        rest.append(f"{key}={shown!r}" if " " in shown or not shown else f"{key}={shown}")
    return " ".join([name, *rest])


def journal_name(key: str) -> str:
    """A journald field name for a data key: upper case, [A-Z0-9_], no leading _ or digit."""
    name = re.sub(r"[^A-Z0-9_]", "_", key.upper()).lstrip("_")
    if not name or name[0].isdigit():
        name = "F_" + name
    if name in _RESERVED:
        name = "VOICEPI_" + name
    return name[:64]


def journal_fields(event: Event, **extra: Any) -> dict[str, str]:
    """The journald fields of one event record (without MESSAGE/PRIORITY)."""
    data = cap_fields({**_context, **event_fields(event), **extra})
    out: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            continue
        out[journal_name(key)] = _plain(value)
    if event.type == "wake_word_detected" and "model" in data:
        out["WAKE_WORD"] = _plain(data["model"])  # journalctl WAKE_WORD=hey_jarvis
    return out


def json_record(fields: Mapping[str, Any], level: int, logger: str, msg: str, ts: float) -> str:
    """One JSON line: ts, level, logger, msg, then the event's data as keys."""
    out: dict[str, Any] = {
        "ts": datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="milliseconds"),
        "level": logging.getLevelName(level).lower(),
        "logger": logger,
        "msg": msg,
    }
    for key, value in fields.items():
        out[f"data_{key}" if key in _JSON_BASE else key] = value
    return json.dumps(out, default=str, ensure_ascii=False)


# --------------------------------------------------------------------------- handlers


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "voicepi_fields", {}))
        msg = record.getMessage()
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json_record(fields, record.levelno, record.name, msg, record.created)


JOURNAL_SOCKET = "/run/systemd/journal/socket"


class JournalHandler(logging.Handler):
    """Structured records straight to journald; readable lines on stderr where journald
    is not running (libsystemd would drop them silently)."""

    def __init__(self, socket_path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.available = os.path.exists(socket_path)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.available:
            self._fallback(record)
            return
        try:
            journal = importlib.import_module("systemd.journal")

            msg = record.getMessage()
            if record.exc_info:
                msg += "\n" + logging.Formatter().formatException(record.exc_info)
            fields: dict[str, str] = dict(getattr(record, "voicepi_journal", {}))
            fields.update(
                PRIORITY=str(_PRIORITY.get(record.levelno, 6)),
                SYSLOG_IDENTIFIER=IDENTIFIER,
                LOGGER=record.name,
            )
            journal.send(
                msg,
                CODE_FILE=record.pathname,
                CODE_LINE=record.lineno,
                CODE_FUNC=record.funcName,
                **fields,
            )
        except Exception:
            self._fallback(record)

    @staticmethod
    def _fallback(record: logging.LogRecord) -> None:
        sys.stderr.write(f"{record.levelname} {record.name}: {record.getMessage()}\n")


# --------------------------------------------------------------------------- setup


def journal_stream_is_stderr(environ: Mapping[str, str] | None = None) -> bool:
    """True when stderr is the journal stream systemd connected (sd_journal_stream_fd)."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(part) for part in value.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def default_format(environ: Mapping[str, str] | None = None) -> LogFormat:
    return "journal" if journal_stream_is_stderr(environ) else "text"


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default=None,
        help="log as readable text, JSON lines or journald records "
        "(default: journal under systemd, else text)",
    )


# --------------------------------------------------------------------------- background writer
# `voicepi run` logs from its event loop; journald or a stderr pipe whose reader stalls must
# not block it. Records go through a bounded queue to one writer thread; when
# QUEUE_RECORDS are waiting, new ones are dropped and counted.
QUEUE_RECORDS = 1000
_STOP = None


class BackgroundLog(logging.handlers.QueueHandler):
    """The root handler of `voicepi run`: enqueues (never blocks), a thread writes."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(queue.Queue(QUEUE_RECORDS))
        self.target = target
        self.dropped = 0
        self.thread = threading.Thread(target=self._write, name="voicepi-log", daemon=True)
        self.thread.start()

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        q: queue.Queue[logging.LogRecord | None] = self.queue  # type: ignore[assignment]
        while (record := q.get()) is not None:
            self.target.handle(record)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (waiting at most ``timeout`` for a stalled reader)."""
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(_STOP)
        self.thread.join(timeout)
        super().close()


def configure(
    fmt: str | None = None,
    level: str = "info",
    *,
    stream: TextIO | None = None,
    background: bool = False,
) -> LogFormat:
    """Set up the root logger for one format; returns the format chosen.

    ``background``: records are written by a thread (BackgroundLog), so logging never
    blocks the caller on a stalled journald or stderr reader; closed at exit.
    """
    chosen: LogFormat
    if fmt is None:
        chosen = default_format()
    elif fmt in FORMATS:
        chosen = fmt
    else:
        raise ValueError(f"--log-format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    handler: logging.Handler
    if chosen == "journal" and not os.path.exists(JOURNAL_SOCKET):
        # Asked for the journal where there is none: readable text, with timestamps, and say so.
        print(
            f"voicepi: --log-format journal: {JOURNAL_SOCKET} not found; logging as text",
            file=stream if stream is not None else sys.stderr,
            flush=True,
        )
        chosen = "text"
    if chosen == "journal":
        handler = JournalHandler()
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(_JsonFormatter() if chosen == "json" else _TextFormatter())
    handler.addFilter(CapMessages())
    if background:
        handler = BackgroundLog(handler)
        handler.addFilter(CapMessages())  # before the queue holds a huge message
        atexit.register(handler.close)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, BackgroundLog):
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return chosen


def set_context(**fields: Any) -> None:
    """Fields added to every event record from now on (e.g. session_id); None removes one."""
    for key, value in fields.items():
        if value is None:
            _context.pop(key, None)
        else:
            _context[key] = value


def log_event(event: Event, **extra: Any) -> None:
    """Write one log record for an event, in whatever format is configured."""
    if event.type in SILENT_EVENTS:
        return
    logger = logging.getLogger(EVENT_LOGGER)
    if event.type in DEBUG_EVENTS and not logger.isEnabledFor(logging.DEBUG):
        return  # before building fields: transport events come with every audio delta
    fields = cap_fields({**_context, **event_fields(event), **extra})
    level = event_level(event.type, fields)
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "%s",
        describe(fields),
        extra={
            "voicepi_fields": fields,
            "voicepi_journal": journal_fields(event, **extra),
        },
    )
