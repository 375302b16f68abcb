"""Devices: the lazy import, the callback bridge, and the real path on a PulseAudio null sink.

The ``device`` tests play a known signal through :class:`Speaker` into the null sink and
record the sink's monitor through :class:`Microphone`. PortAudio's ALSA timestamps are off
by hundreds of ms for about 1.5 s after a stream starts (shared/perf-notes.md), so both
streams are warmed up before anything is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.abc
import importlib.machinery
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType, SimpleNamespace

import numpy as np
import numpy.typing as npt
import pytest

from realtime_client.audio.devices import (
    CapturedBlock,
    Microphone,
    Speaker,
    _InputBridge,
    find_device,
    list_devices,
)
from realtime_client.audio.errors import AudioFormatError, DeviceError, PortAudioMissingError
from realtime_client.audio.playback import PlaybackError

from .conftest import PulseServer

RATE = 24_000
BLOCK_MS = 20.0
WARMUP_S = 2.0
# The output and input streams' timestamps agree within a few ms (0.3-3 ms measured), and
# callbacks jitter by a few ms: the margin on top of "within one block".
_CLOCK_MS = 5.0

Float32Array = npt.NDArray[np.float32]


# -- without any device ------------------------------------------------------------------------


class _BrokenLibraryFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import sounddevice`` fail the way it does without libportaudio2."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "sounddevice":
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        raise OSError("PortAudio library not found")


def _assert_install_hint(exc: PortAudioMissingError) -> None:
    message = str(exc)
    assert "pip install 'realtime-client[audio]'" in message
    assert "apt-get install libportaudio2" in message


async def test_missing_sounddevice_package_raises_portaudio_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import raises ImportError
    with pytest.raises(PortAudioMissingError) as info:
        list_devices()
    _assert_install_hint(info.value)
    assert isinstance(info.value, ImportError)
    with pytest.raises(PortAudioMissingError):
        await Speaker().open()
    with pytest.raises(PortAudioMissingError):
        await Microphone().open()


def test_missing_portaudio_library_raises_portaudio_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_BrokenLibraryFinder(), *sys.meta_path])
    with pytest.raises(PortAudioMissingError, match="PortAudio library not found") as info:
        find_device("anything", "output")
    _assert_install_hint(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_package_imports_without_sounddevice() -> None:
    code = (
        "import sys; sys.modules['sounddevice'] = None\n"
        "import audio, audio.devices, audio.playback\n"
        "assert 'sounddevice' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_bad_arguments_raise_typed_errors() -> None:
    with pytest.raises(AudioFormatError, match="sample_rate"):
        Microphone(sample_rate=0)
    with pytest.raises(AudioFormatError, match="block_ms"):
        Speaker(block_ms=-1)
    with pytest.raises(AudioFormatError, match="channels"):
        Microphone(channels=0)
    with pytest.raises(DeviceError, match="not open"):
        Speaker().write(np.zeros(10, dtype=np.float32), "a")
    with pytest.raises(DeviceError, match="not open"):
        Speaker().clear()


async def test_bridge_drops_the_oldest_block_and_counts_it() -> None:
    bridge = _InputBridge(asyncio.get_running_loop(), maxsize=3)
    ok = SimpleNamespace(input_overflow=False, input_underflow=False)
    flagged = SimpleNamespace(input_overflow=True, input_underflow=False)
    block = np.zeros((480, 1), dtype=np.float32)

    def portaudio_thread() -> None:
        for i in range(5):
            block[:] = i  # the bridge must copy: PortAudio reuses its buffer
            status = flagged if i == 4 else ok
            bridge.callback(block, 480, SimpleNamespace(inputBufferAdcTime=0.01 * i), status)

    thread = threading.Thread(target=portaudio_thread)
    thread.start()
    thread.join()
    for _ in range(10):  # let the loop run the scheduled deliveries
        await asyncio.sleep(0)
    got = [bridge.queue.get_nowait() for _ in range(3)]
    assert [index for _, index, _ in got] == [2 * 480, 3 * 480, 4 * 480]
    assert [float(data[0, 0]) for data, _, _ in got] == [2.0, 3.0, 4.0]
    assert [adc for _, _, adc in got] == pytest.approx([0.02, 0.03, 0.04])
    assert (bridge.overflows, bridge.dropped_frames) == (2, 960)
    assert (bridge.blocks, bridge.frames, bridge.input_overflows) == (5, 2400, 1)


# -- with a fake sounddevice (no PortAudio) -------------------------------------------------


class _FakePortAudioError(Exception):
    pass


class _FakeStream:
    """Records how it was used; the test calls ``callback`` itself, as PortAudio would."""

    made: list[_FakeStream] = []

    def __init__(
        self, *, callback: Callable[..., None], blocksize: int, channels: int, **kwargs: object
    ) -> None:
        self.kwargs = kwargs
        self.callback = callback
        self.blocksize = blocksize
        self.channels = channels
        self.latency = 0.01
        self.time = 0.0
        self.started = self.closed = False
        _FakeStream.made.append(self)

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True


def _fake_sounddevice() -> ModuleType:
    """The part of sounddevice the device classes use: one device taking only 48 kHz."""
    sd = ModuleType("sounddevice")

    def check(device: int, channels: int, dtype: str, samplerate: int) -> None:
        if samplerate != 48_000:
            raise _FakePortAudioError(f"{samplerate} Hz not supported")

    device = {
        "index": 0,
        "name": "fake card",
        "hostapi": 0,
        "max_input_channels": 2,
        "max_output_channels": 2,
        "default_samplerate": 48_000.0,
    }
    sd.__dict__.update(
        PortAudioError=_FakePortAudioError,
        query_hostapis=lambda: [{"name": "Fake"}],
        query_devices=lambda: [device],
        default=SimpleNamespace(device=[0, 0]),
        check_input_settings=check,
        check_output_settings=check,
        InputStream=_FakeStream,
        OutputStream=_FakeStream,
    )
    return sd


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> type[_FakeStream]:
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice())
    monkeypatch.setattr(_FakeStream, "made", [])
    return _FakeStream


_QUIET = SimpleNamespace(
    input_overflow=False, input_underflow=False, output_underflow=False, output_overflow=False
)


async def test_microphone_recovers_after_dropped_blocks_when_resampling(
    fake_sd: type[_FakeStream],
) -> None:
    # The device runs at 48 kHz, the stream at 24 kHz: blocks go through the resampler.
    mic = Microphone(sample_rate=RATE, block_ms=BLOCK_MS, queue_blocks=2)
    await mic.open()
    assert mic.device_rate == 48_000
    stream = fake_sd.made[-1]
    n = stream.blocksize  # 960 device frames = 480 stream frames
    fed = 0

    async def feed(count: int) -> None:
        nonlocal fed
        for _ in range(count):
            data = np.full((n, 1), 0.25, dtype=np.float32)
            stream.callback(data, n, SimpleNamespace(inputBufferAdcTime=fed * 0.02), _QUIET)
            fed += 1
        for _ in range(3):
            await asyncio.sleep(0)

    async def next_block() -> CapturedBlock:
        return await asyncio.wait_for(mic.__anext__(), 2.0)

    await feed(1)
    first = await next_block()
    assert (len(first.samples), first.frame_index) == (480, 0)
    await feed(4)  # the consumer stalls: the queue holds 2, the 2 oldest are dropped
    assert mic.stats.overflows == 2
    tail = await next_block()  # what preceded the gap: the filter's tail, a short block
    assert tail.frame_index == 480 and 0 < len(tail.samples) < 480
    blocks = [await next_block() for _ in range(2)]
    for _ in range(3):  # the consumer keeps up again: no more drops
        await feed(1)
        blocks.append(await next_block())
    # After the gap: whole blocks of real audio, continuing the sample clock from the
    # first block kept (device frame 3 * 960 = stream frame 1440).
    assert [b.frame_index for b in blocks] == [1440 + 480 * i for i in range(5)]
    assert [len(b.samples) for b in blocks] == [480] * 5
    assert mic.stats.overflows == 2
    steady = np.concatenate([b.samples for b in blocks])[48:]  # past the start-up transient
    np.testing.assert_allclose(steady, 0.25, atol=1e-3)
    await mic.close()


async def test_microphone_closed_before_any_block_yields_nothing(
    fake_sd: type[_FakeStream],
) -> None:
    # No input reached the resampler: ending must not invent its delay's worth of zeros.
    mic = Microphone(sample_rate=RATE, block_ms=BLOCK_MS)
    await mic.open()
    await mic.close()
    got = [block async for block in mic]
    assert got == []


async def test_microphone_resampler_error_leaves_no_stream_running(
    fake_sd: type[_FakeStream],
) -> None:
    # 44,101 Hz -> 24 kHz has no small rational ratio: the resampler refuses it.
    mic = Microphone(sample_rate=RATE, device_rate=44_101)
    with pytest.raises(AudioFormatError, match="ratio"):
        await mic.open()
    assert all(not s.started or s.closed for s in fake_sd.made)
    assert mic.device is None
    with pytest.raises(DeviceError, match="not open"):
        await mic.__anext__()


@pytest.mark.parametrize("side", [Microphone, Speaker])
async def test_a_stream_that_opens_but_does_not_start_is_closed(
    fake_sd: type[_FakeStream], monkeypatch: pytest.MonkeyPatch, side: type[Microphone | Speaker]
) -> None:
    def refuse(self: _FakeStream) -> None:
        raise _FakePortAudioError("device busy")

    monkeypatch.setattr(_FakeStream, "start", refuse)
    with pytest.raises(DeviceError, match=r"cannot open (input|output) device 'fake card' at"):
        await side(sample_rate=RATE).open()
    assert len(fake_sd.made) == 1 and fake_sd.made[0].closed


async def test_closed_speaker_refuses_writes_clear_and_drain(fake_sd: type[_FakeStream]) -> None:
    spk = Speaker(sample_rate=RATE, prebuffer_ms=0)
    await spk.open()
    assert spk.write(np.zeros(480, dtype=np.float32), "a") > 0
    await spk.close()
    assert fake_sd.made[-1].closed
    with pytest.raises(DeviceError, match="not open"):
        spk.write(np.zeros(480, dtype=np.float32), "a")
    with pytest.raises(DeviceError, match="not open"):
        spk.clear()
    with pytest.raises(DeviceError, match="not open"):
        await spk.drain(timeout=1.0)
    assert spk.received_ms("a") > 0  # queries still answer after close
    with pytest.raises(DeviceError, match="not open"):
        await Speaker().drain(timeout=1.0)


async def test_drain_does_not_wait_for_audio_that_cannot_start(fake_sd: type[_FakeStream]) -> None:
    spk = Speaker(sample_rate=RATE, prebuffer_ms=60, block_ms=BLOCK_MS)
    await spk.open()
    stream = fake_sd.made[-1]
    n = stream.blocksize
    out = np.zeros((n, stream.channels), dtype=np.float32)
    clock = SimpleNamespace(outputBufferDacTime=0.0, currentTime=0.0)

    async def device() -> None:  # callbacks, faster than real time
        while True:
            stream.callback(out, n, clock, _QUIET)
            await asyncio.sleep(0.001)

    running = asyncio.create_task(device())
    try:
        spk.write(np.full(480, 0.5, dtype=np.float32), "a")  # 20 ms < 60 ms prebuffer
        await spk.drain(timeout=2.0)  # returned: the item waits for more audio
        assert spk.buffer.stalled and spk.buffer.buffered_ms > 0
        assert spk.played_ms("a") == 0
        spk.mark_finished("a")  # now it can play out, and drain waits for it
        await spk.drain(timeout=2.0)
        assert spk.buffer.buffered_ms == 0 and not spk.buffer.stalled
        assert spk.played_ms("a") == pytest.approx(spk.received_ms("a"))
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    await spk.close()


def test_speaker_rejects_a_limit_below_the_prebuffer() -> None:
    with pytest.raises(PlaybackError, match="max_buffered_ms"):
        Speaker(prebuffer_ms=60, max_buffered_ms=50)


# -- on the PulseAudio null sink ----------------------------------------------------------------


def _chirp(duration_s: float, f0: float = 200.0, f1: float = 4000.0) -> Float32Array:
    t = np.arange(int(duration_s * RATE)) / RATE
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * duration_s))
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.005)  # 5 ms ramps: no clicks
    return (0.5 * env * np.sin(phase)).astype(np.float32)


def _noise(duration_s: float, seed: int = 3) -> Float32Array:
    """Noise band-limited to 100-6000 Hz: PulseAudio's own resampler passes it intact."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(int(duration_s * RATE)))
    freqs = np.fft.rfftfreq(int(duration_s * RATE), 1 / RATE)
    spectrum[(freqs < 100) | (freqs > 6000)] = 0
    noise = np.fft.irfft(spectrum, int(duration_s * RATE))
    return (0.3 * noise / noise.std()).clip(-1, 1).astype(np.float32)


