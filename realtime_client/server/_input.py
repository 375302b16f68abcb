"""The input audio buffer and its voice-activity detector (no events, no I/O).

Theory of operation
-------------------
The buffer is one continuous stream from the last clear (or change of input format): the
appends follow each other with no gap, so they are resampled as one stream. Samples are
kept twice, in step:

* at the input format's rate (8 kHz for G.711), where the VAD runs and where positions
  are counted in ms since the session's first input sample (the time base of
  ``audio_start_ms`` / ``audio_end_ms``, protocol.md §6);
* at 24 kHz, for the user items a commit makes, through one stateful
  :class:`~._audio.StreamResampler`: how the client cut its appends changes nothing,
  and a commit that cuts the stream (server VAD commits speech and keeps the rest)
  cuts the 24 kHz stream at exactly the same instant, with no edge effect.

Input rates divide 24 kHz (24 or 8 kHz), so input sample ``i`` is 24 kHz samples
``i * f`` to ``i * f + f - 1`` with ``f = 24000 / rate``, and both copies are cut at
the same index. A commit does not restart the stream (the next turn continues it); a
clear does, and so does a new input format.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from realtime_client.audio.vad import EnergyVAD, ModelVAD, VadEvent

from ._audio import StreamResampler
from ._common import MODEL_RATE, Int16Array

__all__ = ["InputBuffer"]

_SEMANTIC_SILENCE_MS = {"low": 800, "medium": 500, "auto": 500, "high": 250}


def _joined(chunks: list[Int16Array]) -> Int16Array:
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    if len(chunks) > 1:
        chunks[:] = [np.concatenate(chunks)]
    return chunks[0]


class InputBuffer:
    """The session's input audio buffer, its 24 kHz twin and its VAD.

    Args:
        rate: The input format's sample rate, in Hz (a divisor of 24 kHz).
        vad_kind: ``"energy"`` (:class:`EnergyVAD`) or ``"silero"`` (:class:`ModelVAD`).
    """

    def __init__(self, rate: int, vad_kind: str = "energy") -> None:
        self.vad_kind = vad_kind
        self._native: list[Int16Array] = []
        self._model: list[Int16Array] = []
        #: Samples buffered, at :attr:`rate`.
        self.samples = 0
        #: Stream position of the buffer's first sample, in ms.
        self.start_ms = 0.0
        #: All input audio so far, in ms (the audio time base).
        self.stream_ms = 0.0
        #: The detector, when turn detection is on.
        self.vad: EnergyVAD | ModelVAD | None = None
        #: Stream position where the detector's own time base starts, in ms.
        self.vad_origin_ms = 0.0
        self._vad_signature: tuple[Any, ...] | None = None
        #: The first byte of a PCM16 sample whose second byte has not been appended yet
        #: (an append of odd length); the next append starts with it.
        self.pending_byte = b""
        #: The input format's sample rate, in Hz.
        self.rate = 0
        self._factor = 1
        self._to_model: StreamResampler
        self.restart(rate)

    @property
    def ms(self) -> float:
        """Audio buffered, in ms."""
        return self.samples * 1000.0 / self.rate

    @property
    def speaking(self) -> bool:
        """Whether the VAD is inside a turn."""
        return self.vad is not None and self.vad.speaking

    def restart(self, rate: int) -> None:
        """A new input format: an empty buffer and a new stream (the time base goes on)."""
        if MODEL_RATE % rate:
            raise ValueError(f"input rate {rate} Hz does not divide {MODEL_RATE} Hz")
        if rate != self.rate:
            self.rate = rate
            self._to_model = StreamResampler(rate, MODEL_RATE)
        self._factor = MODEL_RATE // rate
        self.clear()

    def clear(self) -> None:
        """Drop everything buffered; the next append starts a new stream."""
        self._native = []
        self._model = []
        self.samples = 0
        self.start_ms = self.stream_ms
        self.pending_byte = b""
        self._to_model.reset()

    def append(self, samples: Int16Array) -> list[VadEvent]:
        """Add input samples (at :attr:`rate`); return what the VAD decided on them."""
        if samples.size == 0:
            return []
        if self.samples == 0:
            self.start_ms = self.stream_ms
        self._native.append(samples)
        if self._factor > 1:  # at 24 kHz the two copies are one
            self._model.append(self._to_model.process(samples))
        self.samples += samples.size
        self.stream_ms += samples.size * 1000.0 / self.rate
        return self.vad.process(samples) if self.vad is not None else []

    def take(self, end_ms: float | None = None, start_ms: float | None = None) -> Int16Array:
        """Remove buffered audio up to stream position ``end_ms`` (all if ``None``).

        Returns:
            The 24 kHz audio from ``start_ms`` (the buffer's start if ``None``) to
            ``end_ms``; what lies before ``start_ms`` is dropped.
        """
        native = _joined(self._native)
        rate, f = self.rate, self._factor
        model = _joined(self._model) if f > 1 else native
        end = native.size if end_ms is None else round((end_ms - self.start_ms) * rate / 1000)
        end = max(0, min(end, native.size))
        start = 0 if start_ms is None else round((start_ms - self.start_ms) * rate / 1000)
        start = max(0, min(start, end))
        taken: Int16Array = model[start * f : end * f].copy()
        rest = native[end:]
        self._native = [rest] if rest.size else []
        self._model = [model[end * f :]] if rest.size and f > 1 else []
        self.samples = int(rest.size)
        self.start_ms += end * 1000.0 / rate
        return taken

    def trim_unspoken(self, max_ms: float | None = None) -> None:
        """Drop buffered audio that no future speech start can reach back to.

        At most ``max_ms`` is kept (the buffer cap), however long ``prefix_padding_ms``
        is: a speech start then reaches back no further than the buffer holds.

        A speech start reported later begins at most ``prefix_padding_ms`` before the
        first of the onset frames still to come, and those begin no earlier than
        ``min_speech_ms`` (whole frames) before the current end; two more frames cover
        rounding and the detector's partial frame. The time base is untouched:
        :meth:`take` advances :attr:`start_ms` by what it removes.
        """
        vad = self.vad
        if vad is None or vad.speaking:
            return
        frame_ms = vad.frame_ms
        onset_ms = max(1, math.ceil(vad.min_speech_ms / frame_ms)) * frame_ms
        keep_ms: float = vad.prefix_padding_ms + onset_ms + 2 * frame_ms
        if max_ms is not None:
            keep_ms = min(keep_ms, max_ms)
        cut_ms = self.stream_ms - keep_ms
        if cut_ms > self.start_ms:
            self.take(cut_ms)

    def configure_vad(self, turn_detection: dict[str, Any] | None, rate: int, force: bool) -> None:
        """Set up the detector for ``turn_detection`` at ``rate`` (``None``: no detector).

        An unchanged configuration keeps the detector (and its state) unless ``force``;
        a new one starts listening at the current stream position.
        """
        td = turn_detection
        if td is None:
            self.vad = None
            self._vad_signature = None
            return
        if td.get("type") == "semantic_vad":
            params = (0.5, 300, _SEMANTIC_SILENCE_MS.get(td.get("eagerness") or "auto", 500))
        else:
            params = (
                float(td.get("threshold", 0.5)),
                int(td.get("prefix_padding_ms", 300)),
                int(td.get("silence_duration_ms", 200)),
            )
        signature = (*params, rate)
        if not force and signature == self._vad_signature:
            return
        make = ModelVAD if self.vad_kind == "silero" else EnergyVAD
        self.vad = make(
            rate, threshold=params[0], prefix_padding_ms=params[1], silence_duration_ms=params[2]
        )
        self._vad_signature = signature
        self.vad_origin_ms = self.stream_ms
