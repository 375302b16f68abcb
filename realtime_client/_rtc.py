"""aiortc pieces shared by the WebRTC client transport and the local server's calls.

Imported only where the ``webrtc`` extra is installed (aiortc, PyAV). What is here:

* :class:`PcmTrack`: an outgoing audio track fed with mono PCM16 at 48 kHz, paced in real
  time in 20 ms frames with continuous ``pts``; silence when nothing is queued, so a
  pause in the audio never becomes a backlog that is sent late.
* :func:`frame_to_mono`: a decoded frame (aiortc's Opus decoder gives packed stereo s16
  at 48 kHz even for a mono sender) as mono PCM16.
* :func:`ensure_host_candidates`: aioice skips 127.0.0.1 when it lists host addresses,
  so on a machine with only loopback (a container without a network) a peer has no ICE
  candidate at all and never connects. Where no other address exists, loopback is used.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import require_extra

require_extra("aiortc", "webrtc")

import aioice.ice  # noqa: E402
from aiortc import MediaStreamTrack  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402
from av import AudioFrame  # noqa: E402

__all__ = [
    "FRAME",
    "RATE",
    "PcmTrack",
    "ensure_host_candidates",
    "frame_to_mono",
    "set_jitter_buffer",
]

logger = logging.getLogger("realtime_client")

#: WebRTC audio: Opus at 48 kHz, 20 ms frames.
RATE = 48_000
FRAME = 960
_TIME_BASE = fractions.Fraction(1, RATE)


class PcmTrack(MediaStreamTrack):
    """An outgoing audio track of queued PCM16 (mono, 48 kHz), paced in real time.

    Args:
        max_backlog_ms: Queued audio beyond this waits in :meth:`wait_room` (the
            caller's backpressure), in ms.
        on_frame: Called with each frame's samples (int16, 960) as it is handed to the
            encoder, and whether it was queued audio (``False``: silence filler).
    """

    kind = "audio"

    def __init__(
        self,
        *,
        max_backlog_ms: float = 200.0,
        on_frame: Callable[[npt.NDArray[np.int16], bool], None] | None = None,
    ) -> None:
        super().__init__()
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

    async def recv(self) -> AudioFrame:
        """The next 20 ms frame, at its due time (silence if nothing is queued)."""
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
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(samples.tobytes())
        frame.pts = self._pts
        frame.sample_rate = RATE
        frame.time_base = _TIME_BASE
        return frame


def frame_to_mono(frame: Any) -> npt.NDArray[np.int16]:
    """A decoded audio frame as mono PCM16 at its own rate (channels averaged)."""
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