class _Recorder:
    """Collects a Microphone's blocks in a task."""

    def __init__(self, mic: Microphone) -> None:
        self.mic = mic
        self.blocks: list[CapturedBlock] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for block in self.mic:
            self.blocks.append(block)

    def since(self, start_time: float) -> tuple[Float32Array, float]:
        """Recorded samples from ``start_time`` on, and the capture time of the first."""
        kept = [b for b in self.blocks if b.capture_time >= start_time]
        for a, b in zip(kept, kept[1:], strict=False):
            assert b.frame_index == a.frame_index + len(a.samples), "gap in the recording"
        return np.concatenate([b.samples for b in kept]), kept[0].capture_time


def _locate(recording: Float32Array, signal: Float32Array) -> tuple[int, float]:
    """Offset of ``signal`` in ``recording`` and the normalised correlation there.

    PulseAudio's 24 -> 48 -> 24 kHz round trip can shift the signal by a fraction of a
    sample (half a sample costs 0.1 of correlation for noise up to 6 kHz), so the score is
    taken after aligning the reference to the interpolated correlation peak.
    """
    n = len(recording) + len(signal)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(signal, size)), size)
    valid = corr[: len(recording) - len(signal) + 1]
    lag = int(np.argmax(valid))
    frac = 0.0
    if 0 < lag < len(valid) - 1:
        left, mid, right = valid[lag - 1], valid[lag], valid[lag + 1]
        frac = float(0.5 * (left - right) / (left - 2 * mid + right))
    freqs = np.fft.rfftfreq(len(signal))
    shifted = np.fft.irfft(np.fft.rfft(signal) * np.exp(-2j * np.pi * freqs * frac), len(signal))
    segment = recording[lag : lag + len(signal)].astype(np.float64)
    score = float(segment @ shifted / (np.linalg.norm(segment) * np.linalg.norm(shifted) + 1e-12))
    return lag, score


