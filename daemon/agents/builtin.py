"""Built-in tools: get_time, set_volume and end_session.

They act on the appliance through callbacks, so the same tools work on the
speaker, in the demo and in tests. The clock is injected.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated

from .tools import FunctionTool, function_tool


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def builtin_tools(
    *,
    set_volume: Callable[[int], object] | None,
    end_session: Callable[[], object] | None,
    now: Callable[[], dt.datetime] = _local_now,
) -> list[FunctionTool]:
    """The built-ins; a tool whose callback is None is left out."""

    @function_tool(name="get_time")
    def get_time() -> str:
        """Get the current local date and time (with weekday and time zone)."""
        t = now()
        return json.dumps(
            {
                "time": t.strftime("%H:%M"),
                "date": t.date().isoformat(),
                "weekday": t.strftime("%A"),
                "timezone": t.tzname() or "",
            }
        )

    tools = [get_time]
    if set_volume is not None:
        setter = set_volume

        @function_tool(name="set_volume")
        def set_volume_tool(percent: Annotated[int, "Volume from 0 (mute) to 100"]) -> str:
            """Set the speaker's playback volume in percent."""
            setter(percent)
            return json.dumps({"volume": percent})

        set_volume_tool.parameters["properties"]["percent"].update(minimum=0, maximum=100)
        tools.append(set_volume_tool)
    if end_session is not None:
        ender = end_session

        @function_tool(name="end_session")
        def end_session_tool() -> str:
            """End the conversation when the user says goodbye or is done.

            Say a short goodbye after calling it; the session closes once that has played.
            """
            ender()
            return json.dumps({"ok": True, "note": "Say a short goodbye; then the session ends."})

        tools.append(end_session_tool)
    return tools
