"""PortAudio device discovery and matching device specs ("default", an index, a name part).

PortAudio enumerates devices once, when a PyAudio instance initialises, so a
server that appears later (PulseAudio, PipeWire) is only seen by a new instance.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["input", "output"]


class AudioDeviceError(Exception):
    """A device could not be found, opened or kept running."""


class DeviceNotFound(AudioDeviceError):
    pass


class CaptureStalled(AudioDeviceError):
    """No audio arrived for longer than the stall timeout (device gone or wedged)."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    input_channels: int
    output_channels: int
    default_rate: int
    host_api: str = ""
    default_input: bool = False
    default_output: bool = False

    def channels(self, direction: Direction) -> int:
        return self.input_channels if direction == "input" else self.output_channels

    def describe(self) -> str:
        return (
            f"#{self.index} {self.name!r} (in {self.input_channels}, out {self.output_channels}, "
            f"{self.default_rate} Hz)"
        )


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence the C-level chatter ALSA and JACK print while PortAudio probes devices."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def new_pyaudio(*, quiet: bool = True) -> Any:
    """A fresh PyAudio instance (fresh device list); the caller must terminate() it.

    The ALSA plugins PortAudio's device probe loaded are unloaded again at once
    (``release_alsa_probes``)."""
    import pyaudio

    hide_encoder_pcms()
    with quiet_stderr() if quiet else contextlib.nullcontext():
        pa = pyaudio.PyAudio()
    release_alsa_probes()
    return pa


# ALSA PCMs that only encode for an S/PDIF receiver: never a voice device, and probing one
# loads a codec library that cannot be unloaded again (a52: libavcodec, and through it
# libx265, GLib, X11: 2.7 MB RSS that release_alsa_probes cannot give back).
ENCODER_PCMS = ("a52",)


def _asound() -> Any:
    try:
        return ctypes.CDLL("libasound.so.2")  # the copy PortAudio loads
    except OSError:  # no ALSA (PortAudio built without it)
        return None


def hide_encoder_pcms() -> list[str]:
    """Remove the ``ENCODER_PCMS`` definitions from this process's ALSA configuration
    before PortAudio probes every PCM defined there; the names removed. The files are
    untouched: the configuration alsa-lib reads again later (``release_alsa_probes``)
    has them back, so such a PCM still opens by name."""
    asound = _asound()
    if asound is None or asound.snd_config_update() < 0:
        return []
    top = ctypes.c_void_p.in_dll(asound, "snd_config")
    removed = []
    for name in ENCODER_PCMS:
        node = ctypes.c_void_p()
        found = asound.snd_config_search(top, f"pcm.{name}".encode(), ctypes.byref(node)) == 0
        if found and asound.snd_config_delete(node) == 0:
            removed.append(name)
    return removed


def release_alsa_probes() -> bool:
    """Unload the ALSA plugin modules that no open PCM uses; True if alsa-lib was there.

    PortAudio's ALSA host API opens every PCM the ALSA configuration defines to list
    devices, and alsa-lib keeps each plugin module it loaded for that: with
    libasound2-plugins installed the ``a52`` PCM alone maps libavcodec and some sixty
    libraries, about 11 MB of the daemon's RSS for nothing. alsa-lib's
    ``snd_config_update_free_global`` (what PortAudio's own Pa_Terminate calls) drops
    the cached configuration and closes the modules of PCMs not open (reference
    counted, so open streams keep theirs); the next ``snd_pcm_open`` re-reads the
    configuration. Sources: alsa-lib src/conf.c and src/dlmisc.c (snd_dlobj_cache_cleanup).
    """
    asound = _asound()
    if asound is None:
        return False
    free_global = asound.snd_config_update_free_global
    free_global.restype = ctypes.c_int
    free_global.argtypes = []
    return int(free_global()) == 0


