"""Audio devices without a sound card: a simulated microphone and speaker on a device clock.

For headless runs (WAV files instead of a microphone, no speaker), benchmarks and tests.
They stand in for :class:`~realtime_client.audio.Microphone` and
:class:`~realtime_client.audio.Speaker` wherever those are used (``session.attach(mic,
speaker)``, ``async with``), with the same behaviour a session can see:

* :class:`VirtualSpeaker` *is* a :class:`Speaker` (a subclass): writes, ``clear()`` on
  barge-in, ``mark_finished()``, the resampling to the device rate and the played-position
  accounting are the real speaker's code. Only the device is simulated: it reads one block
  of the playback buffer every ``block_ms``, by itself at real-time pace, or each time the
  owner calls :meth:`VirtualSpeaker.tick` (a simulated duplex device, a test stepping time).
* :class:`VirtualMicrophone` *is* a :class:`Microphone` too: it yields
  :class:`CapturedBlock` s cut from an array, one every ``block_ms`` on its own pacing
  clock; given a speaker it ticks it once per block, as one full-duplex device callback
  does (capture and playback on one sample clock).

Blocks at rates where ``block_ms`` is not a whole number of frames (11,025 Hz: 220.5 frames
in 20 ms) alternate in length so that they average ``block_ms`` exactly: block ``k``
starts at frame :func:`block_edge` ``(k, ...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from .devices import (
    CapturedBlock,
    Microphone,
    MicrophoneStats,
    Speaker,
    _check_args,
)
from .duplex import _Duplex
from .errors import AudioFormatError
from .formats import to_mono
from .pacing import PacingClock
from .playback import PlaybackBuffer

if TYPE_CHECKING:
    from .echo import EchoCanceller, EchoPath

__all__ = ["VirtualDuplex", "VirtualMicrophone", "VirtualSpeaker", "block_edge"]

Float32Array = npt.NDArray[np.float32]


def block_edge(index: int, sample_rate: int, block_ms: float) -> int:
    """The frame where block ``index`` of a stream of ``block_ms`` blocks starts.

    ``round(index * sample_rate * block_ms / 1000)``: block lengths differ by at most one
    frame and never drift from ``block_ms`` on average.

    Args:
        index: Block number, from 0.
        sample_rate: Rate of the stream, in Hz.
        block_ms: Block length, in ms.
    """
    return round(index * sample_rate * block_ms / 1000)


class _Clock:
    """What :class:`Microphone` and :class:`Speaker` keep of an open stream: its clock.

    Args:
        frames: Frames through the simulated device so far.
        sample_rate: The device's rate, in Hz.
    """

    def __init__(self, frames: Callable[[], int], sample_rate: int) -> None:
        self._frames = frames
        self._rate = sample_rate

    @property
    def time(self) -> float:
        """The device clock, in seconds."""
        return self._frames() / self._rate


class VirtualSpeaker(Speaker):
    """A :class:`Speaker` whose device is simulated: no sound card, no PortAudio.

    Args:
        device: Ignored; accepted so this class can stand in for ``Speaker(device, ...)``.
        sample_rate: Rate of the audio written, in Hz.
        speed: Pace of the simulated device: 1.0 reads one block every ``block_ms`` of real
            time, 4.0 four times as often; ``None``: it reads only when :meth:`tick` is
            called.
        prebuffer_ms: As for :class:`Speaker`, in ms.
        block_ms: Device period, in ms.
        channels: Ignored (the simulated device plays the mono signal).
        device_rate: Rate of the simulated device, in Hz (default ``sample_rate``).
        fade_ms: As for :class:`Speaker`, in ms.
        max_buffered_ms: As for :class:`Speaker`, in ms.
        output_latency_ms: Time from a block's hand-out until it is heard, in ms (0: the
            played position counts every frame handed out).
        latency: Ignored.

    Raises:
        AudioFormatError: A bad rate or block length.
        PlaybackError: A bad duration.
        ValueError: ``speed`` is not a positive finite number or ``None``.
    """

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int = 24_000,
        *,
        speed: float | None = 1.0,
        prebuffer_ms: float = 60.0,
        block_ms: float = 20.0,
        channels: int = 1,
        device_rate: int | None = None,
        fade_ms: float = 5.0,
        max_buffered_ms: float | None = None,
        output_latency_ms: float = 0.0,
        latency: Literal["low", "high"] | float = "low",
    ) -> None:
        super().__init__(
            device,
            sample_rate,
            prebuffer_ms=prebuffer_ms,
            block_ms=block_ms,
            channels=channels,
            device_rate=device_rate,
            fade_ms=fade_ms,
            max_buffered_ms=max_buffered_ms,
            latency=latency,
        )
        if speed is not None:
            PacingClock(speed)  # validates it
            if speed == 0:
                raise ValueError("speed must be > 0, or None for a speaker ticked by its owner")
        if device_rate is not None:
            _check_args(device_rate, block_ms, 1)
        self._speed = speed
        self._output_latency_s = PlaybackBuffer._check_latency(output_latency_ms / 1000.0)
        self._written_frames = 0
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Start the simulated device (its clock task, unless ``speed`` is ``None``)."""
        if self._stream is not None:
            return
        self._prepare(self._device_rate_arg or self._rate)
        buffer = self._require()
        buffer.output_latency_s = self._output_latency_s + self._resampler_delay_s
        self._stream = _Clock(lambda: buffer.frames_out, buffer.sample_rate)
        if self._speed is not None:
            clock = PacingClock(self._speed)
            self._task = asyncio.get_running_loop().create_task(self._play(clock))

    async def close(self) -> None:
        """Stop the simulated device; queued audio is not played."""
        task, self._task = self._task, None
        self._stream = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _play(self, clock: PacingClock) -> None:
        scratch, rate = self._scratch, self._device_rate
        blocks = 0
        while True:
            self.tick(scratch)
            blocks += 1
            await clock.wait(blocks * len(scratch) / rate)

    def tick(self, out: Float32Array | None = None) -> Float32Array:
        """One device period: the simulated device takes the next block of the buffer.

        Args:
            out: 1-D float32 array to fill (its length is the number of frames taken);
                ``None``: a new array of one device block.

        Returns:
            The block handed to the device (``out``, or the new array).

        Raises:
            DeviceError: The speaker is not open.
        """
        buffer = self._require_open()
        block = np.empty(len(self._scratch), dtype=np.float32) if out is None else out
        self._callbacks += 1
        buffer.read_into(block)  # at the output latency set by open(): it never changes
        return block

    def write(self, pcm: npt.ArrayLike, item_id: str, content_index: int = 0) -> int:
        """Queue audio of an item for playback (see :meth:`Speaker.write`).

        Args:
            pcm: Mono float32 or int16 samples at ``sample_rate``.
            item_id: The conversation item the audio belongs to.
            content_index: The content part within that item.

        Returns:
            Frames queued, at the device rate.
        """
        queued = super().write(pcm, item_id, content_index)
        self._written_frames += int(np.shape(pcm)[0])
        return queued

    @property
    def written_ms(self) -> float:
        """Audio written to the speaker so far (queued or not), in ms at ``sample_rate``."""
        return self._written_frames * 1000.0 / self._rate


