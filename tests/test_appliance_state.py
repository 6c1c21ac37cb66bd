"""The appliance state derived from facts, and the transitions it reports."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon.appliance.state import ApplianceStateMachine, Facts, derive
from daemon.events import StateChanged


def test_a_whole_conversation_walks_the_design_states() -> None:
    sm = ApplianceStateMachine()
    steps = [
        ({"ready": True}, "idle"),
        ({"session": "connecting"}, "connecting"),
        ({"session": "connected"}, "listening"),
        ({"user_speaking": True}, "listening"),
        ({"user_speaking": False, "awaiting_response": True}, "thinking"),
        ({"awaiting_response": False, "response_active": True}, "thinking"),
        ({"playing": True}, "speaking"),
        ({"response_active": False}, "speaking"),  # response.done while the speaker drains
        ({"playing": False}, "listening"),
        ({"session": "none"}, "idle"),
    ]
    seen = []
    for changes, expected in steps:
        seen.extend(sm.update(**changes))
        assert sm.state == expected, changes
    assert [e.state for e in seen] == [
        "idle",
        "connecting",
        "listening",
        "thinking",
        "speaking",
        "listening",
        "idle",
    ]
    assert seen[0] == StateChanged(state="idle", previous="starting")


def test_tool_only_response_never_speaks() -> None:
    sm = ApplianceStateMachine()
    sm.update(ready=True, session="connected")
    sm.update(response_active=True)
    assert sm.state == "thinking"
    sm.update(response_active=False)
    assert sm.state == "listening"


def test_error_and_mute_override_everything() -> None:
    f = Facts(ready=True, session="connected", playing=True)
    assert derive(f) == "speaking"
    assert derive(Facts(ready=True, session="connected", playing=True, muted=True)) == "muted"
    assert derive(Facts(ready=True, muted=True, error="mic gone")) == "error"
    assert derive(Facts(ready=False)) == "starting"


def test_no_change_no_event() -> None:
    sm = ApplianceStateMachine()
    sm.update(ready=True)
    assert sm.update(user_speaking=False) == []


@given(
    st.lists(
        st.sampled_from(
            ["ready", "muted", "user_speaking", "response_active", "playing", "awaiting_response"]
        ),
        max_size=40,
    ),
    st.lists(st.sampled_from(["none", "connecting", "connected"]), max_size=40),
)
def test_state_always_matches_the_facts(flags: list[str], phases: list[str]) -> None:
    sm = ApplianceStateMachine()
    for i, flag in enumerate(flags):
        changes: dict[str, object] = {flag: not getattr(sm.facts, flag)}
        if i < len(phases):
            changes["session"] = phases[i]
        events = sm.update(**changes)
        assert sm.state == derive(sm.facts)
        for e in events:
            assert e.state != e.previous
