"""Echo cancellation: what the speaker played must not come back as the user's voice.

Theory of operation
-------------------
Through speakers the microphone hears the assistant (the *far end*) as well as the user
(the *near end*). An :class:`EchoCanceller` takes each captured block together with the
block of far-end audio played at the same time (the *reference*) and returns the block
with the echo removed::

    clean = canceller.process(near, reference)      # same length as `near`

Two implementations:

* :class:`WebRtcEchoCanceller`: WebRTC's AEC3 (an adaptive filter with its own delay
  estimator) plus noise suppression, and optionally AGC2, from the ``pywebrtc-audio``
  package (``pip install 'realtime-client[aec]'``; imported when first used). It works on
  10 ms frames at the stream's rate; blocks of whole 10 ms frames (20 ms blocks, the
  default everywhere) add no latency, other block lengths add one frame.
* :class:`EchoGate`: the fallback without the extra. It cancels nothing; it mutes a block
  whose energy is explained by what was just played (the far end's recent energy times a
  learned echo path gain), so the assistant's voice is not taken for the user's. Speech
  louder than the predicted echo (a barge-in) passes. :func:`make_echo_canceller` picks
  AEC3 when it is installed, else says what to install (a warning) and returns the gate.

Both measure the echo suppression achieved, :attr:`EchoCanceller.erle_db` (echo return
loss enhancement: the energy that came in over the energy that went out, over the blocks
where the far end was playing, smoothed over about 2 s).

The reference must be what was *played*, aligned within the canceller's reach (AEC3
estimates delays up to several hundred ms): a full-duplex device gives it exactly
(:class:`~realtime_client.audio.devices.DuplexDevice`), separate devices give it through a
:class:`ReferenceTap` on the speaker. :class:`EchoPath` simulates a loudspeaker-room path
for tests and replays; :func:`estimate_delay_ms` finds the delay between two signals.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import AudioError, AudioFormatError

if TYPE_CHECKING:
    from .devices import CapturedBlock

__all__ = [
    "AEC_INSTALL_HINT",
    "AecMissingError",
    "EchoCancelled",
    "EchoCanceller",
    "EchoGate",
    "EchoPath",
    "ReferenceTap",
    "WebRtcEchoCanceller",
    "estimate_delay_ms",
    "make_echo_canceller",
]

logger = logging.getLogger(__name__)

Float32Array = npt.NDArray[np.float32]

#: What to install for AEC3 (quoted in errors and warnings).
AEC_INSTALL_HINT = "pip install 'realtime-client[aec]' (WebRTC AEC3 through pywebrtc-audio)"

_FAR_ACTIVE = 10.0 ** (-50.0 / 10.0)  # far-end block energy (-50 dBFS) that counts as playing
_NEAR_AUDIBLE = 10.0 ** (-60.0 / 10.0)  # microphone block energy (-60 dBFS) worth measuring
_ERLE_TIME_S = 2.0
_ONE_DB = 10.0**0.1  # smoothing time of the ERLE figure, in s


class AecMissingError(AudioError, ImportError):
    """``pywebrtc-audio`` is not installed: the message says how to install it."""


def _check_rate(sample_rate: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AudioFormatError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")


def _mono(samples: npt.ArrayLike, what: str) -> Float32Array:
    """Mono float32 from float or int16 input; typed errors for anything else."""
    x = np.asarray(samples)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise AudioFormatError(f"{what} must be mono (frames,), got shape {x.shape}")
    if x.dtype == np.int16:
        scaled: Float32Array = x.astype(np.float32) * np.float32(1.0 / 32768.0)
        return scaled
    if x.dtype.kind != "f":
        raise AudioFormatError(f"{what} must be float or int16 samples, got {x.dtype}")
    out: Float32Array = np.ascontiguousarray(x, dtype=np.float32)
    if out.size and not math.isfinite(float(out.sum(dtype=np.float64))):
        raise AudioFormatError(f"{what} samples must be finite: got NaN or inf")
    return out


class EchoCanceller:
    """Near-end block + reference block in, clean block out (see the module docstring).

    Subclasses implement :meth:`_process`; this class checks the input and keeps the ERLE
    figure.

    Args:
        sample_rate: Rate of both signals, in Hz.
    """

    #: Short name for status lines and reports (``"aec3"``, ``"gate"``).
    name = "none"

    def __init__(self, sample_rate: int) -> None:
        _check_rate(sample_rate)
        self.sample_rate = sample_rate
        self._erle_blocks: deque[float] | None = None
        #: Blocks processed so far.
        self.blocks = 0

    def process(self, near: npt.ArrayLike, reference: npt.ArrayLike | None) -> Float32Array:
        """Remove the echo of ``reference`` from ``near``.

        Args:
            near: The captured block: mono float32 in [-1, 1] or int16, at ``sample_rate``.
            reference: What was played during that block, same length and rate (``None``:
                nothing was played).

        Returns:
            The clean block, float32, as long as ``near``.

        Raises:
            AudioFormatError: Not mono, not float / int16, NaN / inf, or lengths differ.
        """
        x = _mono(near, "near-end audio")
        if reference is None:
            far = np.zeros(len(x), np.float32)
        else:
            far = _mono(reference, "reference audio")
            if len(far) != len(x):
                raise AudioFormatError(
                    f"reference has {len(far)} frames, the near-end block {len(x)}"
                )
        if not len(x):
            return x
        out = self._process(x, far)
        self._measure(x, far, out)
        self.blocks += 1
        return out

    def _process(self, near: Float32Array, far: Float32Array) -> Float32Array:
        raise NotImplementedError

    def _measure(self, near: Float32Array, far: Float32Array, out: Float32Array) -> None:
        n = len(near)
        far_e = float(np.dot(far, far)) / n
        near_e = float(np.dot(near, near)) / n
        # Only blocks with something to remove count: the far end playing, the microphone
        # hearing more than a quiet room.
        if far_e <= _FAR_ACTIVE or near_e <= _NEAR_AUDIBLE:
            return
        if self._erle_blocks is None:
            self._erle_blocks = deque(maxlen=max(1, round(_ERLE_TIME_S * self.sample_rate / n)))
        out_e = max(float(np.dot(out, out)) / n, near_e * 1e-10)
        self._erle_blocks.append(10.0 * math.log10(near_e / out_e))

    @property
    def erle_db(self) -> float | None:
        """Echo suppression achieved over the last ~2 s of far-end activity, in dB.

        The median of the blocks' input-over-output energy ratios while the far end was
        playing (a median, so the user talking over it in a few blocks does not pull the
        figure down). ``None`` before the far end has played anything. At most 100 dB.
        """
        if not self._erle_blocks:
            return None
        return float(np.median(np.fromiter(self._erle_blocks, np.float64)))

    def reset(self) -> None:
        """Forget the echo path and the ERLE figure (a new stream)."""
        self._erle_blocks = None
        self.blocks = 0


class WebRtcEchoCanceller(EchoCanceller):
    """WebRTC AEC3 + noise suppression (+ optional AGC2), from ``pywebrtc-audio``.

    Args:
        sample_rate: Rate of both signals, in Hz (8 to 48 kHz; 24 kHz for the Realtime
            API works directly).
        noise_suppression: Also suppress stationary noise (WebRTC NS).
        noise_suppression_level: 0 to 3 (6, 12, 18, 21 dB).
        auto_gain: Also apply AGC2 (off by default: it raises the echo residual with the
            voice, about 15 dB less ERLE measured here).
        stream_delay_ms: Delay hint for AEC3, in ms (it estimates the delay itself).

    Raises:
        AecMissingError: ``pywebrtc-audio`` is not installed.
        AudioFormatError: A bad rate or level.
    """

    name = "aec3"

    def __init__(
        self,
        sample_rate: int = 24_000,
        *,
        noise_suppression: bool = True,
        noise_suppression_level: int = 1,
        auto_gain: bool = False,
        stream_delay_ms: int = 0,
    ) -> None:
        super().__init__(sample_rate)
        if noise_suppression_level not in (0, 1, 2, 3):
            raise AudioFormatError(
                f"noise_suppression_level must be 0..3, got {noise_suppression_level!r}"
            )
        if not 8_000 <= sample_rate <= 48_000:
            raise AudioFormatError(f"AEC3 runs at 8 to 48 kHz, got {sample_rate} Hz")
        module = _pywebrtc_audio()
        self._apm: Any = module.AudioProcessor(
            sample_rate,
            1,
            echo_cancellation=True,
            noise_suppression=noise_suppression,
            high_pass_filter=True,
            auto_gain_control=auto_gain,
            ns_level=noise_suppression_level,
            stream_delay_ms=int(stream_delay_ms),
        )
        self._frame = sample_rate // 100
        self._near_pending = np.zeros(0, np.float32)
        self._far_pending = np.zeros(0, np.float32)
        self._out_pending = np.zeros(0, np.float32)
        self._primed: bool | None = None

    @property
    def latency_ms(self) -> float:
        """Delay the canceller adds, in ms: 0 for blocks of whole 10 ms frames, else 10."""
        return 10.0 if self._primed else 0.0

    @property
    def speech_probability(self) -> float:
        """WebRTC's speech probability for the last frame (0..1)."""
        return float(self._apm.speech_probability)

    def _process(self, near: Float32Array, far: Float32Array) -> Float32Array:
        frame = self._frame
        n = len(near)
        if self._primed is None:
            # Whole frames go straight through; otherwise one frame of delay (see latency_ms).
            self._primed = n % frame != 0
            if self._primed:
                self._out_pending = np.zeros(frame, np.float32)
        if not self._primed and not len(self._near_pending) and n % frame == 0:
            return np.asarray(self._apm.process(near, far), dtype=np.float32)
        near_all = np.concatenate((self._near_pending, near))
        far_all = np.concatenate((self._far_pending, far))
        whole = len(near_all) // frame * frame
        self._near_pending, self._far_pending = near_all[whole:], far_all[whole:]
        if whole:
            done = np.asarray(self._apm.process(near_all[:whole], far_all[:whole]), np.float32)
            self._out_pending = np.concatenate((self._out_pending, done))
        out, self._out_pending = self._out_pending[:n], self._out_pending[n:]
        if len(out) < n:  # cannot happen once primed; kept as a guard for odd inputs
            out = np.concatenate((np.zeros(n - len(out), np.float32), out))
        return out

    def reset(self) -> None:
        """Forget the echo path, noise estimate and ERLE figure."""
        super().reset()
        self._apm.reset()
        self._near_pending = np.zeros(0, np.float32)
        self._far_pending = np.zeros(0, np.float32)
        self._out_pending = np.zeros(0, np.float32)
        self._primed = None


