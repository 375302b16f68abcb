"""Tests for audio.resample: quality (sines, sweeps, impulses), accounting, chunk invariance."""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime_client.audio import formats
from realtime_client.audio.errors import AudioFormatError
from realtime_client.audio.resample import (
    MAX_RATIO_TERM,
    MAX_SAMPLE_MAGNITUDE,
    Resampler,
    resample,
)

RATES = [8_000, 16_000, 22_050, 32_000, 44_100, 48_000]
PAIRS = [(r, 24_000) for r in RATES] + [(24_000, r) for r in RATES]
OTHER_PAIRS = [(44_100, 48_000), (48_000, 44_100), (8_000, 16_000), (48_000, 8_000)]
WARMUP_S = 0.01  # the filters are at most ~3 ms long; skip their start-up transient

Array = npt.NDArray[np.float64]


def _ids(pair: tuple[int, int]) -> str:
    return f"{pair[0]}->{pair[1]}"


def _tone(
    freq: float, rate: int, seconds: float, amplitude: float = 0.5
) -> npt.NDArray[np.float32]:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + 0.3)).astype(np.float32)


def _fit(y: npt.NDArray[np.float32], freqs: list[float], rate: int) -> Array:
    """Amplitude of each frequency in ``y`` by joint least squares.

    The first and last 10 ms are left out: the tone starts and stops abruptly there.
    """
    skip = int(WARMUP_S * rate)
    y = y[: len(y) - skip]
    t = np.arange(skip, len(y)) / rate
    cols = [np.ones_like(t)]
    for f in freqs:
        cols += [np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)]
    basis = np.stack(cols, axis=1)
    coef, *_ = np.linalg.lstsq(basis, y[skip:].astype(np.float64), rcond=None)
    amps: Array = np.hypot(coef[1::2], coef[2::2])
    return amps


def _spurs(freq: float, in_rate: int, out_rate: int) -> list[float]:
    """Frequencies where aliases and images of a tone at ``freq`` land, except ``freq``."""
    found: set[float] = set()
    for m in range(-8, 9):
        for g in (freq + m * in_rate, -freq + m * in_rate):
            folded = g % out_rate
            folded = min(folded, out_rate - folded)
            if abs(folded - freq) > 1.0 and 1.0 < folded < out_rate / 2 - 1.0:
                found.add(round(folded, 6))
    return sorted(found)


def _db(ratio: float) -> float:
    return 20 * math.log10(max(ratio, 1e-20))


def _bits(x: npt.NDArray[np.float32]) -> npt.NDArray[np.uint32]:
    return np.ascontiguousarray(x).view(np.uint32)


# --- quality ------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS + OTHER_PAIRS, ids=_ids)
def test_passband_is_flat_and_clean(pair: tuple[int, int]) -> None:
    in_rate, out_rate = pair
    nyquist = min(pair) / 2
    for freq in (50.0, 997.0, 0.5 * nyquist, 0.9 * nyquist):
        x = _tone(freq, in_rate, 0.25)
        y = resample(x, in_rate, out_rate)
        spurs = _spurs(freq, in_rate, out_rate)
        amps = _fit(y, [freq, *spurs], out_rate)
        gain_db = _db(amps[0] / 0.5)
        assert abs(gain_db) <= 0.1, f"{freq:.0f} Hz: gain {gain_db:+.4f} dB"
        assert abs(gain_db) <= 0.01  # measured: within 0.002 dB
        if spurs:
            worst = _db(float(amps[1:].max()) / 0.5)
            assert worst <= -100.0, f"{freq:.0f} Hz: image/alias at {worst:.1f} dB"


def _faded(x: npt.NDArray[np.float32], rate: int, fade_s: float) -> npt.NDArray[np.float32]:
    """Raised-cosine fade in and out, so the signal's own spectrum stays near its frequency."""
    n = int(rate * fade_s)
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)).astype(np.float32)
    y: npt.NDArray[np.float32] = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


