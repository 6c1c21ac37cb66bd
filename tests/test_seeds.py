"""The seed documents' event vocabulary exists in code and in the README.

The names are copied here as literals (so this test runs from a bare clone);
when the seed directory (../shared/seeds) is present, they are also parsed
from it and must match the literals.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from daemon import events as ev
from daemon.listener import AgentListener, dispatch

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The seed documents are vendored so the check runs in any checkout; the shared
# originals, where present, must still match the copy.
SEEDS = ROOT / "tests" / "fixtures" / "seeds"
SHARED_SEEDS = ROOT.parent / "shared" / "seeds"

# 000: TypeScript RealtimeSessionEventTypes (emitter events)
SEED_000 = {
    "agent_end",
    "agent_handoff",
    "agent_start",
    "agent_tool_end",
    "agent_tool_start",
    "audio",
    "audio_interrupted",
    "audio_start",
    "audio_stopped",
    "error",
    "guardrail_tripped",
    "history_added",
    "history_updated",
    "tool_approval_requested",
    "transport_event",
}
# 001: the newer version adds the MCP events
SEED_001 = SEED_000 | {"mcp_tool_call_completed", "mcp_tools_changed"}
# 002: Python realtime session events (``type`` literals; some are aliases here)
SEED_002 = {
    "agent_end",
    "agent_start",
    "audio",
    "audio_end",
    "audio_interrupted",
    "error",
    "guardrail_tripped",
    "handoff",
    "history_added",
    "history_updated",
    "raw_model_event",
    "tool_end",
    "tool_start",
}
# 003: listener methods -> (the event they receive, the seed's parameter names)
SEED_003: dict[str, tuple[str, tuple[str, ...]]] = {
    "on_agent_error": ("error", ("error",)),
    "on_agent_interrupted": ("audio_interrupted", ()),
    "on_agent_session_connected": ("session_connected", ()),
    "on_agent_starting": ("agent_starting", ()),
    "on_agent_stopped": ("agent_stopped", ()),
    "on_assistant_started_responding": ("audio_start", ()),
    "on_assistant_stopped_responding": ("audio_stopped", ()),
    "on_assistant_transcript": ("assistant_transcript", ("transcript",)),
    "on_assistant_transcript_delta": ("assistant_transcript_delta", ("delta",)),
    "on_subagent_finished": ("subagent_finished", ("agent_name",)),
    "on_subagent_started": ("subagent_started", ("agent_name",)),
    "on_user_inactivity_countdown": ("user_inactivity_countdown", ("remaining_seconds",)),
    "on_user_started_speaking": ("user_started_speaking", ()),
    "on_user_stopped_speaking": ("user_stopped_speaking", ()),
    "on_user_transcript": ("user_transcript", ("transcript",)),
}
ALL_NAMES = SEED_001 | SEED_002 | {event for event, _ in SEED_003.values()}


# --------------------------------------------------------------------------- parsing the seeds


def _seed(prefix: str) -> str:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


def parse_000(text: str) -> set[str]:
    return {m.replace("\\_", "_") for m in re.findall(r"^### ([a-z\\_]+)$", text, re.M)}


def parse_001(text: str) -> set[str]:
    titled = set(re.findall(r"Section titled “([a-z_]+)”", text))
    return titled | set(re.findall(r"^([a-z_]+): \[", text, re.M))


def parse_002(text: str) -> set[str]:
    return set(re.findall(r'type: Literal\["([a-z_]+)"\]', text))


def parse_003(text: str) -> dict[str, tuple[str, ...]]:
    """Method name -> parameter names, from the signature lines (may span lines)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, params in re.findall(r"^(on_[a-z_]+)\(([^)]*)\)", text, re.M):
        out[name] = tuple(p.split(":")[0].strip() for p in params.split(",") if p.strip())
    return out


@pytest.fixture(scope="module")
def seeds_dir() -> Path:
    assert SEEDS.is_dir(), f"vendored seed documents missing at {SEEDS}"
    return SEEDS