class VirtualMicrophone(Microphone):
    """A :class:`Microphone` whose device is simulated: blocks cut from an array.

    Iterating it yields :class:`CapturedBlock` s of ``block_ms`` (their ``capture_time``
    is on the device clock: seconds since the first frame), block ``k`` due ``k *
    block_ms`` after block 0 at ``speed`` times real time. Blocks are views into
    ``samples``: do not modify them. It is open from the start (``async with`` and
    :meth:`open` are optional); after :meth:`close` iteration ends.

    Args:
        samples: What the microphone hears, at ``sample_rate``: float in [-1, 1] or int16,
            mono or ``(frames, channels)`` (averaged); ``None``: silence.
        sample_rate: Rate of ``samples`` and of the blocks, in Hz.
        block_ms: Block length, in ms.
        after: Once ``samples`` run out: ``"silence"`` (a quiet room, forever; a last
            partial block is padded), ``"repeat"`` (``samples`` again, forever) or
            ``"end"`` (iteration ends after a last, possibly shorter, block).
        speed: 1.0 real time, 4.0 four times faster, 0 unpaced (each block as soon as it
            is asked for).
        start: When block 0 is due, on ``time.monotonic()`` (default: when it is first
            asked for).
        speaker: A :class:`VirtualSpeaker` made with ``speed=None`` and the same
            ``block_ms``: it is ticked once per block, after the block's time has come
            (one full-duplex device). When its device rate is ``sample_rate``, each
            block's ``reference`` is what it played during the block.
        echo: A simulated loudspeaker-room path (:class:`~.echo.EchoPath` at
            ``sample_rate``; needs ``speaker`` at that device rate): what the speaker
            plays is mixed into what the microphone hears through it.
        on_block: Called with ``(index, due)`` each time block ``index``'s time has come
            (``due``: when it was due, on ``time.monotonic()``), before the speaker is
            ticked: to measure how late the consumer takes its blocks.

    Raises:
        AudioFormatError: A bad rate, block length or sample type.
        ValueError: A bad ``after``, ``speed`` or ``speaker``.
    """

    def __init__(
        self,
        samples: npt.ArrayLike | None = None,
        sample_rate: int = 24_000,
        block_ms: float = 20.0,
        *,
        after: Literal["silence", "repeat", "end"] = "silence",
        speed: float = 1.0,
        start: float | None = None,
        speaker: VirtualSpeaker | None = None,
        on_block: Callable[[int, float], None] | None = None,
        echo: EchoPath | None = None,
    ) -> None:
        super().__init__(None, sample_rate, block_ms)
        if after not in ("silence", "repeat", "end"):
            raise ValueError(f"after must be 'silence', 'repeat' or 'end', got {after!r}")
        if speaker is not None and (speaker._speed is not None or speaker._block_ms != block_ms):
            raise ValueError(
                "a duplex speaker must be made with speed=None and the same block_ms "
                "(the microphone's clock ticks it)"
            )
        if echo is not None:
            same_rate = speaker is not None and (speaker._device_rate_arg or speaker._rate) == (
                sample_rate
            )
            if not same_rate or echo.sample_rate != sample_rate:
                raise ValueError(
                    "an echo path needs a duplex speaker whose device rate, like the echo "
                    "path's rate, is the microphone's sample_rate"
                )
        self._echo = echo
        self._samples = np.zeros(0, np.float32) if samples is None else to_mono(samples)
        self._device_rate = sample_rate
        self._block_s = self._block_ms / 1000.0
        self._after = after
        self._clock = PacingClock(speed, start=start)
        self._speaker = speaker
        self._played: Float32Array | None = None  # the speaker's block, reused each tick
        self._on_block = on_block
        self._index = 0
        self._edge = 0  # first frame of block _index
        self._frames = 0  # frames delivered
        self._stream: _Clock | None = self._clock_now()

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """(Re)open: blocks flow again, the clock where it was."""
        if self._stream is None:
            self._stream = self._clock_now()

    async def close(self) -> None:
        """Stop: iteration ends."""
        self._stream = None

    def _clock_now(self) -> _Clock:
        return _Clock(lambda: self._frames, self._rate)

    # -- iteration ----------------------------------------------------------------------

    def __aiter__(self) -> VirtualMicrophone:
        return self

    async def __anext__(self) -> CapturedBlock:
        if self._stream is None:
            raise StopAsyncIteration
        index = self._index
        start = self._edge
        stop = block_edge(index + 1, self._rate, self._block_ms)
        samples = self._take(start, stop - start)
        # The device's clock runs on whether or not the block is taken in time.
        self._index, self._edge = index + 1, stop
        position_s = index * self._block_s
        await asyncio.sleep(self._clock.delay_s(position_s))
        if self._on_block is not None:
            self._on_block(index, self._clock.due(position_s))
        reference = None
        if self._speaker is not None:
            self._played = self._speaker.tick(self._played)
            if len(self._played) == len(samples):
                reference = self._played.copy()
                if self._echo is not None:
                    samples = samples + self._echo.process(reference)
        self._frames += len(samples)
        return CapturedBlock(
            samples, self._rate, start, start / self._rate, start, 0, reference=reference
        )

    def _take(self, start: int, frames: int) -> Float32Array:
        """Frames ``start .. start + frames`` of what the microphone hears."""
        data = self._samples
        size = len(data)
        if self._after == "repeat" and size:
            offset = start % size
            if offset + frames <= size:
                return data[offset : offset + frames]
            return np.take(data, np.arange(start, start + frames), mode="wrap")
        block = data[start : start + frames]
        if len(block) == frames:
            return block
        if self._after == "end":
            if not len(block):
                raise StopAsyncIteration
            return block
        padded = np.zeros(frames, dtype=np.float32)
        padded[: len(block)] = block
        return padded

    def due(self, index: int) -> float:
        """When block ``index`` is (or was) due, on ``time.monotonic()``."""
        return self._clock.due(index * self._block_s)

    # -- properties (the others are Microphone's) ----------------------------------------

    @property
    def blocks(self) -> int:
        """Blocks whose time has been awaited so far (the next block's index)."""
        return self._index

    @property
    def stats(self) -> MicrophoneStats:
        """Capture counters (a simulated device never overflows)."""
        return MicrophoneStats(
            blocks=self._index,
            frames=self._frames,
            overflows=0,
            dropped_frames=0,
            input_overflows=0,
            input_underflows=0,
            device_rate=self._rate,
        )


