"""The button and the agent tools on the running appliance: real gpiozero mock pins, the
PulseAudio mic, the simulator's function calls."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from daemon import config
from daemon import events as ev
from daemon.appliance import app as app_module
from daemon.realtime.simulator import Simulator
from tests.appliance_harness import SPEECH, appliance_config, start

pytestmark = pytest.mark.pulse

BUTTON = 17


async def press(factory: MockFactory, hold: float = 0.1) -> None:
    pin = factory.pin(BUTTON)
    pin.drive_low()
    await asyncio.sleep(hold)
    pin.drive_high()


def controls_config(url: str, **sections: Any) -> config.Config:
    return appliance_config(
        url,
        button={"pin": BUTTON, "double_press_window": 0.3},
        leds={"driver": "rgbled", "pins": [5, 6, 13]},
        **sections,
    )


async def test_button_wakes_then_approves_a_tool(
    pulse_mic: Any, detector: Any, tmp_path: Any
) -> None:
    marker = tmp_path / "unlocked"
    tools = [
        {
            "name": "unlock",
            "description": "Unlock the door.",
            "argv": ["/usr/bin/touch", str(marker)],
            "needs_approval": True,
        }
    ]
    factory = MockFactory(pin_class=MockPWMPin)
    factory.pin(BUTTON).drive_high()  # pulled up: released
    async with Simulator(
        transcripts=["please unlock the door"], function_calls={"unlock": ("unlock", {})}
    ) as sim:
        cfg = controls_config(sim.url, tools=tools)
        app = await start(cfg, detector, pin_factory=factory)
        try:
            await press(factory)
            _, pressed = await app.wait(lambda e: isinstance(e, ev.ButtonPressed), 5)
            assert (pressed.gesture, pressed.action) == ("press", "wake")
            await app.wait(lambda e: isinstance(e, ev.SessionConnected), 10)
            pulse_mic.play(SPEECH / "question.wav")
            await app.wait(lambda e: isinstance(e, ev.ToolApprovalRequested), 20)
            await app.wait(lambda e: isinstance(e, ev.LedChanged) and e.pattern == "approval", 5)
            assert not marker.exists(), "the tool ran before it was approved"
            mark = app.mark()
            await press(factory)
            _, pressed = await app.wait(lambda e: isinstance(e, ev.ButtonPressed), 5, after=mark)
            assert pressed.action == "approve"
            _, done = await app.wait(lambda e: isinstance(e, ev.AgentToolEnd), 10, after=mark)
            assert done.tool == "unlock" and not done.is_error
            assert marker.exists()
            await app.wait(lambda e: isinstance(e, ev.AgentEnd), 20, after=mark)
        finally:
            assert await app.stop() == 0
        calls = [
            m
            for m in sim.sessions[0].client_messages
            if m["type"] == "conversation.item.create"
            and m["item"]["type"] == "function_call_output"
        ]
        assert len(calls) == 1


async def test_end_session_waits_for_a_drain_that_arrives_late(
    pulse_mic: Any, detector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy CPU the player's "drained" hop came after the close the goodbye's
    "finished" hop started: the session closed while still speaking. Here every drain hop
    is held back until the test has seen the close (or 3 s passed)."""
    closed = threading.Event()
    on_drained = app_module._SpeakerBridge.on_drained

    def late_drained(self: Any) -> None:
        threading.Thread(target=lambda: (closed.wait(3), on_drained(self))).start()

    monkeypatch.setattr(app_module._SpeakerBridge, "on_drained", late_drained)
    async with Simulator(
        transcripts=["that's all, goodbye"], function_calls={"goodbye": ("end_session", {})}
    ) as sim:
        app = await start(appliance_config(sim.url), detector)
        try:
            pulse_mic.play(SPEECH / "hey_jarvis_then_question.wav")
            await app.wait(lambda e: isinstance(e, ev.AgentToolEnd), 30)
            mark = app.mark()
            t_closed, closed_event = await app.wait(
                lambda e: isinstance(e, ev.SessionClosed), 30, after=mark
            )
            closed.set()
            assert closed_event.reason == "end_session"
            spoke = [t for t, e in app.timed(ev.StateChanged) if e.previous == "speaking"]
            assert spoke and spoke[-1] <= t_closed
        finally:
            closed.set()
            assert await app.stop() == 0


async def test_end_session_tool_closes_after_the_goodbye_played(
    pulse_mic: Any, detector: Any
) -> None:
    async with Simulator(
        transcripts=["that's all, goodbye"], function_calls={"goodbye": ("end_session", {})}
    ) as sim:
        app = await start(appliance_config(sim.url), detector)
        try:
            pulse_mic.play(SPEECH / "hey_jarvis_then_question.wav")
            await app.wait(lambda e: isinstance(e, ev.AgentToolEnd), 30)
            mark = app.mark()
            t_closed, closed = await app.wait(
                lambda e: isinstance(e, ev.SessionClosed), 30, after=mark
            )
            assert closed.reason == "end_session"
            # The goodbye was spoken and had finished playing before the close.
            spoke = [t for t, e in app.timed(ev.StateChanged) if e.previous == "speaking"]
            assert spoke and spoke[-1] <= t_closed
        finally:
            assert await app.stop() == 0