def test_the_vendored_seeds_match_the_shared_originals() -> None:
    if not SHARED_SEEDS.is_dir():
        return  # a checkout outside the shared workspace: the vendored copy is the reference
    shared = {p.name: p.read_bytes() for p in SHARED_SEEDS.iterdir() if p.is_file()}
    vendored = {p.name: p.read_bytes() for p in SEEDS.iterdir() if p.is_file()}
    assert vendored == shared, "tests/fixtures/seeds is out of date: copy ../shared/seeds"


def test_the_literals_match_the_seed_documents(seeds_dir: Path) -> None:
    assert parse_000(_seed("000")) == SEED_000
    assert parse_001(_seed("001")) == SEED_001
    assert parse_002(_seed("002")) == SEED_002
    assert parse_003(_seed("003")) == {m: params for m, (_, params) in SEED_003.items()}


def test_the_parsers_can_fail() -> None:
    assert parse_000("### audio\\_start\n### agent\\_end\n") == {"audio_start", "agent_end"}
    assert parse_001("Section titled “audio_start”\naudio: [X];\n") == {"audio_start", "audio"}
    assert parse_002('type: Literal["tool_end"] = "tool_end"') == {"tool_end"}
    assert parse_003("on_x(\n    a: int,\n) -> None\non_y() -> None") == {
        "on_x": ("a",),
        "on_y": (),
    }


# --------------------------------------------------------------------------- code


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_every_seed_event_exists_in_the_vocabulary(name: str) -> None:
    assert name in ev.EVENT_TYPES or name in ev.ALIASES, name
    assert ev.canonical(name) in ev.EVENT_TYPES


def _instance(cls: type[ev.Event]) -> ev.Event:
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kw[f.name] = (
                ev.ErrorInfo(type="t", message="m")
                if f.name == "error"
                else ev.HistoryItem(item_id="i", kind="message", role="user")
            )
    return cls(**kw)


@pytest.mark.parametrize("method", sorted(SEED_003))
async def test_listener_methods_have_the_seed_signature_and_receive_their_event(
    method: str,
) -> None:
    event_name, params = SEED_003[method]
    fn = getattr(AgentListener, method)
    assert inspect.iscoroutinefunction(fn)
    assert tuple(inspect.signature(fn).parameters)[1:] == params
    calls: list[tuple[str, tuple[Any, ...]]] = []

    class Recording(AgentListener):
        async def on_event(self, event: ev.Event) -> None:
            calls.append(("on_event", (event,)))

    async def record(self: AgentListener, *args: Any) -> None:
        calls.append((method, args))

    setattr(Recording, method, record)
    event = _instance(ev.EVENT_TYPES[event_name])
    await dispatch(Recording(), event)
    assert [name for name, _ in calls] == [method]
    expected = tuple(getattr(event, "error" if p == "error" else p) for p in params)
    assert calls[0][1] == expected


# --------------------------------------------------------------------------- README


def _section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"<!-- section:{name} -->\n(.*?)<!-- /section:{name} -->", text, re.S)
    assert m is not None, f"README has no {name} section"
    return m.group(1)


def _rows() -> dict[str, tuple[str, str]]:
    """Event table rows of the events section: name -> (fields cell, listener cell)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in _section("events").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`[a-z_]+`", cells[0]):
            rows[cells[0].strip("`")] = (cells[2], cells[3])
    return rows


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_every_seed_event_is_in_the_readme_events_section(name: str) -> None:
    text = _section("events")
    assert f"`{name}`" in text
    assert ev.canonical(name) in _rows()


def test_every_event_is_documented_with_its_fields_and_listener_method() -> None:
    rows = _rows()
    assert set(rows) == set(ev.EVENT_TYPES), "README events table vs daemon/events.py"
    by_event = {event: method for method, (event, _) in SEED_003.items()}
    for name, cls in ev.EVENT_TYPES.items():
        fields_cell, listener_cell = rows[name]
        fields = [f.name for f in dataclasses.fields(cls) if f.name != "type"]
        documented = re.findall(r"`([a-z_]+)`", fields_cell)
        assert documented == fields, f"{name}: README lists {documented}, code has {fields}"
        expected = by_event.get(name, "on_event")
        assert listener_cell.startswith(f"`{expected}"), f"{name}: {listener_cell}"
    for alias in ev.ALIASES:
        assert f"`{alias}`" in _section("events")
