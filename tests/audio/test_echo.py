"""Echo cancellation: AEC3, the fallback gate, the echo path, the reference tap, duplex fakes."""

from __future__ import annotations

import asyncio
import logging
import sys

import numpy as np
import numpy.typing as npt
import pytest

from bench._speech import synthetic
from realtime_client.audio import (
    AecMissingError,
    CapturedBlock,
    EchoCancelled,
    EchoCanceller,
    EchoGate,
    EchoPath,
    ReferenceTap,
    VirtualDuplex,
    WebRtcEchoCanceller,
    estimate_delay_ms,
    make_echo_canceller,
)
from realtime_client.audio.errors import AudioFormatError
from realtime_client.audio.vad import EnergyVAD, SpeechStarted

RATE = 24_000
BLOCK = 480  # 20 ms

Float32Array = npt.NDArray[np.float32]


def speechlike(seconds: float, seed: int = 1, level: float = 0.3) -> Float32Array:
    """The benchmarks' synthetic voice (``bench._speech.synthetic``), a little higher and
    slower, with no silent tail, peaking at ``level``."""
    return synthetic(
        seconds,
        seed,
        RATE,
        peak=level,
        pitch_hz=140.0,
        glide_hz=40.0,
        glide_rate_hz=0.7,
        harmonics=11,
        syllable_hz=3.1,
        tail_ms=0,
    )