@pytest.mark.parametrize("pair", [p for p in PAIRS + OTHER_PAIRS if p[1] < p[0]], ids=_ids)
def test_tones_above_the_output_nyquist_are_rejected(pair: tuple[int, int]) -> None:
    in_rate, out_rate = pair
    nyquist = out_rate / 2
    for freq in (
        1.003 * nyquist,
        1.05 * nyquist,
        0.5 * (nyquist + in_rate / 2),
        0.99 * in_rate / 2,
    ):
        # A tone 12 Hz into the stopband: its onset would splash into the passband, where
        # the filter rings for a while; fade it in and measure the steady state only.
        x = _faded(_tone(freq, in_rate, 0.5, amplitude=1.0), in_rate, 0.1)
        y = resample(x, in_rate, out_rate)
        steady = y[int(0.15 * out_rate) : int(0.35 * out_rate)].astype(np.float64)
        level = _db(math.sqrt(2 * float(np.mean(steady**2))))  # re the input amplitude 1.0
        assert level <= -100.0, f"{freq:.0f} Hz: aliases at {level:.1f} dB"


@pytest.mark.parametrize("pair", [p for p in PAIRS if p[1] < p[0]], ids=_ids)
def test_sweep_through_the_stopband_is_rejected(pair: tuple[int, int]) -> None:
    in_rate, out_rate = pair
    f0, f1, seconds = 1.02 * out_rate / 2, 0.99 * in_rate / 2, 0.5
    t = np.arange(int(in_rate * seconds)) / in_rate
    x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))).astype(np.float32)
    y = resample(_faded(x, in_rate, 0.05), in_rate, out_rate)
    # Leave out the fades (their spectrum spreads below the sweep's start frequency).
    middle = y[int(0.06 * out_rate) : int(0.44 * out_rate)].astype(np.float64)
    level = _db(math.sqrt(2 * float(np.mean(middle**2))))  # re the sweep's amplitude 1.0
    assert level <= -100.0


