"""Command tools from config: a fixed argv with validated arguments substituted.

No shell is involved: each ``{param}`` is replaced inside its own argv element,
so a value can never become a second command or a redirection. A string that
fills a whole element may not start with "-" (no smuggled options); a number
may be negative. A ``path`` parameter stays inside its ``base_dir``.

Bounds (issue 14): output is read as it comes and the process tree is killed at
the cap; at most ``tooling.max_processes`` commands run at once (more calls are
answered with an error at once); timeout, cap or cancellation kill the process
group and every descendant (also ones that called setsid). A command gets a
minimal environment (``tool_env``): never the API key or CREDENTIALS_DIRECTORY.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from daemon.config import FORBIDDEN_ENV, PLACEHOLDER, CommandToolConfig, ToolParamConfig

from .tools import FunctionTool, ToolArgumentError

# Environment every command tool gets (values from the daemon's own environment when set);
# anything else only through the tool's `env` allow-list. Never the secrets below.
BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
STDERR_TAIL = 400  # bytes of stderr kept for the failure message


class CommandFailed(RuntimeError):
    """The command exited non-zero; the message carries the status and stderr's tail."""


class ToolBusy(RuntimeError):
    """Too many command tool processes run already; the call was not started."""


class ProcessLimit:
    """A bound on concurrent command tool processes (``tooling.max_processes``).

    ``try_acquire()`` never waits: a call past the bound is answered at once with an
    error output instead of queueing behind slow commands.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_processes: expected at least 1, got {limit}")
        self.limit = limit
        self.running = 0
        self.peak = 0

    def try_acquire(self) -> bool:
        if self.running >= self.limit:
            return False
        self.running += 1
        self.peak = max(self.peak, self.running)
        return True

    def release(self) -> None:
        self.running -= 1


def tool_env(
    allow: tuple[str, ...] = (), environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a command tool: BASE_ENV plus the names in ``allow``, never a
    FORBIDDEN_ENV name; PATH defaults to DEFAULT_PATH and LANG to C.UTF-8."""
    env = os.environ if environ is None else environ
    out = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
    for name in (*BASE_ENV, *allow):
        if name in env and name not in FORBIDDEN_ENV:
            out[name] = env[name]
    return out


def param_schema(p: ToolParamConfig) -> dict[str, Any]:
    # A path is a string to the model; build_argv confines it.
    schema: dict[str, Any] = {"type": "string" if p.type == "path" else p.type}
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


def confined_path(base_dir: str, value: str, where: str) -> str:
    """``value`` as a path inside ``base_dir`` (absolute, symlinks resolved).

    Raises ToolArgumentError for an absolute path, a ``..`` component or anything
    that resolves outside the base directory (a symlink pointing out of it).
    """
    if not value:
        raise ToolArgumentError(f"{where}: expected a relative path, got ''")
    if os.path.isabs(value):
        raise ToolArgumentError(f"{where}: absolute paths are not allowed, got {value!r}")
    if ".." in value.replace("\\", "/").split("/"):
        raise ToolArgumentError(f"{where}: '..' is not allowed, got {value!r}")
    base = os.path.realpath(base_dir)
    full = os.path.realpath(os.path.join(base, value))
    if os.path.commonpath([base, full]) != base:
        raise ToolArgumentError(f"{where}: {value!r} leads outside {base_dir}")
    return full


def build_argv(cfg: CommandToolConfig, args: dict[str, Any]) -> list[str]:
    """The argv with ``{name}`` replaced; optional arguments left out become "".

    A ``path`` parameter becomes the confined absolute path. A string that fills a
    whole element may not start with "-" (no smuggled options); numbers may be
    negative (their range was checked).
    """
    values: dict[str, str] = {}
    for name, p in cfg.parameters.items():
        if name not in args:
            values[name] = ""
            continue
        where = f"arguments.{name}"
        value = _text(args[name])
        if "\x00" in value:
            raise ToolArgumentError(f"{where}: NUL characters are not allowed")
        if p.type == "path":
            value = confined_path(p.base_dir, value, where)
        values[name] = value
    argv: list[str] = []
    for element in cfg.argv:
        whole = PLACEHOLDER.fullmatch(element)
        if whole is not None:
            name = whole.group(1)
            param = cfg.parameters.get(name)
            numeric = param is not None and param.type in ("integer", "number")
            if values.get(name, "").startswith("-") and not numeric:
                raise ToolArgumentError(
                    f"arguments.{name}: may not start with '-' (got {_short(values[name])})"
                )
        argv.append(PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), element))
    return argv


def _short(value: str, limit: int = 80) -> str:
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} chars)"


