"""The server's audio codecs.

Inside, a session's audio is 24 kHz PCM16 (the model rate). The wire carries it as
``audio/pcm`` (24 kHz PCM16), ``audio/pcmu`` or ``audio/pcma`` (8 kHz G.711). Each
conversion resamples the samples it is given on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from realtime_client.audio.formats import float32_to_pcm16, pcm16_to_float32
from realtime_client.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from realtime_client.audio.resample import resample

from ._common import MODEL_RATE, Int16Array

__all__ = [
    "CODECS",
    "Codec",
    "OutputEncoder",
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


def decode(raw: bytes, codec: Codec) -> Int16Array:
    """Wire bytes → PCM16 at the codec's rate (a trailing odd byte of PCM16 is dropped)."""
    if codec.name == "pcm16":
        if len(raw) % 2:
            raw = raw[:-1]  # the trailing odd byte is half a sample; nothing to keep
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    out: Int16Array = (ulaw_decode if codec.name == "pcmu" else alaw_decode)(raw)
    return out


def _encode(samples: Int16Array, codec: Codec) -> bytes:
    """PCM16 already at the codec's rate → wire bytes."""
    if codec.name == "pcm16":
        return samples.astype("<i2", copy=False).tobytes()
    return bytes((ulaw_encode if codec.name == "pcmu" else alaw_encode)(samples))


def _resample(samples: Int16Array, in_rate: int, out_rate: int) -> Int16Array:
    """``samples`` at ``out_rate``, resampled on their own, same duration."""
    if in_rate == out_rate or samples.size == 0:
        return samples
    n = round(samples.size * out_rate / in_rate)
    out: Int16Array = float32_to_pcm16(resample(pcm16_to_float32(samples), in_rate, out_rate)[:n])
    return out


def to_model_rate(samples: Int16Array, rate: int) -> Int16Array:
    """A whole signal (one item's audio) at ``rate`` → 24 kHz, same duration."""
    return _resample(samples, rate, MODEL_RATE)


class OutputEncoder:
    """One output audio item: 24 kHz PCM16 chunks → wire bytes in ``codec``."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def encode(self, chunk: Int16Array) -> bytes:
        """The wire bytes of the next chunk of the item."""
        return _encode(_resample(chunk, MODEL_RATE, self.codec.rate), self.codec)


def encode_whole(samples: Int16Array, codec: Codec) -> bytes:
    """A whole item's 24 kHz audio as wire bytes."""
    return OutputEncoder(codec).encode(samples)
