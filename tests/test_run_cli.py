"""`voicepi run` and `voicepi demo` as processes: the JSON log contract, signals, exit codes.

The simulator runs in the test on loopback; the microphone is a WAV (`file:`),
so these need no audio server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.realtime.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
DEMO_WAV = ROOT / "daemon" / "data" / "demo.wav"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _write_config(path: Path, url: str, out: Path, extra: str = "") -> Path:
    path.write_text(
        f"""
[realtime]
url = "{url}"
[audio]
input = "file:{DEMO_WAV}"
output = "file:{out}"
[session]
inactivity_timeout = 6.0
[gpio]
pin_factory = "mock"
{extra}
""",
        encoding="utf-8",
    )
    return path


class Daemon:
    """`voicepi run` as a child process, its stderr parsed as JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.records: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            text = line.decode(errors="replace").rstrip("\n")
            self.raw.append(text)
            with contextlib.suppress(ValueError):  # a plain line (e.g. the config error)
                self.records.append(json.loads(text))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == name]

    async def wait_for(self, pred: Any, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.records:
                if pred(r):
                    return r
            if self.proc.returncode is not None and self._reader.done():
                break
            await asyncio.sleep(0.05)
        raise AssertionError("not seen; log:\n" + "\n".join(self.raw[-60:]))

    async def finish(self, timeout: float = 20.0) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.wait_for(self._reader, 5)
        return code


async def _start(cfg: Path) -> Daemon:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "daemon.cli",
        "run",
        "--config",
        str(cfg),
        "--log-format",
        "json",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
        cwd=ROOT,
    )
    return Daemon(proc)


async def test_run_logs_every_event_as_json_and_stops_cleanly(tmp_path: Path) -> None:
    async with Simulator(transcripts=["what's the weather like today"]) as sim:
        cfg = _write_config(tmp_path / "config.toml", sim.url, tmp_path / "out.wav")
        d = await _start(cfg)
        try:
            wake = await d.wait_for(lambda r: r.get("event") == "wake_word_detected", 40)
            assert wake["model"] == "hey_jarvis" and wake["score"] >= 0.5
            closed = await d.wait_for(lambda r: r.get("event") == "session_closed", 60)
            assert closed["reason"] == "inactivity"
            await d.wait_for(lambda r: r.get("event") == "state_changed" and r["state"] == "idle")
        finally:
            if d.proc.returncode is None:
                d.proc.send_signal(signal.SIGTERM)
        assert await d.finish() == 0
    remaining = [r["remaining_seconds"] for r in d.events("user_inactivity_countdown")]
    assert remaining == [5, 4, 3, 2, 1]
    names = {r.get("event") for r in d.records}
    for needed in (
        "state_changed",
        "session_connected",
        "user_transcript",
        "assistant_transcript",
        "audio_start",
    ):
        assert needed in names, f"{needed} missing from the JSON log"
    assert "audio" not in names, "audio chunks must not be logged"
    # Per-frame and per-history detail is debug (tests/test_owner_logs.py).
    assert not names & {"history_updated", "history_added", "led_changed", "transport_event"}
    # The speaker got the answer at real-time pace.
    assert (tmp_path / "out.wav").stat().st_size > 24000


async def test_sighup_with_a_broken_config_keeps_the_old_one(tmp_path: Path) -> None:
    async with Simulator() as sim:
        cfg = _write_config(tmp_path / "config.toml", sim.url, tmp_path / "out.wav")
        d = await _start(cfg)
        try:
            await d.wait_for(lambda r: r.get("event") == "state_changed" and r["state"] == "idle")
            cfg.write_text('[audio]\nvolume = "loud"\n', encoding="utf-8")
            d.proc.send_signal(signal.SIGHUP)
            bad = await d.wait_for(lambda r: "keeping the running config" in r.get("msg", ""))
            assert "audio.volume" in bad["msg"]
            # Not UTF-8, and a model only the wake-word check knows: the same, no traceback.
            for blob, needle in (
                (b'[realtime]\ninstructions = "caf\xe9"\n', "not UTF-8 text"),
                (b'[wakeword]\nmodels = ["x"]\n', "wakeword.models[0]"),
            ):
                cfg.write_bytes(blob)
                d.proc.send_signal(signal.SIGHUP)
                await d.wait_for(
                    lambda r, needle=needle: (
                        "keeping the running config" in r.get("msg", "") and needle in r["msg"]
                    )
                )
            _write_config(cfg, sim.url, tmp_path / "out.wav", "[leds]\nbrightness = 0.2\n")
            cfg.write_text(
                cfg.read_text().replace('input = "file:', 'input = "file:/nonexistent/'),
                encoding="utf-8",
            )
            d.proc.send_signal(signal.SIGHUP)
            ok = await d.wait_for(lambda r: "config reloaded" in r.get("msg", ""))
            assert "leds.brightness" in ok["msg"] and "audio.input need a restart" in ok["msg"]
            # Still alive and listening on the old microphone.
            await d.wait_for(lambda r: r.get("event") == "wake_word_detected", 40)
        finally:
            if d.proc.returncode is None:
                d.proc.send_signal(signal.SIGTERM)
        assert await d.finish() == 0
    assert not any("Traceback" in line for line in d.raw), "\n".join(d.raw)


