"""In-process acoustic echo cancellation (WebRTC AEC3) for a plain microphone.

The player hands every block it gives the speaker device to ``reference()``
(after volume and fades; zeros while silent), from its audio thread. The
capture path calls ``process()`` with each microphone block, from its audio
thread, and gets the block with the answer's echo removed, at 16 kHz.

Both streams are resampled to 16 kHz and cut into 10 ms frames. Reference samples
are numbered as they arrive; capture frame k is processed with the reference frame
at a fixed offset from k, chosen when the first capture block arrives (its last
frame pairs with the newest reference less ``CUSHION_MS``, held back against
callback jitter). The reference still *leads* the echo, by the device path less the
cushion (the player renders a block before the speaker sounds it, and the mic hears
it later still: 100-130 ms through PulseAudio here, tens of ms on bare ALSA); AEC3
estimates that delay itself, and `voicepi echo-test` reports it. Pairing by sample
index, not by arrival, means callback jitter on either side costs at most the frames
whose reference is late (processed against zeros), never a lasting shift of the
alignment. When the lowest lead of two ``RESYNC_WINDOW`` in a row was more than
``LATE_FRAMES_OK`` frames short or stayed above ``MAX_LEAD_MS`` (a start-up burst, a
stalled stream, clock drift between two devices) the offset is moved so that it
would have been the cushion. A player that rendered nothing for a while (a stream
that started after the mic, a stalled or parked one) is a gap, not a late reference:
the time it rendered nothing is zeros, and the consumer does not count it against
the alignment. How many zeros comes from the device's own clock where the player
passes it: PortAudio's DAC times of the first blocks after the discontinuity (a
restart the player reports with ``restarted()``, an underflow, a stall; when a
block's first sample sounds), each minus where the block before it ended. That keeps
the reference exactly where it was against the echo, so AEC3's learned delay still
holds after a parked stream restarts (measured through PulseAudio here: the
DAC-to-echo delay stayed within 41-45 ms over restarts and under load, where the
arrival times of the blocks placed it 38-166 ms). A running stream's blocks are
contiguous whatever their DAC times say: those step by a few ms now and then, and
placed by them the reference moved under AEC3. Without DAC times, or when they
disagree with the monotonic clock (PortAudio 19.6 stamps with CLOCK_REALTIME, which
NTP can step), the next block after ``STALL_MS`` without one is placed where the
capture clock says it belongs. The canceller is never reset between answers: its
filter keeps the room it learned. AEC3 alters a clean voice even with a silent
reference (a 128-sample delay and a correlation of 0.94 with the input, measured on
the question fixture), so until a sounding reference frame was used within
``TAIL_FRAMES`` (the echo's delay and tail) the mic passes untouched, delayed as
AEC3 delays it (``AEC3_DELAY``, 8 ms) so that the switch neither repeats nor skips
audio. Idle (``IDLE_FRAMES`` without sound, after AEC3's own first ``IDLE_FRAMES``)
AEC3 skips the frames: it was most of the daemon's idle CPU, and its filter keeps
the echo path it learned. Until AEC3 has heard ``WARMUP_FRAMES`` of sounding
reference (after start-up, a realignment or a speaker underflow, ``underflow()``)
the mic is muted while the speaker sounds: the first 0.2-0.5 s of the first answer
would otherwise leak through while AEC3 searches for the delay.

The binding sits behind ``Backend`` so it can be swapped: ``pywebrtc-audio``
(Apache-2.0, numpy only, 0.4 MB; chosen over ``livekit``'s
AudioProcessingModule, which gave the same figures in the issue's study at
10.6 MB plus protobuf). Sources: webrtc modules/audio_processing/aec3;
pywebrtc_audio/_webrtc_audio.pyi.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .dsp import Resampler, SoxrResampler

log = logging.getLogger(__name__)

RATE = 16000  # AEC3's processing rate here (the wake word's rate too)
FRAME = RATE // 100  # 10 ms: the APM's frame
CUSHION_MS = 40  # reference held back for callback jitter; it must stay below the path delay
MAX_LEAD_MS = 300  # a longer lead means the alignment was lost: set it again
LATE_FRAMES_OK = 2  # a window's lowest lead may be this many frames short before a resync
RESYNC_WINDOW = 50  # frames (0.5 s) over which the lowest lead is checked
RING_S = 2  # reference kept, seconds
WARMUP_FRAMES = 100  # sounding reference frames (1 s) AEC3 hears before the mic passes
ACTIVE_REF = 100.0**2  # mean square of a sounding reference frame (-50 dBFS)
HOLD_FRAMES = 30  # muting outlasts the last sounding frame by the echo's delay and tail
STALL_MS = 500  # no block from the player this long: it renders nothing (a running one
# calls back every block even starved; past its buffer, 40-200 ms, it underflowed anyway)
DAC_JITTER_MS = 2  # a DAC gap shorter than this is the timestamps' jitter (0.04 ms p99 here)
DAC_SLACK_S = 0.05  # a DAC gap may exceed the blocks' arrival gap by this much (callback jitter)
DAC_LATENESS_S = 2.0  # nor trail it by more: a block is handed at most its buffer ahead
SETTLE_BLOCKS = 5  # a (re)started stream's DAC times settle over its first blocks (a burst
# while PortAudio fills the device buffer; the 2nd block's moved it by 2-4 ms through PulseAudio)
DAC_REWIND_S = 0.5  # a stream restarted while parking drops this much unplayed silence at most
TAIL_FRAMES = 80  # after the last sounding reference frame, echo can still arrive (0.8 s)
IDLE_FRAMES = 300  # nothing sounded for 3 s: idle, AEC3 skips the frames
AEC3_DELAY = 128  # samples AEC3 delays what it passes (measured, pywebrtc-audio at 16 kHz)


class EchoCancelUnavailable(RuntimeError):
    """The AEC3 binding cannot be loaded (not installed, or a 32-bit placeholder)."""


class Backend(Protocol):
    """One AEC3 instance: ``process(near, far)`` on 10 ms int16 frames at 16 kHz."""

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray: ...


def pywebrtc_backend(noise_suppression: bool) -> Backend:
    """pywebrtc-audio's AudioProcessor with AEC3 (and its high-pass filter) on.

    Raises EchoCancelUnavailable when the package cannot be imported."""
    try:
        from pywebrtc_audio import AudioProcessor
    except ImportError as exc:
        raise EchoCancelUnavailable(
            f"echo cancellation needs pywebrtc-audio (pip install pywebrtc-audio; "
            f"64-bit OS only): {exc}"
        ) from None
    proc: Backend = AudioProcessor(
        RATE, 1, echo_cancellation=True, noise_suppression=noise_suppression
    )
    return proc


@dataclass(frozen=True)
class EchoStats:
    """Counters since the canceller was made (16 kHz samples and 10 ms frames)."""

    frames: int  # capture frames processed
    reference_underruns: int  # capture frames processed against zeros (reference late)
    reference_gaps: int  # times the reference was placed after a gap (parked, stalled, dry)
    resyncs: int  # times the alignment was moved (lead out of range in a 0.5 s window)
    device_underflows: int  # times the speaker device ran dry (the warm-up mute again)
    muted_frames: int  # frames muted while AEC3 learned the echo path (warm-up)
    lead_ms: float  # reference received and not yet used


class EchoCanceller:
    """AEC3 between a player's reference tap and a microphone.

    ``reference(block, rate)``: int16 mono blocks the player handed the device,
    any rate, from the player's thread. ``process(block, rate)``: int16 mono mic
    blocks, from the capture thread; returns int16 mono at 16 kHz (whole 10 ms
    frames; the rest waits for the next block). One instance lives as long as
    the daemon: a reopened mic keeps the learned echo path. ``clock`` (seconds,
    monotonic) places the reference after a gap; tests pass a simulated one.
    Raises EchoCancelUnavailable when the binding cannot be loaded.
    """

    def __init__(
        self,
        *,
        noise_suppression: bool = False,
        backend: Callable[[bool], Backend] = pywebrtc_backend,
        cushion_ms: int = CUSHION_MS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = RATE
        self._clock = clock
        self._aec = backend(noise_suppression)
        # The mic runs always: libsoxr (a twentieth of the own filter's CPU at 48 kHz; a
        # constant few ms held back, which the alignment absorbs). The reference runs
        # only while the player plays and keeps the exact own filter.
        self._mic_resamplers: dict[int, SoxrResampler] = {}
        self._ref_resamplers: dict[int, Resampler] = {}
        self._cushion = cushion_ms * RATE // 1000
        self._max_lead = MAX_LEAD_MS * RATE // 1000
        self._lock = threading.Lock()  # the reference ring: player thread vs capture thread
        self._ring = np.zeros(RING_S * RATE, dtype=np.int16)
        self._ref_total = 0  # reference samples received (index one past the newest)
        self._pos: int | None = None  # index of the next reference frame to use
        self._low = 1 << 62  # lowest lead in this resync window
        self._window = 0  # frames into it
        self._bad_windows = 0  # windows in a row whose lowest lead was out of range
        self._mic = np.zeros(0, dtype=np.int16)  # 16 kHz mic samples short of a frame
        self._ref_time: float | None = None  # when the player last handed a block
        self._dac_end: float | None = None  # PortAudio time the newest block stops sounding
        self._cap_time: float | None = None  # when the last capture block was processed
        self._quiet = TAIL_FRAMES  # frames since a sounding reference frame was used
        self._ran_dry = False  # the speaker device underflowed since the last block
        self._restarted = False  # the player's stream restarted since the last block
        self._settle = 0  # blocks whose DAC times still place them (after a discontinuity)
        # The untouched mic is delayed as AEC3 delays it, so switching between the two
        # neither repeats nor skips audio (an 8 ms jump broke the question in two).
        self._delay = np.zeros(AEC3_DELAY, dtype=np.int16)
        # Optional (near, far, out) per 10 ms frame, on the capture thread (echo-test).
        self.monitor: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None
        self.frames = 0
        self.bypassed_frames = 0  # frames AEC3 skipped: idle (nothing sounded for IDLE_FRAMES)
        self.reference_underruns = 0
        self.reference_gaps = 0
        self.device_underflows = 0
        self.resyncs = 0
        self._warm = 0  # sounding reference frames heard since start-up or a realignment
        self._hold = 0  # frames the warm-up mute still lasts
        self.muted_frames = 0  # frames silenced while AEC3 was still learning the echo path

    def reference(self, block: np.ndarray, rate: int, dac_time: float | None = None) -> None:
        """Queue what the player just handed the device (int16 mono at ``rate``).

        ``dac_time``: when the block's first sample sounds, on the player's stream
        clock (PortAudio's ``output_buffer_dac_time``, seconds), or None when the
        device gives none (a file). With it, the silence the device played since the
        previous block (a parked or stalled stream, an underflow) is placed exactly."""
        ref = _resampler(self._ref_resamplers, rate).process(np.asarray(block, dtype=np.int16))
        n = len(ref)
        if n == 0:
            return
        now = self._clock()
        with self._lock:
            stalled = self._ref_time is None or now - self._ref_time >= STALL_MS / 1000
            # A running stream sounds exactly what it is handed, block after block: its
            # DAC times then carry only their own jitter (through PulseAudio they stepped
            # 2-7 ms every 1.5 s under load; placed by them, the reference moved under
            # AEC3 and an answer interrupted itself). They place blocks only after a
            # discontinuity (a restart, an underflow, a stall), while they settle.
            jump = stalled or self._ran_dry or self._restarted
            if jump:
                self._settle = SETTLE_BLOCKS
            silence = self._dac_silence(now, dac_time) if self._settle > 0 else None
            self._settle = max(0, self._settle - 1)
            self._dac_end = dac_time + len(block) / rate if dac_time and dac_time > 0 else None
            self._ran_dry = self._restarted = False
            self._ref_time = now
            if silence is not None:
                if silence > 0:
                    self._write(np.zeros(min(silence, len(self._ring)), dtype=np.int16), silence)
                elif silence < 0:
                    # Restarted before its last blocks played (PortAudio dropped them):
                    # that idle silence never sounded, this block takes its place.
                    self._ref_total = max(0, self._ref_total + silence)
                if silence:
                    self.reference_gaps += 1
                    self._low, self._window, self._bad_windows = 1 << 62, 0, 0
            elif jump and self._pos is not None and self._cap_time is not None:
                # The first block after the player rendered nothing for STALL_MS (a late
                # start, a parked or dead stream): that time was silence, so it is zeros,
                # and this block's end belongs where the capture is now (extrapolated
                # from its last block) plus the cushion, as the anchor set it. Only
                # then: a running stream's callbacks come in bursts (here the lead swung
                # 60-160 ms under load), and placing every block by the clock moved the
                # alignment under AEC3 and leaked the echo.
                now_pos = self._pos + round((now - self._cap_time) * RATE)
                behind = now_pos + self._cushion - (self._ref_total + n)
                if behind > 0:
                    self._write(np.zeros(min(behind, len(self._ring)), dtype=np.int16), behind)
                    self.reference_gaps += 1
                    self._low, self._window, self._bad_windows = 1 << 62, 0, 0
            self._write(ref, n)

    def _dac_silence(self, now: float, dac_time: float | None) -> int | None:
        """16 kHz samples of silence the device played between the previous block and
        this one, by their DAC times (negative: the previous blocks' unplayed end was
        dropped by a restart); None when those cannot be trusted (lock held)."""
        if not dac_time or dac_time <= 0 or self._dac_end is None or self._ref_time is None:
            return None
        gap = dac_time - self._dac_end
        # What the wall clock saw pass minus what the device says it played: a block is
        # handed before it sounds, by up to its buffer. Anything else is a stepped clock.
        lateness = (now - self._ref_time) - gap
        if not -DAC_SLACK_S <= lateness <= DAC_LATENESS_S or gap < -DAC_REWIND_S:
            return None
        return round(gap * RATE) if abs(gap) >= DAC_JITTER_MS / 1000 else 0

    def _write(self, ref: np.ndarray, n: int) -> None:
        """Append ``n`` samples whose last ``len(ref)`` are ``ref`` (lock held)."""
        cap = len(self._ring)
        if len(ref) > cap:
            ref = ref[-cap:]
        end = self._ref_total + n
        pos = (end - len(ref)) % cap
        head = min(len(ref), cap - pos)
        self._ring[pos : pos + head] = ref[:head]
        self._ring[: len(ref) - head] = ref[head:]
        self._ref_total = end

    def underflow(self) -> None:
        """The speaker device ran dry (player thread): it sounded silence the reference
        does not hold, so the echo now comes later than the pairing says. The next
        block is placed where the capture clock says, as after a stall, and until AEC3
        has heard a second of sound again the mic is muted while the speaker sounds.
        Measured in the room under load: the index pairing's own resync a second later
        misplaced the reference after the echo, and every later answer interrupted
        itself at 240 ms."""
        with self._lock:
            self.device_underflows += 1
            self._ran_dry = True  # the next block is placed by the clock, as after a stall
            self._warm = 0  # read by the capture thread at its next frame

    def restarted(self) -> None:
        """The player's stream (re)started (player thread, before the restart's first
        block): the device sounded silence the reference does not hold since the
        previous block, or dropped blocks it had not played. The next block is placed
        by its DAC time (or, without one, by the capture clock, as after a stall); AEC3
        keeps the delay it learned, so the mic is not muted again."""
        with self._lock:
            self._restarted = True

    def realign(self) -> None:
        """Anchor the alignment again at the next capture frame (a reopened mic)."""
        with self._lock:
            self._pos = None

    def _take_reference(self, now: float) -> np.ndarray:
        with self._lock:
            total = self._ref_total
            assert self._pos is not None  # anchored by process()
            lead = total - self._pos  # reference received but not yet used
            if self._ref_time is None or now - self._ref_time >= STALL_MS / 1000:
                # The player renders nothing (not started, stalled, parked): silence,
                # not a lost alignment. reference() places its next block by the clock.
                self._low, self._window, self._bad_windows = 1 << 62, 0, 0
                self._pos += FRAME
                self.reference_underruns += 1
                return np.zeros(FRAME, dtype=np.int16)
            self._low = min(self._low, lead)
            self._window += 1
            if self._window >= RESYNC_WINDOW:
                # A window whose lowest lead fell below one frame (reference late) or
                # stayed above MAX_LEAD_MS: move the alignment so that lowest lead would
                # have been the cushion. Rare after start-up; AEC3 re-finds the delay.
                # Only a second window in a row counts: a capture burst catching up
                # after a stall recovers by itself, and moving for it would be wrong.
                # A frame or two late now and then is jitter: it costs those frames
                # only (their echo is heard one path delay later, never three frames
                # in a row); moving the alignment would cost AEC3 a new delay search.
                bad = self._low < -LATE_FRAMES_OK * FRAME or self._low > self._max_lead
                if bad and self._bad_windows >= 1:
                    self._pos = max(0, self._pos + self._low - self._cushion)
                    self.resyncs += 1
                    self._warm = 0  # AEC3 must find the new delay: mute the echo meanwhile
                    log.debug("echo reference realigned (lowest lead %d samples)", self._low)
                    lead = total - self._pos
                    bad = False
                self._bad_windows = self._bad_windows + 1 if bad else 0
                self._low, self._window = 1 << 62, 0
            pos = self._pos
            self._pos += FRAME
            cap = len(self._ring)
            if lead < FRAME or total - pos > cap:  # not here yet (or long overwritten)
                self.reference_underruns += 1
                return np.zeros(FRAME, dtype=np.int16)
            idx = np.arange(pos, pos + FRAME) % cap
            return self._ring[idx]

    def process(self, block: np.ndarray, rate: int) -> np.ndarray:
        """The mic block (int16 mono at ``rate``) with the echo removed: int16 mono at 16 kHz."""
        to_rate = self._mic_resamplers.get(rate)
        if to_rate is None:
            to_rate = self._mic_resamplers[rate] = SoxrResampler(rate, RATE)
        mic = to_rate.process(np.asarray(block, dtype=np.int16))
        if len(self._mic):
            mic = np.concatenate((self._mic, mic))
        whole = len(mic) - len(mic) % FRAME
        self._mic = mic[whole:]
        out = np.empty(whole, dtype=np.int16)
        now = self._clock()
        if whole and self._idle_block(now, whole):
            # Idle, with the speaker parked: what the loop below would do frame by frame
            # (zeros for reference, AEC3 skipped, the mic passed as AEC3 delays it), in
            # one step. Per frame it was a third of the idle capture thread's CPU.
            frames = whole // FRAME
            delayed = np.concatenate((self._delay, mic[:whole]))
            out[:] = delayed[:whole]
            self._delay = delayed[whole:]
            self._quiet += frames
            self.bypassed_frames += frames
            self.frames += frames
            whole = 0
        if whole:
            with self._lock:
                if self._pos is None:
                    # This block ends now, and what the player handed the device by now
                    # ends at _ref_total: the block's first frame pairs ``whole`` earlier,
                    # less the cushion. (Anchoring its first frame at the newest reference
                    # would leave its later frames without one until a resync.)
                    total = self._ref_total
                    if self._ref_time is not None and now - self._ref_time >= STALL_MS / 1000:
                        # A mic reopened while the speaker is parked: the reference is
                        # where it would be had the player rendered silence since its
                        # last block, which is where the restart's DAC times put it.
                        total += round((now - self._ref_time) * RATE)
                    self._pos = max(0, total - self._cushion - whole)
                    self._low, self._window, self._bad_windows = 1 << 62, 0, 0
        for start in range(0, whole, FRAME):
            far = self._take_reference(now)
            near = mic[start : start + FRAME]
            sounding = bool(np.mean(far.astype(np.float32) ** 2) > ACTIVE_REF)
            self._quiet = 0 if sounding else self._quiet + 1
            delayed = np.concatenate((self._delay, near))
            self._delay = delayed[FRAME:]
            aec3_ran = self.frames - self.bypassed_frames  # frames AEC3 has processed
            if self._quiet >= IDLE_FRAMES and aec3_ran >= IDLE_FRAMES:
                # Idle: nothing sounded for seconds. AEC3 skips the frame (render and
                # capture stay in step) and the mic passes untouched: idle, AEC3 was most
                # of the daemon's CPU. Not sooner: skipped over an answer's pauses it
                # lost 4 dB, and over its own first frames 12 dB (measured, test_aec).
                cleaned = delayed[:FRAME]
                self.bypassed_frames += 1
            else:
                cleaned = self._aec.process(near, far)
                if self._quiet >= TAIL_FRAMES:
                    cleaned = delayed[:FRAME]  # nothing played that could still echo
            if self._warm < WARMUP_FRAMES:
                # AEC3 has not yet found the echo's delay (about the first 0.2-0.5 s of
                # sound it ever hears): the first answer would interrupt itself. Half
                # duplex for that one second of sound (plus the echo's tail), once.
                if sounding:
                    self._warm += 1
                    self._hold = HOLD_FRAMES
                if self._hold > 0:
                    self._hold -= 1
                    self.muted_frames += 1
                    cleaned = np.zeros(FRAME, dtype=np.int16)
            out[start : start + FRAME] = cleaned
            self.frames += 1
            if self.monitor is not None:
                self.monitor(near, far, out[start : start + FRAME])
        with self._lock:
            self._cap_time = now  # the capture timeline's position ``_pos`` is "now"
        return out

    def _idle_block(self, now: float, whole: int) -> bool:
        """Whether the next ``whole`` samples are all idle frames with no player (AEC3
        idle, the player rendering nothing, no warm-up mute pending, no monitor): if so
        the reference side is advanced past them here."""
        aec3_ran = self.frames - self.bypassed_frames
        if self.monitor is not None or self._quiet < IDLE_FRAMES or aec3_ran < IDLE_FRAMES:
            return False
        if self._hold > 0 and self._warm < WARMUP_FRAMES:
            return False
        with self._lock:
            if self._pos is None or (
                self._ref_time is not None and now - self._ref_time < STALL_MS / 1000
            ):
                return False
            frames = whole // FRAME
            self._pos += whole
            self.reference_underruns += frames
            self._low, self._window, self._bad_windows = 1 << 62, 0, 0
            return True

    def stats(self) -> EchoStats:
        with self._lock:
            lead = 0 if self._pos is None else self._ref_total - self._pos
        lead_ms = lead * 1000 / RATE
        return EchoStats(
            self.frames,
            self.reference_underruns,
            self.reference_gaps,
            self.resyncs,
            self.device_underflows,
            self.muted_frames,
            lead_ms,
        )


def _resampler(cache: dict[int, Resampler], rate: int) -> Resampler:
    res = cache.get(rate)
    if res is None:
        res = cache[rate] = Resampler(rate, RATE)
    return res


def wanted(echo_cancel: str, barge_in: str, hardware_aec: bool) -> bool:
    """Whether ``audio.echo_cancel`` turns the canceller on: "auto" means on for
    full duplex (``barge_in = "voice"``) on a board without hardware AEC."""
    if echo_cancel == "auto":
        return barge_in == "voice" and not hardware_aec
    return echo_cancel == "on"


@dataclass(frozen=True)
class EchoReport:
    """What `voicepi echo-test` measured: the echo's delay and level, and how much the
    canceller took off after it had ``settle_s`` seconds to converge."""

    delay_ms: float  # reference (as handed to the device) to its echo at the mic
    correlation: float  # 0..1: how clearly the mic heard the reference
    echo_dbfs: float  # the echo's level at the mic after settling
    residual_dbfs: float  # what the canceller let through after settling
    reduction_db: float  # echo_dbfs - residual_dbfs


def measure(
    reference: np.ndarray, mic: np.ndarray, cancelled: np.ndarray, *, settle_s: float = 2.0
) -> EchoReport:
    """Compare three aligned 16 kHz int16 streams of one test: what the player handed
    the device, what the mic heard, and the canceller's output. Only the part after
    ``settle_s`` where the reference sounds counts for the levels."""
    n = min(len(reference), len(mic), len(cancelled))
    ref = reference[:n].astype(np.float64)
    heard = mic[:n].astype(np.float64)
    out = cancelled[:n].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(max(2 * n, 2))))
    corr = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(ref, size)), size)
    # Lags from -0.5 s (the reference came after its echo: nothing can cancel that)
    # to +1 s; corr[-k] is the mic leading the reference by k samples.
    lags = np.concatenate((np.arange(-min(n, RATE // 2), 0), np.arange(min(n, RATE))))
    lag = int(lags[int(np.argmax(np.abs(corr[lags])))])
    a, b = (heard[lag:], ref[: n - lag]) if lag >= 0 else (heard[: n + lag], ref[-lag:])
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    correlation = abs(float(np.dot(a, b))) / denom if denom else 0.0
    lag = max(lag, 0)  # for the levels below: where the echo can be
    start = int(settle_s * RATE)
    frames = [
        i
        for i in range(start + lag, n - FRAME, FRAME)
        if np.mean(ref[i - lag : i - lag + FRAME] ** 2) > 1e4  # the reference sounds (> -50 dBFS)
    ]
    delay_ms = float(lags[int(np.argmax(np.abs(corr[lags])))]) * 1000 / RATE
    if not frames:
        return EchoReport(delay_ms, correlation, -100.0, -100.0, 0.0)
    idx = np.concatenate([np.arange(i, i + FRAME) for i in frames])
    echo = _dbfs(heard[idx])
    residual = _dbfs(out[idx])
    return EchoReport(delay_ms, correlation, echo, residual, echo - residual)


def _dbfs(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2) / 32768.0**2 + 1e-12))
