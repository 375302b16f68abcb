"""Tests for audio.formats: PCM16 <-> float32, channel layout, base64, AudioFormat."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from realtime_client.audio.errors import AudioFormatError
from realtime_client.audio.formats import (
    PCM16_24K,
    AudioFormat,
    as_float32,
    b64_to_float32,
    b64_to_pcm16,
    float32_to_b64,
    float32_to_pcm16,
    pcm16_to_b64,
    pcm16_to_float32,
    to_mono,
    to_stereo,
)

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


# --- PCM16 <-> float32 ------------------------------------------------------------------


def test_every_int16_value_round_trips_exactly() -> None:
    f = pcm16_to_float32(ALL_INT16)
    assert f.dtype == np.float32
    assert len(f) == 65_536
    np.testing.assert_array_equal(f, ALL_INT16.astype(np.float64) / 32768.0)
    np.testing.assert_array_equal(float32_to_pcm16(f), ALL_INT16)


def test_every_int16_value_round_trips_through_bytes() -> None:
    raw = ALL_INT16.astype("<i2").tobytes()
    for data in (raw, bytearray(raw), memoryview(raw)):
        f = pcm16_to_float32(data)
        np.testing.assert_array_equal(float32_to_pcm16(f), ALL_INT16)
    assert float32_to_pcm16(pcm16_to_float32(raw)).astype("<i2").tobytes() == raw


def test_bytes_are_little_endian() -> None:
    f = pcm16_to_float32(b"\x01\x00\x00\x80\xff\x7f")
    np.testing.assert_array_equal(f, np.array([1, -32768, 32767], dtype=np.float64) / 32768.0)


def test_full_scale_mapping() -> None:
    np.testing.assert_array_equal(
        float32_to_pcm16(np.array([-1.0, 0.0, 32767 / 32768], dtype=np.float32)),
        [-32768, 0, 32767],
    )


def test_float_to_pcm16_clips_instead_of_wrapping() -> None:
    x = np.array([1.0, 1.5, 100.0, -1.0, -1.5, -100.0], dtype=np.float32)
    np.testing.assert_array_equal(
        float32_to_pcm16(x), [32767, 32767, 32767, -32768, -32768, -32768]
    )


def test_float_to_pcm16_rounds_to_nearest() -> None:
    lsb = 1.0 / 32768.0
    x = np.array([0.49, 0.51, 1.49, 1.51, -0.51, -1.51, 100.4], dtype=np.float64) * lsb
    np.testing.assert_array_equal(float32_to_pcm16(x), [0, 1, 1, 2, -1, -2, 100])


def test_nan_and_inf() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 0.25], dtype=np.float32)
    np.testing.assert_array_equal(float32_to_pcm16(x), [0, 32767, -32768, 8192])


def test_huge_finite_values_clip_without_warning() -> None:
    np.testing.assert_array_equal(
        float32_to_pcm16(np.array([1e38, -1e38], dtype=np.float32)), [32767, -32768]
    )
    np.testing.assert_array_equal(float32_to_pcm16(np.array([1e300, -1e300])), [32767, -32768])


def test_odd_byte_count_is_rejected() -> None:
    with pytest.raises(AudioFormatError, match="even byte count"):
        pcm16_to_float32(b"\x00\x00\x01")


def test_pcm16_to_float32_rejects_non_int16_arrays() -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        pcm16_to_float32(np.zeros(4, dtype=np.int32))


def test_empty_input() -> None:
    assert pcm16_to_float32(b"").shape == (0,)
    assert float32_to_pcm16(np.zeros(0, dtype=np.float32)).shape == (0,)


def test_two_d_shapes_are_kept() -> None:
    x = np.array([[0.5, -0.5], [0.25, 1.0]], dtype=np.float32)
    pcm = float32_to_pcm16(x)
    assert pcm.shape == (2, 2)
    np.testing.assert_array_equal(pcm, [[16384, -16384], [8192, 32767]])


def test_as_float32() -> None:
    np.testing.assert_array_equal(as_float32(np.array([16384], dtype=np.int16)), [0.5])
    np.testing.assert_array_equal(as_float32([0.25, -1.0]), [0.25, -1.0])
    assert as_float32(np.zeros(3)).dtype == np.float32
    with pytest.raises(AudioFormatError, match="cannot treat"):
        as_float32(np.array(["a", "b"]))


@pytest.mark.parametrize(
    "samples",
    [
        np.array([1000, -1000], dtype=np.int32),
        np.array([16384], dtype=np.int64),
        np.array([0, 128, 255], dtype=np.uint8),
        np.array([1, 2], dtype=np.uint16),
        [0, 16384, -16384],  # a list of Python ints becomes int64
    ],
    ids=["int32", "int64", "uint8", "uint16", "int-list"],
)
def test_integers_other_than_int16_have_no_known_scale(samples: object) -> None:
    # Passing them through unscaled would send e.g. 16384.0 to a device.
    with pytest.raises(AudioFormatError, match="int16"):
        as_float32(samples)  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="int16"):
        float32_to_pcm16(samples)  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="int16"):
        to_mono(samples)  # type: ignore[arg-type]


def test_float32_to_pcm16_passes_int16_through() -> None:
    pcm = np.array([100, -100, 32767, -32768], dtype=np.int16)
    out = float32_to_pcm16(pcm)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, pcm)  # not saturated to full scale
    out[0] = 0
    assert pcm[0] == 100  # a copy, like the float path's result
    np.testing.assert_array_equal(float32_to_pcm16(ALL_INT16), ALL_INT16)
    assert float32_to_b64(pcm) == pcm16_to_b64(pcm)


# --- mono <-> stereo ----------------------------------------------------------------------


def test_to_mono_averages_channels() -> None:
    x = np.array([[1.0, 0.0], [0.5, -0.5], [-1.0, -1.0]], dtype=np.float32)
    np.testing.assert_array_equal(to_mono(x), [0.5, 0.0, -1.0])


def test_to_mono_passes_mono_through() -> None:
    x = np.array([0.1, 0.2], dtype=np.float32)
    np.testing.assert_array_equal(to_mono(x), x)
    np.testing.assert_array_equal(to_mono(x[:, None]), x)
    assert to_mono(x[:, None]).shape == (2,)


def test_to_mono_scales_int16() -> None:
    np.testing.assert_array_equal(to_mono(np.array([[16384, 0]], dtype=np.int16)), [0.25])


def test_to_mono_rejects_three_dimensions() -> None:
    with pytest.raises(AudioFormatError, match="shape"):
        to_mono(np.zeros((2, 2, 2), dtype=np.float32))


def test_to_stereo_duplicates() -> None:
    x = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    y = to_stereo(x)
    assert y.shape == (3, 2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0], x)
    np.testing.assert_array_equal(y[:, 1], x)
    np.testing.assert_array_equal(to_mono(to_stereo(x)), x)


# --- base64 -------------------------------------------------------------------------------


def test_base64_round_trip_of_every_int16() -> None:
    text = pcm16_to_b64(ALL_INT16)
    assert text == base64.b64encode(ALL_INT16.astype("<i2").tobytes()).decode("ascii")
    np.testing.assert_array_equal(b64_to_pcm16(text), ALL_INT16)
    np.testing.assert_array_equal(b64_to_pcm16(text.encode("ascii")), ALL_INT16)


def test_base64_of_bytes() -> None:
    assert pcm16_to_b64(b"\x01\x00") == "AQA="


def test_float_base64_helpers() -> None:
    x = np.array([0.0, 0.5, -1.0, 2.0], dtype=np.float32)
    text = float32_to_b64(x)
    assert base64.b64decode(text) == np.array([0, 16384, -32768, 32767], "<i2").tobytes()
    np.testing.assert_array_equal(b64_to_float32(text), [0.0, 0.5, -1.0, 32767 / 32768])


@pytest.mark.parametrize("bad", ["!!!!", "AAA", "AA=A", "é"])
def test_invalid_base64_is_a_format_error(bad: str) -> None:
    with pytest.raises(AudioFormatError, match="invalid base64"):
        b64_to_pcm16(bad)


def test_base64_odd_byte_count() -> None:
    with pytest.raises(AudioFormatError, match="even byte count"):
        b64_to_pcm16(base64.b64encode(b"\x00\x00\x00").decode())


def test_decoded_pcm16_is_writable() -> None:
    assert b64_to_pcm16("AQA=").flags.writeable


def test_pcm16_to_b64_rejects_float_arrays() -> None:
    with pytest.raises(AudioFormatError):
        pcm16_to_b64(np.array([0.7, 1.9]))


# --- AudioFormat --------------------------------------------------------------------------


def test_default_is_the_realtime_api_format() -> None:
    assert AudioFormat() == PCM16_24K
    assert (PCM16_24K.sample_rate, PCM16_24K.channels, PCM16_24K.sample_type) == (
        24_000,
        1,
        "pcm16",
    )


@pytest.mark.parametrize(
    ("fmt", "bytes_per_frame"),
    [
        (AudioFormat(24_000, 1, "pcm16"), 2),
        (AudioFormat(48_000, 2, "pcm16"), 4),
        (AudioFormat(48_000, 2, "float32"), 8),
        (AudioFormat(8_000, 1, "pcmu"), 1),
        (AudioFormat(8_000, 3, "pcma"), 3),
    ],
)
def test_bytes_per_frame(fmt: AudioFormat, bytes_per_frame: int) -> None:
    assert fmt.bytes_per_frame == bytes_per_frame


def test_frame_and_ms_arithmetic() -> None:
    assert PCM16_24K.frames_for_ms(20) == 480
    assert PCM16_24K.frames_for_ms(0.5) == 12
    assert AudioFormat(22_050).frames_for_ms(10) == 220  # 220.5 rounds down
    assert AudioFormat(44_100).frames_for_ms(20) == 882
    assert PCM16_24K.ms_for_frames(480) == 20.0
    assert PCM16_24K.ms_for_bytes(960) == 20.0
    assert PCM16_24K.ms_for_bytes(961) == 20.0  # a partial frame is not audio yet
    assert AudioFormat(48_000, 2, "float32").ms_for_bytes(48_000 * 8) == 1000.0
    assert AudioFormat(8_000, 1, "pcmu").ms_for_bytes(160) == 20.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": -8000}, "sample_rate"),
        ({"channels": 0}, "channels"),
        ({"sample_type": "mp3"}, "sample_type"),
    ],
)
def test_invalid_format(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(AudioFormatError, match=match):
        AudioFormat(**kwargs)  # type: ignore[arg-type]


def test_format_is_frozen_and_hashable() -> None:
    fmt = AudioFormat(16_000, 1, "pcm16")
    with pytest.raises(AttributeError):
        fmt.sample_rate = 8_000  # type: ignore[misc]
    assert {fmt, AudioFormat(16_000, 1, "pcm16")} == {fmt}