def _pywebrtc_audio() -> Any:
    try:
        import pywebrtc_audio
    except ImportError as exc:
        raise AecMissingError(
            f"echo cancellation needs pywebrtc-audio ({exc}): {AEC_INSTALL_HINT}"
        ) from exc
    return pywebrtc_audio


class EchoGate(EchoCanceller):
    """The fallback without AEC3: mute blocks whose energy is the far end's echo.

    The echo's energy follows the far end's: each block's is predicted as the peak far-end
    block energy over the last ``tail_ms`` times the *coupling* (the echo path's gain).
    The coupling tracks the upper envelope of microphone-over-far-end energy ratios: it
    follows a ratio up (by at most 1 dB a block) when it is within ``margin_db`` of the
    current value (the echo getting louder), and otherwise decays by ``decay_db_per_s``
    (so a user talking over the assistant, far above the echo, is not learned as echo). It starts at
    ``initial_coupling_db`` (0 dB: an echo as loud as the sound, the safe side).

    A block below ``margin_db`` over the predicted echo is echo: it is attenuated by
    ``attenuation_db``. A block above it is the user talking and passes unchanged.
    Nothing is cancelled: during double talk the echo passes with the user's voice.

    Args:
        sample_rate: Rate of both signals, in Hz.
        tail_ms: How long an echo lasts after the sound that caused it, in ms.
        margin_db: How much louder than the predicted echo speech must be to pass, in dB.
        attenuation_db: How much a gated block is attenuated, in dB (> 0).
        initial_coupling_db: Echo path gain assumed at the start, in dB.
        decay_db_per_s: How fast the coupling estimate relaxes, in dB per second (> 0).

    Raises:
        AudioFormatError: A bad rate or parameter.
    """

    name = "gate"

    def __init__(
        self,
        sample_rate: int = 24_000,
        *,
        tail_ms: float = 300.0,
        margin_db: float = 6.0,
        attenuation_db: float = 40.0,
        initial_coupling_db: float = 0.0,
        decay_db_per_s: float = 3.0,
    ) -> None:
        super().__init__(sample_rate)
        for label, value in (
            ("tail_ms", tail_ms),
            ("attenuation_db", attenuation_db),
            ("decay_db_per_s", decay_db_per_s),
        ):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise AudioFormatError(f"{label} must be a positive number, got {value!r}")
        finite = (("margin_db", margin_db), ("initial_coupling_db", initial_coupling_db))
        for label, value in finite:
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise AudioFormatError(f"{label} must be a finite number, got {value!r}")
        self._tail_s = tail_ms / 1000.0
        self._margin = 10.0 ** (margin_db / 10.0)
        self._gain = np.float32(10.0 ** (-attenuation_db / 20.0))
        self._initial_coupling = 10.0 ** (initial_coupling_db / 10.0)
        self._decay_db_per_s = float(decay_db_per_s)
        self._coupling = self._initial_coupling
        self._far_energy: list[float] = []
        #: Blocks muted as echo so far.
        self.gated_blocks = 0

    @property
    def coupling_db(self) -> float:
        """The echo path gain currently assumed, in dB."""
        return 10.0 * math.log10(self._coupling)

    def _process(self, near: Float32Array, far: Float32Array) -> Float32Array:
        n = len(near)
        keep = max(1, int(round(self._tail_s * self.sample_rate / n)))
        self._far_energy.append(float(np.dot(far, far)) / n)
        del self._far_energy[:-keep]
        far_peak = max(self._far_energy)
        if far_peak <= _FAR_ACTIVE:
            return near
        near_e = float(np.dot(near, near)) / n
        ratio = near_e / far_peak
        if self._coupling < ratio <= self._margin * self._coupling:
            # Up at most 1 dB a block: a user's syllable rising out of the echo must not
            # ratchet the estimate up with it.
            self._coupling = min(ratio, self._coupling * _ONE_DB)
        else:
            decay = 10.0 ** (-self._decay_db_per_s * n / self.sample_rate / 10.0)
            self._coupling = max(self._coupling * decay, 1e-6)
        if near_e <= self._margin * self._coupling * far_peak:
            self.gated_blocks += 1
            gated: Float32Array = near * self._gain
            return gated
        return near

    def reset(self) -> None:
        """Forget the coupling, the far-end history and the ERLE figure."""
        super().reset()
        self._coupling = self._initial_coupling
        self._far_energy = []
        self.gated_blocks = 0


