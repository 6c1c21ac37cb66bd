"""Log levels that serve an operator: `voicepi run` as a process, its JSON log parsed.

At info: state, wake, session, transcripts, errors, each once. At debug: also the raw
transport events (bulk audio elided), LED changes and history detail, but not one
websocket line per 20 ms audio frame.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from daemon import events as ev
from daemon.realtime.simulator import Simulator
from tests.test_run_cli import _start, _write_config


async def test_debug_log_has_transport_events_not_audio_frames(tmp_path: Path) -> None:
    async with Simulator(transcripts=["what's the weather like today"]) as sim:
        cfg = _write_config(
            tmp_path / "c.toml", sim.url, tmp_path / "out.wav", '[logging]\nlevel = "debug"\n'
        )
        d = await _start(cfg)
        try:
            await d.wait_for(lambda r: r.get("event") == "audio_stopped", 60)
            await d.wait_for(lambda r: r.get("server_event") == "response.done", 30)
        finally:
            if d.proc.returncode is None:
                d.proc.send_signal(signal.SIGTERM)
        assert await d.finish() == 0
    transport = d.events("transport_event")
    kinds = {r["server_event"] for r in transport}
    assert {"session.created", "response.output_audio.delta", "response.done"} <= kinds, kinds
    delta = next(r for r in transport if r["server_event"] == "response.output_audio.delta")
    assert delta["delta"].startswith("<") and delta["delta"].endswith(" chars>"), delta
    assert all("pattern" in r for r in d.events("led_changed")) and d.events("led_changed")
    assert all(isinstance(r["items"], int) for r in d.events("history_updated"))
    frames = [line for line in d.raw if "input_audio_buffer.append" in line]
    assert frames == [], f"{len(frames)} audio frame lines, e.g. {frames[0][:200]}"
    assert not any(len(line) > 4000 for line in d.raw), "a log line carries bulk audio"


async def test_a_mic_failure_is_one_record(tmp_path: Path) -> None:
    async with Simulator() as sim:
        cfg = _write_config(tmp_path / "c.toml", sim.url, tmp_path / "out.wav")
        cfg.write_text(cfg.read_text().replace('input = "file:', 'input = "file:/nonexistent'))
        d = await _start(cfg)
        try:
            await d.wait_for(lambda r: r.get("event") == "error")
            await d.wait_for(lambda r: r.get("event") == "state_changed" and r["state"] == "error")
        finally:
            if d.proc.returncode is None:
                d.proc.send_signal(signal.SIGTERM)
        await d.finish()
    about_mic = [r for r in d.records if "nonexistent" in str(r.get("msg", ""))]
    assert len(about_mic) == 1 and about_mic[0]["event"] == "error", about_mic


def test_mcp_tools_changed_names_the_tools() -> None:
    from daemon.logsetup import event_fields

    event = ev.McpToolsChanged(
        tools=(
            ev.McpTool(server_label="recipes", name="search"),
            ev.McpTool(server_label="recipes", name="get"),
        )
    )
    assert event_fields(event)["tools"] == ["recipes.search", "recipes.get"]


async def test_a_speaker_that_dies_mid_run_is_one_error_and_exit_1(tmp_path: Path) -> None:
    """A private PulseAudio server is the sound card; killing it kills the output stream."""
    import os
    import sys

    from tests.pulse import PulseServer
    from tests.test_run_cli import ROOT, Daemon, _env

    server = PulseServer(tmp_path / "pulse")
    server.start()
    try:
        async with Simulator() as sim:
            cfg = _write_config(tmp_path / "c.toml", sim.url, tmp_path / "unused.wav")
            cfg.write_text(cfg.read_text().replace(f'output = "file:{tmp_path}/unused.wav"', ""))
            cfg.write_text(cfg.read_text().replace("[audio]\n", '[audio]\noutput = "pulse"\n'))
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "daemon.cli", "run", "--config", str(cfg), "--log-format", "json"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env={**_env(), **server.env},
                cwd=ROOT,
            )
            d = Daemon(proc)
            try:
                await d.wait_for(
                    lambda r: r.get("event") == "state_changed" and r["state"] == "idle"
                )
                server.stop()  # the card is gone
                err = await d.wait_for(lambda r: r.get("event") == "error", 20)
                assert err["type"] == "speaker_unavailable", err
                assert await d.finish() == 1
            finally:
                if d.proc.returncode is None:
                    d.proc.send_signal(signal.SIGTERM)
                    await d.finish()
    finally:
        server.stop()
    assert len(d.events("error")) == 1, d.events("error")
    assert not any("Traceback" in line for line in d.raw), "\n".join(d.raw)
    assert os.environ.get("PULSE_SERVER") != server.env["PULSE_SERVER"]
