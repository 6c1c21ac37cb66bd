"""Board profiles fill what the config leaves at its defaults; explicit keys win."""

from __future__ import annotations

import pytest

from daemon.config import Config, parse
from daemon.config.profiles import PROFILES, apply_profile


def applied(data: dict[str, object]) -> Config:
    return apply_profile(parse(data))


def test_generic_changes_nothing() -> None:
    assert apply_profile(Config()) == Config()


def test_respeaker_2mic() -> None:
    cfg = applied({"hardware": {"profile": "respeaker-2mic"}})
    assert (cfg.audio.input, cfg.audio.input_channels, cfg.audio.input_channel) == (
        "seeed-2mic-voicecard",
        2,
        0,
    )
    assert (cfg.leds.driver, cfg.leds.count, cfg.leds.spi_port, cfg.leds.spi_device) == (
        "apa102",
        3,
        0,
        1,
    )
    assert cfg.leds.power_pin == -1
    assert cfg.button.pin == 17


def test_respeaker_4mic() -> None:
    cfg = applied({"hardware": {"profile": "respeaker-4mic"}})
    assert cfg.audio.input_channels == 4
    assert (cfg.leds.driver, cfg.leds.count, cfg.leds.power_pin) == ("apa102", 12, 5)
    assert cfg.button.pin == -1


def test_respeaker_usb_v2_uses_the_processed_channel() -> None:
    cfg = applied({"hardware": {"profile": "respeaker-usb-v2"}})
    assert (cfg.audio.input_channels, cfg.audio.input_channel, cfg.audio.input_rate) == (
        6,
        0,
        16000,
    )
    assert "ReSpeaker" in cfg.audio.input
    assert cfg.leds.driver == "none"  # its ring is on USB, not GPIO
    assert cfg.button.pin == -1


def test_aiy_voice_hat() -> None:
    cfg = applied({"hardware": {"profile": "aiy-voice-hat"}})
    assert (cfg.leds.driver, cfg.leds.pins) == ("pwmled", (25,))
    assert cfg.button.pin == 23
    assert cfg.audio.input_channels == 2


def test_explicit_keys_win() -> None:
    cfg = applied(
        {
            "hardware": {"profile": "respeaker-4mic"},
            "audio": {"input": "hw:2,0", "input_channels": 8, "input_channel": 3},
            "leds": {"count": 24, "power_pin": 6},
            "button": {"pin": 26},
        }
    )
    assert (cfg.audio.input, cfg.audio.input_channels, cfg.audio.input_channel) == ("hw:2,0", 8, 3)
    assert (cfg.leds.driver, cfg.leds.count, cfg.leds.power_pin) == ("apa102", 24, 6)
    assert cfg.button.pin == 26
    one_channel = applied(
        {"hardware": {"profile": "respeaker-usb-v2"}, "audio": {"input_channels": 2}}
    )
    assert one_channel.audio.input_channels == 2


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_idempotent_and_consistent(name: str) -> None:
    once = applied({"hardware": {"profile": name}})
    assert apply_profile(once) == once
    assert once.audio.input_channel < once.audio.input_channels


def test_every_config_profile_has_a_table() -> None:
    import typing

    from daemon.config import HardwareConfig

    hint = typing.get_type_hints(HardwareConfig)["profile"]
    assert set(typing.get_args(hint)) == set(PROFILES)