def make_echo_canceller(
    sample_rate: int = 24_000,
    kind: Literal["auto", "aec3", "gate"] = "auto",
    **options: Any,
) -> EchoCanceller:
    """The best echo canceller available.

    Args:
        sample_rate: Rate of both signals, in Hz.
        kind: ``"aec3"`` (:class:`WebRtcEchoCanceller`, error if not installed),
            ``"gate"`` (:class:`EchoGate`), or ``"auto"``: AEC3 if installed, else a
            warning saying what to install and the gate.
        **options: Passed to the chosen class.

    Raises:
        AecMissingError: ``kind="aec3"`` without ``pywebrtc-audio``.
        AudioFormatError: A bad rate, kind or option value.
    """
    if kind == "gate":
        return EchoGate(sample_rate, **options)
    if kind == "aec3":
        return WebRtcEchoCanceller(sample_rate, **options)
    if kind != "auto":
        raise AudioFormatError(f"kind must be 'auto', 'aec3' or 'gate', got {kind!r}")
    try:
        return WebRtcEchoCanceller(sample_rate, **options)
    except AecMissingError:
        logger.warning(
            "echo cancellation is not installed (%s); using the echo gate instead: the "
            "assistant's voice is muted on the microphone, not cancelled",
            AEC_INSTALL_HINT,
        )
        return EchoGate(sample_rate)


