"""No stuck states, by construction (issue 17): a hypothesis property.

Any sequence of server events, at any pace, followed by server silence (the
link alive and answering pings, or dead) leaves the appliance ``listening`` or
``idle``: never ``thinking`` or ``speaking`` with nothing playing, and no item
left open on the speaker. Driven with an injected clock, no sleeps: the real
engine, the real liveness bookkeeping (asked at the deadlines it names, as the
transport does), the appliance's own event -> facts mapping and state
derivation. A tool call is answered as soon as it starts (a runner), and a
typed failure ends the session (the appliance closes it: idle).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import events as ev
from daemon.appliance.state import ApplianceStateMachine, session_facts
from daemon.realtime.liveness import Liveness, LivenessBounds
from tests import engine_script as S

RIDS = ("resp_1", "resp_2")
ITEMS = ("item_a1", "item_a2")


def _pool() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        S.speech_started(),
        S.speech_stopped(),
        S.committed(),
        S.user_transcript(),
        S.server_error(),
        S.error("input_audio_buffer_commit_empty"),
        S.error("response_cancel_not_active"),
        S.response_failed(),
    ]
    for rid in RIDS:
        out += [
            S.response_created(rid),
            S.response_done(rid),
            S.response_done(rid, status="cancelled"),
            *S.function_call(rid=rid, call_id=f"call_{rid}"),
        ]
        for item in ITEMS:
            out += [
                S.output_item_added(rid, item),
                S.audio_delta(S.pcm(40), rid, item),
                S.audio_done(rid, item),
                S.transcript_delta("hi ", rid, item),
                S.output_item_done(rid, item),
            ]
    return out


POOL = _pool()
steps = st.lists(
    st.tuples(st.sampled_from(POOL), st.floats(min_value=0.0, max_value=4.0)), max_size=25
)


class Run:
    """The engine, its liveness and the appliance's facts on one injected clock."""

    def __init__(self, bounds: LivenessBounds) -> None:
        self.now = 0.0
        self.p = S.configured()
        self.live = Liveness(bounds, self.now)
        self.sm = ApplianceStateMachine()
        self.sm.update(ready=True, session="connected")
        self.failed = False
        self.open_items: set[str] = set()
        self.errors: list[ev.ErrorInfo] = []

    def pump(self) -> None:
        self.p.data_to_send()
        for event in self.p.events_received():
            if isinstance(event, ev.AgentToolStart):
                self.p.send_tool_output(event.call_id, "{}")  # a runner answers at once
            elif isinstance(event, ev.AudioStart):
                self.open_items.add(event.item_id)
            elif isinstance(event, ev.AudioStopped):
                self.open_items.discard(event.item_id)
            elif isinstance(event, ev.Error):
                self.errors.append(event.error)
                self.failed |= event.error.kind is not None  # the appliance ends it: idle
            self.sm.update(**session_facts(event))
        if self.p.events_received():
            self.pump()

    def advance(self, seconds: float, *, pongs: bool) -> None:
        """Let ``seconds`` pass, acting at every deadline liveness names (the transport)."""
        end = self.now + seconds
        while not self.p.closed:
            verdict, at = self.live.check(self.now, self.p.expecting_server)
            if verdict == "ping" and pongs:
                self.live.pong(self.now)  # a live link answers (at once, on this clock)
            elif verdict == "dead":
                self.p.link_dead("no pong")
            elif verdict == "response_timeout":
                self.p.response_timed_out(self.live.bounds.response_timeout)
            self.pump()
            if verdict == "ok":
                if at > end:
                    break
                self.now = max(self.now, at)
        self.now = end

    def receive(self, event: dict[str, Any]) -> None:
        self.live.frame(self.now)
        self.p.receive_event(event)
        self.pump()


@settings(max_examples=300, deadline=None)
@given(steps=steps, pongs=st.booleans())
def test_any_server_events_then_silence_end_listening_or_idle(
    steps: list[tuple[dict[str, Any], float]], pongs: bool
) -> None:
    bounds = LivenessBounds()
    run = Run(bounds)
    for event, gap in steps:
        run.advance(gap, pongs=pongs)
        if run.p.closed:
            break
        run.receive(event)
    silence = bounds.response_timeout + bounds.answer_silence + bounds.pong_timeout + 1
    run.advance(silence, pongs=pongs)
    if run.p.closed or run.failed:
        return  # the session ends: the appliance shows the error, then idle
    assert not run.p.expecting_server
    assert not run.open_items, f"audio never stopped for {run.open_items}"
    assert run.sm.state == "listening", run.sm.facts


def test_the_issue_repros_end_in_a_known_state() -> None:
    """server_error mid-answer with no response.done; audio for an item never announced."""
    run = Run(LivenessBounds())
    for event in [S.response_created(), S.output_item_added(), S.audio_delta(S.pcm(200))]:
        run.receive(event)
    assert run.sm.state == "thinking" and run.open_items == {"item_a1"}
    run.receive(S.server_error())
    assert run.failed and not run.open_items and not run.p.expecting_server

    run = Run(LivenessBounds())
    run.receive(S.audio_delta(S.pcm(200), item_id="item_ghost"))
    assert not run.open_items  # dropped with an error: it can never hold the speaker
    assert [e.type for e in run.errors if "item_ghost" in e.message] == ["invalid_event"]
