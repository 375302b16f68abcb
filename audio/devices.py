"""Real audio devices over sounddevice (PortAudio), bridged to asyncio.

sounddevice is imported lazily, inside the functions that need it, so
``realtime_client.audio`` imports without it; when it (or the PortAudio library) is
missing those functions raise
:class:`~realtime_client.audio.errors.PortAudioMissingError` saying what to install.

Threading: PortAudio calls our callbacks on its own thread. The input callback copies the
block and hands it to the event loop with ``loop.call_soon_threadsafe``; it never blocks,
logs or waits. The output callback only copies the next block out of a
:class:`~realtime_client.audio.playback.PlaybackBuffer` (no allocation when the device is
mono). Resampling between the device rate and the stream rate happens on the asyncio side.

Overflow policy (capture): blocks wait in a bounded queue (``queue_blocks``). When the
consumer falls behind and the queue is full, the *oldest* block is dropped to keep latency
bounded; every drop is counted in ``stats.overflows`` / ``stats.dropped_frames`` and shows
as a gap in the blocks' ``frame_index``. PortAudio's own status flags (``input_overflow``,
``output_underflow``, ...) are counted too.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from .errors import AudioFormatError, DeviceError, PortAudioMissingError
from .formats import as_float32
from .playback import PlaybackBuffer, PlaybackStats, PlayedPosition, _playable

if TYPE_CHECKING:
    from collections.abc import Callable

    from .echo import ReferenceTap
    from .resample import Resampler

__all__ = [
    "CapturedBlock",
    "DeviceInfo",
    "Microphone",
    "MicrophoneStats",
    "Speaker",
    "SpeakerStats",
    "find_device",
    "list_devices",
]

Float32Array = npt.NDArray[np.float32]
DeviceKind = Literal["input", "output"]

_INSTALL_HINT = (
    "install the audio extra with `pip install 'realtime-client[audio]'` and the PortAudio "
    "library with `apt-get install libportaudio2` (Debian/Ubuntu; `brew install portaudio` "
    "on macOS)"
)


def _sounddevice() -> Any:
    """Import sounddevice, turning a missing package or library into PortAudioMissingError."""
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        # ImportError: the package is missing; OSError: it is there but libportaudio is not.
        raise PortAudioMissingError(
            f"audio devices need sounddevice and PortAudio ({exc}): {_INSTALL_HINT}"
        ) from exc
    return sounddevice


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One audio device as PortAudio reports it.

    Attributes:
        index: PortAudio's device index.
        name: Device name.
        hostapi: Name of the host API (``"ALSA"``, ``"Core Audio"``, ...).
        max_input_channels: Most input channels the device offers (0: output only).
        max_output_channels: Most output channels the device offers (0: input only).
        default_sample_rate: The device's default rate, in Hz.
    """

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float

    def channels(self, kind: DeviceKind) -> int:
        """Most channels of the given direction."""
        return self.max_input_channels if kind == "input" else self.max_output_channels


def list_devices() -> list[DeviceInfo]:
    """All devices PortAudio knows, input and output.

    Raises:
        PortAudioMissingError: sounddevice or PortAudio is not installed.
    """
    sd = _sounddevice()
    hostapis = [str(h["name"]) for h in sd.query_hostapis()]
    return [
        DeviceInfo(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=hostapis[int(d["hostapi"])],
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_sample_rate=float(d["default_samplerate"]),
        )
        for d in sd.query_devices()
    ]