# -- wiring ----------------------------------------------------------------------------------


class EchoCancelled:
    """A capture source with the echo removed: for ``session.attach(EchoCancelled(mic))``.

    Iterates ``source`` (a :class:`~realtime_client.audio.Microphone`, a duplex device's
    capture side, a :class:`~realtime_client.audio.VirtualMicrophone` with a speaker) and
    yields each :class:`~realtime_client.audio.devices.CapturedBlock` with its samples
    cleaned. The reference is the block's own ``reference`` (a duplex device) or, failing
    that, what ``tap`` says was played at the block's ``capture_time``; with neither, the
    block passes unchanged.

    Args:
        source: Async iterable of :class:`CapturedBlock` (mono).
        canceller: The canceller; ``None``: :func:`make_echo_canceller` at the source's
            ``sample_rate``.
        tap: Where to find the reference for blocks that carry none.
    """

    def __init__(
        self,
        source: Any,
        canceller: EchoCanceller | None = None,
        *,
        tap: ReferenceTap | None = None,
    ) -> None:
        rate = getattr(source, "sample_rate", None)
        if canceller is None:
            if not isinstance(rate, int):
                raise AudioFormatError("the source has no sample_rate: pass a canceller")
            canceller = make_echo_canceller(rate)
        self.source = source
        self.canceller = canceller
        self.tap = tap
        self.sample_rate: int = canceller.sample_rate

    def __aiter__(self) -> AsyncIterator[CapturedBlock]:
        return self._blocks()

    async def _blocks(self) -> AsyncIterator[CapturedBlock]:
        canceller = self.canceller
        async for block in self.source:
            if block.sample_rate != canceller.sample_rate:
                raise AudioFormatError(
                    f"block at {block.sample_rate} Hz, canceller at {canceller.sample_rate} Hz"
                )
            reference = block.reference
            if reference is None and self.tap is not None:
                reference = self.tap.reference(
                    block.capture_time, len(block.samples), block.sample_rate
                )
            clean = canceller.process(block.samples, reference)
            yield replace(block, samples=clean)

    @property
    def erle_db(self) -> float | None:
        """The canceller's :attr:`EchoCanceller.erle_db`."""
        return self.canceller.erle_db


