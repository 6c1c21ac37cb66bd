"""Board profiles: `[hardware] profile` fills in capture channels, LEDs and the button.

Pure config data (config in, config out): the wiring then hands the filled-in values
to ``hw`` as plain pins, counts and names. ``led_driver`` and ``check_leds`` judge
the LED keys once the profile is applied.

A key counts as explicit when its value differs from the field's default; explicit
keys always win. Sources checked (vendor code):
- respeaker/mic_hat interfaces/pixels.py (3 APA102), interfaces/button.py (BUTTON = 17);
  respeaker/pixel_ring apa102.py: spidev bus=0, device=1.
- respeaker/4mics_hat interfaces/pixels.py: 12 APA102, ``LED(5).on()`` powers them.
- respeaker/usb_4_mic_array README: 6-channel firmware, channel 0 processed for ASR,
  1-4 raw mics, 5 playback; 1-channel firmware processed only; 16 kHz. Its 12 LEDs
  are driven by USB control transfers, not GPIO: no LED driver here.
- google/aiyprojects-raspbian src/aiy/voicehat.py: button GPIO23, LED GPIO25
  (_drivers/_led.py drives it with PWM, so pwmled).
- ALSA card names: respeaker/seeed-voicecard README (seeed-2mic-voicecard,
  seeed-4mic-voicecard). The AIY and USB names are the usual ones, used as substring
  hints only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, get_args

from .errors import ConfigError
from .schema import AudioConfig, BoardProfile, ButtonConfig, Config, LedsConfig


@dataclass(frozen=True)
class Profile:
    audio: dict[str, Any]
    leds: dict[str, Any]
    button: dict[str, Any]
    hardware_aec: bool = False  # the board cancels the speaker's echo itself


PROFILES: dict[BoardProfile, Profile] = {
    "generic": Profile(audio={}, leds={}, button={}),
    "respeaker-2mic": Profile(
        audio={"input": "seeed-2mic-voicecard", "input_channels": 2, "input_channel": 0},
        leds={"driver": "apa102", "count": 3, "spi_port": 0, "spi_device": 1},
        button={"pin": 17},
    ),
    "respeaker-4mic": Profile(
        audio={"input": "seeed-4mic-voicecard", "input_channels": 4, "input_channel": 0},
        leds={"driver": "apa102", "count": 12, "spi_port": 0, "spi_device": 1, "power_pin": 5},
        button={},
    ),
    "respeaker-usb-v2": Profile(
        # channel 0 of the 6-channel firmware is the AEC'd, beamformed signal; with the
        # 1-channel firmware set audio.input_channels = 1 (channel 0 stays right)
        audio={
            "input": "ReSpeaker 4 Mic Array",
            "input_channels": 6,
            "input_channel": 0,
            "input_rate": 16000,
        },
        leds={"driver": "none"},
        button={},
        hardware_aec=True,
    ),
    "aiy-voice-hat": Profile(
        audio={"input": "googlevoicehat", "input_channels": 2, "input_channel": 0},
        leds={"driver": "pwmled", "pins": (25,)},
        button={"pin": 23},
    ),
}


assert set(PROFILES) == set(get_args(BoardProfile))  # a Profile for every name


def _fill(section: Any, values: dict[str, Any]) -> Any:
    """Set each profile value whose field still holds its default."""
    defaults = type(section)()
    changes = {
        name: value
        for name, value in values.items()
        if getattr(section, name) == getattr(defaults, name)
    }
    return dataclasses.replace(section, **changes) if changes else section


def apply_profile(cfg: Config) -> Config:
    """The config with the board profile's values filled in (idempotent)."""
    profile = PROFILES[cfg.hardware.profile]
    audio: AudioConfig = _fill(cfg.audio, profile.audio)
    leds: LedsConfig = _fill(cfg.leds, profile.leds)
    button: ButtonConfig = _fill(cfg.button, profile.button)
    return dataclasses.replace(cfg, audio=audio, leds=leds, button=button)


def led_driver(cfg: Config) -> str:
    """The LED driver to use once the profile is applied: "" infers it from the pins
    (one pin "led", three "rgbled", none "none")."""
    driver = cfg.leds.driver
    if driver == "":
        return {1: "led", 3: "rgbled"}.get(len(cfg.leds.pins), "none")
    return driver


def check_leds(cfg: Config) -> None:
    """Pins and pixel count fit the driver (profile applied); raises ConfigError naming the key."""
    driver = led_driver(cfg)
    if driver in ("led", "pwmled", "rgbled"):
        want = 3 if driver == "rgbled" else 1
        if len(cfg.leds.pins) != want:
            raise ConfigError(
                "leds.pins",
                f"driver {driver!r} needs {want} pin{'s' if want > 1 else ''}, "
                f"got {list(cfg.leds.pins)}",
            )
    if driver == "apa102" and cfg.leds.count < 1:
        raise ConfigError("leds.count", "expected the number of APA102 pixels (1 or more)")
