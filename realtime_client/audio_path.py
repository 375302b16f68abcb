"""One audio path per session, chosen by what the transport carries.

The session never asks which transport it has. It owns one :class:`AudioPath` and calls
the same few operations whatever the wire: send a captured block, react to output audio
and output-buffer events, stop playback (barge-in, push-to-talk press, a manual
interrupt), start and stop with each connection.

* :class:`EventAudioPath` (WebSocket, and any transport without media): captured audio
  goes out as ``input_audio_buffer.append`` (PCM16, or G.711 at 8 kHz); output audio
  arrives as ``response.output_audio.delta`` events and is written to the sink tagged
  with its item; barge-in clears the sink, truncates the item at what the listener heard
  and cancels the response where server VAD does not.
* :class:`MediaAudioPath` (WebRTC, or ``memory_pair(media=True)``): captured audio goes
  to the transport's :class:`~realtime_client.transports.MediaChannel` (resampled to its
  rate); output audio is pulled from it and written to the sink tagged with the item of
  the response that ``output_audio_buffer.started`` named; the server truncates on
  barge-in itself, and stopping playback on purpose sends ``output_audio_buffer.clear``.

Captured blocks reach the path already converted by :class:`InputConverter` (mono PCM16
at 24 kHz, whatever the device gave), so both paths see the same samples.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from realtime_client.audio.formats import float32_to_pcm16
from realtime_client.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from realtime_client.audio.resample import Resampler

from . import events as ev
from ._delivery import guard
from .errors import AudioFormatError, InvalidEventError, RealtimeError, TransportError

if TYPE_CHECKING:
    from .protocol import RealtimeProtocol
    from .stats import SessionStats
    from .transports import MediaChannel, Transport

__all__ = [
    "AudioPath",
    "AudioSink",
    "EventAudioPath",
    "InputConverter",
    "MediaAudioPath",
    "OutageBuffer",
    "audio_path_for",
    "block_of",
]

logger = logging.getLogger("realtime_client")

Int16Array = npt.NDArray[np.int16]
_F32 = np.dtype(np.float32)
_MODEL_RATE = 24_000


@runtime_checkable
class AudioSink(Protocol):
    """Where output audio goes: a ``Speaker`` or a ``PlaybackBuffer`` of the audio library."""

    def write(self, pcm: Any, item_id: str, content_index: int = 0) -> Any:
        """Queue PCM of an item for playback."""

    def clear(self) -> Any:
        """Stop playback; return the played position (``item_id``, ``played_ms``) or None.

        A sink may also have ``mark_finished(item_id, content_index)``: the session calls
        it when an item's audio is complete so a short reply is not held in prebuffer.
        """


class AudioHost(Protocol):
    """What an audio path uses of its session."""

    protocol: RealtimeProtocol
    stats: SessionStats

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]: ...

    async def cancel_response(self, response_id: str | None = None) -> bool: ...

    async def truncate(
        self, item_id: str, audio_end_ms: float, *, content_index: int = 0
    ) -> Any: ...

    async def _request(
        self, event: Any, timeout: float | None = None, *, internal: bool = False
    ) -> Any: ...


def block_of(block: Any) -> tuple[npt.NDArray[Any], int | None]:
    """Samples and rate of a captured block (``CapturedBlock``, ``(array, rate)`` or array)."""
    if type(block) is tuple and len(block) == 2 and type(block[0]) is np.ndarray:
        return block[0], int(block[1])  # what capture devices hand out, 50 times a second
    if isinstance(block, tuple) and len(block) == 2:
        return np.asarray(block[0]), int(block[1])
    samples = getattr(block, "samples", None)
    if samples is not None:
        return np.asarray(samples), int(getattr(block, "sample_rate", _MODEL_RATE))
    return np.asarray(block), None


def _whole_hz(rate: object) -> int:
    """A sample rate as an ``int``.

    Raises:
        AudioFormatError: It is not a whole number (a string, a fraction, a bool).
    """
    if isinstance(rate, (int, np.integer)) and not isinstance(rate, bool):
        return int(rate)
    if isinstance(rate, float) and rate.is_integer():
        return int(rate)
    raise AudioFormatError(f"sample_rate must be a whole number of Hz, got {rate!r}")


def resampler_for(
    cache: dict[tuple[int, int], Resampler], in_rate: int, out_rate: int
) -> Resampler:
    """The stream's resampler for a rate pair (stateful: one per direction and rate)."""
    resampler = cache.get((in_rate, out_rate))
    if resampler is None:
        resampler = Resampler(in_rate, out_rate)
        cache[(in_rate, out_rate)] = resampler
    return resampler