@pytest.mark.parametrize(
    ("toml", "path"),
    [
        ('[realtime]\nvoice = "bob"\n', "realtime.voice"),
        ("[session]\ninactivity_timeout = -1\n", "session.inactivity_timeout"),
        ("[audio]\nmicrophone = 1\n", "audio.microphone"),
    ],
)
async def test_bad_config_exits_78_naming_the_key(tmp_path: Path, toml: str, path: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml, encoding="utf-8")
    d = await _start(cfg)
    assert await d.finish() == 78
    text = "\n".join(d.raw)
    assert f"config error: {path}" in text, text


async def test_demo_runs_end_to_end_and_exits_zero(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "daemon.cli",
        "demo",
        "--output",
        str(tmp_path / "answer.wav"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_env(),
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    assert proc.returncode == 0, text
    for expected in (
        "wake word  hey_jarvis",
        "state      idle -> connecting",
        "session    connected",
        'user       "what\'s the weather like today"',
        'assistant  "',
        "countdown  5",
        "countdown  1",
        "session    closed (inactivity)",
        "sound      wake (160 ms)",
        "sound      end (250 ms)",
        "leds       ",
    ):
        assert expected in text, f"{expected!r} missing from the demo timeline:\n{text}"
    assert text.index("countdown  5") < text.index("countdown  1")
    # The wake sound at the wake, the end sound after the last tick and the close.
    assert text.index("wake word  hey_jarvis") < text.index("sound      wake")
    assert text.index("sound      wake") < text.index("session    connected")
    assert text.index("session    closed (inactivity)") < text.index("sound      end")
    assert (tmp_path / "answer.wav").stat().st_size > 24000


async def test_no_key_warns_at_start_up_and_each_wake_is_an_auth_error(tmp_path: Path) -> None:
    """Issue 17: no traceback from an asyncio callback, no silent idle; the start-up
    summary says what opened and that no key was found."""
    cfg = _write_config(
        tmp_path / "config.toml", "wss://api.openai.com/v1/realtime", tmp_path / "out.wav"
    )
    d = await _start(cfg)
    try:
        warn = await d.wait_for(lambda r: "no OpenAI API key" in r.get("msg", ""))
        assert warn["level"] == "warning"
        assert "openai-api-key" in warn["msg"] and "OPENAI_API_KEY" in warn["msg"]
        summary = await d.wait_for(lambda r: " ready: mic " in r.get("msg", ""))
        assert summary["level"] == "info"
        for part in ("demo.wav", "16000 Hz", "hey_jarvis>=0.5", "api.openai.com", "gpt-realtime"):
            assert part in summary["msg"], summary["msg"]
        assert summary["msg"].endswith("API key not found")
        err = await d.wait_for(lambda r: r.get("event") == "error", 40)
        assert (err["kind"], err["code"]) == ("auth", "missing_api_key"), err
        await d.wait_for(lambda r: r.get("event") == "state_changed" and r["state"] == "error")
        await d.wait_for(
            lambda r: (
                r.get("event") == "state_changed"
                and r["state"] == "idle"
                and r["previous"] == "error"
            )
        )
    finally:
        if d.proc.returncode is None:
            d.proc.send_signal(signal.SIGTERM)
    assert await d.finish() == 0
    assert not any("Traceback" in line for line in d.raw), "\n".join(d.raw)