@pytest.mark.device
def test_list_and_find_devices(pulse_server: PulseServer) -> None:
    devices = list_devices()
    names = [d.name for d in devices]
    assert "pulse" in names and "default" in names
    pulse = find_device("pulse", "output")
    assert pulse.max_output_channels > 0 and pulse.max_input_channels > 0
    assert pulse.hostapi == "ALSA" and pulse.default_sample_rate > 0
    assert find_device("PULS", "input") == pulse  # case-insensitive substring
    assert find_device(pulse.index, "input") == pulse
    assert find_device(None, "output").name in names
    with pytest.raises(DeviceError, match=r"no output device matching 'no-such-card'.*'pulse'"):
        find_device("no-such-card", "output")
    with pytest.raises(DeviceError, match="no input device with index 999"):
        find_device(999, "input")
    with pytest.raises(DeviceError, match="several"):
        find_device("e", "output")  # pulse, default


@pytest.mark.device
async def test_opening_a_missing_device_raises_device_error(pulse_server: PulseServer) -> None:
    with pytest.raises(DeviceError, match="no output device matching"):
        async with Speaker("no-such-card"):
            pass
    with pytest.raises(DeviceError, match="no input device matching"):
        async with Microphone("no-such-card"):
            pass
    with pytest.raises(DeviceError, match="channel"):
        async with Microphone("pulse", channels=64):
            pass


