"""G.711 against a plain per-sample transcription of the ITU-T G.191 reference algorithm.

The reference functions below are written the way the ITU text describes them (loops,
branches, one sample at a time) so they share no code or structure with the vectorised
tables in ``audio.g711``.
"""

from __future__ import annotations

import numpy as np
import pytest

from realtime_client.audio.errors import AudioFormatError
from realtime_client.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode


def _ref_ulaw_compress(sample: int) -> int:
    # 16-bit two's complement in, 14 MSBs used; negatives folded by one's complement.
    absno = ((~sample) >> 2) + 33 if sample < 0 else (sample >> 2) + 33
    if absno > 0x1FFF:
        absno = 0x1FFF
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x08 - segno
    low_nibble = 0x0F - ((absno >> segno) & 0x0F)
    code = (high_nibble << 4) | low_nibble
    if sample >= 0:
        code |= 0x80
    return code


def _ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x80 else 1
    inverted = ~code
    exponent = (inverted >> 4) & 0x07
    segment = exponent + 1
    mantissa = inverted & 0x0F
    step = 4 << segment
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def _ref_alaw_compress(sample: int) -> int:
    ix = (~sample) >> 4 if sample < 0 else sample >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if sample >= 0:
        ix |= 0x80
    return ix ^ 0x55


def _ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x08
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


ALL_PCM = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def test_ulaw_encode_all_65536_inputs_match_reference() -> None:
    expected = np.array([_ref_ulaw_compress(int(v)) for v in ALL_PCM], dtype=np.uint8)
    got = ulaw_encode(ALL_PCM)
    assert got.dtype == np.uint8
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, f"first mismatch at pcm={ALL_PCM[mismatches[0]]}"


def test_alaw_encode_all_65536_inputs_match_reference() -> None:
    expected = np.array([_ref_alaw_compress(int(v)) for v in ALL_PCM], dtype=np.uint8)
    got = alaw_encode(ALL_PCM)
    assert got.dtype == np.uint8
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, f"first mismatch at pcm={ALL_PCM[mismatches[0]]}"


def test_ulaw_decode_all_256_codes_match_reference() -> None:
    expected = np.array([_ref_ulaw_expand(int(c)) for c in ALL_CODES], dtype=np.int16)
    got = ulaw_decode(ALL_CODES)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, expected)


def test_alaw_decode_all_256_codes_match_reference() -> None:
    expected = np.array([_ref_alaw_expand(int(c)) for c in ALL_CODES], dtype=np.int16)
    got = alaw_decode(ALL_CODES)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("pcm", "code"),
    [
        (0, 0xFF),
        (-1, 0x7F),  # one's complement folding: the Sun code gives 0x7E here
        (32767, 0x80),
        (-32768, 0x00),
        (8159 * 4, 0x80),  # at and above the clip level everything is the top code
        (3, 0xFF),
        (4, 0xFE),
        (-4, 0x7F),
        (-5, 0x7E),
    ],
)
def test_ulaw_encode_anchors(pcm: int, code: int) -> None:
    assert ulaw_encode(np.array([pcm], dtype=np.int16))[0] == code


@pytest.mark.parametrize(
    ("pcm", "code"),
    [(0, 0xD5), (-1, 0x55), (15, 0xD5), (16, 0xD4), (32767, 0xAA), (-32768, 0x2A)],
)
def test_alaw_encode_anchors(pcm: int, code: int) -> None:
    assert alaw_encode(np.array([pcm], dtype=np.int16))[0] == code


@pytest.mark.parametrize(
    ("code", "pcm"),
    [(0x00, -32124), (0x80, 32124), (0x7F, 0), (0xFF, 0), (0x7E, -8), (0xFE, 8), (0xF0, 120)],
)
def test_ulaw_decode_anchors(code: int, pcm: int) -> None:
    assert ulaw_decode(bytes([code]))[0] == pcm


@pytest.mark.parametrize(
    ("code", "pcm"),
    [(0x55, -8), (0xD5, 8), (0x2A, -32256), (0xAA, 32256), (0x80, 5504), (0x00, -5504)],
)
def test_alaw_decode_anchors(code: int, pcm: int) -> None:
    assert alaw_decode(bytes([code]))[0] == pcm


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_decode_then_encode_is_identity_on_codes(encode, decode) -> None:  # type: ignore[no-untyped-def]
    # Every code decodes to a value inside its own quantisation interval. µ-law has two
    # zero codes (0x7F and 0xFF both decode to 0), which re-encode to 0xFF.
    again = encode(decode(ALL_CODES))
    expected = ALL_CODES.copy()
    if encode is ulaw_encode:
        expected[0x7F] = 0xFF
    np.testing.assert_array_equal(again, expected)


@pytest.mark.parametrize(
    ("encode", "decode", "bits"), [(ulaw_encode, ulaw_decode, 14), (alaw_encode, alaw_decode, 13)]
)
def test_quantisation_error_is_bounded_by_half_a_step(encode, decode, bits) -> None:  # type: ignore[no-untyped-def]
    # Round trip error of a logarithmic quantiser: never more than half of the largest step
    # (1024 for µ-law, 1024 for A-law on the 16-bit scale) plus clipping at the extremes.
    limit = 32124 if bits == 14 else 32256
    inside = ALL_PCM[np.abs(ALL_PCM.astype(np.int32)) <= limit]
    err = np.abs(decode(encode(inside)).astype(np.int32) - inside.astype(np.int32))
    assert err.max() <= 512
    # Small signals are quantised finely: within ±16 of the input near zero.
    small = inside[np.abs(inside.astype(np.int32)) < 256]
    small_err = np.abs(decode(encode(small)).astype(np.int32) - small.astype(np.int32))
    assert small_err.max() <= 16


def test_shapes_and_bytes_round_trip() -> None:
    pcm = (np.sin(np.linspace(0, 20, 480)) * 20000).astype(np.int16).reshape(240, 2)
    codes = ulaw_encode(pcm)
    assert codes.shape == (240, 2)
    wire = codes.tobytes()
    decoded = ulaw_decode(wire)
    assert decoded.shape == (480,)
    np.testing.assert_array_equal(decoded.reshape(240, 2), ulaw_decode(codes))
    assert alaw_decode(bytearray(alaw_encode(pcm).tobytes())).shape == (480,)
    assert ulaw_decode(memoryview(wire)).shape == (480,)


def test_bad_input_types_raise_typed_error() -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        ulaw_encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(AudioFormatError, match="int16"):
        alaw_encode([0, 1, 2])  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="uint8"):
        ulaw_decode(np.zeros(4, dtype=np.int16))
    with pytest.raises(AudioFormatError, match="bytes"):
        alaw_decode("abc")  # type: ignore[arg-type]


def test_tables_are_read_only_results_are_not() -> None:
    out = ulaw_decode(bytes([0, 1, 2]))
    out[0] = 5  # callers own their result; the shared table must be untouched
    assert ulaw_decode(bytes([0]))[0] == -32124
