"""WAV reading and writing: round trips, the stdlib and scipy as references, malformed files."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.io import wavfile

from realtime_client.audio.errors import AudioError, AudioFormatError, UnsupportedFileError
from realtime_client.audio.g711 import alaw_decode, ulaw_decode
from realtime_client.audio.wav import (
    WavReader,
    WavSampleType,
    WavWriter,
    read_wav,
    read_wav_mono,
    write_wav,
)

ALL_TYPES: list[WavSampleType] = [
    "pcm8",
    "pcm16",
    "pcm24",
    "pcm32",
    "float32",
    "float64",
    "pcmu",
    "pcma",
]


def _signal(frames: int, channels: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Sines of different frequencies per channel plus a little noise, peak below 0.9."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 48_000
    cols = [
        0.6 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.05 * rng.standard_normal(frames)
        for c in range(channels)
    ]
    x = np.stack(cols, axis=1).astype(np.float32)
    return x[:, 0] if channels == 1 else x


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _riff(*chunks: bytes, form: bytes = b"WAVE") -> bytes:
    body = form + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt_pcm(channels: int, rate: int, bits: int, tag: int = 1) -> bytes:
    align = channels * ((bits + 7) // 8)
    return _chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits))


# Round trips ---------------------------------------------------------------------------

# Worst-case round-trip error per type for inputs inside [-1, 1): half a quantisation step
# for linear PCM, float32 rounding for 32-bit (int32 -> float32), and for G.711 half of its
# largest step (1024 on the 16-bit scale, for both laws) plus the PCM16 rounding before it.
TOLERANCE = {
    "pcm8": 0.5 / 128,
    "pcm16": 0.5 / 32768,
    "pcm24": 0.5 / 2**23,
    "pcm32": 2.0**-24,
    "float32": 0.0,
    "float64": 0.0,
    "pcmu": 513 / 32768,
    "pcma": 513 / 32768,
}


@pytest.mark.parametrize("sample_type", ALL_TYPES)
@pytest.mark.parametrize(("channels", "rate"), [(1, 24_000), (2, 44_100), (3, 8_000), (6, 96_000)])
def test_round_trip_every_type(
    tmp_path: Path, sample_type: WavSampleType, channels: int, rate: int
) -> None:
    x = _signal(1001, channels)  # odd frame count exercises the pad byte for 8-bit/24-bit
    path = tmp_path / "x.wav"
    write_wav(path, x, rate, sample_type=sample_type)
    y, got_rate = read_wav(path)
    assert got_rate == rate
    assert y.dtype == np.float32
    assert y.shape == x.shape
    assert np.max(np.abs(y - x)) <= TOLERANCE[sample_type] + 1e-9
    assert path.stat().st_size % 2 == 0
    with WavReader(path) as r:
        assert (r.channels, r.frames, r.sample_type) == (channels, 1001, sample_type)


@pytest.mark.parametrize(
    ("sample_type", "scale"),
    [("pcm8", 128), ("pcm16", 32768), ("pcm24", 2**23), ("pcm32", 2**31)],
)
def test_integer_formats_are_exact_on_their_grid_and_clip(
    tmp_path: Path, sample_type: WavSampleType, scale: int
) -> None:
    # Every value on the format's grid (within float32 precision) survives exactly,
    # including the extremes; out-of-range values clip instead of wrapping.
    grid = np.array([-scale, -scale + 1, -1, 0, 1, scale // 2, scale - 1], dtype=np.float64)
    x = (grid / scale).astype(np.float32)
    if sample_type == "pcm32":
        x = x[np.abs(x.astype(np.float64) * scale - grid) == 0]  # keep float32-exact ones
    write_wav(tmp_path / "g.wav", x, 8000, sample_type=sample_type)
    y, _ = read_wav(tmp_path / "g.wav")
    np.testing.assert_array_equal(y, x)
    write_wav(
        tmp_path / "c.wav", np.array([1.5, -1.5, 1.0], np.float32), 8000, sample_type=sample_type
    )
    y, _ = read_wav(tmp_path / "c.wav")
    assert y[0] == pytest.approx((scale - 1) / scale)
    assert y[1] == -1.0
    assert y[2] == pytest.approx((scale - 1) / scale)


def test_float_formats_store_values_unscaled(tmp_path: Path) -> None:
    x = np.array([2.5, -3.0, 0.125, np.float32(1e-30)], dtype=np.float32)
    for sample_type in ("float32", "float64"):
        write_wav(tmp_path / "f.wav", x, 16_000, sample_type=sample_type)
        np.testing.assert_array_equal(read_wav(tmp_path / "f.wav")[0], x)


def test_int16_input_is_scaled(tmp_path: Path) -> None:
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    write_wav(tmp_path / "i.wav", pcm, 24_000)
    y, _ = read_wav(tmp_path / "i.wav")
    np.testing.assert_array_equal(y, pcm.astype(np.float32) / 32768)


def test_file_objects_work(tmp_path: Path) -> None:
    buf = io.BytesIO()
    x = _signal(300, 2)
    write_wav(buf, x, 24_000, sample_type="pcm24")
    assert not buf.closed  # the caller owns it
    buf.seek(0)
    y, rate = read_wav(buf)
    assert rate == 24_000
    assert np.max(np.abs(y - x)) <= TOLERANCE["pcm24"]


# References: stdlib wave and scipy ------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_pcm16_bytes_identical_to_stdlib_wave(tmp_path: Path, channels: int) -> None:
    x = _signal(777, channels)
    ours = tmp_path / "ours.wav"
    theirs = tmp_path / "theirs.wav"
    write_wav(ours, x, 22_050)
    pcm = np.clip(np.rint(x * 32768), -32768, 32767).astype("<i2")
    with wave.open(str(theirs), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(22_050)
        w.writeframes(pcm.tobytes())
    assert ours.read_bytes() == theirs.read_bytes()
    with wave.open(str(ours), "rb") as r:
        assert (r.getnchannels(), r.getframerate(), r.getnframes()) == (channels, 22_050, 777)
        back = np.frombuffer(r.readframes(777), dtype="<i2")
    np.testing.assert_array_equal(back, pcm.reshape(-1))


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_reads_files_written_by_stdlib_wave(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(width)
    frames, channels = 500, 2
    path = tmp_path / "w.wav"
    if width == 1:
        raw = rng.integers(0, 256, frames * channels, dtype=np.uint8)
        expected = (raw.astype(np.float64) - 128) / 128
        data = raw.tobytes()
    else:
        bits = 8 * width
        ints = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), frames * channels, dtype=np.int64)
        expected = ints / 2 ** (bits - 1)
        data = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(11_025)
        w.writeframes(data)
    y, rate = read_wav(path)
    assert rate == 11_025
    assert y.shape == (frames, channels)
    np.testing.assert_allclose(y.reshape(-1), expected, rtol=2.0**-24, atol=0)


@pytest.mark.parametrize(
    ("sample_type", "dtype", "scale"),
    [
        ("pcm8", np.uint8, None),
        ("pcm16", np.int16, 2**15),
        ("pcm24", np.int32, 2**31),  # scipy returns 24-bit left-justified in int32
        ("pcm32", np.int32, 2**31),
        ("float32", np.float32, 1),
        ("float64", np.float64, 1),
    ],
)
def test_scipy_reads_what_we_write(
    tmp_path: Path, sample_type: WavSampleType, dtype: type, scale: int | None
) -> None:
    x = _signal(400, 6)  # 6 channels forces WAVE_FORMAT_EXTENSIBLE
    write_wav(tmp_path / "s.wav", x, 48_000, sample_type=sample_type)
    rate, data = wavfile.read(tmp_path / "s.wav")
    assert rate == 48_000
    assert data.dtype == dtype
    assert data.shape == (400, 6)
    values = (data.astype(np.float64) - 128) / 128 if scale is None else data / scale
    np.testing.assert_allclose(values, x, rtol=0, atol=TOLERANCE[sample_type] + 1e-9)


# Streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 7, 480, 999, 1000, 5000])
def test_blocks_concatenate_to_whole_read(tmp_path: Path, block: int) -> None:
    x = _signal(999, 2)
    write_wav(tmp_path / "b.wav", x, 24_000, sample_type="pcm24")
    whole, _ = read_wav(tmp_path / "b.wav")
    with WavReader(tmp_path / "b.wav") as r:
        blocks = list(r.blocks(block))
        assert r.position == 999
        assert r.read(10).shape == (0, 2)
    assert all(b.shape[0] == block for b in blocks[:-1])
    assert 0 < blocks[-1].shape[0] <= block
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_read_and_seek(tmp_path: Path) -> None:
    x = _signal(100, 1)
    write_wav(tmp_path / "r.wav", x, 8000, sample_type="float32")
    with WavReader(tmp_path / "r.wav") as r:
        assert r.duration_ms == pytest.approx(12.5)
        np.testing.assert_array_equal(r.read(30), x[:30])
        np.testing.assert_array_equal(r.read(30), x[30:60])
        r.seek(90)
        np.testing.assert_array_equal(r.read(), x[90:])
        r.seek(0)
        np.testing.assert_array_equal(r.read(-1), x)
        with pytest.raises(AudioFormatError):
            r.seek(101)
        with pytest.raises(AudioFormatError):
            next(r.blocks(0))
    with pytest.raises(AudioError, match="closed"):
        r.read(1)


@pytest.mark.parametrize("sample_type", ALL_TYPES)
def test_streaming_writer_equals_one_shot(tmp_path: Path, sample_type: WavSampleType) -> None:
    x = _signal(1234, 2)
    write_wav(tmp_path / "one.wav", x, 32_000, sample_type=sample_type)
    with WavWriter(tmp_path / "many.wav", 32_000, 2, sample_type=sample_type) as w:
        for start in range(0, 1234, 333):
            w.write(x[start : start + 333])
        w.write(np.zeros((0, 2), np.float32))
        assert w.frames == 1234
    assert (tmp_path / "many.wav").read_bytes() == (tmp_path / "one.wav").read_bytes()


def test_writer_header_fields(tmp_path: Path) -> None:
    path = tmp_path / "h.wav"
    write_wav(path, np.zeros(3, np.float32), 8000, sample_type="pcmu")  # 3 bytes: pad needed
    raw = path.read_bytes()
    assert len(raw) % 2 == 0
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    fact = raw.index(b"fact")
    assert struct.unpack_from("<II", raw, fact + 4) == (4, 3)
    data = raw.index(b"data")
    assert struct.unpack_from("<I", raw, data + 4)[0] == 3
    assert raw[data + 8 : data + 11] == b"\xff\xff\xff"  # µ-law silence


def test_writer_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match="sample_type"):
        WavWriter(tmp_path / "a.wav", 8000, sample_type="mp3")  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="sample_rate"):
        WavWriter(tmp_path / "a.wav", 0)
    with pytest.raises(AudioFormatError, match="channels"):
        WavWriter(tmp_path / "a.wav", 8000, 0)
    with WavWriter(tmp_path / "a.wav", 8000, 2) as w:
        with pytest.raises(AudioFormatError, match="shape"):
            w.write(np.zeros(10, np.float32))
        with pytest.raises(AudioFormatError, match="shape"):
            w.write(np.zeros((10, 3), np.float32))
    with pytest.raises(AudioError, match="closed"):
        w.write(np.zeros((1, 2), np.float32))
    with pytest.raises(AudioFormatError, match="shape"):
        write_wav(tmp_path / "b.wav", np.zeros((2, 2, 2), np.float32), 8000)
    with pytest.raises(AudioFormatError):
        write_wav(tmp_path / "b.wav", np.array(["a"]), 8000)


# Unusual but valid files ----------------------------------------------------------------


def test_odd_and_unknown_chunks_are_skipped(tmp_path: Path) -> None:
    pcm = np.array([1, -2, 3, -4, 5, -6], dtype="<i2")
    raw = _riff(
        _chunk(b"junk", b"abc"),  # odd size: followed by a pad byte
        _chunk(b"data", pcm.tobytes()),  # data before fmt is legal
        _chunk(b"bext", b"x" * 5),
        _fmt_pcm(2, 16_000, 16),
        _chunk(b"LIST", b"INFOISFT" + struct.pack("<I", 3) + b"ab\0"),
    )
    path = tmp_path / "odd.wav"
    path.write_bytes(raw)
    y, rate = read_wav(path)
    assert rate == 16_000
    np.testing.assert_array_equal(y, pcm.reshape(3, 2) / 32768)


def test_odd_sized_data_chunk_and_trailing_chunk(tmp_path: Path) -> None:
    codes = bytes([0x00, 0x80, 0x55])
    raw = _riff(_fmt_pcm(1, 8000, 8), _chunk(b"data", codes), _chunk(b"note", b"x"))
    (tmp_path / "u8.wav").write_bytes(raw)
    y, _ = read_wav(tmp_path / "u8.wav")
    np.testing.assert_array_equal(y, (np.array([0, 0x80, 0x55]) - 128) / 128)


@pytest.mark.parametrize(("tag", "decode"), [(7, ulaw_decode), (6, alaw_decode)])
def test_g711_wav_decode(tmp_path: Path, tag: int, decode) -> None:  # type: ignore[no-untyped-def]
    codes = bytes(range(256))
    fmt = struct.pack("<HHIIHHH", tag, 1, 8000, 8000, 1, 8, 0)
    raw = _riff(
        _chunk(b"fmt ", fmt), _chunk(b"fact", struct.pack("<I", 256)), _chunk(b"data", codes)
    )
    (tmp_path / "g.wav").write_bytes(raw)
    with WavReader(tmp_path / "g.wav") as r:
        assert r.sample_type == ("pcmu" if tag == 7 else "pcma")
        y = r.read()
    np.testing.assert_array_equal(y, decode(codes) / 32768)


def test_extensible_with_valid_bits_fewer_than_container(tmp_path: Path) -> None:
    # 20 valid bits in 24-bit containers: samples are left-justified, scaling is unchanged.
    guid = (1).to_bytes(2, "little") + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 48_000, 144_000, 3, 24, 22, 20, 0x4) + guid
    values = [0x7FFFF0, -0x800000, 0x000010]
    data = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    (tmp_path / "e.wav").write_bytes(_riff(_chunk(b"fmt ", fmt), _chunk(b"data", data)))
    with WavReader(tmp_path / "e.wav") as r:
        assert (r.sample_type, r.bits_per_sample) == ("pcm24", 20)
        np.testing.assert_array_equal(r.read(), np.array(values) / 2**23)


# Malformed files ------------------------------------------------------------------------

_GOOD_FMT = _fmt_pcm(1, 8000, 16)
_GOOD_DATA = _chunk(b"data", b"\0\0" * 4)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "RIFF/WAVE"),
        (b"RIFF\0\0\0\0WAV", "RIFF/WAVE"),
        (b"ID3\x03" + b"\0" * 40, "RIFF/WAVE"),
        (_riff(_GOOD_FMT, _GOOD_DATA, form=b"AVI "), "RIFF/WAVE"),
        (b"RF64" + b"\0" * 4 + b"WAVE", "RF64"),
        (_riff(_GOOD_DATA), "no 'fmt ' chunk"),
        (_riff(_GOOD_FMT), "no 'data' chunk"),
        (_riff(_GOOD_FMT, _chunk(b"LIST", b"abcd")), "no 'data' chunk"),
        (_riff(_GOOD_FMT)[:-3], "truncated"),
        (_riff(_GOOD_FMT) + b"data", "truncated"),
        (_riff(_GOOD_FMT, _GOOD_DATA)[:-1], "truncated"),
        (_riff(_GOOD_FMT, _chunk(b"data", b"\0\0\0")), "whole number"),
        (_riff(_chunk(b"fmt ", b"\1\0\1\0"), _GOOD_DATA), "too short"),
        (_riff(_fmt_pcm(1, 8000, 4, tag=2), _GOOD_DATA), "0x0002 \\(Microsoft ADPCM\\)"),
        (_riff(_fmt_pcm(1, 8000, 16, tag=0x1234), _GOOD_DATA), "format tag 0x1234"),
        (_riff(_fmt_pcm(1, 8000, 40), _GOOD_DATA), "bit depth"),
        (_riff(_fmt_pcm(1, 8000, 16, tag=3), _GOOD_DATA), "bit depth"),
        (_riff(_fmt_pcm(1, 8000, 16, tag=7), _GOOD_DATA), "bit depth"),
        (_riff(_fmt_pcm(0, 8000, 16), _GOOD_DATA), "0 channels"),
        (_riff(_fmt_pcm(1, 0, 16), _GOOD_DATA), "0 Hz"),
        (
            _riff(
                _chunk(b"fmt ", struct.pack("<HHIIHHH", 0xFFFE, 1, 8000, 16000, 2, 16, 22)),
                _GOOD_DATA,
            ),
            "EXTENSIBLE",
        ),
        (
            _riff(
                _chunk(
                    b"fmt ",
                    struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 4)
                    + b"\x01" * 16,
                ),
                _GOOD_DATA,
            ),
            "subformat",
        ),
    ],
)
def test_malformed_files_raise_typed_error(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(raw)
    with pytest.raises(UnsupportedFileError, match=message):
        read_wav(path)
    # Also a ValueError, so callers that only know builtins still catch it.
    with pytest.raises(ValueError, match=message):
        WavReader(io.BytesIO(raw))


def test_file_shrinking_under_the_reader_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.wav"
    write_wav(path, np.zeros(100_000, np.float32), 8000)  # larger than any read buffer
    with WavReader(path) as r:
        r.read(10)
        with open(path, "r+b") as f:
            f.truncate(100_000)
        r.seek(60_000)
        with pytest.raises(UnsupportedFileError, match="truncated"):
            r.read(500)


def test_missing_path_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "nope.wav")
    with pytest.raises(UnsupportedFileError, match="seekable"):
        WavReader(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF], ids=["zero", "ffffffff"])
@pytest.mark.parametrize("sample_type", ["pcm16", "float32", "pcm24"])
def test_unsized_data_chunk_reads_to_the_end_of_the_file(
    tmp_path: Path, declared: int, sample_type: WavSampleType
) -> None:
    # A writer that was never closed leaves size 0; streaming writers put 0xFFFFFFFF.
    x = _signal(1000, 2)
    path = tmp_path / "unclosed.wav"
    with open(path, "wb") as f:
        writer = WavWriter(f, 8000, 2, sample_type=sample_type)
        writer.write(x)
        f.flush()
        raw = bytearray(path.read_bytes())
    data_at = raw.index(b"data") + 4
    assert struct.unpack_from("<I", raw, data_at)[0] == 0  # never closed
    struct.pack_into("<I", raw, data_at, declared)
    frame = 2 * {"pcm16": 2, "float32": 4, "pcm24": 3}[sample_type]
    path.write_bytes(bytes(raw) + b"\x7f" * (frame - 1))  # and cut off mid-frame
    expected, rate = read_wav(_closed_copy(x, sample_type))
    got, got_rate = read_wav(path)
    assert got_rate == rate == 8000
    np.testing.assert_array_equal(got, expected)  # whole frames only, nothing lost
    with WavReader(io.BytesIO(path.read_bytes())) as r:
        assert r.frames == 1000


def _closed_copy(x: npt.NDArray[np.float32], sample_type: WavSampleType) -> io.BytesIO:
    f = io.BytesIO()
    write_wav(f, x, 8000, sample_type=sample_type)
    f.seek(0)
    return f


def test_unsized_data_chunk_without_samples_is_empty() -> None:
    raw = _riff(_GOOD_FMT, b"data" + struct.pack("<I", 0xFFFFFFFF))
    x, rate = read_wav(io.BytesIO(raw))
    assert rate == 8000 and x.shape == (0,)


_LIST = _chunk(b"LIST", b"INFOISFT" + struct.pack("<I", 14) + b"Lavf58.76.100\0")
_ODD = _chunk(b"JUNK", b"\0" * 5)  # 5 bytes and its pad byte


@pytest.mark.parametrize(
    "after",
    [_LIST, _chunk(b"id3 ", b"ID3\x03" + b"\0" * 6) + _ODD, _LIST + _ODD[:-1]],
    ids=["LIST", "id3-and-odd-JUNK", "last-pad-byte-missing"],
)
def test_an_empty_data_chunk_followed_by_chunks_is_empty(after: bytes) -> None:
    # A closed file with no samples: its data chunk says 0 bytes and other chunks follow.
    # They used to be read as samples (a writer never closed also leaves size 0).
    raw = _riff(_GOOD_FMT, b"data" + struct.pack("<I", 0), after)
    x, rate = read_wav(io.BytesIO(raw))
    assert rate == 8000 and x.shape == (0,)
    with WavReader(io.BytesIO(raw)) as reader:
        assert reader.frames == 0 and list(reader.blocks(10)) == []


def test_an_unclosed_writer_whose_samples_look_like_a_chunk_id_still_reads_them() -> None:
    # Samples go to the end of the file unless what follows is a chain of whole chunks.
    samples = b"LIST" + struct.pack("<I", 1000) + b"\x01\x02" * 10  # the size overruns
    raw = _riff(_GOOD_FMT, b"data" + struct.pack("<I", 0) + samples)
    x, _ = read_wav(io.BytesIO(raw))
    assert len(x) == len(samples) // 2


# --- read_wav_mono --------------------------------------------------------------------------


def test_read_wav_mono_averages_channels_and_resamples_to_the_file_duration(
    tmp_path: Path,
) -> None:
    t = np.arange(48_000 // 2) / 48_000  # 0.5 s of stereo at 48 kHz
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, -0.5 * left], axis=1).astype(np.float32)  # average: 0.25 * left
    path = tmp_path / "stereo.wav"
    write_wav(path, stereo, 48_000, sample_type="float32")

    samples, rate = read_wav_mono(path)
    assert rate == 24_000 and samples.dtype == np.float32 and samples.shape == (12_000,)
    spectrum = np.abs(np.fft.rfft(samples[1000:11_000]))
    assert np.fft.rfftfreq(10_000, 1 / 24_000)[np.argmax(spectrum)] == pytest.approx(440, abs=2.4)
    peak = float(np.abs(samples[1000:11_000]).max())
    assert peak == pytest.approx(0.1, rel=0.02)

    native, native_rate = read_wav_mono(path, None)
    assert native_rate == 48_000
    np.testing.assert_allclose(native, stereo.mean(axis=1), atol=1e-7)
    same, same_rate = read_wav_mono(path, 48_000)
    assert same_rate == 48_000
    np.testing.assert_array_equal(same, native)


def test_read_wav_mono_refuses_what_read_wav_refuses(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF")
    with pytest.raises(UnsupportedFileError):
        read_wav_mono(bad)
    odd = tmp_path / "odd.wav"
    write_wav(odd, np.zeros(100, np.float32), 44_101)  # 24000 / 44101: terms beyond the limit
    with pytest.raises(AudioFormatError):
        read_wav_mono(odd)
