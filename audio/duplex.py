"""A full-duplex audio device: capture and playback in one PortAudio stream.

Each captured block comes with exactly the far-end audio that was played in the same
callback (:attr:`CapturedBlock.reference`): an aligned reference is what lets an echo
canceller converge (separate input and output streams drift apart). ``aec=True`` runs
echo cancellation on the capture (see :mod:`.echo`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from .devices import (
    CapturedBlock,
    Microphone,
    Speaker,
    _check_args,
    _choose_rate,
    _InputBridge,
    _make_resampler,
    _sounddevice,
    _start_stream,
    _Stream,
    find_device,
)
from .errors import AudioFormatError, DeviceError

if TYPE_CHECKING:
    from .echo import EchoCancelled, EchoCanceller

__all__ = ["DuplexDevice"]

Float32Array = npt.NDArray[np.float32]

_SpeakerT = TypeVar("_SpeakerT", bound=Speaker)
_CaptureT = TypeVar("_CaptureT", bound=Microphone)


class _Side:
    """One side of a duplex device: opening or closing it opens or closes both."""

    _owner: DuplexDevice

    async def open(self) -> None:
        """Open the duplex device (both sides)."""
        await self._owner.open()

    async def close(self) -> None:
        """Close the duplex device (both sides)."""
        await self._owner.close()


class _DuplexCapture(_Side, Microphone):
    """The capture side of a duplex device: channel 0 heard, channel 1 what was played.

    Both channels go through one resampler, so the reference stays sample-aligned with
    the capture whatever the device rate; :meth:`_emit` splits them.
    """

    def __init__(
        self, owner: DuplexDevice, sample_rate: int, block_ms: float, queue_blocks: int
    ) -> None:
        super().__init__(None, sample_rate, block_ms, 2, queue_blocks=queue_blocks)
        self._owner = owner

    def _emit(self, frames: int) -> CapturedBlock:
        block = super()._emit(frames)
        both = block.samples
        return CapturedBlock(
            samples=np.ascontiguousarray(both[:, 0]),
            sample_rate=block.sample_rate,
            frame_index=block.frame_index,
            capture_time=block.capture_time,
            device_frame_index=block.device_frame_index,
            dropped_frames=block.dropped_frames,
            reference=np.ascontiguousarray(both[:, 1]),
        )


class _DuplexPlayback(_Side, Speaker):
    """The playback side of a duplex device (opened and closed with it)."""

    def __init__(self, owner: DuplexDevice, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner = owner


class _Duplex(_Stream, Generic[_SpeakerT, _CaptureT]):
    """What a real and a simulated duplex device share: the sides, the echo-cancelled capture."""

    _speaker: _SpeakerT
    _capture: _CaptureT
    _rate: int
    _aec: bool | EchoCanceller
    _canceller: EchoCanceller | None = None
    _cancelled: EchoCancelled | None = None

    def _setup_aec(self, sample_rate: int) -> None:
        if self._aec is False:
            return
        from .echo import EchoCancelled, EchoCanceller, make_echo_canceller

        if isinstance(self._aec, EchoCanceller):
            canceller = self._aec
            if canceller.sample_rate != sample_rate:
                raise AudioFormatError(
                    f"the echo canceller runs at {canceller.sample_rate} Hz, the device "
                    f"delivers {sample_rate} Hz"
                )
        elif self._aec is True:
            canceller = make_echo_canceller(sample_rate)
        else:
            raise AudioFormatError(f"aec must be a bool or an EchoCanceller, got {self._aec!r}")
        self._canceller = canceller
        self._cancelled = EchoCancelled(self._capture, canceller)

    @property
    def speaker(self) -> _SpeakerT:
        """The playback side: the session's sink."""
        return self._speaker

    @property
    def capture(self) -> _CaptureT:
        """The raw capture side: blocks with their ``reference``, echo not removed."""
        return self._capture

    @property
    def sample_rate(self) -> int:
        """Rate of the audio written and captured, in Hz."""
        return self._rate

    @property
    def microphone(self) -> Any:
        """What to attach as the session's source: the capture, echo-cancelled if on."""
        return self._cancelled if self._cancelled is not None else self._capture

    @property
    def canceller(self) -> EchoCanceller | None:
        """The echo canceller (``None`` with ``aec=False``)."""
        return self._canceller

    @property
    def erle_db(self) -> float | None:
        """Echo suppression achieved so far, in dB (see :attr:`EchoCanceller.erle_db`)."""
        return self._canceller.erle_db if self._canceller is not None else None


