"""daemon.logsetup: text, JSON lines and the journald field mapping."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from daemon import events as ev
from daemon import logsetup


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logsetup._context.clear()


def json_lines(fmt_level: str, *events: ev.Event, **extra: object) -> list[dict[str, object]]:
    stream = io.StringIO()
    assert logsetup.configure("json", fmt_level, stream=stream) == "json"
    for event in events:
        logsetup.log_event(event, **extra)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_one_object_per_event_with_event_and_data_keys() -> None:
    lines = json_lines(
        "info",
        ev.WakeWordDetected(model="hey_jarvis", score=0.9961),
        ev.StateChanged(state="connecting", previous="idle"),
        ev.UserInactivityCountdown(remaining_seconds=3),
        ev.SessionClosed(reason="inactivity"),
    )
    assert [line["event"] for line in lines] == [
        "wake_word_detected",
        "state_changed",
        "user_inactivity_countdown",
        "session_closed",
    ]
    assert lines[0]["model"] == "hey_jarvis" and lines[0]["score"] == 0.9961
    assert lines[0]["msg"] == "wake word hey_jarvis detected (score 0.996)"
    assert lines[1]["state"] == "connecting" and lines[1]["previous"] == "idle"
    assert lines[2]["remaining_seconds"] == 3
    assert lines[3]["reason"] == "inactivity"
    for line in lines:
        assert line["level"] == "info" and line["logger"] == "voicepi.events"
        assert str(line["ts"]).endswith("+00:00")


def test_audio_is_never_logged_and_chatty_events_only_at_debug() -> None:
    chatty = ev.AssistantTranscriptDelta(delta="Hel", item_id="i1")
    audio = ev.Audio(data=b"\0" * 4800, item_id="i1")
    assert json_lines("info", audio, chatty) == []
    lines = json_lines("debug", audio, chatty)
    assert [line["event"] for line in lines] == ["assistant_transcript_delta"]
    assert lines[0]["level"] == "debug"


def test_json_errors_and_extra_and_context() -> None:
    logsetup.set_context(session_id="sess_1")
    err = ev.Error(error=ev.ErrorInfo(type="invalid_request_error", message="bad", code="x"))
    (line,) = json_lines("info", err, state="listening")
    assert line["event"] == "error" and line["level"] == "error"
    assert line["type"] == "invalid_request_error" and line["message"] == "bad"
    assert line["session_id"] == "sess_1" and line["state"] == "listening"
    logsetup.set_context(session_id=None)
    (line,) = json_lines("info", ev.SessionClosed(reason="error"))
    assert "session_id" not in line and line["level"] == "warning"


def test_json_plain_log_records_and_exceptions() -> None:
    stream = io.StringIO()
    logsetup.configure("json", "info", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("voicepi.x").exception("it broke")
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["msg"] == "it broke" and line["level"] == "error"
    assert "ValueError: boom" in line["exception"]


def test_json_data_keys_never_replace_the_base_keys() -> None:
    out = json.loads(logsetup.json_record({"event": "x", "msg": "data"}, 20, "l", "text", 0.0))
    assert out["msg"] == "text" and out["data_msg"] == "data"


def test_text_format_is_a_readable_line() -> None:
    stream = io.StringIO()
    assert logsetup.configure("text", "info", stream=stream) == "text"
    logsetup.log_event(ev.StateChanged(state="idle", previous="starting"))
    logsetup.log_event(ev.UserTranscript(transcript="what time is it", item_id="i2"))
    first, second = stream.getvalue().splitlines()
    assert first.endswith("INFO voicepi.events: state starting -> idle")
    assert second.endswith("user_transcript transcript='what time is it' item_id=i2")


def test_journal_fields_exact() -> None:
    assert logsetup.journal_fields(ev.WakeWordDetected(model="hey_jarvis", score=0.99612)) == {
        "EVENT": "wake_word_detected",
        "MODEL": "hey_jarvis",
        "WAKE_WORD": "hey_jarvis",
        "SCORE": "0.996",
    }
    assert logsetup.journal_fields(
        ev.UserInactivityCountdown(remaining_seconds=2), session_id="sess_9", state="listening"
    ) == {
        "EVENT": "user_inactivity_countdown",
        "REMAINING_SECONDS": "2",
        "SESSION_ID": "sess_9",
        "STATE": "listening",
    }
    assert logsetup.journal_fields(ev.LedChanged(pattern="pulse", color="#0000ff")) == {
        "EVENT": "led_changed",
        "PATTERN": "pulse",
        "COLOR": "#0000ff",
    }
    # journald's own names are not overwritten by event data.
    err = ev.Error(error=ev.ErrorInfo(type="server_error", message="oops", code=None))
    assert logsetup.journal_fields(err) == {
        "EVENT": "error",
        "TYPE": "server_error",
        "VOICEPI_MESSAGE": "oops",
    }
    assert logsetup.journal_fields(ev.AgentToolEnd(tool="clock", is_error=True))["IS_ERROR"] == (
        "true"
    )


def test_journal_name() -> None:
    assert logsetup.journal_name("session_id") == "SESSION_ID"
    assert logsetup.journal_name("_hidden") == "HIDDEN"  # _X fields are journald's trusted ones
    assert logsetup.journal_name("9lives") == "F_9LIVES"
    assert logsetup.journal_name("a-b.c") == "A_B_C"
    assert logsetup.journal_name("priority") == "VOICEPI_PRIORITY"


def test_journal_default_only_when_stderr_is_the_journal_stream() -> None:
    st = os.fstat(sys.stderr.fileno())
    assert logsetup.default_format({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}) == "journal"
    assert logsetup.default_format({"JOURNAL_STREAM": "1:2"}) == "text"  # inherited, stale
    assert logsetup.default_format({}) == "text"


def test_bad_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="--log-format: expected one of text, json, journal"):
        logsetup.configure("xml")


def test_journal_handler_falls_back_to_stderr_without_journald() -> None:
    """Where journald is not running, a record still goes somewhere readable."""
    code = (
        "import logging; from daemon import logsetup, events as ev;"
        "logsetup.configure('journal');"
        "logsetup.log_event(ev.SessionClosed(reason='button'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    if not os.path.exists("/run/systemd/journal/socket"):
        assert "session closed (button)" in res.stderr


def test_log_format_argument() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    logsetup.add_log_format_argument(parser)
    assert parser.parse_args([]).log_format is None  # chosen by configure(): journal or text
    assert parser.parse_args(["--log-format", "json"]).log_format == "json"
    with pytest.raises(SystemExit):
        parser.parse_args(["--log-format", "xml"])


def test_free_text_is_cut_to_the_documented_length() -> None:
    """Issue 14: a 5 MB transcript and a 1 MB tool argument used to become lines that long."""
    long = "word " * 1_000_000
    item = ev.HistoryItem(item_id="item_1", kind="message", role="assistant", transcript=long)
    events = [
        ev.HistoryAdded(item=item),
        ev.AgentToolStart(tool="lights", call_id="c1", arguments='{"a": "' + "x" * 10**6 + '"}'),
        ev.Error(error=ev.ErrorInfo(type="tool_error", message="bad: " + "y" * 10**6)),
    ]
    limit = logsetup.LOG_MESSAGE_CHARS + 100  # the record's own keys and the length note
    for line in json_lines("info", *events):
        assert len(json.dumps(line)) < limit + 3 * logsetup.LOG_FIELD_CHARS
        text = next(str(v) for k, v in line.items() if k in ("transcript", "arguments", "message"))
        assert text.endswith(" chars)")
    for event in events:
        fields = logsetup.journal_fields(event)
        assert max(len(v) for v in fields.values()) <= logsetup.LOG_FIELD_CHARS + 30
    stream = io.StringIO()
    logsetup.configure("text", "info", stream=stream)
    logging.getLogger("daemon.agents.runner").warning("tool %r: %s", "x", "z" * 10**6)
    (line,) = stream.getvalue().splitlines()
    assert len(line) < limit and line.endswith(f"({10**6 + 10} chars)")


def test_a_stalled_log_reader_never_blocks_the_logging_caller() -> None:
    """Issue 14: `voicepi run` logs from its event loop; with its stderr pipe full (the reader,
    journald or a terminal, stalls) a log call must return at once, and the lines queued
    meanwhile are written once the reader drains."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_fd, b"." * 65536)
    os.set_blocking(write_fd, True)
    stream = os.fdopen(write_fd, "w", buffering=1)
    logsetup.configure("text", "info", stream=stream, background=True)
    done = threading.Event()

    def log_some() -> None:
        for i in range(20):
            logging.getLogger("daemon.test").info("line %d", i)
        done.set()

    threading.Thread(target=log_some, daemon=True).start()
    try:
        assert done.wait(10), "logging blocked on the stalled reader"
    finally:
        with os.fdopen(read_fd, "rb") as reader:
            os.set_blocking(read_fd, False)
            seen = b""
            handler = logging.getLogger().handlers[0]
            deadline = 200
            while b"line 19" not in seen and deadline:
                with contextlib.suppress(BlockingIOError):
                    seen += reader.read(1 << 20) or b""
                deadline -= 1
                threading.Event().wait(0.05)
            assert isinstance(handler, logsetup.BackgroundLog)
            handler.close()
            stream.close()
    assert b"line 19" in seen