def list_devices(pa: Any) -> list[DeviceInfo]:
    """Every device PortAudio reports, with the default input/output marked."""
    default_in = _default_index(pa, "input")
    default_out = _default_index(pa, "output")
    apis: dict[int, str] = {}
    with contextlib.suppress(Exception):
        for i in range(pa.get_host_api_count()):
            apis[i] = str(pa.get_host_api_info_by_index(i).get("name", ""))
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        out.append(
            DeviceInfo(
                index=int(d["index"]),
                name=str(d["name"]),
                input_channels=int(d["maxInputChannels"]),
                output_channels=int(d["maxOutputChannels"]),
                default_rate=round(float(d["defaultSampleRate"])),
                host_api=apis.get(int(d.get("hostApi", -1)), ""),
                default_input=i == default_in,
                default_output=i == default_out,
            )
        )
    return out


def _default_index(pa: Any, direction: Direction) -> int:
    try:
        info = (
            pa.get_default_input_device_info()
            if direction == "input"
            else pa.get_default_output_device_info()
        )
    except OSError:  # PortAudio: no default device
        return -1
    return int(info["index"])


def find_device(pa: Any, spec: str, direction: Direction) -> DeviceInfo:
    """The device a spec names: "default", an index, or a case-insensitive name part.

    An exact name wins over a substring; among substring matches the first
    device that has channels in ``direction`` wins. No match raises
    DeviceNotFound listing what exists.
    """
    devices = list_devices(pa)
    usable = [d for d in devices if d.channels(direction) > 0]
    wanted = spec.strip()
    found: DeviceInfo | None = None
    if wanted.lower() in ("", "default"):
        found = next((d for d in usable if getattr(d, f"default_{direction}")), None)
    elif wanted.lstrip("-").isdigit():
        found = next((d for d in devices if d.index == int(wanted)), None)
        if found is not None and found.channels(direction) == 0:
            raise DeviceNotFound(
                f"audio device {spec!r} ({found.name}) has no {direction} channels; "
                + _listing(usable, direction)
            )
    else:
        low = wanted.lower()
        found = next((d for d in usable if d.name.lower() == low), None) or next(
            (d for d in usable if low in d.name.lower()), None
        )
    if found is None:
        raise DeviceNotFound(
            f"no {direction} device matches {spec!r}; " + _listing(usable, direction)
        )
    return found


def _listing(devices: list[DeviceInfo], direction: Direction) -> str:
    if not devices:
        return f"no {direction} devices exist (is the audio server running?)"
    names = ", ".join(f"{d.index}: {d.name!r}" for d in devices)
    return f"{direction} devices: {names}"


def supports_rate(
    pa: Any, device: DeviceInfo, direction: Direction, rate: int, channels: int
) -> bool:
    import pyaudio

    kwargs: dict[str, Any] = {"rate": rate}
    if direction == "input":
        kwargs.update(
            input_device=device.index, input_channels=channels, input_format=pyaudio.paInt16
        )
    else:
        kwargs.update(
            output_device=device.index, output_channels=channels, output_format=pyaudio.paInt16
        )
    try:
        return bool(pa.is_format_supported(**kwargs))
    except ValueError:  # PyAudio raises rather than returning False
        return False


def open_stream(
    pa: Any,
    device: DeviceInfo,
    direction: Direction,
    *,
    spec: str,
    rate: int,
    channels: int,
    block_frames: int,
    callback: Any,
) -> Any:
    """A started PortAudio int16 callback stream; a refusal names the device and format."""
    import pyaudio

    kind = "capture" if direction == "input" else "playback"
    try:
        return pa.open(
            format=pyaudio.paInt16,
            channels=channels,
            rate=rate,
            frames_per_buffer=block_frames,
            stream_callback=callback,
            **{direction: True, f"{direction}_device_index": device.index},
        )
    except (OSError, ValueError) as exc:
        raise AudioDeviceError(
            f"cannot open {kind} device {spec!r} ({device.name}) at {rate} Hz, "
            f"{channels} channel(s): {exc}"
        ) from exc
