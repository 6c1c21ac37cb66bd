"""hypothesis: random and mutated server events never raise out of the engine.

Valid events come from the scripts (tests/engine_script.py); mutations drop
keys, swap values for random JSON of any type, and swap event types. The
engine must turn whatever it cannot use into ``error`` events, never crash
inside a handler (its catch-all "could not handle" error counts as a bug
here), and every client message it produces meanwhile must still pass the
protocol oracle (the conftest fixture checks ``data_to_send``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import events as ev
from daemon.realtime.engine import GA_SERVER_EVENTS, RealtimeProtocol, normalise
from daemon.realtime.settings import SessionSettings
from tests import engine_script as S

POOL: list[dict[str, Any]] = [
    S.session_created(),
    S.session_updated(),
    S.speech_started(),
    S.speech_stopped(),
    S.committed(),
    S.user_item_added(),
    S.user_transcript(),
    *S.answer(ms=60),
    *S.function_call(),
    S.error("session_expired"),
    S.error("conversation_already_has_active_response", event_id="voicepi_create_1"),
    S.response_done(status="cancelled", output=[S.assistant_item("item_a1", "incomplete", "x")]),
    S._ev(
        {
            "type": "conversation.item.truncated",
            "item_id": "item_a1",
            "content_index": 0,
            "audio_end_ms": 20,
        }
    ),
    S._ev({"type": "conversation.item.deleted", "item_id": "item_a1"}),
]
POOL += [S.beta(e) for e in POOL]
TYPES = sorted(GA_SERVER_EVENTS | {e["type"] for e in POOL})

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path into ``obj``."""
    out: list[tuple[Any, ...]] = []
    items: list[tuple[Any, Any]] = []
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, list):
        items = list(enumerate(obj))
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    event = copy.deepcopy(draw(st.sampled_from(POOL)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(event)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = event
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = draw(st.sampled_from(["drop", "replace", "retype", "type"]))
        if op == "drop":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(json_values)
        elif op == "retype":  # the same key, a wrong type
            parent[key] = draw(st.sampled_from([None, 0, -1, 1.5, True, "", "x", [], {}]))
        else:
            event["type"] = draw(st.sampled_from(TYPES))
    return event


server_events = (
    mutated_events()
    | st.sampled_from(POOL)
    | st.dictionaries(st.text(max_size=10), json_values, max_size=5)
)

local_ops = st.one_of(
    st.tuples(
        st.just("progress"), st.sampled_from(["item_a1", "item_x", ""]), st.integers(0, 10**7)
    ),
    st.tuples(st.just("finished"), st.sampled_from(["item_a1", "item_x"])),
    st.tuples(st.just("interrupt")),
    st.tuples(st.just("audio"), st.integers(0, 3000)),
    st.tuples(st.just("create")),
    st.tuples(st.just("tool_output"), st.sampled_from(["call_1", "call_x"])),
    st.tuples(st.just("text")),
)


def _local(p: RealtimeProtocol, op: tuple[Any, ...]) -> None:
    match op:
        case ("progress", item_id, samples):
            p.playback_progress(item_id, samples)
        case ("finished", item_id):
            p.playback_finished(item_id)
        case ("interrupt",):
            p.interrupt()
        case ("audio", n):
            p.send_audio(bytes(n))
        case ("create",):
            p.create_response()
        case ("tool_output", call_id):
            p.send_tool_output(call_id, '{"ok": true}')
        case ("text",):
            p.send_text("hello")


def _check(events: list[ev.Event]) -> None:
    for e in events:
        assert isinstance(e, ev.Event) and e.type in ev.EVENT_TYPES
        if isinstance(e, ev.Error):
            # the catch-all in receive_event means a handler crashed: a bug
            assert not e.error.message.startswith("could not handle"), e.error.message


def _check_sent(msgs: list[dict[str, Any]]) -> None:
    for m in msgs:  # the conftest oracle validated shapes; values must make sense too
        if m["type"] == "conversation.item.truncate":
            assert isinstance(m["audio_end_ms"], int) and m["audio_end_ms"] >= 0


FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(st.lists(st.one_of(server_events, local_ops), max_size=40))
def test_mutated_event_sequences_never_raise(steps: list[Any]) -> None:
    p = S.configured(SessionSettings(interrupt_response=False))
    for step in steps:
        if isinstance(step, dict):
            p.receive_event(step)
        else:
            _local(p, step)
        _check(p.events_received())
        _check_sent(p.data_to_send())
    p.connection_lost(1006, "")
    final = p.events_received()
    assert final and isinstance(final[-1], ev.AgentStopped) and final[-1].code == 1006
    # an abnormal drop, unless a session_expired error came first
    assert final[-1].reason in ("connection_lost", "session_expired")
    assert p.data_to_send() == []


@FUZZ
@given(server_events)
def test_each_bad_event_yields_an_error_instead(event: dict[str, Any]) -> None:
    p = S.configured()
    p.receive_event(event)
    out = p.events_received()
    _check(out)
    t = normalise(event).get("type")
    errors = [e for e in out if isinstance(e, ev.Error)]
    if not isinstance(t, str):
        assert [e.error.type for e in errors] == ["invalid_event"]
    elif t not in GA_SERVER_EVENTS:
        assert [e.error.type for e in errors] == ["unknown_event"]
    # every dict that reached the engine is visible raw, normalised
    assert isinstance(out[0], ev.TransportEvent) and out[0].data == normalise(event)
    _check_sent(p.data_to_send())


@FUZZ
@given(
    st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60),
        mutated_events().map(json.dumps),
        json_values.map(json.dumps),
        mutated_events().map(lambda e: json.dumps(e).encode()),
    )
)
def test_random_frames_never_raise_and_bad_ones_are_errors(frame: str | bytes) -> None:
    p = S.configured()
    p.receive_text(frame)
    out = p.events_received()
    _check(out)
    try:
        decoded = json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError):
        decoded = None
        assert [e.error.type for e in out if isinstance(e, ev.Error)] == ["invalid_frame"]
    if decoded is not None and not isinstance(decoded, dict):
        assert [e.error.type for e in out] == ["invalid_event"]  # and nothing else
    _check_sent(p.data_to_send())


@FUZZ
@given(json_values.filter(lambda v: not isinstance(v, dict)))
def test_non_objects_given_to_receive_event_are_errors(value: Any) -> None:
    p = S.configured()
    p.receive_event(value)
    out = p.events_received()
    assert [e.type for e in out] == ["error"]
    assert isinstance(out[0], ev.Error) and out[0].error.type == "invalid_event"
