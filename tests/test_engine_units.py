"""The engine's sans-I/O units on their own: each change returns what it causes."""

from __future__ import annotations

from daemon import events as ev
from daemon.realtime import wire
from daemon.realtime.history import History
from daemon.realtime.playback import Cut, Playback
from daemon.realtime.responses import Phase, Responses
from daemon.realtime.tools import Tools

MS = 48  # bytes of PCM16 mono 24 kHz per millisecond


def test_playback_cuts_at_the_samples_played_capped_at_what_arrived() -> None:
    p = Playback()
    assert p.received("item_a", "resp_1", 100 * MS) == [ev.AudioStart(item_id="item_a")]
    assert p.received("item_a", "resp_1", 100 * MS) == []  # audio_start once per item
    p.progress("item_a", 2400)  # 100 ms
    p.progress("item_a", 1200)  # never goes back
    assert p.cut() == [Cut(item_id="item_a", response_id="resp_1", played_ms=100)]
    assert p.was_cut("item_a") and p.cut() == []  # nothing plays any more
    q = Playback()
    q.received("item_b", "resp_2", 50 * MS)
    q.progress("item_b", 24_000)  # the player claims more than arrived
    assert q.cut()[0].played_ms == 50


def test_playback_of_a_fully_played_item_is_not_cut() -> None:
    p = Playback()
    p.received("item_a", "resp_1", 20 * MS)
    assert p.audio_done("item_a") == [ev.AudioStopped(item_id="item_a")]
    assert p.audio_done("item_a") == []
    p.progress("item_a", 480)
    assert p.cut() == []


def test_playback_without_tracking_counts_received_audio_as_played() -> None:
    p = Playback(tracking=False)
    p.received("item_a", "resp_1", 60 * MS)
    assert p.cut()[0].played_ms == 60


def test_responses_never_two_at_once_and_a_lost_race_goes_first_again() -> None:
    r = Responses()
    (first,) = r.request({"instructions": "a"})
    assert r.phase is Phase.REQUESTED and first["event_id"] == "voicepi_create_1"
    assert r.request({"instructions": "b"}) == []  # queued behind the first
    r.retry("voicepi_create_1")  # conversation_already_has_active_response
    assert r.phase is Phase.IDLE
    assert r.created("resp_server") == [] and r.phase is Phase.ACTIVE
    assert r.finished("resp_server") == []
    (again,) = r.pump()
    assert again["response"] == {"instructions": "a"}


def test_responses_cancel_a_requested_one_once_it_is_created() -> None:
    r = Responses()
    r.request({})
    assert r.cancel() == []
    assert r.created("resp_1") == [{"type": "response.cancel", "response_id": "resp_1"}]
    assert r.was_cancelled("resp_1")


def test_history_keeps_what_was_heard_of_a_cut_item() -> None:
    h = History()
    events = h.assistant_delta("item_a", "It is")
    assert [e.type for e in events] == [
        "history_added",
        "history_updated",
        "assistant_transcript_delta",
    ]
    h.update("item_a", truncated_ms=300, status="incomplete")
    raw = {
        "id": "item_a",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_audio", "transcript": "It is noon."}],
    }
    item, _ = h.merge(raw)
    assert item is not None and item.transcript == "It is" and item.status == "incomplete"
    assert h.assistant_done("item_a", "It is noon.", cut=True)[-1] == ev.AssistantTranscript(
        transcript="It is", item_id="item_a"
    )
    assert h.assistant_transcript("item_a", "again") == []  # once per item


def test_tools_start_each_call_once_and_show_the_active_agents_mcp_tools() -> None:
    t = Tools()
    assert [e.type for e in t.call("a", "call_1", "get_time", "{}")] == ["agent_tool_start"]
    assert t.call("a", "call_1", "get_time", "{}") == [] and t.name_of("call_1") == "get_time"
    listing = {"type": "mcp_list_tools", "server_label": "home", "tools": [{"name": "search"}]}
    (changed,) = t.mcp_list(listing)
    assert isinstance(changed, ev.McpToolsChanged) and changed.tools[0].name == "search"
    t.mcp_server_labels = frozenset({"other"})
    assert t.mcp_changed() == [ev.McpToolsChanged(tools=())]


def test_wire_reads_untrusted_fields_without_raising() -> None:
    event = {"type": "x", "n": True, "d": [], "s": 5}
    assert (wire.text(event, "s"), wire.integer(event, "n"), wire.obj(event, "d")) == ("", 0, {})
    assert wire.audio_delta({"delta": "!!", "item_id": "i"}) == (
        "response.output_audio.delta: 'delta' is not base64"
    )
    assert wire.decode(b"\xff") == (
        "invalid_frame",
        "server frame is not valid JSON (UnicodeDecodeError): b'\\xff'",
    )
    assert wire.normalise({"type": "response.audio.delta"})["type"] == "response.output_audio.delta"
