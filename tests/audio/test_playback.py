"""PlaybackBuffer without a device: prebuffering, underruns, accounting, clear, threads."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pytest

from realtime_client.audio.errors import AudioFormatError
from realtime_client.audio.playback import PlaybackBuffer, PlaybackError, PlayedPosition

RATE = 24_000
FRAMES_PER_MS = RATE // 1000


def ms(n: float) -> int:
    return int(n * FRAMES_PER_MS)


def ramp(n: int, start: int = 1) -> npt.NDArray[np.float32]:
    """Distinct, exactly representable sample values: (start .. start+n-1) / 2**20."""
    return (np.arange(start, start + n, dtype=np.float64) / 2**20).astype(np.float32)


def sine(n: int, freq: float = 440.0, amp: float = 0.8) -> npt.NDArray[np.float32]:
    t = np.arange(n) / RATE
    return (amp * np.sin(2 * np.pi * freq * t + 0.3)).astype(np.float32)


# -- prebuffering --------------------------------------------------------------------------


def test_waits_for_prebuffer_then_plays_in_order() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=50)
    data = ramp(ms(60))
    buf.write(data[: ms(40)], "a")
    assert not buf.read(ms(20)).any()  # 40 ms < 50 ms prebuffer: silence
    assert not buf.playing
    assert buf.played_ms("a") == 0
    buf.write(data[ms(40) :], "a")
    out = buf.read(ms(30))
    assert buf.playing
    np.testing.assert_array_equal(out, data[: ms(30)])
    assert buf.buffered_ms == pytest.approx(30)
    # Waiting for the prebuffer before the first sample is not an underrun.
    assert buf.underruns == 0 and buf.underrun_ms == 0


def test_mark_finished_plays_a_short_item_below_the_prebuffer() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=200)
    buf.write(ramp(ms(30)), "short")
    assert not buf.read(ms(10)).any()
    buf.mark_finished("short")
    out = buf.read(ms(40))
    np.testing.assert_array_equal(out[: ms(30)], ramp(ms(30)))
    assert not out[ms(30) :].any()
    assert buf.underruns == 0  # a finished item running dry is a normal end
    assert buf.played_ms("short") == pytest.approx(30)


def test_finished_item_is_not_held_back_by_the_next_items_prebuffer() -> None:
    rate = 1000
    buf = PlaybackBuffer(rate, prebuffer_ms=60)
    buf.write(ramp(30), "a")
    buf.mark_finished("a")
    buf.write(ramp(10, start=100), "b")  # b's first delta, before the next callback
    out = buf.read(20)
    np.testing.assert_array_equal(out, ramp(30)[:20])
    out = buf.read(20)
    # a plays out; b then waits for its own prebuffer (10 < 60 frames queued).
    np.testing.assert_array_equal(out[:10], ramp(30)[20:])
    assert not out[10:].any()
    assert not buf.playing and buf.stalled
    assert buf.played_ms("a") == pytest.approx(30) and buf.played_ms("b") == 0
    buf.write(ramp(50, start=110), "b")  # 60 ms of b now: it starts
    out = buf.read(20)
    np.testing.assert_array_equal(out, ramp(20, start=100))
    # The gap between a finished item and the next one is not an underrun.
    assert buf.underruns == 0 and buf.underrun_ms == 0


def test_zero_prebuffer_starts_immediately() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    buf.write(ramp(10), "a")
    np.testing.assert_array_equal(buf.read(10), ramp(10))


# -- underruns -----------------------------------------------------------------------------


def test_underrun_counts_events_and_inserted_silence() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=20)
    buf.write(ramp(ms(30)), "a")
    buf.read(ms(20))
    out = buf.read(ms(20))  # 10 ms of audio, then it runs dry
    np.testing.assert_array_equal(out[: ms(10)], ramp(ms(30))[ms(20) :])
    assert not out[ms(10) :].any()
    assert buf.underruns == 1
    assert buf.underrun_ms == pytest.approx(10)
    buf.read(ms(20))  # still starving: same underrun, more silence
    assert buf.underruns == 1
    assert buf.underrun_ms == pytest.approx(30)
    # Resuming needs the prebuffer again: 10 ms is not enough.
    buf.write(ramp(ms(10), start=10_000), "a")
    assert not buf.read(ms(5)).any()
    assert buf.underrun_ms == pytest.approx(35)
    buf.write(ramp(ms(20), start=20_000), "a")
    out = buf.read(ms(20))
    np.testing.assert_array_equal(out[: ms(10)], ramp(ms(10), start=10_000))
    buf.mark_finished("a")
    buf.read(ms(40))  # drains, then silence after a finished item: no new underrun
    stats = buf.stats()
    assert stats.underruns == 1
    assert stats.underrun_ms == pytest.approx(35)
    assert buf.played_ms("a") == pytest.approx(60)


def test_second_underrun_is_counted_separately() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    for _ in range(2):
        buf.write(ramp(ms(10)), "a")
        buf.read(ms(15))
    assert buf.underruns == 2
    assert buf.underrun_ms == pytest.approx(10)


def test_silence_before_any_audio_is_not_an_underrun() -> None:
    buf = PlaybackBuffer(RATE)
    assert not buf.read(ms(100)).any()
    assert buf.underruns == 0 and buf.frames_out == ms(100)


# -- accounting ----------------------------------------------------------------------------


def test_played_ms_per_item_without_latency() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    buf.write(ramp(ms(30)), "a")
    buf.write(ramp(ms(50)), "b", 1)
    buf.mark_finished("a")
    buf.mark_finished("b")
    buf.read(ms(45))
    assert buf.played_ms("a") == pytest.approx(30)
    assert buf.played_ms("b") == pytest.approx(15)
    assert buf.played_ms("b", 1) == pytest.approx(15)
    assert buf.played_ms("b", 0) == 0  # no such part
    assert buf.current_item == ("b", 1)
    buf.read(ms(100))
    assert buf.played_ms("b") == pytest.approx(50)
    assert buf.received_ms("a") == pytest.approx(30)
    assert buf.received_ms("b") == pytest.approx(50)
    assert buf.played_ms("unknown") == 0 and buf.received_ms("unknown") == 0


def test_played_ms_is_corrected_by_output_latency() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    buf.write(ramp(ms(30)), "a")
    buf.write(ramp(ms(50)), "b")
    buf.read(ms(60))
    buf.output_latency_s = 0.020  # 20 ms of what was handed out is still in the device
    assert buf.played_ms("a") == pytest.approx(30)
    assert buf.played_ms("b") == pytest.approx(10)
    buf.output_latency_s = 0.045
    assert buf.played_ms("a") == pytest.approx(15)
    assert buf.played_ms("b") == 0
    buf.output_latency_s = 0.5  # more latency than audio handed out: clamped at 0
    assert buf.played_ms("a") == 0
    # The latency reported with a read is applied atomically with the frame counter.
    buf.read_into(np.empty(ms(20), dtype=np.float32), output_latency_s=0.010)
    assert buf.output_latency_s == pytest.approx(0.010)
    assert buf.played_ms("b") == pytest.approx(40)  # 80 ms handed out - 10 ms: position 70
    pos = buf.position()
    assert pos == PlayedPosition("b", 0, pytest.approx(40), pytest.approx(50))


def test_accounting_skips_silence_between_spans() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    buf.write(ramp(ms(10)), "a")
    buf.read(ms(20))  # 10 ms audio + 10 ms underrun silence
    buf.write(ramp(ms(10)), "a")
    buf.read(ms(20))  # 10 ms audio + 10 ms silence
    buf.output_latency_s = 0.015  # position at 25 ms: a's second span ran 20..25
    assert buf.played_ms("a") == pytest.approx(15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_chunking_is_sample_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    data = ramp(ms(500))
    pos = 0
    while pos < len(data):
        n = int(rng.integers(1, 2000))
        assert buf.write(data[pos : pos + n], "x") == len(data[pos : pos + n])
        pos += n
    buf.mark_finished("x")
    blocks = []
    while buf.buffered_ms > 0:
        blocks.append(buf.read(int(rng.integers(1, 1500))))
    out = np.concatenate(blocks)
    np.testing.assert_array_equal(out[: len(data)], data)
    assert not out[len(data) :].any()
    assert buf.played_ms("x") == pytest.approx(500)
    assert buf.frames_out == len(out)


def test_int16_input_is_scaled() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    buf.write(pcm, "a")
    np.testing.assert_array_equal(
        buf.read(4), np.array([0.0, 0.5, -1.0, 32767 / 32768], dtype=np.float32)
    )
    buf.write(pcm.reshape(-1, 1), "a")  # (frames, 1) is mono too
    assert len(buf.read(4)) == 4 and buf.received_ms("a") == pytest.approx(8 / 24)


def test_write_copies_the_callers_array() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    data = ramp(100)
    buf.write(data, "a")
    data[:] = 0
    assert buf.read(100).all()


def test_content_parts_are_tracked_separately_and_summed() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    buf.write(ramp(ms(10)), "a", 0)
    buf.write(ramp(ms(20)), "a", 1)
    buf.read(ms(30))
    assert buf.played_ms("a", 0) == pytest.approx(10)
    assert buf.played_ms("a", 1) == pytest.approx(20)
    assert buf.played_ms("a") == pytest.approx(30)
    assert buf.received_ms("a") == pytest.approx(30)


def test_overflow_keeps_what_fits_and_counts_the_rest() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0, max_buffered_ms=50)
    assert buf.write(ramp(ms(40)), "a") == ms(40)
    assert buf.write(ramp(ms(20)), "a") == ms(10)
    stats = buf.stats()
    assert stats.overflows == 1 and stats.overflow_ms == pytest.approx(10)
    assert buf.received_ms("a") == pytest.approx(50)
    buf.read(ms(30))
    assert buf.write(ramp(ms(30)), "b") == ms(30)  # room again, for another item
    assert buf.stats().overflows == 1


def test_overflow_loses_only_the_end_of_an_item_so_positions_stay_true() -> None:
    # Each sample encodes its position in the item, so a hole in the middle would show.
    rate = 1000
    buf = PlaybackBuffer(rate, prebuffer_ms=0, max_buffered_ms=100)
    item = ramp(300)
    assert buf.write(item[:100], "a") == 100
    assert buf.write(item[100:200], "a") == 0  # full: overflows entirely
    buf.read(50)
    # There is room for 50 frames now, but they would follow a 100-frame hole.
    assert buf.write(item[200:300], "a") == 0
    stats = buf.stats()
    assert stats.overflows == 2 and stats.overflow_ms == pytest.approx(200)
    out = buf.read(100)
    np.testing.assert_array_equal(out[:50], item[50:100])
    assert not out[50:].any()
    assert buf.played_ms("a") == pytest.approx(100)  # and item[99] is what was heard last
    assert buf.received_ms("a") == pytest.approx(100)
    assert buf.write(item[:10], "b") == 10  # other items are not affected


def test_forget_drops_bookkeeping_of_played_items_only() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    buf.write(ramp(ms(10)), "a")
    with pytest.raises(PlaybackError, match="still has queued audio"):
        buf.forget("a")
    buf.read(ms(10))
    buf.forget("a")
    assert buf.received_ms("a") == 0 and buf.current_item is None


# -- clear / fade --------------------------------------------------------------------------


def _max_step(x: npt.NDArray[np.float32]) -> float:
    return float(np.max(np.abs(np.diff(x.astype(np.float64)))))


def test_clear_fades_out_without_a_click_then_silence() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    signal = sine(ms(300))
    buf.write(signal, "a")
    before = buf.read(ms(50))
    pos = buf.clear(fade_ms=5)
    assert pos == PlayedPosition("a", 0, pytest.approx(50), pytest.approx(55))
    after = buf.read(ms(30))
    fade = ms(5)
    # The handed-out samples were untouched; the fade continues the same waveform.
    np.testing.assert_array_equal(before, signal[: ms(50)])
    gains = (fade - np.arange(fade)) / (fade + 1)
    np.testing.assert_allclose(after[:fade], signal[ms(50) : ms(50) + fade] * gains, atol=1e-6)
    assert not after[fade:].any()
    joined = np.concatenate([before, after])
    # No step bigger than the sine's own slope plus one fade increment.
    assert _max_step(joined) <= _max_step(signal) + 0.8 / (fade + 1) + 1e-6
    assert buf.played_ms("a") == pytest.approx(55)  # the fade was played too
    stats = buf.stats()
    assert stats.cleared_ms == pytest.approx(300 - 55)
    assert stats.buffered_ms == 0 and stats.underruns == 0


def test_clear_without_fade_clicks_which_the_bound_detects() -> None:
    # Control for the test above: a hard cut mid-sine breaks the same bound.
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    signal = sine(ms(300))
    buf.write(signal, "a")
    before = buf.read(ms(50))
    buf.clear(fade_ms=0)
    joined = np.concatenate([before, buf.read(ms(10))])
    assert _max_step(joined) > _max_step(signal) + 0.8 / (ms(5) + 1)


def test_clear_reports_latency_corrected_position_and_drops_late_audio() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    buf.write(ramp(ms(100)), "a")
    buf.read(ms(60))
    buf.output_latency_s = 0.025
    pos = buf.clear(fade_ms=4)
    assert pos is not None
    assert (pos.item_id, pos.content_index) == ("a", 0)
    assert pos.played_ms == pytest.approx(35)
    assert pos.final_ms == pytest.approx(64)
    # A delta already in flight for the cleared item is not played, but counted.
    assert buf.write(ramp(ms(20)), "a") == 0
    assert buf.stats().discarded_ms == pytest.approx(20)
    # A new item plays after the fade, with prebuffering as usual.
    buf.write(ramp(ms(20), start=50_000), "b")
    out = buf.read(ms(30))
    np.testing.assert_array_equal(out[ms(4) : ms(24)], ramp(ms(20), start=50_000))
    assert buf.current_item == ("b", 0)


def test_clear_with_nothing_played() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=100)
    assert buf.clear() is None
    buf.write(ramp(ms(20)), "a")  # still prebuffering: the device outputs silence
    assert buf.clear() == PlayedPosition("a", 0, 0.0, 0.0)
    # Nothing to fade: a "fade" here would jump from silence to full level.
    assert not buf.read(ms(10)).any()
    assert buf.played_ms("a") == 0
    assert buf.stats().cleared_ms == pytest.approx(20)


def test_clear_after_an_underrun_fades_nothing_and_counts_nothing_as_played() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=60, fade_ms=5)
    buf.write(np.full(ms(60), 0.8, np.float32), "a")
    buf.read(ms(60))
    buf.read(ms(20))  # runs dry: underrun, waiting for the prebuffer again
    buf.write(np.full(ms(20), 0.8, np.float32), "a")  # below the prebuffer: still silent
    assert not buf.read(ms(20)).any()
    pos = buf.clear()
    assert pos == PlayedPosition("a", 0, 60.0, 60.0)
    assert not buf.read(ms(20)).any()
    assert buf.played_ms("a") == pytest.approx(60)


def test_fade_of_less_than_fade_ms_queued_still_reaches_zero() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0, fade_ms=5)
    buf.write(np.full(ms(20) + 24, 0.8, np.float32), "a")  # 1 ms (24 frames) will be left
    buf.read(ms(20))
    pos = buf.clear()
    assert pos is not None and pos.final_ms == pytest.approx(21)
    out = buf.read(ms(20))
    # The ramp spans exactly the 24 frames left: gains 24/25 .. 1/25, then silence.
    np.testing.assert_allclose(out[:24], 0.8 * (24 - np.arange(24)) / 25, rtol=1e-6)
    assert not out[24:].any()
    assert _max_step(out) <= 0.8 / 25 + 1e-6
    assert buf.played_ms("a") == pytest.approx(21)


def test_clear_then_underrun_is_not_counted() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=0)
    buf.write(ramp(ms(50)), "a")
    buf.read(ms(10))
    buf.clear()
    buf.read(ms(100))
    assert buf.underruns == 0 and buf.underrun_ms == 0


# -- threads -------------------------------------------------------------------------------


def test_reader_and_writer_threads_keep_every_sample_in_order() -> None:
    buf = PlaybackBuffer(RATE, prebuffer_ms=5)
    total = ms(2000)
    data = ramp(total)
    done = threading.Event()
    out: list[npt.NDArray[np.float32]] = []

    def writer() -> None:
        rng = np.random.default_rng(7)
        pos = 0
        while pos < total:
            n = int(rng.integers(1, 700))
            buf.write(data[pos : pos + n], "t")
            pos += n
        buf.mark_finished("t")
        done.set()

    def reader() -> None:
        block = np.empty(240, dtype=np.float32)
        while not (done.is_set() and buf.buffered_ms == 0):
            buf.read_into(block, output_latency_s=0.0)
            out.append(block.copy())

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    played = np.concatenate(out)
    audio = played[played != 0]  # ramp values are never 0; silence is
    np.testing.assert_array_equal(audio, data)
    stats = buf.stats()
    assert buf.played_ms("t") == pytest.approx(2000)
    # Every silent frame after the start is accounted as underrun silence.
    first = int(np.argmax(played != 0))
    last = len(played) - int(np.argmax(played[::-1] != 0))
    gaps = int(np.count_nonzero(played[first:last] == 0))
    assert stats.underrun_ms * FRAMES_PER_MS >= gaps - 1e-6


# -- errors --------------------------------------------------------------------------------


def test_bad_input_raises_typed_errors() -> None:
    buf = PlaybackBuffer(RATE)
    with pytest.raises(AudioFormatError, match="mono"):
        buf.write(np.zeros((10, 2), dtype=np.float32), "a")
    with pytest.raises(AudioFormatError):
        buf.write(np.array(["x", "y"]), "a")
    with pytest.raises(PlaybackError, match="item_id"):
        buf.write(np.zeros(4, dtype=np.float32), "")
    with pytest.raises(PlaybackError, match="content_index"):
        buf.write(np.zeros(4, dtype=np.float32), "a", -1)
    with pytest.raises(PlaybackError, match="output_latency_s"):
        buf.output_latency_s = float("nan")
    with pytest.raises(PlaybackError, match="output_latency_s"):
        buf.output_latency_s = -0.1
    with pytest.raises(AudioFormatError, match="1-D"):
        buf.read_into(np.zeros((4, 1), dtype=np.float32))
    with pytest.raises(PlaybackError, match="fade_ms"):
        buf.clear(fade_ms=-1)
    for kwargs in ({"prebuffer_ms": -1.0}, {"fade_ms": float("inf")}, {"max_buffered_ms": -5.0}):
        with pytest.raises(PlaybackError):
            PlaybackBuffer(RATE, **kwargs)  # type: ignore[arg-type]
    # A limit below the prebuffer could never start playing.
    with pytest.raises(PlaybackError, match="max_buffered_ms"):
        PlaybackBuffer(RATE, prebuffer_ms=60, max_buffered_ms=50)
    assert PlaybackBuffer(RATE, prebuffer_ms=60, max_buffered_ms=60).write(ramp(ms(60)), "a")
    with pytest.raises(PlaybackError, match="sample_rate"):
        PlaybackBuffer(0)
    buf.write(np.zeros(4, dtype=np.float32), "done")
    buf.mark_finished("done")
    with pytest.raises(PlaybackError, match="finished"):
        buf.write(np.zeros(4, dtype=np.float32), "done")


# --- one rule for the values, whatever the device's rate (#14 item 22) ---------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_write_refuses_non_finite_samples_and_queues_nothing(bad: float) -> None:
    buf = PlaybackBuffer(24_000, prebuffer_ms=0)
    x = np.zeros(480, dtype=np.float32)
    x[7] = bad
    with pytest.raises(AudioFormatError, match="finite"):
        buf.write(x, "item_a")
    assert buf.stats().buffered_ms == 0.0 and buf.received_ms("item_a") == 0.0


def test_write_clips_finite_overshoot_and_leaves_the_callers_array_alone() -> None:
    buf = PlaybackBuffer(24_000, prebuffer_ms=0)
    x = np.array([0.5, 3.0, -1e30, -0.25, 1.0], dtype=np.float32)
    before = x.copy()
    assert buf.write(x, "item_a") == 5
    buf.mark_finished("item_a")
    np.testing.assert_array_equal(buf.read(5), [0.5, 1.0, -1.0, -0.25, 1.0])
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("device_rate", [24_000, 48_000, 44_100])
async def test_a_speaker_has_one_rule_at_every_device_rate(device_rate: int) -> None:
    # A 24 kHz device used to play NaN, inf and |x| > 1 as given, while any other rate
    # refused NaN and inf (in its resampler) and passed overshoot on.
    from realtime_client.audio import VirtualSpeaker

    async with VirtualSpeaker(speed=None, device_rate=device_rate, prebuffer_ms=0) as speaker:
        for bad in (np.nan, np.inf):
            with pytest.raises(AudioFormatError, match="playback samples must be finite"):
                speaker.write(np.full(480, bad, dtype=np.float32), "item_a")
        assert speaker.received_ms("item_a") == 0.0
        t = np.arange(2400) / 24_000
        loud = (5.0 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32)  # 5 x full scale
        speaker.write(loud, "item_a")
        speaker.mark_finished("item_a")
        played = np.concatenate([speaker.tick() for _ in range(8)])
        # Clipped (to a square wave, whose resampled edges ring past 1: clipped again).
        assert np.isfinite(played).all() and np.abs(played).max() <= 1.0
        assert np.mean(np.abs(played[: len(played) // 2]) > 0.9) > 0.5