class ReferenceTap:
    """What a separate output device played, by time: the reference for its echo.

    The speaker's output callback calls :meth:`record` with each block it hands to the
    device and the block's DAC time (copying into a preallocated ring, no allocation).
    The capture side asks :meth:`reference` for the far end heard at a block's capture
    time, shifted by ``delay_ms`` (the acoustic and device delay not in the timestamps;
    :func:`estimate_delay_ms` measures it).

    Args:
        sample_rate: Rate of the recorded blocks (the output device's), in Hz.
        history_ms: How much played audio is kept, in ms.
        delay_ms: Extra delay between the DAC time and the echo's capture time, in ms.

    Raises:
        AudioFormatError: A bad rate or duration.
    """

    def __init__(self, sample_rate: int, *, history_ms: float = 2000.0, delay_ms: float = 0.0):
        _check_rate(sample_rate)
        if (
            not isinstance(history_ms, (int, float))
            or not math.isfinite(history_ms)
            or (history_ms <= 0)
        ):
            raise AudioFormatError(f"history_ms must be a positive number, got {history_ms!r}")
        self.sample_rate = sample_rate
        self.delay_ms = float(delay_ms)
        self._ring = np.zeros(max(1, int(sample_rate * history_ms / 1000.0)), np.float32)
        self._frames = 0  # frames recorded (the ring's write position, unwrapped)
        self._anchor: tuple[int, float] | None = None  # (frame, DAC time) of the last block
        self._lock = threading.Lock()

    def record(self, block: Float32Array, dac_time: float) -> None:
        """Store one block handed to the device (called on the audio thread)."""
        n = len(block)
        size = len(self._ring)
        with self._lock:
            start = self._frames % size
            first = min(n, size - start)
            self._ring[start : start + first] = block[:first]
            if first < n:
                self._ring[: n - first] = block[first:n]
            self._anchor = (self._frames, float(dac_time))
            self._frames += n

    def reference(self, capture_time: float, frames: int, sample_rate: int) -> Float32Array:
        """The far end heard from ``capture_time`` for ``frames`` frames at ``sample_rate``.

        Silence where nothing was recorded (before the first block, beyond the history).
        """
        out = np.zeros(frames, np.float32)
        with self._lock:
            if self._anchor is None or frames <= 0:
                return out
            anchor_frame, anchor_time = self._anchor
            rate = self.sample_rate
            start = anchor_frame + (capture_time - self.delay_ms / 1000.0 - anchor_time) * rate
            positions = start + np.arange(frames) * (rate / sample_rate)
            index = np.rint(positions).astype(np.int64)
            valid = (index >= max(0, self._frames - len(self._ring))) & (index < self._frames)
            out[valid] = self._ring[index[valid] % len(self._ring)]
        return out


