"""G.711 µ-law and A-law companding, bit-exact with the ITU-T reference.

The reference is the ITU-T G.191 Software Tool Library (``g711.c``): µ-law takes the 14
most significant bits of a 16-bit sample, A-law the 13 most significant bits, and negative
samples are folded with the one's complement (``~x``), not the negation. That last detail
is why the widespread Sun ``linear2ulaw`` differs from the reference for some negative
inputs (for example -1 encodes to ``0x7F`` here, ``0x7E`` there); we follow the ITU.

Decoded values are on the 16-bit scale (µ-law spans ±32124, A-law ±32256), so they can be
used directly as PCM16.

Both directions are table lookups built once at import with numpy: a 65,536-entry encode
table indexed by the sample's bit pattern and a 256-entry decode table indexed by the code.
Encoding a 20 ms frame is one fancy-indexing call. No ``audioop`` (removed in Python 3.13).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .errors import AudioFormatError

__all__ = [
    "UInt8Array",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

Int16Array = npt.NDArray[np.int16]
UInt8Array = npt.NDArray[np.uint8]
_Int32Array = npt.NDArray[np.int32]


def _all_pcm16_by_bit_pattern() -> _Int32Array:
    """Every int16 value, ordered so that index ``i`` holds the int16 whose bits are ``i``."""
    values: _Int32Array = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    return values


def _bit_length(values: _Int32Array) -> _Int32Array:
    """``int.bit_length`` for non-negative int32 values (frexp's exponent is exactly that)."""
    _, exponent = np.frexp(values.astype(np.float64))
    out: _Int32Array = exponent.astype(np.int32)
    return out


def _build_ulaw_encode_table() -> UInt8Array:
    x = _all_pcm16_by_bit_pattern()
    negative = x < 0
    # 14-bit magnitude plus the µ-law bias (0x84 on the 16-bit scale is 33 on the 14-bit one).
    magnitude = (np.where(negative, ~x, x) >> 2) + 33
    np.minimum(magnitude, 0x1FFF, out=magnitude)
    segment = _bit_length(magnitude >> 6) + 1  # 1..8
    mantissa = (magnitude >> segment) & 0x0F
    code = ((8 - segment) << 4) | (0x0F - mantissa)
    code = np.where(negative, code, code | 0x80)
    table: UInt8Array = code.astype(np.uint8)
    return table


def _build_alaw_encode_table() -> UInt8Array:
    x = _all_pcm16_by_bit_pattern()
    negative = x < 0
    magnitude = np.where(negative, ~x, x) >> 4  # 12-bit magnitude, 0..2047
    # Exponent 0 covers 0..31 linearly (two segments of equal step in A-law); above that
    # the exponent is the position of the leading one.
    exponent = np.maximum(_bit_length(magnitude) - 4, 0)
    shift = np.maximum(exponent - 1, 0)
    mantissa = (magnitude >> shift) & 0x0F
    code = (exponent << 4) | mantissa
    code = np.where(negative, code, code | 0x80)
    table: UInt8Array = (code ^ 0x55).astype(np.uint8)
    return table


def _build_ulaw_decode_table() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    inverted = ~code & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    table: Int16Array = np.where(code < 0x80, -magnitude, magnitude).astype(np.int16)
    return table


def _build_alaw_decode_table() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    toggled = (code ^ 0x55) & 0x7F
    exponent = toggled >> 4
    mantissa = (toggled & 0x0F) | np.where(exponent > 0, 0x10, 0)
    magnitude = ((mantissa << 4) + 8) << np.maximum(exponent - 1, 0)
    table: Int16Array = np.where(code < 0x80, -magnitude, magnitude).astype(np.int16)
    return table


_ULAW_ENCODE = _build_ulaw_encode_table()
_ALAW_ENCODE = _build_alaw_encode_table()
_ULAW_DECODE = _build_ulaw_decode_table()
_ALAW_DECODE = _build_alaw_decode_table()
for _table in (_ULAW_ENCODE, _ALAW_ENCODE, _ULAW_DECODE, _ALAW_DECODE):
    _table.flags.writeable = False


def _pcm_indices(pcm: Int16Array) -> npt.NDArray[np.uint16]:
    if not isinstance(pcm, np.ndarray):
        raise AudioFormatError(f"expected an int16 numpy array, got {type(pcm).__name__}")
    if pcm.dtype != np.int16:
        raise AudioFormatError(
            f"expected int16 samples, got {pcm.dtype} (convert with float32_to_pcm16 first)"
        )
    indices: npt.NDArray[np.uint16] = pcm.view(np.uint16)
    return indices


def _code_array(codes: bytes | bytearray | memoryview | UInt8Array) -> UInt8Array:
    if isinstance(codes, np.ndarray):
        if codes.dtype != np.uint8:
            raise AudioFormatError(f"expected uint8 G.711 codes, got {codes.dtype}")
        return codes
    if isinstance(codes, (bytes, bytearray, memoryview)):
        out: UInt8Array = np.frombuffer(codes, dtype=np.uint8)
        return out
    raise AudioFormatError(f"expected bytes or a uint8 array, got {type(codes).__name__}")


def ulaw_encode(pcm: Int16Array) -> UInt8Array:
    """Encode PCM16 samples to G.711 µ-law codes.

    Args:
        pcm: int16 samples of any shape (the 14 most significant bits are used).

    Returns:
        uint8 codes with the same shape; ``.tobytes()`` gives the wire payload.

    Raises:
        AudioFormatError: ``pcm`` is not an int16 array.
    """
    out: UInt8Array = _ULAW_ENCODE[_pcm_indices(pcm)]
    return out


def ulaw_decode(codes: bytes | bytearray | memoryview | UInt8Array) -> Int16Array:
    """Decode G.711 µ-law codes to PCM16 (16-bit scale, ±32124).

    Args:
        codes: One byte per sample, as bytes or a uint8 array of any shape.

    Returns:
        int16 samples with the same shape as ``codes`` (1-D for bytes input).

    Raises:
        AudioFormatError: ``codes`` is neither bytes-like nor a uint8 array.
    """
    out: Int16Array = _ULAW_DECODE[_code_array(codes)]
    return out


def alaw_encode(pcm: Int16Array) -> UInt8Array:
    """Encode PCM16 samples to G.711 A-law codes (even bits inverted, as on the wire).

    As :func:`ulaw_encode`, from the 13 most significant bits of each sample.
    """
    out: UInt8Array = _ALAW_ENCODE[_pcm_indices(pcm)]
    return out


def alaw_decode(codes: bytes | bytearray | memoryview | UInt8Array) -> Int16Array:
    """Decode G.711 A-law codes to PCM16 (16-bit scale, ±32256); as :func:`ulaw_decode`."""
    out: Int16Array = _ALAW_DECODE[_code_array(codes)]
    return out
