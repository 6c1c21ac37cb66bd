"""Command tools from config: a fixed argv with validated arguments substituted.

No shell is involved: each ``{param}`` is replaced inside its own argv element,
so a value can never become a second command or a redirection. A value that
fills a whole element may not start with "-" (no smuggled options). The
process runs in its own session and is killed, with its children, on timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from typing import Any

from daemon.config import CommandToolConfig, ToolParamConfig

from .tools import FunctionTool, ToolArgumentError

PLACEHOLDER = re.compile(r"\{(\w+)\}")
OUTPUT_LIMIT = 64 * 1024  # bytes read from stdout/stderr


class CommandFailed(RuntimeError):
    """The command exited non-zero; the message carries the status and stderr's tail."""


def param_schema(p: ToolParamConfig) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": p.type}
    if p.description:
        schema["description"] = p.description
    if p.enum:
        schema["enum"] = list(p.enum)
    if p.pattern:
        schema["pattern"] = p.pattern
    if len(p.range) == 2:
        lo, hi = p.range
        if p.type == "integer":  # TOML gives floats; keep the schema's numbers integral
            schema["minimum"], schema["maximum"] = int(lo), int(hi)
        else:
            schema["minimum"], schema["maximum"] = lo, hi
    return schema


def command_schema(cfg: CommandToolConfig) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: param_schema(p) for name, p in cfg.parameters.items()},
        "required": [name for name, p in cfg.parameters.items() if p.required],
        "additionalProperties": False,
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_argv(cfg: CommandToolConfig, args: dict[str, Any]) -> list[str]:
    """The argv with ``{name}`` replaced; optional arguments left out become ""."""
    argv: list[str] = []
    for element in cfg.argv:
        whole = PLACEHOLDER.fullmatch(element)
        for m in PLACEHOLDER.finditer(element):
            value = _text(args.get(m.group(1), ""))
            if "\x00" in value:
                raise ToolArgumentError(f"arguments.{m.group(1)}: NUL characters are not allowed")
            if whole is not None and value.startswith("-"):
                raise ToolArgumentError(
                    f"arguments.{m.group(1)}: may not start with '-' (got {value!r})"
                )
        argv.append(PLACEHOLDER.sub(lambda m: _text(args.get(m.group(1), "")), element))
    return argv


async def run_command(argv: list[str], timeout: float) -> str:
    """Run ``argv`` (no shell); stdout on success, CommandFailed/TimeoutError otherwise."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: a timeout kills the children too
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await proc.wait()
        raise
    stdout = out[:OUTPUT_LIMIT].decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        tail = err[-400:].decode("utf-8", "replace").strip()
        raise CommandFailed(
            f"{os.path.basename(argv[0])} exited with status {proc.returncode}"
            + (f": {tail}" if tail else "")
        )
    return stdout or json.dumps({"ok": True})


def command_tool(cfg: CommandToolConfig) -> FunctionTool:
    """A FunctionTool running ``cfg.argv``; the runtime applies ``cfg.timeout``."""

    async def run(**args: Any) -> str:
        return await run_command(build_argv(cfg, args), cfg.timeout)

    return FunctionTool(
        name=cfg.name,
        description=cfg.description,
        parameters=command_schema(cfg),
        func=run,
        needs_approval=cfg.needs_approval,
        # The runtime's timeout is a backstop a little after the command's own.
        timeout=cfg.timeout + 1.0,
    )