@dataclass
class EchoPath:
    """A simulated loudspeaker-room-microphone path: delay, gain and a decaying tail.

    The impulse response is a direct path ``delay_ms`` after the sound, then room
    reflections: noise decaying by 60 dB over ``tail_ms``, scaled so the whole path has
    gain ``gain_db`` (energy). :meth:`process` convolves blocks as a stream (FFT
    overlap-save), so :meth:`process` of consecutive played blocks returns the echo the
    microphone hears during them.

    Attributes:
        sample_rate: Rate, in Hz.
        delay_ms: Speaker-to-microphone delay, in ms.
        gain_db: Echo path gain, in dB (0: the echo is as loud as what was played).
        tail_ms: Reverberation time (60 dB decay), in ms.
        seed: Seed of the reflections.
    """

    sample_rate: int = 24_000
    delay_ms: float = 40.0
    gain_db: float = -6.0
    tail_ms: float = 250.0
    seed: int = 7

    def __post_init__(self) -> None:
        _check_rate(self.sample_rate)
        for label in ("delay_ms", "tail_ms"):
            value = getattr(self, label)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise AudioFormatError(f"{label} must be a number >= 0, got {value!r}")
        if not isinstance(self.gain_db, (int, float)) or not math.isfinite(self.gain_db):
            raise AudioFormatError(f"gain_db must be a finite number, got {self.gain_db!r}")
        rate = self.sample_rate
        delay = int(round(self.delay_ms * rate / 1000.0))
        tail = max(1, int(round(self.tail_ms * rate / 1000.0)))
        rng = np.random.default_rng(self.seed)
        t = np.arange(tail)
        reflections = rng.standard_normal(tail) * 10.0 ** (-3.0 * t / tail)
        reflections[0] = 3.0 * max(1.0, float(np.abs(reflections).max()))  # the direct path
        reflections *= 10.0 ** (self.gain_db / 20.0) / math.sqrt(
            float(np.dot(reflections, reflections))
        )
        self.impulse: Float32Array = np.concatenate((np.zeros(delay), reflections)).astype(
            np.float32
        )
        self._history = np.zeros(len(self.impulse) - 1, np.float32)
        self._spectra: dict[int, Any] = {}

    def process(self, played: npt.ArrayLike) -> Float32Array:
        """The echo the microphone hears during this block of played audio.

        Args:
            played: The next block the speaker played, mono float32 or int16.
        """
        x = _mono(played, "played audio")
        n = len(x)
        if not n:
            return x
        taps = len(self.impulse)
        size = 1 << (taps + n - 1).bit_length()
        spectrum = self._spectra.get(size)
        if spectrum is None:
            spectrum = self._spectra[size] = np.fft.rfft(self.impulse, size)
        window = np.concatenate((self._history, x))
        self._history = window[n:]
        full = np.fft.irfft(np.fft.rfft(window, size) * spectrum, size)
        return full[taps - 1 : taps - 1 + n].astype(np.float32)

    def reset(self) -> None:
        """Silence in the room (forget the played history)."""
        self._history = np.zeros(len(self.impulse) - 1, np.float32)


def estimate_delay_ms(
    near: npt.ArrayLike, far: npt.ArrayLike, sample_rate: int, *, max_delay_ms: float = 500.0
) -> float | None:
    """The delay of ``far``'s echo in ``near``, in ms (GCC-PHAT cross-correlation).

    The cross-spectrum is whitened (phase transform) so the direct path stands out as a
    sharp peak, not smeared by the room's reflections or the voice's pitch periods.

    Args:
        near: What the microphone recorded (mono).
        far: What was played over the same span (mono, same rate).
        sample_rate: Their rate, in Hz.
        max_delay_ms: Longest delay searched, in ms.

    Returns:
        The delay (``near`` lags ``far`` by it), or ``None`` when there is no clear peak
        (less than 8 standard deviations above the correlation's spread: no echo, or too
        little signal).

    Raises:
        AudioFormatError: Not mono, not float / int16, or a bad rate.
    """
    _check_rate(sample_rate)
    x = _mono(near, "near-end audio").astype(np.float64)
    y = _mono(far, "far-end audio").astype(np.float64)
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    max_lag = min(n - 1, int(max_delay_ms * sample_rate / 1000.0))
    if n < 2 or max_lag < 1 or not np.dot(x, x) or not np.dot(y, y):
        return None
    size = 1 << (2 * n - 1).bit_length()
    cross = np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size))
    magnitude = np.abs(cross)
    cross /= np.maximum(magnitude, magnitude.max() * 1e-9)
    corr = np.fft.irfft(cross, size)
    lags = corr[: max_lag + 1]
    lag = int(np.argmax(lags))
    spread = float(np.std(corr))
    if spread <= 0.0 or lags[lag] < 8.0 * spread:
        return None
    return lag * 1000.0 / sample_rate
