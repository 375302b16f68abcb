"""The server's audio codecs, with every stream resampled statefully.

Inside, a session's audio is 24 kHz PCM16 (the model rate). The wire carries it as
``audio/pcm`` (24 kHz PCM16), ``audio/pcmu`` or ``audio/pcma`` (8 kHz G.711). Each stream
that changes rate goes through one :class:`~realtime_client.audio.Resampler` for its whole
life, never chunk by chunk: the resampler's output does not depend on how the stream was
cut, so the deltas of an item carry the same samples however many there are, with no
clicks at their boundaries.

The resampler holds nothing back: after ``n`` input samples it has returned exactly
``ceil(n * out_rate / in_rate)``, so an item's audio has its exact duration in every
format and nothing is left to flush when it ends. (``Resampler.flush`` would add the
filter's delay, 0.4 ms, *past* the end: a 1000 ms item would become 1000.5 ms in G.711,
longer than the item a truncate is checked against.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from realtime_client.audio.formats import float32_to_pcm16, pcm16_to_float32
from realtime_client.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from realtime_client.audio.resample import Resampler

from ._common import MODEL_RATE, Int16Array

__all__ = [
    "CODECS",
    "Codec",
    "OutputEncoder",
    "StreamResampler",
    "decode",
    "encode_whole",
    "to_model_rate",
]


@dataclass(frozen=True)
class Codec:
    """One wire audio format.

    Attributes:
        name: ``"pcm16"``, ``"pcmu"`` (G.711 µ-law) or ``"pcma"`` (G.711 A-law).
        rate: Its sample rate, in Hz.
    """

    name: Literal["pcm16", "pcmu", "pcma"]
    rate: int


#: The codec of each GA format ``type``.
CODECS: dict[str, Codec] = {
    "audio/pcm": Codec("pcm16", MODEL_RATE),
    "audio/pcmu": Codec("pcmu", 8_000),
    "audio/pcma": Codec("pcma", 8_000),
}


def decode(raw: bytes | memoryview, codec: Codec) -> Int16Array:
    """Wire bytes → PCM16 at the codec's rate.

    Raises:
        ValueError: PCM16 bytes of odd length (half a sample). Callers decide: a stream
            of appends carries the odd byte over to the next one, a one-shot item's
            audio is refused.
    """
    if codec.name == "pcm16":
        if len(raw) % 2:
            raise ValueError(f"{len(raw)} bytes of PCM16 end in half a sample")
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    out: Int16Array = (ulaw_decode if codec.name == "pcmu" else alaw_decode)(raw)
    return out


def _encode(samples: Int16Array, codec: Codec) -> bytes:
    """PCM16 already at the codec's rate → wire bytes."""
    if codec.name == "pcm16":
        return samples.astype("<i2", copy=False).tobytes()
    return bytes((ulaw_encode if codec.name == "pcmu" else alaw_encode)(samples))


class StreamResampler:
    """One PCM16 stream from ``in_rate`` to ``out_rate``, resampled as a whole.

    After ``n`` input samples in total, :meth:`process` has returned exactly
    ``ceil(n * out_rate / in_rate)`` samples, the same ones whatever the chunking.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._resampler = Resampler(in_rate, out_rate) if in_rate != out_rate else None

    def process(self, samples: Int16Array) -> Int16Array:
        """The next chunk of the stream, at ``out_rate``."""
        if self._resampler is None:
            return samples
        out: Int16Array = float32_to_pcm16(self._resampler.process(pcm16_to_float32(samples)))
        return out

    def reset(self) -> None:
        """Forget the stream: the next :meth:`process` starts a new one."""
        if self._resampler is not None:
            self._resampler.reset()


def to_model_rate(samples: Int16Array, rate: int) -> Int16Array:
    """A whole signal (one item's audio) at ``rate`` → 24 kHz, same duration."""
    return StreamResampler(rate, MODEL_RATE).process(samples)


class OutputEncoder:
    """One output audio item's stream: 24 kHz PCM16 chunks → wire bytes in ``codec``.

    Every chunk continues the same resampled stream, which starts with the item.
    """

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._stream = StreamResampler(MODEL_RATE, codec.rate)

    def encode(self, chunk: Int16Array) -> bytes:
        """The wire bytes of the next chunk of the item."""
        return _encode(self._stream.process(chunk), self.codec)


def encode_whole(samples: Int16Array, codec: Codec) -> bytes:
    """A whole item's 24 kHz audio as wire bytes (the same bytes its deltas carried)."""
    return OutputEncoder(codec).encode(samples)