@pytest.mark.device
@pytest.mark.parametrize(
    ("speaker_rate", "mic_rate"), [(None, None), (48_000, 44_100)], ids=["24k", "resampled"]
)
async def test_played_position_matches_the_recording(
    pulse_server: PulseServer, speaker_rate: int | None, mic_rate: int | None
) -> None:
    chirp = _chirp(0.8)
    samples: list[tuple[float, float]] = []  # (stream time, played_ms) while playing
    async with (
        Microphone("pulse", RATE, BLOCK_MS, device_rate=mic_rate) as mic,
        Speaker("pulse", RATE, prebuffer_ms=40, block_ms=BLOCK_MS, device_rate=speaker_rate) as spk,
    ):
        assert spk.device_rate == (speaker_rate or RATE)
        assert mic.device_rate == (mic_rate or RATE)
        recorder = _Recorder(mic)
        await asyncio.sleep(WARMUP_S)
        start = spk.stream_time
        step = int(RATE * BLOCK_MS / 1000)
        for i in range(0, len(chirp), step):
            spk.write(chirp[i : i + step], "item_1")
        spk.mark_finished("item_1")
        while spk.buffer.buffered_ms > 0:
            samples.append((spk.stream_time, spk.played_ms("item_1")))
            await asyncio.sleep(0.013)
        await spk.drain(timeout=5)
        await asyncio.sleep(0.2)
        played = spk.played_ms("item_1")
        received = spk.received_ms("item_1")
        stats = spk.stats
        await mic.close()
        await recorder.task
    recording, t0 = recorder.since(start - 0.1)
    lag, score = _locate(recording, chirp)
    onset = t0 + lag / RATE
    assert score > 0.95, f"recorded signal does not match (correlation {score:.3f})"
    # Everything written was played, on the device clock.
    assert played == pytest.approx(received)
    # 800 ms, plus the resampler's flushed filter tail (a fraction of a ms) if resampling.
    assert 800 <= received <= 801
    assert stats.playback.underruns == 0
    # At each query, played_ms said where playback was: the recording agrees within a block.
    errors_ms = [(t - p / 1000 - onset) * 1000 for t, p in samples if 0 < p < 780]
    assert len(errors_ms) >= 20
    # The figure lags by up to one callback period, never leads (up to clock agreement).
    # On a loaded machine PortAudio's callback thread can run a period late, and the figure
    # is then a period staler: allowed for a few samples, never beyond two periods.
    summary = f"errors (ms): min {min(errors_ms):.2f}, max {max(errors_ms):.2f}: {errors_ms}"
    within = [e for e in errors_ms if -_CLOCK_MS <= e <= BLOCK_MS + _CLOCK_MS]
    assert len(within) >= 0.9 * len(errors_ms), summary
    assert all(-_CLOCK_MS <= e <= 2 * BLOCK_MS + _CLOCK_MS for e in errors_ms), summary