class DuplexDevice(_Duplex[Speaker, Microphone]):
    """One full-duplex stream: each captured block comes with what was played meanwhile.

    A single PortAudio stream runs input and output in the same callback, so the block
    played and the block captured share one sample clock: the far-end reference is
    exact and never drifts (separate streams do, and AEC never converges on them). The
    callback only copies: the output block out of the playback buffer, the input block
    and the output block into one array handed to asyncio.

    Use :attr:`speaker` as the session's sink and :attr:`microphone` as its source; with
    ``aec`` on (the default), :attr:`microphone` yields echo-cancelled blocks::

        async with DuplexDevice() as device:
            session.attach(device.microphone, device.speaker)

    Args:
        input_device: Input device index, (part of a) name, or ``None`` for the default.
        output_device: Output device; ``None``: the input device if it has outputs,
            else the default output.
        sample_rate: Rate of the audio written and captured, in Hz.
        block_ms: Callback period and capture block length, in ms.
        aec: ``True``: the best canceller installed (:func:`~.echo.make_echo_canceller`);
            an :class:`~.echo.EchoCanceller` to use that one; ``False``: none.
        channels: Output channels (the mono signal is copied to each).
        device_rate: Force the device rate, in Hz.
        prebuffer_ms: As for :class:`Speaker`, in ms.
        fade_ms: As for :class:`Speaker`, in ms.
        queue_blocks: As for :class:`Microphone`.
        latency: PortAudio latency hint.

    Raises:
        AudioFormatError: A bad rate, block length or channel count.
    """

    def __init__(
        self,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        sample_rate: int = 24_000,
        block_ms: float = 20.0,
        *,
        aec: bool | EchoCanceller = True,
        channels: int = 1,
        device_rate: int | None = None,
        prebuffer_ms: float = 60.0,
        fade_ms: float = 5.0,
        queue_blocks: int = 50,
        latency: Literal["low", "high"] | float = "low",
    ) -> None:
        _check_args(sample_rate, block_ms, channels)
        self._input_arg = input_device
        self._output_arg = output_device
        self._rate = sample_rate
        self._block_ms = float(block_ms)
        self._channels = channels
        self._device_rate_arg = device_rate
        self._latency = latency
        self._aec = aec
        self._capture = _DuplexCapture(self, sample_rate, block_ms, queue_blocks)
        self._speaker = _DuplexPlayback(
            self,
            sample_rate=sample_rate,
            prebuffer_ms=prebuffer_ms,
            block_ms=block_ms,
            channels=channels,
            fade_ms=fade_ms,
            latency=latency,
        )
        self._stream: Any = None
        self._setup_aec(sample_rate)

    async def open(self) -> None:
        """Open and start the duplex stream (PortAudio calls run in a worker thread).

        Raises:
            DeviceError: No such device, or it refused the settings.
            PortAudioMissingError: sounddevice or PortAudio is not installed.
        """
        if self._stream is not None:
            return
        sd = _sounddevice()
        in_info = find_device(self._input_arg, "input")
        out_arg = self._output_arg
        if out_arg is None and in_info.max_output_channels >= self._channels:
            out_arg = in_info.index
        out_info = find_device(out_arg, "output")
        if self._channels > out_info.max_output_channels:
            raise DeviceError(
                f"output device {out_info.name!r} has {out_info.max_output_channels} "
                f"channel(s), {self._channels} requested"
            )
        rate = self._device_rate_arg or _choose_rate(sd, in_info, "input", self._rate, 1)
        playback, capture = self._speaker, self._capture
        blocksize = playback._prepare(rate)
        resampler = _make_resampler(rate, self._rate, 2)
        bridge = _InputBridge(asyncio.get_running_loop(), capture._queue_blocks)
        play = playback._callback

        def callback(
            indata: Float32Array, outdata: Float32Array, frames: int, time: Any, status: Any
        ) -> None:
            # PortAudio's thread: play the next block, then hand over heard + played.
            play(outdata, frames, time, status)
            both = np.empty((frames, 2), dtype=np.float32)
            both[:, 0] = indata[:, 0]
            both[:, 1] = outdata[:, 0]
            bridge.push(both, frames, float(time.inputBufferAdcTime), status)

        stream = await _start_stream(
            sd,
            "Stream",
            f"duplex device {in_info.name!r} / {out_info.name!r}",
            samplerate=rate,
            blocksize=blocksize,
            device=(in_info.index, out_info.index),
            channels=(1, self._channels),
            latency=self._latency,
            callback=callback,
            before_start=playback._take_latency,
        )
        self._stream = stream
        playback._stream = stream
        playback._info = out_info
        capture._started(in_info, rate, bridge, stream, resampler)

    async def close(self) -> None:
        """Stop and close the stream (queued audio is not played; capture ends)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        self._speaker._stream = None
        self._capture._stream = None
        await asyncio.to_thread(stream.close)
        if self._capture._bridge is not None:
            self._capture._bridge.close()

    @property
    def device_rate(self) -> int:
        """Rate the device runs at, in Hz (0 before :meth:`open`)."""
        return self._capture.device_rate
