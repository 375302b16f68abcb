"""aiortc pieces shared by the WebRTC client transport and the local server's calls.

Imported only where the ``webrtc`` extra is installed (aiortc, PyAV). What is here:

* :class:`PcmTrack`: an outgoing audio track fed with mono PCM16 at 48 kHz, paced in real
  time in 20 ms frames with continuous ``pts``; silence when nothing is queued, so a
  pause in the audio never becomes a backlog that is sent late.
* :class:`OpusEncoder` and :func:`decode_inline`: our own Opus codec for our peers (mono,
  32 kb/s, in the event loop's thread) instead of aiortc's (stereo 96 kb/s, the encoder in
  a thread pool, the decoder in a thread per receiver, with a thread hand-off per 20 ms
  frame). The wire format stays standard ``opus/48000/2``; a mono Opus stream is what
  browsers send too. Packets we encode carry no ``ssrc-audio-level`` header extension
  (aiortc computes it only for frames it encodes itself).
* :func:`frame_to_mono`: a decoded frame (aiortc's Opus decoder gives packed stereo s16
  at 48 kHz even for a mono sender; ours gives mono) as mono PCM16.
* :func:`ensure_host_candidates`: aioice skips 127.0.0.1 when it lists host addresses,
  so on a machine with only loopback (a container without a network) a peer has no ICE
  candidate at all and never connects. Where no other address exists, loopback is used.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _opus
from .errors import require_extra

require_extra("aiortc", "webrtc")

import aioice.ice  # noqa: E402
from aiortc import MediaStreamTrack  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402
from av import AudioFrame, CodecContext, Packet  # noqa: E402
from av.error import FFmpegError  # noqa: E402

__all__ = [
    "FRAME",
    "OPUS_BITRATE",
    "OPUS_COMPLEXITY",
    "RATE",
    "OpusEncoder",
    "PcmFrame",
    "PcmTrack",
    "decode_inline",
    "ensure_host_candidates",
    "frame_to_mono",
    "set_jitter_buffer",
]

logger = logging.getLogger("realtime_client")

#: WebRTC audio: Opus at 48 kHz, 20 ms frames.
RATE = 48_000
FRAME = 960
_TIME_BASE = fractions.Fraction(1, RATE)
#: Our Opus encoder's bit rate: mono speech at 32 kb/s (aiortc's encoder: stereo 96 kb/s).
OPUS_BITRATE = 32_000
#: Our Opus encoder's complexity (0–10; libopus's default is 10).
OPUS_COMPLEXITY = 5


class OpusEncoder:
    """Mono PCM16 at 48 kHz → one Opus packet per 20 ms frame.

    Called in the caller's thread (no thread-pool hand-off per frame), and by default in
    libopus's restricted low-delay mode (CELT only) at complexity 5: on speech that is
    about a quarter of the CPU of the VoIP mode at complexity 10 (which picks SILK or
    hybrid coding: ≈ 240 µs a frame against ≈ 65 µs here), with 4 ms less algorithmic
    delay; at 32 kb/s, CELT is close to transparent for speech. aiortc's encoder (stereo,
    96 kb/s, VoIP) costs about 190 µs a frame plus the thread hand-off. libopus is called
    directly where it can be (:mod:`realtime_client._opus`), else through PyAV.

    Args:
        bitrate: Target bit rate in bit/s.
        complexity: libopus complexity 0–10.
        low_delay: Restricted low-delay mode (CELT only); ``False``: the VoIP mode
            (SILK / hybrid for speech, better below ~24 kb/s and under heavy loss).
    """

    def __init__(
        self,
        bitrate: int = OPUS_BITRATE,
        complexity: int = OPUS_COMPLEXITY,
        *,
        low_delay: bool = True,
    ) -> None:
        lib = _opus.load()
        application = _opus.APPLICATION_RESTRICTED_LOWDELAY if low_delay else _opus.APPLICATION_VOIP
        self._direct = (
            _opus.Encoder(lib, bitrate, complexity, application) if lib is not None else None
        )
        self._codec: Any = None
        if self._direct is None:
            codec: Any = CodecContext.create("libopus", "w")
            codec.bit_rate = bitrate
            codec.format = "s16"
            codec.layout = "mono"
            codec.sample_rate = RATE
            codec.time_base = _TIME_BASE
            codec.options = {
                "application": "lowdelay" if low_delay else "voip",
                "compression_level": str(complexity),
            }
            self._codec = codec

    def encode(self, samples: npt.NDArray[np.int16], pts: int) -> Packet[Any]:
        """One 20 ms frame (960 samples) → its packet, stamped ``pts`` (1/48000 s units)."""
        if self._direct is not None:
            packet = Packet(self._direct.encode(samples))
        else:
            frame = AudioFrame(format="s16", layout="mono", samples=FRAME)
            frame.planes[0].update(samples.tobytes())
            frame.pts = pts
            frame.sample_rate = RATE
            frame.time_base = _TIME_BASE
            packets = self._codec.encode(frame)
            # libopus answers every 20 ms frame with one packet (its look-ahead delays
            # the audio, not the packet); an empty list would only come from a broken build.
            packet = packets[0] if packets else Packet(b"\xf8\xff\xfe")
        # The frame's own pts (PyAV's runs 312 samples of pre-skip behind) keeps the RTP
        # timestamps on the track's clock.
        packet.pts = pts
        packet.time_base = _TIME_BASE
        return packet


class PcmFrame:
    """A decoded frame as our decoder gives it: mono PCM16 samples and their timing.

    Stands in for :class:`~av.AudioFrame` on a remote track whose Opus we decode
    (:func:`decode_inline`); :func:`frame_to_mono` takes either.
    """

    __slots__ = ("pts", "sample_rate", "samples", "time_base")

    def __init__(self, samples: npt.NDArray[np.int16], pts: int) -> None:
        self.samples = samples
        self.pts = pts
        self.sample_rate = RATE
        self.time_base = _TIME_BASE


class PcmTrack(MediaStreamTrack):
    """An outgoing audio track of queued PCM16 (mono, 48 kHz), paced in real time.

    Args:
        max_backlog_ms: Queued audio beyond this waits in :meth:`wait_room` (the
            caller's backpressure), in ms.
        on_frame: Called with each frame's samples (int16, 960) as it is handed to the
            encoder, and whether it was queued audio (``False``: silence filler).
        own_codec: Encode here with an :class:`OpusEncoder` (the default): :meth:`recv`
            gives Opus packets, which aiortc's sender puts on the wire as they are.
            ``False``: give :class:`~av.AudioFrame` objects and let aiortc encode (its
            stereo 96 kb/s encoder in a thread pool; what the benchmark compares
            against). Only for Opus, the codec every peer here negotiates first.
    """

    kind = "audio"

    def __init__(
        self,
        *,
        max_backlog_ms: float = 200.0,
        on_frame: Callable[[npt.NDArray[np.int16], bool], None] | None = None,
        own_codec: bool = True,
    ) -> None:
        super().__init__()
        self._encoder = OpusEncoder() if own_codec else None
        self._chunks: deque[npt.NDArray[np.int16]] = deque()
        self._queued = 0
        self._max = int(max_backlog_ms * RATE / 1000)
        self._room = asyncio.Event()
        self._room.set()
        self._on_frame = on_frame
        self._start: float | None = None
        self._pts = 0
        #: Frames handed out, and how many of them were silence filler.
        self.frames = 0
        self.silent_frames = 0

    @property
    def backlog_ms(self) -> float:
        """Queued audio not yet handed to the encoder, in ms."""
        return self._queued * 1000 / RATE

    def push(self, pcm: npt.NDArray[np.int16]) -> None:
        """Queue audio (any length); it goes out in order, 20 ms at a time."""
        if len(pcm):
            self._chunks.append(np.ascontiguousarray(pcm, dtype=np.int16))
            self._queued += len(pcm)
            if self._queued > self._max:
                self._room.clear()

    async def wait_room(self) -> None:
        """Wait until the backlog is below ``max_backlog_ms`` (or the track ended)."""
        while not self._room.is_set() and self.readyState == "live":
            await self._room.wait()

    def clear(self) -> float:
        """Drop what is queued (playback stopped); returns the ms dropped."""
        dropped = self._queued
        self._chunks.clear()
        self._queued = 0
        self._room.set()
        return dropped * 1000 / RATE

    def _take(self) -> tuple[npt.NDArray[np.int16], bool]:
        out = np.zeros(FRAME, np.int16)
        filled = 0
        while filled < FRAME and self._chunks:
            chunk = self._chunks[0]
            n = min(FRAME - filled, len(chunk))
            out[filled : filled + n] = chunk[:n]
            filled += n
            if n == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[n:]
        self._queued -= filled
        if self._queued <= self._max:
            self._room.set()
        return out, filled > 0

    async def recv(self) -> AudioFrame | Packet[Any]:
        """The next 20 ms frame, at its due time (silence if nothing is queued).

        An Opus packet with our encoder, else the PCM frame for aiortc's.
        """
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self._pts += FRAME
            wait = self._start + self._pts / RATE - now
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.2:
                # The loop stalled: restart the clock rather than burst to catch up.
                self._start = now - self._pts / RATE
        samples, audible = self._take()
        self.frames += 1
        self.silent_frames += not audible
        if self._on_frame is not None:
            self._on_frame(samples, audible)
        if self._encoder is not None:
            return self._encoder.encode(samples, self._pts)
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(samples.tobytes())
        frame.pts = self._pts
        frame.sample_rate = RATE
        frame.time_base = _TIME_BASE
        return frame


def frame_to_mono(frame: Any) -> npt.NDArray[np.int16]:
    """A decoded audio frame as mono PCM16 at its own rate (channels averaged)."""
    if isinstance(frame, PcmFrame):
        return frame.samples
    data: npt.NDArray[Any] = np.asarray(frame.to_ndarray())
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        mono = data.mean(axis=0) if channels > 1 else data[0]
    else:
        interleaved = data.reshape(-1)
        mono = interleaved.reshape(-1, channels).mean(axis=1) if channels > 1 else interleaved
    if frame.format.name.startswith("s16"):
        pcm: npt.NDArray[np.int16] = (
            np.asarray(mono, dtype=np.int16) if channels == 1 else np.round(mono).astype(np.int16)
        )
        return pcm
    floats = np.clip(np.asarray(mono, dtype=np.float32), -1.0, 1.0)
    out: npt.NDArray[np.int16] = np.round(floats * 32767).astype(np.int16)
    return out


_patched = False


def ensure_host_candidates() -> bool:
    """Let ICE use 127.0.0.1 where the machine has no other address; True if applied.

    aioice leaves loopback out of its host candidates. With no other interface (a
    container without a network) a peer would offer no candidate and hang; with this, two
    peers on the same machine still connect.
    """
    global _patched
    if _patched:
        return True
    original = aioice.ice.get_host_addresses
    if original(use_ipv4=True, use_ipv6=True):
        return False

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found: list[str] = original(use_ipv4, use_ipv6)
        return found or (["127.0.0.1"] if use_ipv4 else [])

    aioice.ice.get_host_addresses = with_loopback
    _patched = True
    logger.warning(
        "no network interface but loopback: WebRTC uses 127.0.0.1 candidates "
        "(only peers on this machine can connect)"
    )
    return True


def set_jitter_buffer(receiver: Any, frames: int) -> bool:
    """Hold ``frames`` 20 ms frames in a receiver's audio jitter buffer; True if applied.

    aiortc holds 4 (80 ms, nearly all of its mouth-to-ear latency on a clean link) and
    offers no setting; this replaces the receiver's buffer before packets arrive. One
    frame is the minimum (a frame is complete when the next one starts). More frames
    ride out more network jitter and reordering.
    """
    from aiortc.jitterbuffer import JitterBuffer

    name = "_RTCRtpReceiver__jitter_buffer"
    current = getattr(receiver, name, None)
    if not isinstance(current, JitterBuffer) or getattr(current, "_is_video", False):
        return False
    setattr(receiver, name, JitterBuffer(capacity=16, prefetch=max(1, min(frames, 8))))
    return True


class _InlineDecoding:
    """Stands in for an ``RTCRtpReceiver``'s decoder queue: decodes Opus as it is put.

    aiortc puts each complete encoded frame on a :class:`queue.Queue` read by a decoder
    thread, which hands every decoded frame back to the event loop
    (``run_coroutine_threadsafe``): two thread hand-offs per 20 ms frame, more CPU than
    decoding it. Here Opus is decoded (mono s16, 48 kHz) in the loop's thread and the
    frame (a :class:`PcmFrame`, or PyAV's frame where libopus cannot be called directly)
    goes straight onto the remote track's queue. Anything else (another codec, the
    ``None`` that stops the receiver) goes on to aiortc's thread, which still runs and
    still ends the track.
    """

    def __init__(self, output: asyncio.Queue[Any]) -> None:
        self._output = output
        self._thread_queue: queue.Queue[Any] = queue.Queue()
        self._decoder: Any = None
        self._failures = 0

    def put(self, task: Any) -> None:
        """aiortc hands over ``(codec, encoded_frame)``, or ``None`` when it stops."""
        if task is None or task[0].mimeType.lower() != "audio/opus":
            self._thread_queue.put(task)
            return
        encoded = task[1]
        if self._decoder is None:
            lib = _opus.load()
            if lib is not None:
                self._decoder = _opus.Decoder(lib)
            else:
                self._decoder = CodecContext.create("libopus", "r")
                self._decoder.format = "s16"
                self._decoder.layout = "mono"
                self._decoder.sample_rate = RATE
        try:
            if isinstance(self._decoder, _opus.Decoder):
                frames: list[Any] = [
                    PcmFrame(self._decoder.decode(encoded.data), encoded.timestamp)
                ]
            else:
                packet = Packet(encoded.data)
                packet.pts = encoded.timestamp
                packet.time_base = _TIME_BASE
                frames = self._decoder.decode(packet)
        except (FFmpegError, ValueError) as exc:  # a corrupt packet: keep the state
            self._failures += 1
            if self._failures == 1:
                logger.warning("Opus frame failed to decode: %s", exc)
            return
        for frame in frames:
            self._output.put_nowait(frame)

    def get(self) -> Any:
        """What aiortc's decoder thread waits for."""
        return self._thread_queue.get()


def decode_inline(receiver: Any) -> bool:
    """Decode a receiver's Opus in the event loop's thread, mono; True if applied.

    Call it when the ``track`` event fires (before the receiver starts). Saves two
    thread hand-offs per 20 ms frame and the stereo downmix; see :class:`_InlineDecoding`.
    """
    name = "_RTCRtpReceiver__decoder_queue"
    track = getattr(receiver, "track", None)
    output = getattr(track, "_queue", None)
    if not isinstance(getattr(receiver, name, None), queue.Queue) or not isinstance(
        output, asyncio.Queue
    ):
        return False
    if getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is not None:
        return False  # already started: its thread holds the old queue
    setattr(receiver, name, _InlineDecoding(output))
    return True