@pytest.mark.parametrize("pair", [p for p in PAIRS if p[1] > p[0]], ids=_ids)
def test_sweep_through_the_passband_makes_no_images(pair: tuple[int, int]) -> None:
    in_rate, out_rate = pair
    f0, f1, seconds = 20.0, 0.9 * in_rate / 2, 0.5
    t = np.arange(int(in_rate * seconds)) / in_rate
    x = (0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))).astype(np.float32)
    y = resample(x, in_rate, out_rate).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(y * np.kaiser(len(y), 20.0))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / out_rate)
    images = spectrum[freqs >= in_rate / 2].sum()
    wanted = spectrum[freqs < 0.95 * in_rate / 2].sum()
    assert _db(math.sqrt(images / wanted)) <= -100.0


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
def test_impulse_response_is_short_and_has_unity_gain(pair: tuple[int, int]) -> None:
    in_rate, out_rate = pair
    r = Resampler(in_rate, out_rate)
    assert 0.0 < r.delay_ms <= 2.0
    x = np.zeros(in_rate // 10, dtype=np.float32)
    x[0] = 1.0
    y = np.concatenate([r.process(x), r.flush()]).astype(np.float64)
    peak_ms = int(np.argmax(np.abs(y))) * 1000 / out_rate
    assert abs(peak_ms - r.delay_ms) <= 1000 / out_rate + 1000 / in_rate
    # Energy is where a minimum-phase filter puts it: at the start.
    energy = np.cumsum(y**2) / np.sum(y**2)
    assert energy[int(0.002 * out_rate)] >= 0.9  # measured: 0.94 (8 kHz) to 0.999
    assert energy[int(0.01 * out_rate)] >= 0.999
    # A constant comes out at the same level once the filter has filled.
    # (The step at the start rings near the band edge for a few ms at 8 kHz: skip 40 ms.)
    dc = resample(np.full(in_rate // 5, 0.5, dtype=np.float32), in_rate, out_rate)
    np.testing.assert_allclose(dc[int(0.04 * out_rate) : out_rate // 5], 0.5, atol=1e-5)


def test_latency_measured_by_cross_correlation_matches_delay_ms() -> None:
    # Band-limited noise at 48 kHz, streamed in 20 ms chunks to 24 kHz: the lag of the best
    # match between output and the ideally decimated input is the added latency.
    rng = np.random.default_rng(3)
    x48 = rng.standard_normal(48_000)
    spectrum = np.fft.rfft(x48)
    spectrum[np.fft.rfftfreq(len(x48), 1 / 48_000) > 8_000] = 0
    x48 = np.fft.irfft(spectrum, len(x48))
    x48 = (0.3 * x48 / x48.std()).astype(np.float32)
    ideal = x48[::2].astype(np.float64)  # exact: no content above 8 kHz
    r = Resampler(48_000, 24_000)
    y = np.concatenate([r.process(x48[i : i + 960]) for i in range(0, len(x48), 960)])
    assert len(y) == len(ideal)  # no hold-back: everything up to the last input is out
    corr = [float(np.dot(y[lag:].astype(np.float64), ideal[: len(y) - lag])) for lag in range(8)]
    lag = int(np.argmax(corr))
    assert lag * 1000 / 24_000 <= 2.0
    assert abs(lag - r.delay_ms * 24) <= 1.0


# --- accounting, flush, reset -------------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS + OTHER_PAIRS, ids=_ids)
@pytest.mark.parametrize("frames", [0, 1, 2, 3, 79, 80, 81, 441, 1000])
def test_length_accounting(pair: tuple[int, int], frames: int) -> None:
    in_rate, out_rate = pair
    r = Resampler(in_rate, out_rate)
    head = r.process(np.zeros(frames, dtype=np.float32))
    assert len(head) == -(-frames * out_rate // in_rate)
    assert len(r.flush()) == r.flush_frames == math.ceil(r.delay_ms * out_rate / 1000 - 1e-9)
    assert (
        len(resample(np.zeros(frames, dtype=np.float32), in_rate, out_rate))
        == len(head) + r.flush_frames
    )


def test_flush_resets_and_reset_forgets() -> None:
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal(2_000)).astype(np.float32)
    expected = resample(x, 44_100, 24_000)
    r = Resampler(44_100, 24_000)
    first = np.concatenate([r.process(x), r.flush()])
    second = np.concatenate([r.process(x), r.flush()])  # flush left a fresh stream
    np.testing.assert_array_equal(_bits(first), _bits(expected))
    np.testing.assert_array_equal(_bits(second), _bits(expected))
    r.process(rng.standard_normal(777).astype(np.float32))
    r.reset()
    third = np.concatenate([r.process(x[:100]), r.process(x[100:]), r.flush()])
    np.testing.assert_array_equal(_bits(third), _bits(expected))


def test_flush_without_input_is_silence() -> None:
    r = Resampler(16_000, 24_000)
    out = r.flush()
    assert out.shape == (r.flush_frames,)
    assert not out.any()


def test_has_input_tracks_input_since_the_last_reset() -> None:
    r = Resampler(48_000, 24_000)
    assert not r.has_input
    r.process(np.zeros(0, dtype=np.float32))
    assert not r.has_input  # an empty chunk is no input
    r.process(np.zeros(10, dtype=np.float32))
    assert r.has_input
    r.flush()
    assert not r.has_input
    r.process(np.zeros(10, dtype=np.float32))
    r.reset()
    assert not r.has_input
    assert not Resampler(24_000, 24_000).has_input


# --- chunk invariance ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    pair=st.sampled_from(PAIRS + OTHER_PAIRS),
    channels=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.integers(0, 1_500), min_size=1, max_size=12),
)
def test_output_does_not_depend_on_chunking(
    pair: tuple[int, int], channels: int, seed: int, sizes: list[int]
) -> None:
    in_rate, out_rate = pair
    rng = np.random.default_rng(seed)
    total = sum(sizes)
    shape = (total,) if channels == 1 else (total, channels)
    x = (0.5 * rng.standard_normal(shape)).astype(np.float32)
    expected = resample(x, in_rate, out_rate)
    r = Resampler(in_rate, out_rate, channels)
    parts, pos = [], 0
    for n in sizes:
        parts.append(r.process(x[pos : pos + n]))
        pos += n
    parts.append(r.flush())
    got = np.concatenate(parts)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(_bits(got), _bits(expected))


def test_twenty_ms_chunks_match_one_shot_on_long_input() -> None:
    rng = np.random.default_rng(2)
    x = (0.5 * rng.standard_normal(48_000 * 3)).astype(np.float32)
    r = Resampler(48_000, 24_000)
    got = np.concatenate([*(r.process(x[i : i + 960]) for i in range(0, len(x), 960)), r.flush()])
    np.testing.assert_array_equal(_bits(got), _bits(resample(x, 48_000, 24_000)))


# --- layouts ------------------------------------------------------------------------------


def test_stereo_channels_are_independent_and_bit_identical_to_mono() -> None:
    rng = np.random.default_rng(4)
    x = (0.5 * rng.standard_normal((3_000, 2))).astype(np.float32)
    r = Resampler(44_100, 24_000, channels=2)
    y = np.concatenate([r.process(x[:1234]), r.process(x[1234:]), r.flush()])
    assert y.shape == (-(-3_000 * 24_000 // 44_100) + r.flush_frames, 2)
    assert y.dtype == np.float32
    for c in range(2):
        mono = resample(np.ascontiguousarray(x[:, c]), 44_100, 24_000)
        np.testing.assert_array_equal(_bits(y[:, c]), _bits(mono))


def test_mono_layout_follows_the_input() -> None:
    x = _tone(440.0, 16_000, 0.05)
    r = Resampler(16_000, 24_000)
    two_d = r.process(x[:, None])
    assert two_d.ndim == 2 and two_d.shape[1] == 1
    assert r.flush().ndim == 2  # flush follows the last call's layout
    one_d = resample(x, 16_000, 24_000)
    np.testing.assert_array_equal(resample(x[:, None], 16_000, 24_000)[:, 0], one_d)


def test_many_channels_and_non_contiguous_input() -> None:
    rng = np.random.default_rng(5)
    wide = (0.5 * rng.standard_normal((1_000, 10))).astype(np.float32)
    x = wide[:, ::2]  # five channels, strided
    y = resample(x, 48_000, 24_000)
    assert y.shape == (500 + Resampler(48_000, 24_000).flush_frames, 5)
    for c in range(5):
        np.testing.assert_array_equal(
            _bits(y[:, c]), _bits(resample(x[:, c].copy(), 48_000, 24_000))
        )


@pytest.mark.parametrize("channels", [9, 16, 17])
def test_more_channels_than_rows_per_call(channels: int) -> None:
    # More channels than one matrix product has rows: groups of channels per call, with
    # the same results as mono, bit for bit, and the same for any chunking.
    rng = np.random.default_rng(channels)
    x = (0.5 * rng.standard_normal((2_345, channels))).astype(np.float32)
    y = resample(x, 48_000, 24_000)
    assert y.shape == (-(-2_345 // 2) + Resampler(48_000, 24_000).flush_frames, channels)
    for c in range(channels):
        mono = resample(np.ascontiguousarray(x[:, c]), 48_000, 24_000)
        np.testing.assert_array_equal(_bits(y[:, c]), _bits(mono))
    r = Resampler(48_000, 24_000, channels)
    cuts = [0, 1, 2, 961, 1_000, 1_000, 2_345]
    got = np.concatenate(
        [*(r.process(x[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)), r.flush()]
    )
    np.testing.assert_array_equal(_bits(got), _bits(y))


def test_same_rate_is_a_pass_through() -> None:
    x = _tone(440.0, 24_000, 0.02)
    r = Resampler(24_000, 24_000)
    y = r.process(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    assert r.delay_ms == 0.0
    assert r.flush().shape == (0,)
    stereo = Resampler(24_000, 24_000, channels=2)
    assert stereo.process(np.zeros((5, 2), dtype=np.float32)).shape == (5, 2)
    assert stereo.flush().shape == (0, 2)


def test_attributes() -> None:
    r = Resampler(48_000, 24_000, channels=2)
    assert (r.in_rate, r.out_rate, r.channels) == (48_000, 24_000, 2)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "samples", "match"),
    [
        (1, np.zeros(10, dtype=np.float64), "float32"),
        (1, np.zeros(10, dtype=np.int16), "float32"),
        (1, [0.0, 0.1], "numpy array"),
        (1, np.zeros((4, 2), dtype=np.float32), "shape"),
        (1, np.zeros((2, 2, 2), dtype=np.float32), "shape"),
        (2, np.zeros(10, dtype=np.float32), "1-D"),
        (2, np.zeros((10, 3), dtype=np.float32), "shape"),
        (1, np.array([0.0, np.nan], dtype=np.float32), "finite"),
        (1, np.array([np.inf, 0.0], dtype=np.float32), "finite"),
        (2, np.array([[0.0, -np.inf]], dtype=np.float32), "finite"),
    ],
)
def test_bad_samples_raise_and_keep_state(channels: int, samples: object, match: str) -> None:
    r = Resampler(48_000, 24_000, channels)
    shape = (960,) if channels == 1 else (960, channels)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y1 = r.process(x)
    with pytest.raises(AudioFormatError, match=match):
        r.process(samples)  # type: ignore[arg-type]
    y2 = np.concatenate([y1, r.process(x), r.flush()])
    np.testing.assert_array_equal(y2, resample(np.concatenate([x, x]), 48_000, 24_000))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.nan, "must be finite"),
        (np.inf, "must be finite"),
        (-np.inf, "must be finite"),
        (2e30, "at most 1e\\+30"),
        (3e38, "at most 1e\\+30"),
    ],
)
def test_non_finite_and_huge_samples_are_refused_without_a_numpy_warning(
    value: float, match: str
) -> None:
    # The finiteness check used to leak numpy's "overflow encountered in dot" for
    # |x| >= ~1e18 (an exception under -W error) and call 1e20 non-finite.
    r = Resampler(48_000, 24_000)
    x = np.zeros(960, dtype=np.float32)
    x[100] = value
    x[200] = -value if value == value else 0.0  # +inf and -inf together, too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AudioFormatError, match=match):
            r.process(x)
        with pytest.raises(AudioFormatError, match=match):
            Resampler(48_000, 24_000, 2).process(np.stack([x, x], axis=1))


@pytest.mark.parametrize("scale", [1e18, 1e20, 1e30])
def test_huge_finite_samples_up_to_the_limit_are_resampled_not_refused(scale: float) -> None:
    assert MAX_SAMPLE_MAGNITUDE == 1e30
    x = np.random.default_rng(3).uniform(-1, 1, 4800).astype(np.float32)
    x[np.argmax(np.abs(x))] = 1.0  # the peak is exactly `scale`
    big = (x * np.float32(scale)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        whole = resample(big, 48_000, 24_000)
        r = Resampler(48_000, 24_000)
        parts = np.concatenate([r.process(big[:1000]), r.process(big[1000:]), r.flush()])
    assert np.isfinite(whole).all()
    np.testing.assert_array_equal(parts, whole)  # chunk invariance holds
    np.testing.assert_allclose(whole / scale, resample(x, 48_000, 24_000), rtol=1e-4, atol=1e-6)


def test_the_dtype_error_names_a_public_conversion() -> None:
    with pytest.raises(AudioFormatError) as info:
        Resampler(48_000, 24_000).process(np.zeros(10, dtype=np.int16))  # type: ignore[arg-type]
    message = str(info.value)
    assert "realtime_client.audio.formats.as_float32" in message
    assert "as_float32" in formats.__all__ and callable(formats.as_float32)
    assert "x.astype(np.float32)" in message


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 24_000), "in_rate"),
        ((-8_000, 24_000), "in_rate"),
        ((24_000, 0), "out_rate"),
        ((24_000.0, 16_000), "in_rate"),
        ((True, 16_000), "in_rate"),
        ((24_000, 16_000, 0), "channels"),
        ((24_000, 16_000, 1.5), "channels"),
        ((44_100, 47_999), "ratio"),
    ],
)
def test_bad_construction(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(AudioFormatError, match=match):
        Resampler(*args)  # type: ignore[arg-type]


def test_largest_ratio_term_is_accepted() -> None:
    assert MAX_RATIO_TERM >= 640  # 11,025 <-> 48,000 Hz is 640/147
    r = Resampler(11_025, 48_000)
    assert len(r.process(np.zeros(441, dtype=np.float32))) == 1920


def test_resample_errors_are_format_errors() -> None:
    with pytest.raises(AudioFormatError, match="float32"):
        resample(np.zeros(10), 48_000, 24_000)  # type: ignore[arg-type]