class InputConverter:
    """Captured samples (any rate, float or int16, mono or multichannel) → PCM16 at 24 kHz.

    One streaming resampler per input rate, so the output does not depend on how the
    device chunks its blocks.
    """

    def __init__(self) -> None:
        self._resamplers: dict[tuple[int, int], Resampler] = {}

    def to_pcm16_24k(self, samples: npt.NDArray[Any], rate: int) -> Int16Array:
        """Convert one block.

        One rule for every rate and shape: samples are float (finite; beyond ±1 is
        clipped) or int16, shaped ``(frames,)`` or ``(frames, channels)`` with at least
        one channel; the rate is a positive whole number of Hz.

        Raises:
            AudioFormatError: Wrong shape, dtype, values or sample rate.
        """
        rate = _whole_hz(rate)
        kind = samples.dtype.kind
        if not (kind == "f" or samples.dtype == np.int16):
            raise AudioFormatError(f"audio must be float in [-1, 1] or int16, got {samples.dtype}")
        if samples.ndim == 2 and samples.shape[1] == 0:
            raise AudioFormatError(f"audio has no channels: shape {samples.shape}")
        # One summing pass, no temporary array: NaN and inf propagate into the sum (as do
        # samples so huge that it overflows, which the resampler would refuse anyway).
        if kind == "f" and not math.isfinite(float(np.add.reduce(samples, axis=None))):
            raise AudioFormatError("audio holds NaN, infinite or absurdly large samples")
        if samples.dtype is _F32 and samples.ndim == 1 and rate != _MODEL_RATE and rate > 0:
            return self._resample(samples, rate)  # a float32 device
        if samples.ndim == 2:
            samples = (
                samples.mean(axis=1)
                if samples.dtype.kind == "f"
                else samples.astype(np.float32).mean(axis=1) / 32768.0
            )
        elif samples.ndim != 1:
            raise AudioFormatError(
                f"audio must be (frames,) or (frames, channels), got {samples.shape}"
            )
        if rate <= 0:
            raise AudioFormatError(f"sample_rate must be positive, got {rate}")
        if rate == _MODEL_RATE:
            if samples.dtype == np.int16:
                return samples
            return float32_to_pcm16(samples)
        floats = (
            samples.astype(np.float32) / 32768.0
            if samples.dtype == np.int16
            else samples.astype(np.float32, copy=False)
        )
        return self._resample(floats, rate)

    def prepare(self, rate: int) -> None:
        """Build the resampler for ``rate`` now (its filter design can take 0.1–0.5 s),
        rather than on the first block of audio.

        Raises:
            AudioFormatError: The rate cannot be converted to 24 kHz.
        """
        rate = _whole_hz(rate)
        if rate <= 0:
            raise AudioFormatError(f"sample_rate must be positive, got {rate}")
        if rate != _MODEL_RATE:
            try:
                resampler_for(self._resamplers, rate, _MODEL_RATE)
            except ValueError as exc:
                raise AudioFormatError(f"cannot resample {rate} Hz audio: {exc}") from exc

    def _resample(self, floats: npt.NDArray[np.float32], rate: int) -> Int16Array:
        # Overshoot beyond ±1 is clipped after resampling (float32_to_pcm16), as at 24 kHz.
        try:
            out = resampler_for(self._resamplers, rate, _MODEL_RATE).process(floats)
        except ValueError as exc:
            raise AudioFormatError(f"cannot resample {rate} Hz audio: {exc}") from exc
        return float32_to_pcm16(out)


class OutageBuffer:
    """Captured audio kept while the connection is down, sent first after a reconnect.

    Bounded: beyond ``limit_ms`` the oldest audio is dropped (and the amount returned,
    for the session to count and report). A block leaves the buffer only once it went
    out, so a failed flush keeps it for the next attempt.

    Args:
        limit_ms: How much audio to keep, in ms of 24 kHz PCM16.
    """

    def __init__(self, limit_ms: float) -> None:
        self.limit_ms = limit_ms
        self._blocks: deque[Int16Array] = deque()
        #: Audio held, in ms.
        self.held_ms = 0.0

    def keep(self, pcm: Int16Array) -> float:
        """Hold a block; returns the ms of older audio dropped to stay within the limit."""
        self._blocks.append(pcm)
        self.held_ms += len(pcm) / 24.0
        dropped = 0.0
        while self.held_ms > self.limit_ms and self._blocks:
            old = self._blocks.popleft()
            self.held_ms -= len(old) / 24.0
            dropped += len(old) / 24.0
        return dropped

    async def flush(
        self, send: Callable[[Int16Array], Awaitable[None]], *, keep: bool = False
    ) -> float:
        """Send what is held, oldest first; returns the ms sent.

        Args:
            send: Sends one block (raises when the connection is gone).
            keep: Keep the blocks after sending them (else each leaves once it went out,
                so a failed flush keeps what did not go out for the next attempt).
        """
        if keep:
            for pcm in list(self._blocks):
                await send(pcm)
            return self.held_ms
        flushed = 0.0
        while self._blocks:
            pcm = self._blocks[0]
            await send(pcm)
            self._blocks.popleft()  # only once it went out: a failed send keeps it
            ms = len(pcm) / 24.0
            self.held_ms -= ms
            flushed += ms
        return flushed

    def clear(self) -> None:
        """Forget everything held."""
        self._blocks.clear()
        self.held_ms = 0.0


