"""Energy voice-activity detector, for the local server's ``server_vad`` and the echo guard.

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
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import AudioFormatError

__all__ = [
    "EnergyVAD",
    "SpeechStarted",
    "SpeechStopped",
    "VadEvent",
    "threshold_to_dbfs",
]

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

        Raises:
            AudioFormatError: A parameter is out of range.
        """
        if sample_rate <= 0:
            raise AudioFormatError(f"sample_rate must be positive, got {sample_rate}")
        for name, value in (
            ("prefix_padding_ms", prefix_padding_ms),
            ("silence_duration_ms", silence_duration_ms),
            ("min_speech_ms", min_speech_ms),
        ):
            if value < 0:
                raise AudioFormatError(f"{name} must be ≥ 0, got {value}")
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
        self._energy_threshold = 10.0 ** (self.threshold_dbfs / 10.0)
        self._onset_frames = max(1, self._frames_for_ms(min_speech_ms))
        self._silence_frames = max(1, self._frames_for_ms(silence_duration_ms))
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
        self._speaking = False
        self._voiced_run = 0
        self._unvoiced_run = 0

    @property
    def position_ms(self) -> int:
        """Audio fed so far (including samples waiting for a full frame), in ms."""
        return self._ms(self._samples_in)

    @property
    def speaking(self) -> bool:
        """True between a :class:`SpeechStarted` and the next :class:`SpeechStopped`."""
        return self._speaking

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
        voiced = energy >= self._energy_threshold
        first = self._frames_done
        self._frames_done += n_frames
        # Fast paths for the common steady states keep long silences and long speech cheap.
        if not self._speaking and not voiced.any():
            self._voiced_run = 0
            return []
        if self._speaking and voiced.all():
            self._unvoiced_run = 0
            return []
        events: list[VadEvent] = []
        for offset, is_voiced in enumerate(voiced.tolist()):
            frame = first + offset
            if not self._speaking:
                self._voiced_run = self._voiced_run + 1 if is_voiced else 0
                if self._voiced_run >= self._onset_frames:
                    start_frame = frame + 1 - self._onset_frames
                    start_ms = self._ms(start_frame * self._frame_len) - self.prefix_padding_ms
                    events.append(SpeechStarted(audio_start_ms=max(0, start_ms)))
                    self._speaking = True
                    self._unvoiced_run = 0
            else:
                self._unvoiced_run = 0 if is_voiced else self._unvoiced_run + 1
                if self._unvoiced_run >= self._silence_frames:
                    end_ms = self._ms((frame + 1) * self._frame_len)
                    events.append(SpeechStopped(audio_end_ms=end_ms))
                    self._speaking = False
                    self._voiced_run = 0
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