@pytest.mark.device
async def test_clear_reports_what_the_recording_heard(pulse_server: PulseServer) -> None:
    noise = _noise(1.5)
    async with (
        Microphone("pulse", RATE, BLOCK_MS) as mic,
        Speaker("pulse", RATE, prebuffer_ms=40, block_ms=BLOCK_MS, fade_ms=5) as spk,
    ):
        recorder = _Recorder(mic)
        await asyncio.sleep(WARMUP_S)
        start = spk.stream_time
        spk.write(noise, "item_2")
        for _ in range(1000):  # poll until 500 ms of the item were played
            if spk.played_ms("item_2") >= 500:
                break
            await asyncio.sleep(0.005)
        clear_time = spk.stream_time
        position = spk.clear()
        await spk.drain(timeout=5)
        await asyncio.sleep(0.2)
        final = spk.played_ms("item_2")
        await mic.close()
        await recorder.task
    assert position is not None and position.item_id == "item_2"
    assert position.played_ms <= position.final_ms
    assert final == pytest.approx(position.final_ms)
    recording, t0 = recorder.since(start - 0.1)
    head = noise[: RATE // 4]
    lag, score = _locate(recording, head)
    assert score > 0.95, f"recorded noise does not match (correlation {score:.3f})"
    # Where did the sound stop? Last 1 ms window with real energy.
    frames = RATE // 1000
    windows = recording[: len(recording) // frames * frames].reshape(-1, frames)
    loud = np.flatnonzero(np.sqrt((windows.astype(np.float64) ** 2).mean(axis=1)) > 0.01)
    heard_ms = (loud[-1] + 1) * frames / RATE * 1000 - lag / RATE * 1000
    at_clear_ms = (clear_time - (t0 + lag / RATE)) * 1000
    # What the recording heard is what the accounting says was played, within one block.
    assert abs(heard_ms - final) <= BLOCK_MS, (heard_ms, final)
    # The position reported at clear time was where playback was then (never ahead).
    assert -_CLOCK_MS <= at_clear_ms - position.played_ms <= BLOCK_MS + _CLOCK_MS, (
        at_clear_ms,
        position,
    )
    # The rest of the item was dropped: nothing like the remaining noise was recorded.
    assert len(recording) / RATE * 1000 - lag / RATE * 1000 > heard_ms + 100


@pytest.mark.device
async def test_microphone_blocks_follow_the_sample_clock(pulse_server: PulseServer) -> None:
    async with Microphone(sample_rate=RATE, block_ms=BLOCK_MS) as mic:  # the default device
        blocks: list[CapturedBlock] = []
        async for block in mic:
            blocks.append(block)
            if len(blocks) == int(2.5 * 1000 / BLOCK_MS):
                break
        stats = mic.stats
    step = int(RATE * BLOCK_MS / 1000)
    assert all(len(b.samples) == step and b.samples.dtype == np.float32 for b in blocks)
    assert [b.frame_index for b in blocks] == [i * step for i in range(len(blocks))]
    assert stats.overflows == 0 and stats.dropped_frames == 0
    # After the warm-up, capture times advance by one block period (PortAudio stream clock).
    late = [b.capture_time for b in blocks[int(WARMUP_S * 1000 / BLOCK_MS) :]]
    steps_ms = np.diff(late) * 1000
    assert np.all(np.abs(steps_ms - BLOCK_MS) < 1.0), steps_ms