class UncommittedAudio(OutageBuffer):
    """Audio sent since the server last committed, each block stamped with where it ends.

    The stamps are positions in the connection's input stream (ms of audio sent on it),
    so a commit can release exactly the audio the server had when it committed: blocks
    sent after that point are in the server's next buffer and must stay (a drop before
    the next commit would otherwise lose them).
    """

    def __init__(self, limit_ms: float) -> None:
        super().__init__(limit_ms)
        self._ends: deque[float] = deque()

    def keep_sent(self, pcm: Int16Array, end_ms: float) -> float:
        """Hold a block that ends ``end_ms`` into the connection's input; see :meth:`keep`."""
        self._ends.append(end_ms)
        dropped = self.keep(pcm)
        while len(self._ends) > len(self._blocks):
            self._ends.popleft()
        return dropped

    def release(self, upto_ms: float) -> None:
        """Forget the blocks that end at or before ``upto_ms`` (the server committed them)."""
        while self._ends and self._ends[0] <= upto_ms + 1e-6:
            self._ends.popleft()
            pcm = self._blocks.popleft()
            self.held_ms -= len(pcm) / 24.0
        if not self._blocks:
            self.held_ms = 0.0

    async def resend(self, send: Callable[[Int16Array], Awaitable[None]], start_ms: float) -> float:
        """Send every block again on a new connection from ``start_ms``; restamp them.

        Returns the ms sent. The blocks stay held (uncommitted on the new session too).
        """
        position = start_ms
        ends: deque[float] = deque()
        for pcm in list(self._blocks):
            await send(pcm)
            position += len(pcm) / 24.0
            ends.append(position)
        self._ends = ends
        return position - start_ms

    def clear(self) -> None:
        """Forget everything held."""
        super().clear()
        self._ends.clear()


class AudioPath(abc.ABC):
    """The transport-specific half of the session's audio (see the module docstring).

    Args:
        host: The session.
    """

    #: ``"events"`` or ``"media"``.
    kind: str = ""

    def __init__(self, host: AudioHost) -> None:
        self.host = host
        #: Where output audio goes (set by ``Session.attach``).
        self.sink: AudioSink | None = None
        self._resamplers: dict[tuple[int, int], Resampler] = {}

    @abc.abstractmethod
    async def send(self, transport: Transport, pcm: Int16Array) -> None:
        """Send one captured block (mono PCM16 at 24 kHz).

        Raises:
            TransportError: The connection is gone (the session keeps the block).
        """

    def start(self, transport: Transport) -> None:
        """A connection carries the session from now on."""
        return None  # a hook: nothing to do on this path

    def stop(self) -> None:
        """The connection is gone (or the session closes)."""
        return None  # a hook: nothing to do on this path

    def on_delta(self, event: ev.ResponseOutputAudioDelta) -> None:
        """A ``response.output_audio.delta`` arrived (counted by the session).

        Raises:
            InvalidEventError: Its payload is not audio (the session reports it).
        """
        return None  # a hook: nothing to do on this path

    def on_audio_done(self, event: ev.ResponseOutputAudioDone) -> None:
        """``response.output_audio.done``: the item's audio is complete."""
        return None  # a hook: nothing to do on this path

    def on_buffer_event(self, event: ev.ServerEvent) -> None:
        """``output_audio_buffer.started`` / ``stopped`` / ``cleared``."""
        return None  # a hook: nothing to do on this path

    @abc.abstractmethod
    def barge_in(self) -> None:
        """``input_audio_buffer.speech_started``: the user talks over the assistant."""

    @abc.abstractmethod
    async def interrupt(self) -> None:
        """Stop the assistant now (push-to-talk press, a manual interrupt)."""

    # --- shared helpers ----------------------------------------------------------------

    def _mark_finished(self, item_id: str, content_index: int) -> None:
        """Tell the sink no more audio comes for this part (it stops waiting to prebuffer)."""
        mark = getattr(self.sink, "mark_finished", None)
        if mark is None:
            return
        try:
            mark(item_id, content_index)
        except Exception:
            logger.exception("audio sink failed to finish %s", item_id)

    def _clear_sink(self) -> Any:
        """Clear the sink; its played position (``None`` if it has none or failed)."""
        if self.sink is None:
            return None
        try:
            return self.sink.clear()
        except Exception:
            logger.exception("audio sink failed to clear")
            return None

    def _cancel_unless_server_does(self) -> None:
        protocol = self.host.protocol
        if protocol.active_response_id and not protocol.server_cancels_on_speech():
            self.host._spawn(guard(self.host.cancel_response(), "barge-in cancel"))


