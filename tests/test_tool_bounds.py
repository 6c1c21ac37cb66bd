"""Issue 14: command tools are bounded (output, processes, time) and never see or leak the key.

Real subprocesses throughout; the e2e case runs through RealtimeSession against the
simulator on loopback, so "the model's input" is what the server really received.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from daemon import config
from daemon.agents import AgentRuntime, ToolArgumentError
from daemon.agents.command import build_argv, command_tool, run_command
from daemon.config import ConfigError
from daemon.realtime.session import RealtimeSession
from daemon.realtime.simulator import Simulator

pytestmark = pytest.mark.timeout(60)

KEY = "sk-test-" + "Zq9" * 16  # looks like a key, is not one


async def until(cond: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def runtime_for(tools: list[dict[str, Any]], **tooling: Any) -> AgentRuntime:
    cfg = config.parse({"tools": tools, "tooling": {"plugins": False, **tooling}})
    return AgentRuntime.from_config(cfg)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"


# --------------------------------------------------------------------------- output cap


def test_flooding_tool_keeps_peak_rss_bounded() -> None:
    """300 MB on stdout: the reader stops at the cap and kills the tool (main buffered it all,
    +384 MB RSS). Measured in a fresh interpreter so the figure is the tool path's alone."""
    script = textwrap.dedent(
        r"""
        import asyncio, json, re
        from daemon.agents.command import run_command
        out = asyncio.run(run_command(["head", "-c", "300000000", "/dev/zero"], 30.0))
        # VmHWM: this process's own peak. ru_maxrss would carry the parent's peak across
        # the fork and exec (Linux keeps it), i.e. the whole test suite's.
        status = open("/proc/self/status").read()
        peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024
        print(json.dumps({"peak_mb": peak, "chars": len(out), "tail": out[-80:]}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=50, check=True
    )
    result = json.loads(done.stdout)
    assert result["peak_mb"] < 100, result
    assert result["chars"] <= 4000
    assert "output cut at 4000 characters" in result["tail"]


async def test_output_past_the_cap_is_cut_with_a_note_and_the_tool_killed(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "finished"
    # Writes 10000 characters, then would touch the marker: the cap kills it first.
    script = f"head -c 10000 /dev/zero | tr '\\0' x; sleep 5; touch {marker}"
    out = await run_command(["/bin/sh", "-c", script], 20.0, max_output_chars=500)
    assert len(out) == 500 and out.startswith("x" * 400)
    assert out.endswith("[output cut at 500 characters: the command was stopped]")
    assert not marker.exists()


# --------------------------------------------------------------------------- process bound


async def test_100_parallel_calls_never_exceed_the_process_bound(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    rt = runtime_for(
        [
            {
                "name": "wait",
                "argv": ["/bin/sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.02; done; echo done"],
                "timeout": 50,
            }
        ],
        max_processes=3,
    )
    fds_before = len(os.listdir("/proc/self/fd"))
    calls = [asyncio.create_task(rt.tool_runner.run("wait", "{}", f"call_{i}")) for i in range(100)]
    try:
        await until(lambda: sum(c.done() for c in calls) >= 97)
        busy = [json.loads(c.result())["error"] for c in calls if c.done()]
        assert len(busy) == 97 and all("3 tool commands are running already" in b for b in busy)
        shells = [
            p for p in os.listdir("/proc") if p.isdigit() and _is_child_shell(int(p), str(flag))
        ]
        assert len(shells) == 3
        assert len(os.listdir("/proc/self/fd")) - fds_before <= 3 * 3  # 2 pipes + a pidfd each
    finally:
        flag.touch()  # whatever happened, every shell ends
        outputs = await asyncio.gather(*calls)
    assert sum(o == "done" for o in outputs) == 3
    # The slots are free again: the next call runs.
    assert await rt.tool_runner.run("wait", "{}", "call_x") == "done"


def _is_child_shell(pid: int, marker: str) -> bool:
    """A live child of this process running the tool (the suite has other children:
    the PulseAudio server, its feeders)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    fields = stat[stat.rfind(b")") + 2 :].split()
    alive_child = int(fields[1]) == os.getpid() and fields[0] != b"Z"
    return alive_child and marker.encode() in cmdline


# --------------------------------------------------------------------------- timeout


async def test_timeout_kills_a_setsid_grandchild_and_names_the_configured_seconds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pidfile = tmp_path / "pid"
    rt = runtime_for(
        [
            {
                "name": "hang",
                "argv": ["/bin/sh", "-c", f"setsid sleep 300 & echo $! > {pidfile}; sleep 300"],
                "timeout": 0.5,
            }
        ]
    )
    caplog.set_level(logging.WARNING)
    out = await rt.tool_runner.run("hang", "{}", "call_1")
    assert json.loads(out) == {"error": "The hang tool did not finish within 0.5 seconds."}
    assert "timed out after 0.5 s" in caplog.text
    grandchild = int(pidfile.read_text())
    try:
        await until(lambda: not _alive(grandchild), 10.0)
    finally:
        if _alive(grandchild):  # main's behaviour: do not leave it behind
            os.kill(grandchild, 9)


# --------------------------------------------------------------------------- secrets


async def test_the_key_never_reaches_a_tool_its_output_the_model_or_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "openai-api-key").write_text(KEY + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.invalid:3128")
    monkeypatch.setenv("VOICEPI_TEST_SETTING", "visible")
    cfg = config.parse(
        {
            "tools": [
                {"name": "show_env", "argv": ["/usr/bin/env"]},
                # A diagnostic tool that happens to print the credential file.
                {"name": "leak", "argv": ["/bin/cat", str(creds / "openai-api-key")]},
                {"name": "leak_err", "argv": ["/bin/sh", "-c", f"echo {KEY} >&2; exit 1"]},
            ],
            "tooling": {"plugins": False},
        }
    )
    rt = AgentRuntime.from_config(cfg)
    caplog.set_level(logging.DEBUG)
    env_out = await rt.tool_runner.run("show_env", "{}", "c1")
    lines = dict(line.split("=", 1) for line in env_out.splitlines())
    hidden = {"OPENAI_API_KEY", "CREDENTIALS_DIRECTORY", "HTTPS_PROXY", "VOICEPI_TEST_SETTING"}
    assert hidden.isdisjoint(lines)
    assert "PATH" in lines

    calls = {"env": ("show_env", {}), "file": ("leak", {}), "stderr": ("leak_err", {})}
    async with Simulator(function_calls=calls, speech="tone", realtime_factor=8.0) as sim:
        session = RealtimeSession(
            rt.settings(), url=sim.url, api_key=None, tool_runner=rt.tool_runner
        )
        rt.attach(session)
        seen: list[str] = []  # agent_tool_end outputs (what is logged)
        session.on("agent_tool_end", lambda _agent, _tool, _id, output, _err: seen.append(output))
        await session.connect()
        ends: list[str] = []
        session.on("agent_end", lambda *_: ends.append("end"))
        for i, trigger in enumerate(calls):
            session.send_text(f"use the {trigger}")
            # the call's response, then the answer to its output
            await until(lambda i=i: len(seen) > i and len(ends) >= 2 * (i + 1))
        await session.close()
        received = json.dumps(sim.sessions[0].client_messages)
    assert sum("***" in o for o in seen) == 2  # the leaked key was there, and masked
    assert KEY not in received  # the model's input
    assert all(KEY not in o for o in seen)
    assert KEY not in caplog.text


async def test_tool_env_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEPI_TEST_SETTING", "visible")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cfg = _tool({}, ["/usr/bin/env"])
    tool = command_tool(config.replace(cfg, env=("VOICEPI_TEST_SETTING",)))
    lines = dict(line.split("=", 1) for line in (await tool.invoke({})).splitlines())
    assert lines["VOICEPI_TEST_SETTING"] == "visible" and "OPENAI_API_KEY" not in lines


def test_the_key_may_not_be_allow_listed() -> None:
    for name in ("OPENAI_API_KEY", "CREDENTIALS_DIRECTORY"):
        with pytest.raises(ConfigError, match=rf"tools\[0\]\.env\[0\]: {name} is never passed"):
            config.parse({"tools": [{"name": "t", "argv": ["/bin/true"], "env": [name]}]})


# --------------------------------------------------------------------------- argument rules


def _tool(parameters: dict[str, Any], argv: list[str]) -> config.CommandToolConfig:
    return config.parse({"tools": [{"name": "t", "argv": argv, "parameters": parameters}]}).tools[0]


async def test_negative_numbers_in_range_are_valid() -> None:
    cfg = _tool({"step": {"type": "integer", "range": [-10, 10]}}, ["/bin/echo", "{step}"])
    tool = command_tool(cfg)
    assert await tool.invoke(tool.parse('{"step": -5}')) == "-5"
    with pytest.raises(ToolArgumentError, match="expected -10 to 10"):
        tool.parse('{"step": -11}')
    # A string that fills an element still may not pass for an option.
    text = _tool({"word": {"type": "string"}}, ["/bin/echo", "{word}"])
    with pytest.raises(ToolArgumentError, match="may not start with '-'"):
        build_argv(text, {"word": "-5"})


async def test_a_path_parameter_stays_inside_its_base_dir(tmp_path: Path) -> None:
    base = tmp_path / "notes"
    (base / "sub").mkdir(parents=True)
    (base / "sub" / "today.txt").write_text("buy milk")
    (tmp_path / "secret.txt").write_text("secret")
    (base / "escape").symlink_to(tmp_path / "secret.txt")
    cfg = _tool({"file": {"type": "path", "base_dir": str(base)}}, ["/bin/cat", "{file}"])
    tool = command_tool(cfg)
    assert tool.schema()["parameters"]["properties"]["file"] == {"type": "string"}
    assert await tool.invoke(tool.parse('{"file": "sub/today.txt"}')) == "buy milk"
    for bad, why in [
        ("../secret.txt", "'..' is not allowed"),
        ("sub/../../secret.txt", "'..' is not allowed"),
        (str(tmp_path / "secret.txt"), "absolute paths are not allowed"),
        ("escape", "leads outside"),
    ]:
        with pytest.raises(ToolArgumentError, match=why):
            build_argv(cfg, {"file": bad})
    with pytest.raises(ConfigError, match=r"parameters\.file\.base_dir: a \"path\" parameter"):
        _tool({"file": {"type": "path"}}, ["/bin/cat", "{file}"])
