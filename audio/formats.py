"""Sample formats and conversions.

Inside the pipeline audio is float32 in [-1, 1], shaped ``(frames,)`` for mono or
``(frames, channels)``. At the wire edge it is PCM16 little-endian (the Realtime API's
``audio/pcm`` at 24 kHz) or G.711 (see :mod:`~realtime_client.audio.g711`).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pybase64

from .errors import AudioFormatError

try:  # the clip ufunc itself: numpy >= 2 ...
    _umath = importlib.import_module("numpy._core.umath")
except ImportError:  # pragma: no cover - ... and numpy 1.x
    _umath = importlib.import_module("numpy.core.umath")
_clip: Any = _umath.clip

__all__ = [
    "PCM16_24K",
    "AudioFormat",
    "SampleType",
    "b64_to_pcm16",
    "b64_to_float32",
    "float32_to_b64",
    "float32_to_pcm16",
    "pcm16_to_b64",
    "pcm16_to_float32",
    "to_mono",
    "to_stereo",
    "as_float32",
]

SampleType = Literal["pcm16", "float32", "pcmu", "pcma"]

Float32Array = npt.NDArray[np.float32]
Int16Array = npt.NDArray[np.int16]

_BYTES_PER_SAMPLE: dict[str, int] = {"pcm16": 2, "float32": 4, "pcmu": 1, "pcma": 1}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """A stream's sample rate, channel count and sample type.

    Attributes:
        sample_rate: Frames per second, in Hz.
        channels: Interleaved channels per frame.
        sample_type: ``"pcm16"`` (little-endian int16), ``"float32"``, or G.711
            ``"pcmu"`` (µ-law) / ``"pcma"`` (A-law), one byte per sample.
    """

    sample_rate: int = 24_000
    channels: int = 1
    sample_type: SampleType = "pcm16"

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise AudioFormatError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.channels <= 0:
            raise AudioFormatError(f"channels must be positive, got {self.channels}")
        if self.sample_type not in _BYTES_PER_SAMPLE:
            raise AudioFormatError(f"unknown sample_type {self.sample_type!r}")

    @property
    def bytes_per_frame(self) -> int:
        """Bytes for one frame (all channels)."""
        return _BYTES_PER_SAMPLE[self.sample_type] * self.channels

    def frames_for_ms(self, ms: float) -> int:
        """Number of frames in ``ms`` milliseconds (rounded down)."""
        return int(self.sample_rate * ms // 1000)

    def ms_for_frames(self, frames: int) -> float:
        """Duration in milliseconds of ``frames`` frames."""
        return frames * 1000.0 / self.sample_rate

    def ms_for_bytes(self, nbytes: int) -> float:
        """Duration in milliseconds of ``nbytes`` bytes in this format."""
        return self.ms_for_frames(nbytes // self.bytes_per_frame)


#: The Realtime API's PCM format: 24 kHz mono PCM16 little-endian.
PCM16_24K = AudioFormat(24_000, 1, "pcm16")

_LE_INT16 = np.dtype("<i2")
_FULL_SCALE = np.float32(32768.0)
_PCM16_MIN = np.float32(-32768.0)
_PCM16_MAX = np.float32(32767.0)
_UNIT_MIN = np.float32(-1.0)
_UNIT_MAX = np.float32(32767.0 / 32768.0)  # exact in float32: 1 - 2**-15


def pcm16_to_float32(data: bytes | bytearray | memoryview | Int16Array) -> Float32Array:
    """Convert PCM16 (little-endian bytes or an int16 array) to float32 in [-1, 1).

    The scale is 1/32768, so -32768 maps to exactly -1.0 and the mapping is exact
    and invertible by :func:`float32_to_pcm16`.
    """
    if isinstance(data, np.ndarray):
        if data.dtype != np.int16:
            raise AudioFormatError(f"expected int16 samples, got {data.dtype}")
        samples = data
    else:
        if len(data) % 2:
            raise AudioFormatError(f"PCM16 data must have an even byte count, got {len(data)}")
        samples = np.frombuffer(data, dtype=_LE_INT16)
    out = samples.astype(np.float32)
    out *= np.float32(1.0 / 32768.0)
    return out


def float32_to_pcm16(samples: npt.ArrayLike) -> Int16Array:
    """Convert float samples in [-1, 1] to int16, rounding to nearest and clipping.

    Values beyond full scale clip to -32768 / 32767 instead of wrapping; NaN becomes 0.
    int16 input is PCM16 already and is returned unchanged (as a copy).

    Raises:
        AudioFormatError: Samples that are neither float nor int16 (their scale is
            unknown; see :func:`as_float32`).
    """
    x = np.asarray(samples)
    if x.dtype == np.int16:
        same: Int16Array = x.copy()
        return same
    _check_sample_dtype(x.dtype)
    if x.dtype != np.float32:
        if x.dtype.kind == "f":  # float64 beyond float32's range must not overflow in the cast
            x = _clip(x, -1.0, 1.0)
        x = x.astype(np.float32)
    # Clip before scaling, so the scaling cannot overflow (+-inf too; NaN passes): one
    # pass fewer than clipping after it. The clip ufunc itself: np.clip's Python
    # wrapper (and np.errstate) cost more than the arithmetic on a 20 ms block.
    scaled = _clip(x, _UNIT_MIN, _UNIT_MAX)
    np.multiply(scaled, _FULL_SCALE, out=scaled)
    np.rint(scaled, out=scaled)
    # ... and only NaN is left non-finite: one dot product finds it, cheaper than isnan().
    if scaled.size and not math.isfinite(np.dot(scaled.ravel(), scaled.ravel())):
        scaled[np.isnan(scaled)] = 0.0
    out: Int16Array = scaled.astype(np.int16)
    return out


def _check_sample_dtype(dtype: np.dtype[Any]) -> None:
    """Accept float dtypes only (int16 is handled by the callers before this)."""
    if dtype.kind in "iu":
        # int32, uint8, ... have no agreed full scale (and a Python list of ints becomes
        # int64): passing them through unscaled would send e.g. 16384.0 to a device.
        raise AudioFormatError(
            f"{dtype} samples have no known full scale: pass int16 PCM "
            f"(e.g. np.asarray(x, dtype=np.int16)) or float samples in [-1, 1]"
        )
    if dtype.kind != "f":
        raise AudioFormatError(f"cannot treat {dtype} as audio samples")


def as_float32(samples: npt.ArrayLike) -> Float32Array:
    """Return ``samples`` as float32 in [-1, 1]; int16 input is scaled by 1/32768.

    Raises:
        AudioFormatError: Samples that are neither float nor int16: other integer types
            (including a Python list of ints, which numpy makes int64) have no known full
            scale, so they are refused rather than passed through unscaled.
    """
    x = np.asarray(samples)
    if x.dtype == np.int16:
        return pcm16_to_float32(x)
    _check_sample_dtype(x.dtype)
    return x.astype(np.float32, copy=False)


def to_mono(samples: npt.ArrayLike) -> Float32Array:
    """Average the channels of a ``(frames, channels)`` array; 1-D input passes through."""
    x = as_float32(samples)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise AudioFormatError(f"expected (frames,) or (frames, channels), got shape {x.shape}")
    if x.shape[1] == 1:
        return x[:, 0]
    mono: Float32Array = x.mean(axis=1, dtype=np.float32)
    return mono


def to_stereo(samples: npt.ArrayLike) -> Float32Array:
    """Duplicate a mono signal into two channels, shape ``(frames, 2)``."""
    x = to_mono(samples)
    return np.repeat(x[:, None], 2, axis=1)


def pcm16_to_b64(samples: Int16Array | bytes) -> str:
    """Base64-encode PCM16 samples (little-endian) for the wire."""
    if isinstance(samples, np.ndarray):
        if samples.dtype != np.int16:
            raise AudioFormatError(f"expected int16 samples, got {samples.dtype}")
        samples = samples.astype(_LE_INT16, copy=False).tobytes()
    return pybase64.b64encode(samples).decode("ascii")


def b64_to_pcm16(data: str | bytes) -> Int16Array:
    """Decode base64 PCM16 from the wire into an int16 array (strict base64)."""
    try:
        raw = pybase64.b64decode(data, validate=True)
    except ValueError as exc:
        raise AudioFormatError(f"invalid base64 audio: {exc}") from exc
    if len(raw) % 2:
        raise AudioFormatError(f"PCM16 data must have an even byte count, got {len(raw)}")
    out: Int16Array = np.frombuffer(raw, dtype=_LE_INT16).astype(np.int16)  # writable copy
    return out


def float32_to_b64(samples: npt.ArrayLike) -> str:
    """Convert float samples to PCM16 and base64-encode them."""
    return pcm16_to_b64(float32_to_pcm16(samples))


def b64_to_float32(data: str | bytes) -> Float32Array:
    """Decode base64 PCM16 into float32 samples."""
    return pcm16_to_float32(b64_to_pcm16(data))