class EventAudioPath(AudioPath):
    """Audio as events: appends out, deltas in, barge-in = clear + truncate + cancel."""

    kind = "events"

    #: Audio per ``input_audio_buffer.append`` at most, in samples at 24 kHz (60 s): the
    #: service refuses events past 15 MiB, so one huge send goes out as several appends.
    MAX_APPEND_SAMPLES = 60 * _MODEL_RATE

    async def send(self, transport: Transport, pcm: Int16Array) -> None:
        step = self.MAX_APPEND_SAMPLES
        if len(pcm) <= step:  # every captured block
            await transport.send(ev.build_append(self._encode_input(pcm)))
            return
        for start in range(0, len(pcm), step):
            await transport.send(ev.build_append(self._encode_input(pcm[start : start + step])))

    def _encode_input(self, pcm: Int16Array) -> Any:
        protocol = self.host.protocol
        if protocol.input_is_g711:
            fmt = protocol.input_format
            down = resampler_for(self._resamplers, _MODEL_RATE, 8_000)
            pcm8k = float32_to_pcm16(down.process(pcm.astype(np.float32) / 32768.0))
            encode = ulaw_encode if isinstance(fmt, ev.PcmuFormat) else alaw_encode
            return encode(pcm8k).tobytes()
        return pcm

    def on_delta(self, event: ev.ResponseOutputAudioDelta) -> None:
        """Decode the delta and write it to the sink.

        Raises:
            InvalidEventError: The payload is not audio of the session's output format.
        """
        if self.sink is None:
            return
        try:
            pcm = self._decode_output(event)
        except ValueError as exc:  # InvalidEventError is one; so are base64 errors
            if isinstance(exc, InvalidEventError):
                raise
            raise InvalidEventError(f"{event.type}: delta is not audio: {exc}") from exc
        try:
            self.sink.write(pcm, event.item_id, event.content_index)
        except Exception:
            logger.exception("audio sink failed on a delta of %s", event.item_id)

    def _decode_output(self, event: ev.ResponseOutputAudioDelta) -> Int16Array:
        protocol = self.host.protocol
        if protocol.output_is_g711:
            fmt = protocol.output_format
            decode = ulaw_decode if isinstance(fmt, ev.PcmuFormat) else alaw_decode
            pcm8k = decode(event.audio_bytes())
            up = resampler_for(self._resamplers, 8_000, _MODEL_RATE)
            return float32_to_pcm16(up.process(pcm8k.astype(np.float32) / 32768.0))
        return event.pcm16()

    def on_audio_done(self, event: ev.ResponseOutputAudioDone) -> None:
        self._mark_finished(event.item_id, event.content_index)

    def _stop_playback(self) -> tuple[str, float, int] | None:
        """Clear the sink; ``(item_id, heard_ms, content_index)`` worth a truncate."""
        position = self._clear_sink()
        item_id = getattr(position, "item_id", None) if position is not None else None
        if not item_id:
            return None
        # What the listener will have heard: the device still plays what it holds (and
        # the fade) after a clear; sinks without that figure give the played position.
        heard: Any = getattr(position, "final_ms", None)
        if heard is None:
            heard = getattr(position, "played_ms", 0.0)
        content_index = int(getattr(position, "content_index", 0))
        cut = self.host.protocol.cut_after_stop(item_id, float(heard), content_index)
        return None if cut is None else (item_id, cut, content_index)

    async def _truncate_quietly(self, item_id: str, played_ms: float, content_index: int) -> None:
        try:
            await self.host.truncate(item_id, played_ms, content_index=content_index)
        except RealtimeError as exc:
            logger.warning("barge-in truncate of %s failed: %s", item_id, exc)

    def barge_in(self) -> None:
        if self.sink is None:
            return
        stopped = self._stop_playback()
        if stopped is not None:
            self.host._spawn(self._truncate_quietly(*stopped))
        self._cancel_unless_server_does()

    async def interrupt(self) -> None:
        # The cancel and the truncate go out together: the server stops generating one
        # round trip sooner.
        stopped = self._stop_playback()
        if stopped is None:
            await self.host.cancel_response()
        else:
            await asyncio.gather(self.host.cancel_response(), self._truncate_quietly(*stopped))


