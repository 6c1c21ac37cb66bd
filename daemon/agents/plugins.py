"""Plugin tools from the entry point group ``voicepi.tools``.

A package declares e.g. ``[project.entry-points."voicepi.tools"] weather =
"mypkg.tools:weather"``; the object may be a FunctionTool, a plain callable
(wrapped by ``function_tool``) or a list of those. A broken plugin is
reported and skipped: it never stops the daemon.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from .tools import FunctionTool, as_tool

log = logging.getLogger(__name__)
GROUP = "voicepi.tools"


def load_plugin_tools(group: str = GROUP) -> tuple[list[FunctionTool], list[str]]:
    """(tools, problems): every tool the installed plugins offer, and what failed."""
    tools: list[FunctionTool] = []
    problems: list[str] = []
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
            items = obj if isinstance(obj, list | tuple) else [obj]
            tools.extend(as_tool(item) for item in items)
        except Exception as exc:  # a third-party plugin must not take the daemon down
            problem = f"plugin tool {ep.name!r} ({ep.value}): {type(exc).__name__}: {exc}"
            log.warning("%s", problem)
            problems.append(problem)
    return tools, problems
