"""Barge-in: truncation by samples actually played, before and after response.done."""

from __future__ import annotations

from typing import Any

from daemon import events as ev
from daemon.realtime.settings import SessionSettings
from tests import engine_script as S


def _stream(ms: int, rid: str = "resp_1", item_id: str = "item_a1") -> list[dict[str, Any]]:
    """Response start plus ``ms`` of audio in 20 ms deltas (no done events)."""
    out = [S.response_created(rid), S.output_item_added(rid, item_id)]
    for i in range(ms // 20):
        out.append(S.audio_delta(S.pcm(20), rid, item_id))
        out.append(S.transcript_delta(f"w{i} ", rid, item_id))
    return out


def _truncates(msgs: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [
        (m["item_id"], m["audio_end_ms"]) for m in msgs if m["type"] == "conversation.item.truncate"
    ]


def test_speech_during_the_answer_truncates_at_samples_played_and_drops_late_audio() -> None:
    p = S.configured()
    S.feed(p, _stream(200))
    p.playback_progress("item_a1", 2400)  # 100 ms actually played
    evs = S.feed(p, [S.speech_started("item_user2", 5000)])
    assert S.types(evs) == ["user_started_speaking", "audio_interrupted"]
    assert S.types(evs, raw=True)[-2:] == ["audio_interrupted", "history_updated"]
    assert ev.AudioInterrupted(item_id="item_a1", played_ms=100) in evs
    out = p.data_to_send()
    assert out == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_a1",
            "content_index": 0,
            "audio_end_ms": 100,
        }
    ]  # no response.cancel: interrupt_response is on, the server cancels by itself
    # the server's in-flight audio and its cancellation
    evs = S.feed(
        p,
        [
            S.audio_delta(S.pcm(20)),
            S.audio_done(),
            S.transcript_done("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 and more"),
            S.output_item_done(
                status="incomplete", transcript="w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 and more"
            ),
            S._ev(
                {
                    "type": "conversation.item.truncated",
                    "item_id": "item_a1",
                    "content_index": 0,
                    "audio_end_ms": 100,
                }
            ),
            S.response_done(status="cancelled"),
        ],
    )
    assert "audio" not in S.types(evs)  # the speaker was flushed: nothing more may play
    transcript = next(e for e in evs if isinstance(e, ev.AssistantTranscript))
    assert transcript.transcript == "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 "  # what was received so far
    end = next(e for e in evs if isinstance(e, ev.AgentEnd))
    assert end.status == "cancelled"
    (item,) = [h for h in p.history if h.item_id == "item_a1"]
    assert item.truncated_ms == 100 and item.status == "incomplete"
    assert item.transcript == "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 "
    assert p.data_to_send() == []
    assert p.audio_ms_received("item_a1") == 200


def test_interruption_after_response_done_while_the_speaker_drains() -> None:
    p = S.configured()
    S.feed(p, S.answer(text="A long answer here.", ms=300))
    assert not p.response_active
    p.playback_progress("item_a1", 4800)  # 200 of 300 ms played
    evs = S.feed(p, [S.speech_started("item_user2")])
    assert ev.AudioInterrupted(item_id="item_a1", played_ms=200) in evs
    assert _truncates(p.data_to_send()) == [("item_a1", 200)]  # and no cancel: nothing active
    (item,) = [h for h in p.history if h.item_id == "item_a1"]
    assert item.truncated_ms == 200 and item.status == "incomplete"
    # a late conversation.item.done snapshot does not undo the cut
    S.feed(
        p,
        [
            S._ev(
                {
                    "type": "conversation.item.done",
                    "item": S.assistant_item("item_a1", "completed", "x"),
                }
            )
        ],
    )
    (item,) = [h for h in p.history if h.item_id == "item_a1"]
    assert item.status == "incomplete" and item.transcript == "A long answer here."


def test_audio_end_ms_is_capped_at_audio_received() -> None:
    p = S.configured()
    S.feed(p, _stream(100))
    p.playback_progress("item_a1", 24000)  # claims 1 s: more than the item has
    S.feed(p, [S.speech_started()])
    assert _truncates(p.data_to_send()) == [("item_a1", 100)]


def test_nothing_played_yet_truncates_at_zero() -> None:
    p = S.configured()
    S.feed(p, _stream(60))
    evs = S.feed(p, [S.speech_started()])
    assert ev.AudioInterrupted(item_id="item_a1", played_ms=0) in evs
    assert _truncates(p.data_to_send()) == [("item_a1", 0)]


def test_played_ms_rounds_down_to_whole_milliseconds() -> None:
    p = S.configured()
    S.feed(p, _stream(100))
    p.playback_progress("item_a1", 1199)  # 49.96 ms
    S.feed(p, [S.speech_started()])
    assert _truncates(p.data_to_send()) == [("item_a1", 49)]


def test_progress_is_cumulative_and_never_goes_back() -> None:
    p = S.configured()
    S.feed(p, _stream(100))
    p.playback_progress("item_a1", 1920)  # 80 ms played so far
    p.playback_progress("item_a1", 960)  # a stale (smaller) report must not move it back
    p.playback_progress("item_other", 99999)  # unknown items are ignored
    S.feed(p, [S.speech_started()])
    assert _truncates(p.data_to_send()) == [("item_a1", 80)]