class MediaAudioPath(AudioPath):
    """Audio as media (WebRTC): a track each way, output tagged by the buffer events."""

    kind = "media"

    def __init__(self, host: AudioHost) -> None:
        super().__init__(host)
        self._media: MediaChannel | None = None
        self._pump: asyncio.Task[None] | None = None
        self._playing: str | None = None  # the response output_audio_buffer.started named
        self._item: tuple[str, int] | None = None

    async def send(self, transport: Transport, pcm: Int16Array) -> None:
        media = transport.media
        if media is None:  # the transport lost its media: a bug in the transport
            raise TransportError("the transport has no media channel")
        if media.sample_rate != _MODEL_RATE:
            up = resampler_for(self._resamplers, _MODEL_RATE, media.sample_rate)
            pcm = float32_to_pcm16(up.process(pcm.astype(np.float32) / 32768.0))
        if len(pcm):
            await media.send(pcm)

    def start(self, transport: Transport) -> None:
        self.stop()
        self._media = transport.media
        if self._media is not None:
            self._pump = self.host._spawn(self._pull(self._media))

    def stop(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()
        self._playing = None
        self._item = None

    async def _pull(self, media: MediaChannel) -> None:
        """Pull output audio off the media channel until the connection ends."""
        with contextlib.suppress(TransportError):
            while True:
                self._play(await media.recv(), media.sample_rate)

    def _play(self, pcm: Int16Array, rate: int) -> None:
        if rate != _MODEL_RATE:
            down = resampler_for(self._resamplers, rate, _MODEL_RATE)
            pcm = float32_to_pcm16(down.process(pcm.astype(np.float32) / 32768.0))
        if not len(pcm):
            return
        ms = len(pcm) / (_MODEL_RATE / 1000)
        self.host.stats.audio_received_ms += ms
        target = self._playing_item()
        if target is None:
            # Audio outside any response we know of (comfort noise, a stray frame).
            self.host.stats.unattributed_audio_ms += ms
            return
        item_id, content_index = target
        self.host.protocol.add_output_audio_ms(item_id, content_index, ms)
        if self.sink is None:
            return
        try:
            self.sink.write(pcm, item_id, content_index)
        except Exception:
            logger.exception("audio sink failed on audio of %s", item_id)

    def _playing_item(self) -> tuple[str, int] | None:
        """The item and part the incoming audio belongs to (from the playing response)."""
        if self._item is not None:
            return self._item
        protocol = self.host.protocol
        rid = self._playing or protocol.active_response_id
        target = protocol.audio_item_of(rid) if rid else None
        if target is not None and self._playing is not None:
            self._item = target  # fixed for the rest of this playback
        return target

    def on_buffer_event(self, event: ev.ServerEvent) -> None:
        if isinstance(event, ev.OutputAudioBufferStarted):
            self._playing = event.response_id
            self._item = None
        elif isinstance(event, ev.OutputAudioBufferStopped | ev.OutputAudioBufferCleared):
            target = self._item or self._playing_item()
            if target is not None:
                self._mark_finished(*target)
            self._playing = None
            self._item = None

    def barge_in(self) -> None:
        # The server stops its own output and truncates the item itself on WebRTC; the
        # local sink drops what it still holds.
        if self.sink is not None:
            self._clear_sink()
        self._cancel_unless_server_does()

    async def interrupt(self) -> None:
        self._clear_sink()
        if self._playing is None:
            # Nothing is in the server's output buffer: a clear would only draw an error.
            await self.host.cancel_response()
            return
        clear = self.host.protocol.build_clear_output()
        await asyncio.gather(self.host.cancel_response(), self.host._request(clear))


def audio_path_for(transport: Transport, host: AudioHost) -> AudioPath:
    """The path for what the transport carries: media if it has a channel, else events."""
    return MediaAudioPath(host) if transport.media is not None else EventAudioPath(host)