def find_device(device: int | str | None = None, kind: DeviceKind = "output") -> DeviceInfo:
    """Select a device by index, by name, or the system default.

    A name matches exactly first, else as a case-insensitive substring of exactly one
    device of that kind.

    Args:
        device: PortAudio index, (part of a) name, or ``None`` for the default device.
        kind: ``"input"`` or ``"output"``: the device must offer channels of that kind.

    Raises:
        DeviceError: No such device, an ambiguous name, or no default device; the message
            lists the devices that exist.
        PortAudioMissingError: sounddevice or PortAudio is not installed.
    """
    if kind not in ("input", "output"):
        raise DeviceError(f"kind must be 'input' or 'output', got {kind!r}")
    sd = _sounddevice()
    devices = list_devices()
    usable = [d for d in devices if d.channels(kind) > 0]
    if device is None:
        default = sd.default.device[0 if kind == "input" else 1]
        if default is None or int(default) < 0:
            raise DeviceError(f"no default {kind} device; {_describe(usable, kind)}")
        device = int(default)
    if isinstance(device, bool) or not isinstance(device, (int, str)):
        raise DeviceError(f"device must be an int index, a name or None, got {device!r}")
    if isinstance(device, int):
        match = [d for d in usable if d.index == device]
        if not match:
            raise DeviceError(f"no {kind} device with index {device}; {_describe(usable, kind)}")
        return match[0]
    exact = [d for d in usable if d.name == device]
    if exact:
        return exact[0]
    needle = device.lower()
    found = [d for d in usable if needle in d.name.lower()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise DeviceError(f"no {kind} device matching {device!r}; {_describe(usable, kind)}")
    raise DeviceError(f"{device!r} matches several {kind} devices; {_describe(found, kind)}")


def _describe(devices: list[DeviceInfo], kind: DeviceKind) -> str:
    if not devices:
        return f"there are no {kind} devices"
    names = ", ".join(f"[{d.index}] {d.name!r} ({d.hostapi})" for d in devices)
    return f"{kind} devices: {names}"


def _choose_rate(sd: Any, info: DeviceInfo, kind: DeviceKind, wanted: int, channels: int) -> int:
    """The rate to open the device at: ``wanted`` if it takes it, else its default."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    errors = []
    for rate in dict.fromkeys([wanted, int(round(info.default_sample_rate))]):
        try:
            check(device=info.index, channels=channels, dtype="float32", samplerate=rate)
        except (sd.PortAudioError, ValueError) as exc:
            errors.append(f"{rate} Hz: {exc}")
            continue
        return rate
    raise DeviceError(
        f"{kind} device [{info.index}] {info.name!r} refused {channels} channel(s) at "
        + "; ".join(errors)
    )


def _check_args(sample_rate: int, block_ms: float, channels: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AudioFormatError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
    if not isinstance(block_ms, (int, float)) or not math.isfinite(block_ms) or block_ms <= 0:
        raise AudioFormatError(f"block_ms must be a positive number of ms, got {block_ms!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise AudioFormatError(f"channels must be a positive int, got {channels!r}")


def _make_resampler(in_rate: int, out_rate: int, channels: int) -> Resampler | None:
    if in_rate == out_rate:
        return None
    from .resample import Resampler

    return Resampler(in_rate, out_rate, channels)


async def _start_stream(
    sd: Any,
    kind: Literal["InputStream", "OutputStream", "Stream"],
    what: str,
    before_start: Callable[[Any], None] | None = None,
    **settings: Any,
) -> Any:
    """Open and start a float32 PortAudio stream in a worker thread.

    ``before_start`` sees the open stream before its callbacks can run.

    Raises:
        DeviceError: PortAudio refused it (the message names ``what`` and the rate); a
            stream that opened but did not start is closed first.
    """

    def start() -> Any:
        stream = getattr(sd, kind)(dtype="float32", **settings)
        try:
            if before_start is not None:
                before_start(stream)
            stream.start()
        except BaseException:
            stream.close()
            raise
        return stream

    try:
        return await asyncio.to_thread(start)
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot open {what} at {settings['samplerate']} Hz: {exc}") from exc


_S = TypeVar("_S", bound="_Stream")


class _Stream:
    """An audio stream used as ``async with``: :meth:`open` on entry, :meth:`close` on exit."""

    # Set by the subclasses' open(): the device, its rate and the PortAudio stream.
    _info: DeviceInfo | None = None
    _device_rate: int = 0
    _stream: Any = None

    @property
    def device(self) -> DeviceInfo | None:
        """The device opened (``None`` before :meth:`open`)."""
        return self._info

    @property
    def device_rate(self) -> int:
        """Rate the device runs at, in Hz (0 before :meth:`open`)."""
        return self._device_rate

    @property
    def stream_time(self) -> float:
        """PortAudio's stream clock now, in seconds (the clock of the block timestamps)."""
        if self._stream is None:
            raise DeviceError(f"{type(self).__name__.lstrip('_')} is not open")
        return float(self._stream.time)

    async def open(self) -> None:
        """Open and start the stream."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop and close the stream."""
        raise NotImplementedError

    async def __aenter__(self: _S) -> _S:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# -- capture -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapturedBlock:
    """One block of captured audio with its place on the sample clock.

    Attributes:
        samples: float32 at ``sample_rate``: ``(frames,)`` for mono, else
            ``(frames, channels)``.
        sample_rate: Rate of ``samples``, in Hz.
        frame_index: Index of the first frame on the capture sample clock (frames at
            ``sample_rate`` since the stream started, counting dropped blocks, so a gap
            shows as a jump).
        capture_time: PortAudio stream time (seconds, the clock of ``inputBufferAdcTime``
            and of ``Speaker.stream_time``) at which the first frame was captured.
        device_frame_index: Index of the first frame on the device's own clock (frames at
            ``device_rate``).
        dropped_frames: Device frames dropped so far by the overflow policy.
        reference: What the device played while this block was captured (mono, same
            rate and length as ``samples``): the far-end reference of a full-duplex
            device (:class:`DuplexDevice`) for echo cancellation; ``None`` elsewhere.
    """

    samples: Float32Array
    sample_rate: int
    frame_index: int
    capture_time: float
    device_frame_index: int
    dropped_frames: int
    reference: Float32Array | None = None

    @property
    def duration_ms(self) -> float:
        """Length of the block, in ms."""
        return len(self.samples) * 1000.0 / self.sample_rate


@dataclass(frozen=True, slots=True)
class MicrophoneStats:
    """Counters of a :class:`Microphone` (a snapshot).

    Attributes:
        blocks: Device blocks captured by the callback.
        frames: Device frames captured by the callback.
        overflows: Blocks dropped because the queue was full (oldest first).
        dropped_frames: Device frames in those blocks.
        input_overflows: Callbacks PortAudio flagged ``input_overflow`` (data lost upstream).
        input_underflows: Callbacks PortAudio flagged ``input_underflow``.
        device_rate: Rate the device was opened at, in Hz.
    """

    blocks: int
    frames: int
    overflows: int
    dropped_frames: int
    input_overflows: int
    input_underflows: int
    device_rate: int


class _InputBridge:
    """PortAudio input callback → bounded asyncio queue (drop oldest, count it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[tuple[Float32Array, int, float] | None] = asyncio.Queue(maxsize)
        self.blocks = 0
        self.frames = 0
        self.overflows = 0
        self.dropped_frames = 0
        self.input_overflows = 0
        self.input_underflows = 0
        self.lost_callbacks = 0

    def callback(self, indata: Float32Array, frames: int, time: Any, status: Any) -> None:
        """Runs on PortAudio's thread: copy, hand over, return."""
        self.push(indata.copy(), frames, float(time.inputBufferAdcTime), status)

    def push(self, data: Float32Array, frames: int, adc_time: float, status: Any) -> None:
        """Hand over a block the caller owns (PortAudio's thread; no copy made)."""
        if status.input_overflow:
            self.input_overflows += 1
        if status.input_underflow:
            self.input_underflows += 1
        index = self.frames
        self.frames += frames
        self.blocks += 1
        try:
            self._loop.call_soon_threadsafe(self._deliver, data, index, adc_time)
        except RuntimeError:  # the loop is closed: nobody to deliver to
            self.lost_callbacks += 1

    def _deliver(self, data: Float32Array, index: int, adc_time: float) -> None:
        if self.queue.full():
            dropped = self.queue.get_nowait()
            if dropped is not None:
                self.overflows += 1
                self.dropped_frames += len(dropped[0])
        self.queue.put_nowait((data, index, adc_time))

    def close(self) -> None:
        """Wake the consumer with an end marker (on the loop thread)."""
        if self.queue.full():
            dropped = self.queue.get_nowait()
            if dropped is not None:
                self.overflows += 1
                self.dropped_frames += len(dropped[0])
        self.queue.put_nowait(None)


class Microphone(_Stream):
    """Capture from an input device as an async iterator of :class:`CapturedBlock`.

    Opens the device at ``sample_rate`` if it supports it, else at its default rate, and
    resamples to ``sample_rate``. Blocks are ``block_ms`` long (the last block before a
    gap may be shorter).

    Args:
        device: Input device index, (part of a) name, or ``None`` for the default.
        sample_rate: Rate of the blocks delivered, in Hz (the Realtime API uses 24000).
        block_ms: Block length, in ms (also the device callback period).
        channels: Channels to capture.
        device_rate: Force the device rate, in Hz; ``None`` picks as described above.
        queue_blocks: Blocks the queue holds before dropping the oldest.
        latency: PortAudio latency hint: ``"low"``, ``"high"`` or seconds.

    Example::

        async with Microphone() as mic:
            async for block in mic:
                send(block.samples)
    """

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int = 24_000,
        block_ms: float = 20.0,
        channels: int = 1,
        *,
        device_rate: int | None = None,
        queue_blocks: int = 50,
        latency: Literal["low", "high"] | float = "low",
    ) -> None:
        _check_args(sample_rate, block_ms, channels)
        if queue_blocks < 1:
            raise AudioFormatError(f"queue_blocks must be >= 1, got {queue_blocks!r}")
        self._device_arg = device
        self._rate = sample_rate
        self._block_ms = float(block_ms)
        self._channels = channels
        self._device_rate_arg = device_rate
        self._queue_blocks = queue_blocks
        self._latency = latency
        self._stream: Any = None
        self._bridge: _InputBridge | None = None
        self._info: DeviceInfo | None = None
        self._device_rate = 0
        self._resampler: Resampler | None = None
        self._pending: list[Float32Array] = []
        self._pending_frames = 0
        self._out_index = 0  # output frame index of the first pending frame
        self._seg_out0 = 0  # output index / device index where the current segment began
        self._seg_dev0 = 0
        self._next_dev = 0  # device index expected next (gap detection)
        self._anchor = (0, 0.0)  # (device index, adc time) of the latest device block
        self._ended = False
        self._held: tuple[Float32Array, int, float] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Open and start the input stream (PortAudio calls run in a worker thread).

        Raises:
            DeviceError: No such device or it refused the settings.
            PortAudioMissingError: sounddevice or PortAudio is not installed.
        """
        if self._stream is not None:
            return
        sd = _sounddevice()
        info = find_device(self._device_arg, "input")
        if self._channels > info.max_input_channels:
            raise DeviceError(
                f"input device {info.name!r} has {info.max_input_channels} channel(s), "
                f"{self._channels} requested"
            )
        rate = self._device_rate_arg or _choose_rate(sd, info, "input", self._rate, self._channels)
        blocksize = max(1, int(round(rate * self._block_ms / 1000.0)))
        # Before the stream starts: an error here must not leave a running stream behind.
        resampler = _make_resampler(rate, self._rate, self._channels)
        bridge = _InputBridge(asyncio.get_running_loop(), self._queue_blocks)

        stream = await _start_stream(
            sd,
            "InputStream",
            f"input device {info.name!r}",
            samplerate=rate,
            blocksize=blocksize,
            device=info.index,
            channels=self._channels,
            latency=self._latency,
            callback=bridge.callback,
        )
        self._started(info, rate, bridge, stream, resampler)

    def _started(
        self,
        info: DeviceInfo,
        rate: int,
        bridge: _InputBridge,
        stream: Any,
        resampler: Resampler | None,
    ) -> None:
        """Take a started stream: fresh clocks and buffers."""
        self._info, self._device_rate, self._bridge, self._stream = info, rate, bridge, stream
        self._resampler = resampler
        self._pending, self._pending_frames, self._held = [], 0, None
        self._out_index = self._seg_out0 = self._seg_dev0 = self._next_dev = 0
        self._ended = False

    async def close(self) -> None:
        """Stop and close the stream; iteration ends after the blocks already queued."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        await asyncio.to_thread(stream.close)
        if self._bridge is not None:
            self._bridge.close()

    # -- iteration ----------------------------------------------------------------------

    def __aiter__(self) -> Microphone:
        return self

    async def __anext__(self) -> CapturedBlock:
        bridge = self._bridge
        if bridge is None:
            raise DeviceError("Microphone is not open: use `async with Microphone() as mic`")
        out_block = max(1, int(round(self._rate * self._block_ms / 1000.0)))
        while self._pending_frames < out_block:
            item: tuple[Float32Array, int, float] | None
            # The block held back after a gap was already recognised as one (the
            # resampler was flushed then): it starts the new segment, not another gap.
            from_held = self._held is not None
            if self._held is not None:
                item, self._held = self._held, None
            elif self._ended:
                raise StopAsyncIteration
            else:
                item = await bridge.queue.get()
            if item is None:
                self._ended = True
                self._flush_resampler()
                if self._pending_frames:
                    return self._emit(self._pending_frames)
                raise StopAsyncIteration
            if item[1] != self._next_dev and not from_held:
                # Blocks were dropped: what precedes the gap goes out as a shorter block
                # and the block after the gap starts a new segment on the next call.
                self._flush_resampler()
                if self._pending_frames:
                    self._held = item
                    return self._emit(self._pending_frames)
            self._accept(*item)
        return self._emit(out_block)

    def _flush_resampler(self) -> None:
        # Without input since its reset, a flush would only add the filter delay's worth
        # of zeros (at start-up, at a close before any block, after a gap's flush).
        if self._resampler is not None and self._resampler.has_input:
            tail = self._resampler.flush()
            self._resampler.reset()
            if len(tail):
                self._pending.append(np.asarray(tail, dtype=np.float32))
                self._pending_frames += len(tail)

    def _accept(self, data: Float32Array, dev_index: int, adc_time: float) -> None:
        samples = data[:, 0] if self._channels == 1 else data
        if dev_index != self._next_dev:
            # New segment after a gap (the resampler was flushed): re-anchor both clocks.
            self._seg_dev0 = dev_index
            self._seg_out0 = int(round(dev_index * self._rate / self._device_rate))
            self._out_index = self._seg_out0
        self._next_dev = dev_index + len(data)
        self._anchor = (dev_index, adc_time)
        out = samples if self._resampler is None else self._resampler.process(samples)
        if len(out):
            self._pending.append(np.asarray(out, dtype=np.float32))
            self._pending_frames += len(out)

    def _emit(self, frames: int) -> CapturedBlock:
        joined = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        block, rest = joined[:frames], joined[frames:]
        self._pending = [rest] if len(rest) else []
        self._pending_frames = len(rest)
        index = self._out_index
        self._out_index += frames
        dev_pos = self._seg_dev0 + (index - self._seg_out0) * self._device_rate / self._rate
        anchor_dev, anchor_time = self._anchor
        capture_time = anchor_time + (dev_pos - anchor_dev) / self._device_rate
        if self._resampler is not None:
            # Output frame k sits at instant k / sample_rate, but its content is delayed by
            # the filter (minimum phase: a fraction of a ms).
            capture_time -= self._resampler.delay_ms / 1000.0
        dropped = self._bridge.dropped_frames if self._bridge else 0
        return CapturedBlock(
            samples=block,
            sample_rate=self._rate,
            frame_index=index,
            capture_time=capture_time,
            device_frame_index=int(round(dev_pos)),
            dropped_frames=dropped,
        )

    # -- properties ---------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Rate of the delivered blocks, in Hz."""
        return self._rate

    @property
    def stats(self) -> MicrophoneStats:
        """Capture counters (see :class:`MicrophoneStats`)."""
        b = self._bridge
        return MicrophoneStats(
            blocks=b.blocks if b else 0,
            frames=b.frames if b else 0,
            overflows=b.overflows if b else 0,
            dropped_frames=b.dropped_frames if b else 0,
            input_overflows=b.input_overflows if b else 0,
            input_underflows=b.input_underflows if b else 0,
            device_rate=self._device_rate,
        )