def _process_tree(root: int) -> list[int]:
    """``root``'s descendants by parent pid (/proc), deepest last. A child that called
    setsid() left the process group but is still found here."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError), os.scandir("/proc") as it:
        for entry in it:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may contain spaces and parentheses.
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 1:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and every descendant, also ones that left the group
    with setsid(). Stopped first (SIGSTOP) so none forks a child we would miss.

    A process that double-forks *and* whose parent already exited was reparented to init
    and is out of reach: the unit's TasksMax= bounds those and `systemctl stop` ends them.
    """
    if pid <= 1:  # killpg(0) would stop the daemon's own group
        raise ValueError(f"kill_tree: not a child's pid: {pid}")
    seen: set[int] = set()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGSTOP)
    for _ in range(4):  # until no new descendant shows up
        new = [p for p in _process_tree(pid) if p not in seen]
        if not new:
            break
        for p in new:
            seen.add(p)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGSTOP)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for p in seen:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


class _Capture(asyncio.SubprocessProtocol):
    """Keeps at most ``cap`` bytes of stdout and the last STDERR_TAIL bytes of stderr;
    calls ``on_cap`` once when stdout goes past the cap (the rest is dropped)."""

    def __init__(self, cap: int, on_cap: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        self.cap = cap
        self.on_cap = on_cap
        self.out = bytearray()
        self.err = b""
        self.cut = False
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()  # exited, pipes closed

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        if fd == 2:
            self.err = (self.err + data)[-STDERR_TAIL:]
            return
        if self.cut:
            return
        room = self.cap - len(self.out)
        self.out += data[:room]
        if len(data) > room:
            self.cut = True
            self.on_cap()

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def cut_note(limit: int) -> str:
    return f"\n[output cut at {limit} characters: the command was stopped]"


async def run_command(
    argv: list[str],
    timeout: float,
    *,
    max_output_chars: int = 4000,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``argv`` (no shell) with a hard output cap and timeout; returns stdout.

    Output is read as it comes: past ``max_output_chars`` the process tree is killed
    and the result is the first characters plus a note that it was cut. A non-zero
    exit raises CommandFailed (with stderr's tail), the timeout TimeoutError (naming
    ``timeout``); either way, and on cancellation, the whole process tree is killed.
    When the command exits, whatever it left running in its process group is killed
    too. ``env`` defaults to ``tool_env()`` (no secrets).
    """
    loop = asyncio.get_running_loop()
    pid = 0

    def at_cap() -> None:
        if pid:  # else (output before subprocess_exec returned) right after it does
            kill_tree(pid)  # stop it now: the rest of its output is never read

    # UTF-8 needs at most 4 bytes a character: this many bytes always hold enough text.
    cap = 4 * max_output_chars
    transport, capture = await loop.subprocess_exec(
        lambda: _Capture(cap, at_cap),
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else tool_env(),
        start_new_session=True,  # its own process group: the kill reaches the children
    )
    pid = transport.get_pid()
    if capture.cut:
        kill_tree(pid)
    try:
        async with asyncio.timeout(timeout):
            await capture.exited
            # Background leftovers in its group would hold the pipes open: they end too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            await capture.closed
    except BaseException as exc:
        kill_tree(pid)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(capture.exited), 5.0)
        if isinstance(exc, TimeoutError):
            name = os.path.basename(argv[0])
            raise TimeoutError(f"{name} did not finish within {timeout:g} s") from None
        raise
    finally:
        transport.close()
    out, cut, err = bytes(capture.out), capture.cut, capture.err
    returncode = transport.get_returncode()
    text = out.decode("utf-8", "replace")
    if cut or len(text) > max_output_chars:
        note = cut_note(max_output_chars)
        return text[: max(0, max_output_chars - len(note))] + note
    if returncode != 0:
        tail = err.decode("utf-8", "replace").strip()
        raise CommandFailed(
            f"{os.path.basename(argv[0])} exited with status {returncode}"
            + (f": {tail}" if tail else "")
        )
    return text.strip() or json.dumps({"ok": True})


def command_tool(
    cfg: CommandToolConfig,
    *,
    limit: ProcessLimit | None = None,
    max_output_chars: int = 4000,
    environ: Mapping[str, str] | None = None,
) -> FunctionTool:
    """A FunctionTool running ``cfg.argv``.

    ``limit`` (shared by every command tool of a runtime) bounds the processes running
    at once; a call past it fails at once with ToolBusy. The environment is
    ``tool_env(cfg.env, environ)``; the runtime's timeout is ``cfg.timeout``, the one
    the model and the log are told about.
    """
    env = tool_env(cfg.env, environ)

    async def run(**args: Any) -> str:
        argv = build_argv(cfg, args)
        if limit is not None and not limit.try_acquire():
            raise ToolBusy(
                f"{limit.limit} tool commands are running already (tooling.max_processes); "
                "try again when one has finished"
            )
        try:
            return await run_command(argv, cfg.timeout, max_output_chars=max_output_chars, env=env)
        finally:
            if limit is not None:
                limit.release()

    return FunctionTool(
        name=cfg.name,
        description=cfg.description,
        parameters=command_schema(cfg),
        func=run,
        needs_approval=cfg.needs_approval,
        timeout=cfg.timeout,
    )