def test_a_fully_played_answer_is_not_interrupted() -> None:
    p = S.configured()
    S.feed(p, S.answer(ms=100))
    p.playback_progress("item_a1", 2400)  # all 100 ms played
    evs = S.feed(p, [S.speech_started()])
    assert S.types(evs) == ["user_started_speaking"]
    assert p.data_to_send() == []


def test_playback_finished_ends_interruptibility() -> None:
    p = S.configured()
    S.feed(p, S.answer(ms=100))
    p.playback_progress("item_a1", 1000)
    p.playback_finished("item_a1")
    evs = S.feed(p, [S.speech_started()])
    assert "audio_interrupted" not in S.types(evs)
    assert p.data_to_send() == []
    p.interrupt()
    assert p.data_to_send() == [] and p.events_received() == []


def test_local_interrupt_truncates_cancels_and_drops_queued_responses() -> None:
    p = S.configured()
    S.feed(p, _stream(100))
    p.create_response(instructions="queued")
    p.playback_progress("item_a1", 480)
    p.interrupt()
    assert p.data_to_send() == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_a1",
            "content_index": 0,
            "audio_end_ms": 20,
        },
        {"type": "response.cancel", "response_id": "resp_1"},
    ]
    # audio_interrupted first (flush the speaker), then the history records the cut
    evs = p.events_received()
    assert S.types(evs, raw=True) == ["audio_interrupted", "history_updated"]
    assert evs[0] == ev.AudioInterrupted(item_id="item_a1", played_ms=20)
    assert isinstance(evs[1], ev.HistoryUpdated)
    (item,) = evs[1].history
    assert item.truncated_ms == 20 and item.status == "incomplete"
    # late audio of the cancelled response, also for a new item, never plays
    evs = S.feed(p, [S.audio_delta(S.pcm(20)), S.audio_delta(S.pcm(20), item_id="item_a2")])
    assert "audio" not in S.types(evs)
    S.feed(p, [S.response_done(status="cancelled")])
    assert p.data_to_send() == []  # the queued response was dropped with the interrupt
    # the next answer plays normally
    evs = S.feed(p, S.answer(rid="resp_2", item_id="item_b1", ms=40))
    assert S.types(evs).count("audio") == 2


def test_local_interrupt_while_thinking_cancels_without_audio_interrupted() -> None:
    p = S.configured()
    S.feed(p, [S.response_created()])
    p.interrupt()
    assert p.data_to_send() == [{"type": "response.cancel", "response_id": "resp_1"}]
    assert p.events_received() == []


def test_local_interrupt_before_response_created_cancels_it_when_it_arrives() -> None:
    p = S.configured()
    p.create_response()
    assert S.sent_types(p.data_to_send()) == ["response.create"]
    p.interrupt()
    assert p.data_to_send() == []  # no id to cancel yet
    S.feed(p, [S.response_created("resp_7")])
    assert p.data_to_send() == [{"type": "response.cancel", "response_id": "resp_7"}]


def test_interrupt_with_nothing_going_on_sends_nothing() -> None:
    p = S.configured()
    p.interrupt()
    assert p.data_to_send() == [] and p.events_received() == []


def test_without_server_interrupt_response_the_client_cancels() -> None:
    p = S.configured(SessionSettings(interrupt_response=False))
    S.feed(p, _stream(100))
    p.playback_progress("item_a1", 960)
    S.feed(p, [S.speech_started()])
    assert p.data_to_send() == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_a1",
            "content_index": 0,
            "audio_end_ms": 40,
        },
        {"type": "response.cancel", "response_id": "resp_1"},
    ]


def test_without_server_interrupt_response_nothing_to_cut_means_no_cancel() -> None:
    p = S.configured(SessionSettings(interrupt_response=False))
    S.feed(p, [S.response_created()])
    S.feed(p, [S.speech_started()])
    assert p.data_to_send() == []


def test_two_items_still_playing_are_both_truncated() -> None:
    p = S.configured()
    S.feed(p, S.answer(rid="resp_1", item_id="item_a1", ms=100))
    S.feed(p, _stream(60, rid="resp_2", item_id="item_a2"))
    p.playback_progress("item_a1", 1200)
    evs = S.feed(p, [S.speech_started()])
    assert ev.AudioInterrupted(item_id="item_a1", played_ms=50) in evs
    assert _truncates(p.data_to_send()) == [("item_a1", 50), ("item_a2", 0)]


def test_without_playback_tracking_received_audio_counts_as_played() -> None:
    p = S.configured(playback_tracking=False)
    S.feed(p, S.answer(ms=100))
    evs = S.feed(p, [S.speech_started()])
    assert "audio_interrupted" not in S.types(evs)  # the whole answer counts as heard
    assert p.data_to_send() == []
    S.feed(p, _stream(80, rid="resp_2", item_id="item_a2"))
    S.feed(p, [S.speech_started()])
    assert _truncates(p.data_to_send()) == [("item_a2", 80)]


def test_audio_interrupted_once_per_cut() -> None:
    p = S.configured()
    S.feed(p, _stream(100))
    evs = S.feed(p, [S.speech_started(), S.speech_stopped(), S.speech_started("item_u3")])
    assert S.types(evs).count("audio_interrupted") == 1
    p.interrupt()
    assert [e for e in p.events_received() if e.type == "audio_interrupted"] == []