# -- playback ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeakerStats:
    """Counters of a :class:`Speaker` (a snapshot).

    Attributes:
        playback: The playback buffer's counters (underruns, overflows, ...).
        callbacks: Output callbacks run.
        output_underflows: Callbacks PortAudio flagged ``output_underflow`` (the device
            ran dry before our callback filled it).
        output_latency_s: Latest output latency used for the played position, in s.
        device_rate: Rate the device was opened at, in Hz.
    """

    playback: PlaybackStats
    callbacks: int
    output_underflows: int
    output_latency_s: float
    device_rate: int


class Speaker(_Stream):
    """Play item-tagged audio on an output device, knowing how much of each item was heard.

    Audio is written at ``sample_rate`` (24 kHz for the Realtime API), resampled to the
    device rate on the caller's thread, and queued in a :class:`PlaybackBuffer` at the
    device rate, so played positions are counted on the device's own sample clock.

    Args:
        device: Output device index, (part of a) name, or ``None`` for the default.
        sample_rate: Rate of the audio written, in Hz.
        prebuffer_ms: Audio queued before starting or resuming, in ms.
        block_ms: Device callback period, in ms.
        channels: Device channels (the mono signal is copied to each).
        device_rate: Force the device rate, in Hz; ``None``: ``sample_rate`` if the device
            takes it, else its default rate.
        fade_ms: Fade-out length on :meth:`clear`, in ms.
        max_buffered_ms: Queue limit, in ms (see the overflow policy in
            :mod:`~realtime_client.audio.playback`), at least ``prebuffer_ms``; ``None``
            for no limit.
        latency: PortAudio latency hint: ``"low"``, ``"high"`` or seconds.

    Raises:
        AudioFormatError: A bad rate, block length or channel count.
        PlaybackError: A bad duration, or ``max_buffered_ms`` below ``prebuffer_ms``.
    """

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int = 24_000,
        *,
        prebuffer_ms: float = 60.0,
        block_ms: float = 20.0,
        channels: int = 1,
        device_rate: int | None = None,
        fade_ms: float = 5.0,
        max_buffered_ms: float | None = None,
        latency: Literal["low", "high"] | float = "low",
    ) -> None:
        _check_args(sample_rate, block_ms, channels)
        # The real buffer is made at open() (at the device rate); build one now so that
        # bad durations fail here, where they were passed, rather than at open().
        PlaybackBuffer(
            sample_rate,
            prebuffer_ms=prebuffer_ms,
            fade_ms=fade_ms,
            max_buffered_ms=max_buffered_ms,
        )
        self._device_arg = device
        self._rate = sample_rate
        self._block_ms = float(block_ms)
        self._channels = channels
        self._device_rate_arg = device_rate
        self._prebuffer_ms = prebuffer_ms
        self._fade_ms = fade_ms
        self._max_buffered_ms = max_buffered_ms
        self._latency = latency
        self._stream: Any = None
        self._info: DeviceInfo | None = None
        self._device_rate = 0
        self._buffer: PlaybackBuffer | None = None
        self._resampler: Resampler | None = None
        self._last_key: tuple[str, int] | None = None
        self._scratch = np.zeros(0, dtype=np.float32)
        self._fallback_latency_s = 0.0
        self._resampler_delay_s = 0.0
        self._callbacks = 0
        self._output_underflows = 0
        self._tap: ReferenceTap | None = None

    def reference_tap(self, history_ms: float = 2000.0, delay_ms: float = 0.0) -> ReferenceTap:
        """Record what the device plays, by DAC time: the echo reference for a separate
        microphone (``EchoCancelled(mic, tap=speaker.reference_tap())``).

        Call it after :meth:`open` (the tap runs at the device rate). The output callback
        then copies each block into the tap's ring as well.

        Args:
            history_ms: Played audio kept, in ms.
            delay_ms: See :class:`~.echo.ReferenceTap`, in ms.

        Raises:
            DeviceError: The speaker is not open.
        """
        from .echo import ReferenceTap

        buffer = self._require_open()
        tap = ReferenceTap(buffer.sample_rate, history_ms=history_ms, delay_ms=delay_ms)
        self._tap = tap
        return tap

    async def open(self) -> None:
        """Open and start the output stream (PortAudio calls run in a worker thread).

        Raises:
            DeviceError: No such device or it refused the settings.
            PortAudioMissingError: sounddevice or PortAudio is not installed.
        """
        if self._stream is not None:
            return
        sd = _sounddevice()
        info = find_device(self._device_arg, "output")
        if self._channels > info.max_output_channels:
            raise DeviceError(
                f"output device {info.name!r} has {info.max_output_channels} channel(s), "
                f"{self._channels} requested"
            )
        rate = self._device_rate_arg or _choose_rate(sd, info, "output", self._rate, self._channels)
        blocksize = self._prepare(rate)

        self._stream = await _start_stream(
            sd,
            "OutputStream",
            f"output device {info.name!r}",
            samplerate=rate,
            blocksize=blocksize,
            device=info.index,
            channels=self._channels,
            latency=self._latency,
            callback=self._callback,
            before_start=self._take_latency,
        )
        self._info = info

    def _take_latency(self, stream: Any) -> None:
        # What the callback assumes when PortAudio gives no timing (a duplex stream's
        # latency is (input, output)).
        latency = stream.latency
        self._fallback_latency_s = float(latency[1] if isinstance(latency, tuple) else latency)

    def _prepare(self, rate: int) -> int:
        """Make the playback buffer and resampler for a device at ``rate`` Hz.

        Returns:
            The device block (callback) size, in frames.
        """
        blocksize = max(1, int(round(rate * self._block_ms / 1000.0)))
        self._buffer = PlaybackBuffer(
            rate,
            prebuffer_ms=self._prebuffer_ms,
            fade_ms=self._fade_ms,
            max_buffered_ms=self._max_buffered_ms,
        )
        self._device_rate = rate
        self._scratch = np.zeros(blocksize, dtype=np.float32)
        self._resampler = _make_resampler(self._rate, rate, 1)
        # The filter delays content by a fraction of a ms: count it as output latency.
        self._resampler_delay_s = self._resampler.delay_ms / 1000.0 if self._resampler else 0.0
        return blocksize

    async def close(self) -> None:
        """Stop the stream at once (queued audio is not played) and close it."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await asyncio.to_thread(stream.close)

    def _callback(self, outdata: Float32Array, frames: int, time: Any, status: Any) -> None:
        """Runs on PortAudio's thread: copy the next block out of the buffer."""
        buffer = self._buffer
        if buffer is None:
            outdata.fill(0.0)
            return
        self._callbacks += 1
        if status.output_underflow:
            self._output_underflows += 1
        # Latency of the last frame handed out: the first frame of this block plays at
        # outputBufferDacTime; `frames` more follow it.
        ahead = float(time.outputBufferDacTime) - float(time.currentTime)
        if not 0.0 <= ahead < 2.0 or time.outputBufferDacTime == 0:
            ahead = self._fallback_latency_s
        latency = ahead + frames / self._device_rate + self._resampler_delay_s
        if self._channels == 1:
            buffer.read_into(outdata[:, 0], latency)
        else:
            scratch = (
                self._scratch if len(self._scratch) == frames else np.empty(frames, np.float32)
            )
            buffer.read_into(scratch, latency)
            outdata[:] = scratch[:, None]
        if self._tap is not None:
            dac = float(time.outputBufferDacTime) or float(time.currentTime) + ahead
            self._tap.record(outdata[:, 0], dac - self._resampler_delay_s)

    # -- producer API (asyncio thread) -----------------------------------------------------

    def _require(self) -> PlaybackBuffer:
        if self._buffer is None:
            raise DeviceError("Speaker is not open: use `async with Speaker() as speaker`")
        return self._buffer

    def _require_open(self) -> PlaybackBuffer:
        # Queries (played_ms, stats, ...) still work after close(); anything that expects
        # the device to play (write, clear, drain) must not pretend to.
        buffer = self._require()
        if self._stream is None:
            raise DeviceError(
                "Speaker is not open (closed, or its open failed): nothing would play"
            )
        return buffer

    def write(self, pcm: npt.ArrayLike, item_id: str, content_index: int = 0) -> int:
        """Queue audio of an item for playback.

        One rule whether or not the device runs at ``sample_rate``: NaN or inf samples are
        refused, finite ones beyond ±1 are clipped (before resampling, and the resampled
        audio again).

        Args:
            pcm: Mono float32 or int16 samples at ``sample_rate``.
            item_id: The conversation item the audio belongs to.
            content_index: The content part within that item.

        Returns:
            Frames queued, at the device rate (see :meth:`PlaybackBuffer.write`).

        Raises:
            AudioFormatError: Not mono, neither float nor int16, or NaN / inf samples.
            DeviceError: The speaker is not open (never opened, or closed).
        """
        buffer = self._require_open()
        key = (item_id, content_index)
        written = 0
        if self._resampler is not None:
            samples = as_float32(pcm)
            if samples.ndim == 2 and samples.shape[1] == 1:
                samples = samples[:, 0]
            if samples.ndim != 1:
                raise AudioFormatError(f"Speaker input is mono, got shape {samples.shape}")
            samples = _playable(samples)  # the buffer's rule, before the resampler
            if self._last_key is not None and key != self._last_key:
                written += self._flush_resampler(buffer)
            self._last_key = key
            return written + buffer.write(self._resampler.process(samples), item_id, content_index)
        self._last_key = key
        return buffer.write(pcm, item_id, content_index)

    def _flush_resampler(self, buffer: PlaybackBuffer) -> int:
        """Push the resampler's held-back tail into the buffer, tagged with its item."""
        if self._resampler is None or self._last_key is None:
            return 0
        item_id, index = self._last_key
        self._last_key = None
        if not self._resampler.has_input:  # only the silence before the stream: skip it
            return 0
        tail = self._resampler.flush()
        self._resampler.reset()
        return buffer.write(tail, item_id, index) if len(tail) else 0

    def mark_finished(self, item_id: str, content_index: int | None = None) -> None:
        """No more audio for this item: play out its tail even below the prebuffer.

        Args:
            item_id: The item.
            content_index: One content part, or ``None`` for all of them.
        """
        buffer = self._require()
        if (
            self._last_key is not None
            and self._last_key[0] == item_id
            and (content_index is None or self._last_key[1] == content_index)
        ):
            self._flush_resampler(buffer)
        buffer.mark_finished(item_id, content_index)

    def clear(self, fade_ms: float | None = None) -> PlayedPosition | None:
        """Barge-in: fade out, drop the queue, return the played position.

        Args:
            fade_ms: Fade length in ms; ``None`` uses the speaker's default.

        Returns:
            See :meth:`PlaybackBuffer.clear`; ``played_ms`` feeds
            ``conversation.item.truncate``'s ``audio_end_ms``.

        Raises:
            DeviceError: The speaker is not open (never opened, or closed).
        """
        buffer = self._require_open()
        if self._resampler is not None:
            self._resampler.reset()  # its held-back samples belong to the dropped audio
        self._last_key = None
        return buffer.clear(fade_ms)

    def played_ms(self, item_id: str, content_index: int | None = None) -> float:
        """Milliseconds of an item that have reached the speaker.

        Args:
            item_id: The item.
            content_index: One content part, or ``None`` for all of them.
        """
        return self._require().played_ms(item_id, content_index)

    def received_ms(self, item_id: str, content_index: int | None = None) -> float:
        """Milliseconds of an item queued so far (at the device rate).

        Args:
            item_id: The item.
            content_index: One content part, or ``None`` for all of them.
        """
        return self._require().received_ms(item_id, content_index)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until everything queued that can play has been played.

        That is: handed to the device and out of it (its output latency). Audio of an
        unfinished item that is waiting for ``prebuffer_ms`` (see
        :attr:`PlaybackBuffer.stalled`) cannot start on its own, so drain stops waiting
        there and leaves it queued; call :meth:`mark_finished` first to have an item's
        tail played out.

        Args:
            timeout: Give up after this many seconds (``TimeoutError``); ``None``: no limit.

        Raises:
            DeviceError: The speaker is not open, or was closed while draining.
            TimeoutError: ``timeout`` passed first.
        """
        buffer = self._require_open()
        poll_s = self._block_ms / 1000.0

        async def wait() -> None:
            while True:
                if self._stream is None:
                    raise DeviceError("Speaker was closed while draining: audio left unplayed")
                if buffer.stalled:
                    break
                remaining_s = buffer.buffered_ms / 1000.0
                if remaining_s <= 0 and buffer.frames_out > 0:
                    break
                await asyncio.sleep(max(remaining_s, poll_s))
            await asyncio.sleep(buffer.output_latency_s + poll_s)

        await asyncio.wait_for(wait(), timeout)

    @property
    def buffer(self) -> PlaybackBuffer:
        """The playback buffer (at the device rate)."""
        return self._require()

    @property
    def stats(self) -> SpeakerStats:
        """Playback counters (see :class:`SpeakerStats`)."""
        buffer = self._require()
        playback = buffer.stats()
        return SpeakerStats(
            playback=playback,
            callbacks=self._callbacks,
            output_underflows=self._output_underflows,
            output_latency_s=playback.output_latency_s,
            device_rate=self._device_rate,
        )
