"""Level meter and energy VAD: known signals with known levels and known positions."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime_client.audio.errors import AudioFormatError
from realtime_client.audio.meter import LevelMeter, level_dbfs
from realtime_client.audio.vad import (
    EnergyVAD,
    SpeechStarted,
    SpeechStopped,
    VadEvent,
    threshold_to_dbfs,
)
from realtime_client.audio.wav import read_wav

SR = 24_000
FRAME_MS = 10

F32 = npt.NDArray[np.float32]


def _sine(seconds: float, dbfs_rms: float, freq: float = 440.0, sr: int = SR) -> F32:
    n = round(seconds * sr)
    amplitude = math.sqrt(2) * 10 ** (dbfs_rms / 20)
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def _noise(seconds: float, dbfs_rms: float, seed: int = 1, sr: int = SR) -> F32:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(round(seconds * sr))
    x *= 10 ** (dbfs_rms / 20) / np.sqrt(np.mean(x**2))
    return x.astype(np.float32)


def _place(total_s: float, *bursts: tuple[float, F32], bed: F32 | None = None, sr: int = SR) -> F32:
    """A silent (or ``bed``) signal with each burst added at its start time in seconds."""
    out = np.zeros(round(total_s * sr), np.float32) if bed is None else bed.copy()
    for start_s, burst in bursts:
        i = round(start_s * sr)
        out[i : i + burst.size] += burst
    return out


def _events(x: npt.ArrayLike, **kwargs: int | float) -> list[VadEvent]:
    return EnergyVAD(SR, **kwargs).process(x)  # type: ignore[arg-type]


def _assert_events_near(got: list[VadEvent], expected: list[VadEvent], tol_ms: int) -> None:
    assert [type(e) for e in got] == [type(e) for e in expected], got
    for g, e in zip(got, expected, strict=True):
        g_ms = g.audio_start_ms if isinstance(g, SpeechStarted) else g.audio_end_ms
        e_ms = e.audio_start_ms if isinstance(e, SpeechStarted) else e.audio_end_ms
        assert abs(g_ms - e_ms) <= tol_ms, (got, expected)


# Level meter -----------------------------------------------------------------------------


def test_level_dbfs_of_known_signals() -> None:
    t = np.arange(SR) / SR
    sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    rms, peak = level_dbfs(sine)
    assert rms == pytest.approx(-3.0103, abs=1e-3)
    assert peak == pytest.approx(0.0, abs=1e-3)
    rms, peak = level_dbfs(0.5 * sine)
    assert rms == pytest.approx(-9.0309, abs=1e-3)
    assert peak == pytest.approx(-6.0206, abs=1e-3)
    square = np.where(sine >= 0, 1.0, -1.0).astype(np.float32)
    assert level_dbfs(square) == pytest.approx((0.0, 0.0))
    assert level_dbfs(np.zeros(100, np.float32)) == (-math.inf, -math.inf)
    assert level_dbfs(np.zeros(0, np.float32)) == (-math.inf, -math.inf)


def test_level_dbfs_int16_and_stereo() -> None:
    pcm = np.full(480, 16384, dtype=np.int16)
    assert level_dbfs(pcm) == pytest.approx((-6.0206, -6.0206), abs=1e-3)
    stereo = np.stack([np.full(480, 0.5), np.zeros(480)], axis=1).astype(np.float32)
    rms, peak = level_dbfs(stereo)  # pooled: half the samples at 0.5
    assert rms == pytest.approx(10 * math.log10(0.125), abs=1e-6)
    assert peak == pytest.approx(-6.0206, abs=1e-3)
    with pytest.raises(AudioFormatError):
        level_dbfs(np.zeros((2, 2, 2), np.float32))


def test_meter_rms_follows_its_time_constant() -> None:
    meter = LevelMeter(SR, rms_time_constant_ms=300.0)
    assert meter.rms_dbfs == -100.0  # at rest: the floor, not -inf
    # A constant 0.5 from rest: after one time constant the mean square is (1 - 1/e) of
    # its final value; after ten it has settled.
    reading = meter.update(np.full(round(0.3 * SR), 0.5, np.float32))
    expected = 10 * math.log10(0.25 * (1 - math.exp(-1)))
    assert reading.rms_dbfs == pytest.approx(expected, abs=1e-3)
    reading = meter.update(np.full(round(2.7 * SR), 0.5, np.float32))
    assert reading.rms_dbfs == pytest.approx(-6.0206, abs=1e-3)
    meter.reset()
    assert (meter.rms_dbfs, meter.peak_dbfs, meter.clip_count) == (-100.0, -100.0, 0)


def test_meter_peak_falls_back_at_its_rate() -> None:
    meter = LevelMeter(SR, peak_decay_db_per_s=20.0, floor_dbfs=-90.0)
    click = np.zeros(480, np.float32)
    click[-1] = 1.0
    reading = meter.update(click)
    assert reading.peak_dbfs == pytest.approx(0.0)
    assert reading.clipped and meter.clip_count == 1
    reading = meter.update(np.zeros(SR, np.float32))  # one second later: 20 dB down
    assert reading.peak_dbfs == pytest.approx(-20.0, abs=1e-6)
    assert not reading.clipped
    meter.update(np.zeros(10 * SR, np.float32))
    assert meter.peak_dbfs == -90.0


@pytest.mark.parametrize("block", [7, 37, 480, 4800])
def test_meter_readings_do_not_depend_on_block_size(block: int) -> None:
    x = _place(1.2, (0.2, _sine(0.5, -12)), (0.9, _noise(0.1, -20)))
    one_shot = LevelMeter(SR)
    one_shot.update(x)
    chunked = LevelMeter(SR)
    for start in range(0, x.size, block):
        chunked.update(x[start : start + block])
    assert chunked.rms_dbfs == pytest.approx(one_shot.rms_dbfs, abs=1e-9)
    assert chunked.peak_dbfs == pytest.approx(one_shot.peak_dbfs, abs=1e-9)


def test_meter_rejects_bad_parameters() -> None:
    with pytest.raises(AudioFormatError):
        LevelMeter(0)
    with pytest.raises(AudioFormatError):
        LevelMeter(SR, rms_time_constant_ms=0)
    with pytest.raises(AudioFormatError):
        LevelMeter(SR, peak_decay_db_per_s=-1)


# VAD: threshold mapping -------------------------------------------------------------------


def test_threshold_mapping() -> None:
    assert threshold_to_dbfs(0.0) == -70.0
    assert threshold_to_dbfs(0.5) == -40.0
    assert threshold_to_dbfs(1.0) == -10.0
    with pytest.raises(AudioFormatError):
        threshold_to_dbfs(1.5)
    with pytest.raises(AudioFormatError):
        EnergyVAD(SR, threshold=-0.1)


# VAD: event times --------------------------------------------------------------------------


def test_tone_burst_gives_exact_event_times() -> None:
    x = _place(3.5, (1.0, _sine(1.0, -20)))
    assert _events(x) == [SpeechStarted(700), SpeechStopped(2200)]


@pytest.mark.parametrize("start_s", [1.0012, 1.005, 1.0093])
def test_unaligned_burst_is_within_one_frame(start_s: float) -> None:
    x = _place(3.5, (start_s, _sine(0.8137, -25)))
    end_s = start_s + 0.8137
    expected: list[VadEvent] = [
        SpeechStarted(round(start_s * 1000) - 300),
        SpeechStopped(round(end_s * 1000) + 200),
    ]
    _assert_events_near(_events(x), expected, FRAME_MS)


def test_noise_bursts_over_room_noise() -> None:
    # Speech-like loud noise bursts over a -60 dBFS room-noise bed.
    bed = _noise(6.0, -60, seed=7)
    x = _place(6.0, (0.5, _noise(0.7, -25, seed=2)), (3.0, _noise(1.5, -18, seed=3)), bed=bed)
    expected: list[VadEvent] = [
        SpeechStarted(200),
        SpeechStopped(1400),
        SpeechStarted(2700),
        SpeechStopped(4700),
    ]
    _assert_events_near(_events(x), expected, FRAME_MS)


def test_prefix_padding_is_clamped_at_zero() -> None:
    x = _place(1.0, (0.1, _sine(0.3, -20)))
    assert _events(x) == [SpeechStarted(0), SpeechStopped(600)]
    assert _events(x, prefix_padding_ms=0) == [SpeechStarted(100), SpeechStopped(600)]
    assert _events(x, prefix_padding_ms=50) == [SpeechStarted(50), SpeechStopped(600)]


@pytest.mark.parametrize(("gap_ms", "segments"), [(150, 1), (190, 1), (210, 2), (400, 2)])
def test_silence_duration_bridges_short_gaps(gap_ms: int, segments: int) -> None:
    first_end = 1.0
    x = _place(3.0, (0.5, _sine(0.5, -20)), (first_end + gap_ms / 1000, _sine(0.5, -20)))
    events = _events(x, silence_duration_ms=200)
    assert sum(isinstance(e, SpeechStarted) for e in events) == segments
    assert sum(isinstance(e, SpeechStopped) for e in events) == segments
    last_end_ms = 1000 + gap_ms + 500
    assert events[-1] == SpeechStopped(last_end_ms + 200)


def test_silence_duration_sets_commit_point() -> None:
    x = _place(3.0, (0.5, _sine(0.5, -20)))
    assert _events(x, silence_duration_ms=500)[-1] == SpeechStopped(1500)
    assert _events(x, silence_duration_ms=0)[-1] == SpeechStopped(1010)  # one frame minimum


def test_speech_still_going_at_the_end_has_no_stop() -> None:
    vad = EnergyVAD(SR)
    events = vad.process(_place(1.0, (0.6, _sine(0.4, -20))))
    assert events == [SpeechStarted(300)]
    assert vad.speaking
    assert vad.position_ms == 1000
    assert vad.process(np.zeros(round(0.19 * SR), np.float32)) == []
    assert vad.process(np.zeros(round(0.01 * SR), np.float32)) == [SpeechStopped(1200)]
    assert not vad.speaking


# VAD: threshold behaviour -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level_dbfs", "threshold", "triggers"),
    [
        (-30, 0.5, True),
        (-15, 0.5, True),
        (-45, 0.5, False),
        (-60, 0.5, False),
        (-60, 0.1, True),  # -64 dBFS threshold
        (-60, 0.0, True),
        (-30, 0.9, False),  # -16 dBFS threshold
        (-12, 0.9, True),
        (-12, 1.0, False),
    ],
)
def test_threshold_decides_what_triggers(
    level_dbfs: float, threshold: float, triggers: bool
) -> None:
    x = _place(2.0, (0.5, _sine(0.8, level_dbfs)))
    assert bool(_events(x, threshold=threshold)) is triggers


def test_room_noise_does_not_trigger_at_default() -> None:
    assert _events(_noise(5.0, -60, seed=11)) == []
    assert _events(_noise(5.0, -45, seed=12)) == []


def test_dc_offset_does_not_trigger() -> None:
    x = np.full(SR * 2, 0.05, np.float32)  # -26 dBFS of pure DC
    assert _events(x) == []


def test_clicks_do_not_start_speech() -> None:
    x = np.zeros(2 * SR, np.float32)
    for t in (0.3, 0.9, 1.5):
        i = round(t * SR)
        x[i : i + 48] = 0.9  # 2 ms full-scale click
    assert _events(x) == []
    # The onset requirement is what rejects them: with a one-frame onset they do count.
    assert _events(x, min_speech_ms=10)[0] == SpeechStarted(0)


def test_onset_delay_does_not_move_the_start_time() -> None:
    x = _place(2.0, (0.8, _sine(0.5, -20)))
    for min_speech_ms in (0, 10, 40, 100):
        assert _events(x, min_speech_ms=min_speech_ms)[0] == SpeechStarted(500)


# VAD: input forms and chunking --------------------------------------------------------------


def test_int16_input_gives_the_same_events() -> None:
    x = _place(3.0, (0.7, _sine(0.9, -22)), (2.2, _noise(0.3, -20)))
    pcm = np.clip(np.rint(x * 32768), -32768, 32767).astype(np.int16)
    assert _events(pcm) == _events(pcm.astype(np.float32) / 32768)
    assert _events(pcm) == [
        SpeechStarted(400),
        SpeechStopped(1800),
        SpeechStarted(1900),
        SpeechStopped(2700),
    ]
    assert _events(pcm.reshape(-1, 1)) == _events(pcm)


_CHUNK_SIGNAL = _place(
    4.0,
    (0.33, _sine(0.41, -20)),
    (0.9, _noise(0.05, -15, seed=5)),
    (1.5, _sine(1.2, -30, freq=220)),
    (3.0, _noise(0.9, -25, seed=6)),
    bed=_noise(4.0, -65, seed=4),
)
_CHUNK_REFERENCE = EnergyVAD(SR, prefix_padding_ms=120).process(_CHUNK_SIGNAL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=_CHUNK_SIGNAL.size), max_size=40))
def test_events_do_not_depend_on_chunking(cuts: list[int]) -> None:
    vad = EnergyVAD(SR, prefix_padding_ms=120)
    events: list[VadEvent] = []
    bounds = [0, *sorted(cuts), _CHUNK_SIGNAL.size]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        events += vad.process(_CHUNK_SIGNAL[a:b])
    assert events == _CHUNK_REFERENCE
    assert vad.position_ms == 4000


def test_chunk_reference_is_not_trivial() -> None:
    # The property above would pass vacuously on an empty list.
    assert len(_CHUNK_REFERENCE) >= 4
    assert isinstance(_CHUNK_REFERENCE[0], SpeechStarted)


def test_reset_and_position() -> None:
    vad = EnergyVAD(SR)
    x = _place(2.0, (0.5, _sine(0.5, -20)))
    first = vad.process(x)
    assert vad.position_ms == 2000
    vad.process(np.zeros(100, np.float32))  # a partial frame still counts as fed
    assert vad.position_ms == 2004
    vad.reset()
    assert (vad.position_ms, vad.speaking) == (0, False)
    assert vad.process(x) == first


def test_odd_sample_rate_frames() -> None:
    sr = 22_050  # 10 ms is 220.5 samples: frames are 220 samples (9.977 ms)
    x = _place(3.0, (1.0, _sine(1.0, -20, sr=sr)), sr=sr)
    started, stopped = EnergyVAD(sr).process(x)
    _assert_events_near([started], [SpeechStarted(700)], FRAME_MS)
    # 200 ms of silence is 20.05 frames, rounded up to 21: one more frame of slack.
    assert isinstance(stopped, SpeechStopped)
    assert 2200 <= stopped.audio_end_ms <= 2200 + 2 * FRAME_MS


def test_bad_input_raises_typed_error() -> None:
    vad = EnergyVAD(SR)
    with pytest.raises(AudioFormatError, match="mono"):
        vad.process(np.zeros((10, 2), np.float32))
    with pytest.raises(AudioFormatError, match="int16"):
        vad.process(np.zeros(10, np.int32))
    with pytest.raises(AudioFormatError):
        EnergyVAD(0)
    with pytest.raises(AudioFormatError):
        EnergyVAD(SR, frame_ms=0)
    with pytest.raises(AudioFormatError):
        EnergyVAD(100, frame_ms=1)  # 0.1 sample per frame
    with pytest.raises(AudioFormatError):
        EnergyVAD(SR, silence_duration_ms=-1)


# VAD on real synthesized speech ---------------------------------------------------------


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_synthesized_speech_is_one_turn(tmp_path: Path) -> None:
    # espeak-ng writes a 22.05 kHz PCM16 WAV; this also exercises read_wav on a foreign file.
    path = tmp_path / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(path), "Hello there, how are you doing today"],
        check=True,
        timeout=30,
    )
    speech, sr = read_wav(path)
    assert speech.ndim == 1
    pad = np.zeros(sr, np.float32)
    x = np.concatenate([pad, speech, pad])
    audible = np.flatnonzero(np.abs(x) > 10 ** (-50 / 20))
    first_ms, last_ms = audible[0] * 1000 // sr, audible[-1] * 1000 // sr
    events = EnergyVAD(sr).process(x)
    _assert_events_near(
        events, [SpeechStarted(first_ms - 300), SpeechStopped(last_ms + 200)], tol_ms=40
    )
    # The pause at the comma is longer than 100 ms: a shorter silence_duration splits it.
    short = EnergyVAD(sr, silence_duration_ms=100).process(x)
    assert sum(isinstance(e, SpeechStopped) for e in short) >= 2