def energy_db(x: Float32Array) -> float:
    return 10 * float(np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def run(
    canceller: EchoCanceller, near: Float32Array, far: Float32Array, block: int = BLOCK
) -> Float32Array:
    out = [
        canceller.process(near[i : i + block], far[i : i + block])
        for i in range(0, len(near) - block + 1, block)
    ]
    return np.concatenate(out)


def echo_of(far: Float32Array, path: EchoPath) -> Float32Array:
    return np.concatenate([path.process(far[i : i + BLOCK]) for i in range(0, len(far), BLOCK)])


# -- the echo path and the delay estimate ----------------------------------------------------


def test_echo_path_has_the_delay_and_gain_asked_for() -> None:
    path = EchoPath(RATE, delay_ms=40, gain_db=-6, tail_ms=200)
    impulse = np.zeros(RATE, np.float32)
    impulse[0] = 1.0
    response = echo_of(impulse, path)
    assert np.max(np.abs(response[: int(0.040 * RATE)])) < 1e-6  # FFT round-off only
    assert int(np.argmax(np.abs(response))) == int(0.040 * RATE)  # the direct path
    assert 10 * np.log10(np.sum(response.astype(np.float64) ** 2)) == pytest.approx(-6, abs=0.1)
    # The tail decays: 150 ms after the direct path it is 45 dB down.
    late = response[int(0.19 * RATE) : int(0.2 * RATE)]
    assert np.max(np.abs(late)) < np.max(np.abs(response)) * 10 ** (-30 / 20)
    # Streamed in blocks it equals the one-shot convolution.
    far = speechlike(1.0)
    whole = np.convolve(far, path.impulse)[: len(far)]
    path.reset()
    assert np.allclose(echo_of(far, path), whole, atol=1e-5)


def test_delay_estimate_finds_the_echo_delay() -> None:
    far = speechlike(2.0)
    near = echo_of(far, EchoPath(RATE, delay_ms=73, gain_db=-10))
    assert estimate_delay_ms(near, far, RATE) == pytest.approx(73, abs=0.1)
    assert estimate_delay_ms(np.zeros(RATE, np.float32), far[:RATE], RATE) is None
    noise = np.random.default_rng(5).standard_normal(RATE).astype(np.float32) * 0.1
    assert estimate_delay_ms(noise, far[:RATE], RATE) is None  # unrelated: no clear peak


# -- AEC3 ---------------------------------------------------------------------------------


def test_aec3_cancels_echo_and_keeps_the_near_talker() -> None:
    far = speechlike(8.0, seed=1)
    echo = echo_of(far, EchoPath(RATE))
    aec = WebRtcEchoCanceller(RATE)
    # Far end alone for 6 s, then the user talks over it (double talk) for 2 s.
    user = np.zeros_like(far)
    user[6 * RATE :] = speechlike(2.0, seed=9, level=0.2)
    clean = run(aec, echo + user, far)
    after_2s = slice(2 * RATE, 6 * RATE)
    erle = energy_db(echo[after_2s]) - energy_db(clean[after_2s])
    assert erle >= 25.0, erle
    assert aec.erle_db is not None and aec.erle_db >= 20.0
    # During double talk the user's voice is still there (within a few dB), not cancelled.
    talk = slice(6 * RATE + RATE // 2, 8 * RATE - BLOCK)
    assert energy_db(clean[talk]) > energy_db(user[talk]) - 6.0
    assert aec.latency_ms == 0.0


def test_aec3_blocks_that_are_not_whole_frames_keep_their_length() -> None:
    far = speechlike(3.0)
    echo = echo_of(far, EchoPath(RATE))
    aec = WebRtcEchoCanceller(RATE)
    out = run(aec, echo, far, block=256)
    assert len(out) == len(echo) // 256 * 256
    assert aec.latency_ms == 10.0
    assert energy_db(out[2 * RATE :]) < energy_db(echo[2 * RATE : len(out)]) - 15.0


def test_bad_input_raises_typed_errors() -> None:
    aec = make_echo_canceller(RATE, "gate")
    with pytest.raises(AudioFormatError, match="mono"):
        aec.process(np.zeros((10, 2), np.float32), None)
    with pytest.raises(AudioFormatError, match="frames"):
        aec.process(np.zeros(10, np.float32), np.zeros(11, np.float32))
    with pytest.raises(AudioFormatError, match="finite"):
        aec.process(np.full(10, np.nan, np.float32), None)
    with pytest.raises(AudioFormatError, match="float or int16"):
        aec.process(np.zeros(10, np.int32), None)
    with pytest.raises(AudioFormatError, match="kind"):
        make_echo_canceller(RATE, "speex")  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="sample_rate"):
        EchoGate(0)
    with pytest.raises(AudioFormatError, match="8 to 48 kHz"):
        WebRtcEchoCanceller(96_000)
    # int16 is accepted and scaled.
    out = aec.process(np.full(BLOCK, 16384, np.int16), None)
    assert out.dtype == np.float32 and out[0] == pytest.approx(0.5)


def test_without_the_extra_a_clear_message_and_the_gate(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)
    with pytest.raises(AecMissingError, match=r"pip install 'realtime-client\[aec\]'"):
        WebRtcEchoCanceller(RATE)
    with caplog.at_level(logging.WARNING, logger="realtime_client.audio.echo"):
        canceller = make_echo_canceller(RATE)
    assert isinstance(canceller, EchoGate)
    assert "realtime-client[aec]" in caplog.text


# -- the fallback gate ---------------------------------------------------------------------


def test_gate_mutes_echo_and_passes_a_barge_in() -> None:
    far = speechlike(6.0)
    echo = echo_of(far, EchoPath(RATE, gain_db=-12))
    user = np.zeros_like(far)
    user[4 * RATE : 5 * RATE] = speechlike(1.0, seed=4, level=0.3)
    gate = EchoGate(RATE)
    out = run(gate, echo + user, far)
    echo_only = slice(RATE, 4 * RATE)
    assert energy_db(out[echo_only]) < energy_db(echo[echo_only]) - 30.0
    # The user, 12 dB over the echo, gets through in most of their voiced blocks...
    voiced = [i for i in range(4 * RATE, 5 * RATE, BLOCK) if energy_db(user[i : i + BLOCK]) > -40]
    passed = [
        i for i in voiced if energy_db(out[i : i + BLOCK]) > energy_db(user[i : i + BLOCK]) - 3
    ]
    assert len(passed) >= 0.7 * len(voiced)
    # ...so a VAD hears the barge-in, and nothing before it (it would without the gate).
    raw_events = EnergyVAD(RATE).process((echo + user)[: 4 * RATE])
    assert any(isinstance(e, SpeechStarted) for e in raw_events)
    events = EnergyVAD(RATE, prefix_padding_ms=0).process(out)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert starts and 4000 <= starts[0].audio_start_ms <= 4300
    assert gate.gated_blocks > 0
    # Nothing played: nothing gated.
    quiet = EchoGate(RATE)
    near = speechlike(1.0, seed=2)
    assert np.array_equal(run(quiet, near, np.zeros_like(near)), near[: len(near) // BLOCK * BLOCK])


# -- the reference tap and the duplex fakes ----------------------------------------------------


def test_reference_tap_returns_what_was_played_at_a_time() -> None:
    tap = ReferenceTap(48_000, history_ms=500, delay_ms=10)
    played = np.arange(48_000, dtype=np.float32) / 48_000  # a ramp: value = time in s
    for k in range(0, 48_000, 960):  # 20 ms blocks at 48 kHz, first DAC time 5.0 s
        tap.record(played[k : k + 960], 5.0 + k / 48_000)
    ref = tap.reference(5.8, 480, 24_000)  # 24 kHz, 10 ms earlier (the delay)
    assert ref[0] == pytest.approx(0.79, abs=1e-4)
    assert ref[-1] == pytest.approx(0.79 + 479 / 24_000, abs=1e-4)
    assert not tap.reference(5.1, 480, 24_000).any()  # beyond the 500 ms history
    assert not ReferenceTap(24_000).reference(1.0, 10, 24_000).any()  # nothing recorded


async def test_virtual_duplex_blocks_carry_what_was_played_and_its_echo() -> None:
    far = speechlike(1.0)
    path = EchoPath(RATE, delay_ms=40, gain_db=-6)
    device = VirtualDuplex(None, RATE, echo=path, aec=False, speed=0)
    assert device.canceller is None and device.microphone is device.capture
    async with device:
        device.speaker.write(far, "a")
        device.speaker.mark_finished("a")
        blocks: list[CapturedBlock] = []
        async for block in device.microphone:
            blocks.append(block)
            if len(blocks) == 60:
                break
    reference = np.concatenate([b.reference for b in blocks if b.reference is not None])
    heard = np.concatenate([b.samples for b in blocks])
    start = int(np.argmax(np.abs(reference) > 0))  # playback starts after the prebuffer
    assert np.allclose(reference[start : start + len(far)], far[: len(reference) - start])
    assert estimate_delay_ms(heard, reference, RATE) == pytest.approx(40, abs=0.1)


async def test_virtual_duplex_with_aec_removes_the_echo() -> None:
    far = speechlike(5.0)
    device = VirtualDuplex(None, RATE, echo=EchoPath(RATE), aec=True, speed=0)
    assert isinstance(device.microphone, EchoCancelled)
    async with device:
        device.speaker.write(far, "a")
        clean = []
        raw = []
        async for block in device.microphone:
            clean.append(block.samples)
            if len(clean) == 250:
                break
    assert device.erle_db is not None and device.erle_db >= 20.0
    del raw
    assert energy_db(np.concatenate(clean[150:])) < -50.0


async def test_echo_cancelled_uses_a_tap_when_blocks_carry_no_reference() -> None:
    far = speechlike(4.0)
    echo = echo_of(far, EchoPath(RATE, delay_ms=30))
    tap = ReferenceTap(RATE, history_ms=5000)
    for k in range(0, len(far), BLOCK):
        tap.record(far[k : k + BLOCK], k / RATE)

    async def mic():  # type: ignore[no-untyped-def]
        for k in range(0, len(echo) - BLOCK + 1, BLOCK):
            yield CapturedBlock(echo[k : k + BLOCK], RATE, k, k / RATE, k, 0)
            await asyncio.sleep(0)

    source = EchoCancelled(mic(), WebRtcEchoCanceller(RATE), tap=tap)
    out = np.concatenate([b.samples async for b in source])
    assert energy_db(out[2 * RATE :]) < energy_db(echo[2 * RATE : len(out)]) - 20.0
    with pytest.raises(AudioFormatError, match="sample_rate"):
        EchoCancelled(mic())