class VirtualDuplex(_Duplex[VirtualSpeaker, VirtualMicrophone]):
    """A simulated full-duplex device, optionally with an echo path and echo cancellation.

    A :class:`VirtualSpeaker` and a :class:`VirtualMicrophone` on one clock: each captured
    block carries the block played meanwhile as its ``reference``; with ``echo``, what
    is played reaches the microphone through that simulated room. Same interface as
    :class:`~realtime_client.audio.DuplexDevice`::

        device = VirtualDuplex(user_speech, echo=EchoPath(24_000))
        session.attach(device.microphone, device.speaker)

    Args:
        samples: What the user says (see :class:`VirtualMicrophone`); ``None``: silence.
        sample_rate: Rate of the audio written and captured, in Hz.
        block_ms: Device period, in ms.
        echo: Loudspeaker-room path at ``sample_rate``; ``None``: no echo (headphones).
        aec: As for :class:`~realtime_client.audio.DuplexDevice`.
        after: As for :class:`VirtualMicrophone`.
        speed: As for :class:`VirtualMicrophone` (real time 1.0, 0 unpaced).
        prebuffer_ms: As for :class:`VirtualSpeaker`, in ms.

    Raises:
        AudioFormatError: A bad rate or block length, or a canceller at another rate.
        ValueError: An echo path at another rate, a bad ``after`` or ``speed``.
    """

    def __init__(
        self,
        samples: npt.ArrayLike | None = None,
        sample_rate: int = 24_000,
        block_ms: float = 20.0,
        *,
        echo: EchoPath | None = None,
        aec: bool | EchoCanceller = True,
        after: Literal["silence", "repeat", "end"] = "silence",
        speed: float = 1.0,
        prebuffer_ms: float = 60.0,
    ) -> None:
        _check_args(sample_rate, block_ms, 1)
        self._rate = sample_rate
        self._aec = aec
        self._speaker = VirtualSpeaker(
            sample_rate=sample_rate, speed=None, block_ms=block_ms, prebuffer_ms=prebuffer_ms
        )
        self._capture: VirtualMicrophone = VirtualMicrophone(
            samples,
            sample_rate,
            block_ms,
            after=after,
            speed=speed,
            speaker=self._speaker,
            echo=echo,
        )
        if echo is not None and echo.sample_rate != sample_rate:
            raise AudioFormatError("the echo path must run at sample_rate")
        self.echo = echo
        self._setup_aec(sample_rate)

    async def open(self) -> None:
        """Open the simulated speaker and microphone."""
        await self._speaker.open()
        await self._capture.open()

    async def close(self) -> None:
        """Close both sides: iteration ends, queued audio is not played."""
        await self._capture.close()
        await self._speaker.close()
