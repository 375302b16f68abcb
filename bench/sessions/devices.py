"""The simulated full-duplex device of each session, and the timestamps it takes.

Each session's device is the audio library's own simulation: a
:class:`~realtime_client.audio.VirtualMicrophone` at 48 kHz whose clock ticks a
:class:`~realtime_client.audio.VirtualSpeaker` (24 kHz written, resampled to a 48 kHz
PlaybackBuffer: the code of :class:`audio.Speaker`), like one PortAudio duplex stream.
The probe hooks in where a measurement is taken: when a tick's time has come, when an
append leaves, when a delta arrives and when its samples are in the buffer.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

from realtime_client.audio import VirtualMicrophone, VirtualSpeaker

from .config import _DEVICE_BLOCK, API_RATE, DEVICE_RATE, FRAME_MS

__all__: list[str] = []


class _Window:
    """The measured interval, on ``time.monotonic()`` (the event loop's clock)."""

    def __init__(self) -> None:
        self.start = math.inf
        self.end = math.inf

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end


class _Probe:
    """Timestamps of one session."""

    def __init__(self, window: _Window) -> None:
        self.window = window
        self.lateness: list[float] = []
        self.send_latency: list[float] = []
        self.recv_latency: list[float] = []
        self.pending: deque[float] = deque()  # ideal times of blocks not yet on the socket
        self.arrivals: deque[float] = deque()  # socket arrival times of frames not yet read
        self.last_arrival = 0.0
        self.audio_frames = 0  # device-rate frames written to the speaker in the window
        self.socket_clock = False

    def ticked(self, index: int, due: float) -> None:
        """A device tick's time has come (``due``): how late it runs; its block is pending."""
        if due in self.window:
            self.lateness.append(time.monotonic() - due)
        self.pending.append(due)

    def sent(self) -> None:
        """An append was handed to the socket: latency from its block's last sample."""
        now = time.monotonic()
        if self.pending:
            due = self.pending.popleft()
            if due in self.window:
                self.send_latency.append(now - due)

    def received(self) -> None:
        """The next frame was read: remember when it reached the socket."""
        self.last_arrival = self.arrivals.popleft() if self.arrivals else time.monotonic()

    def buffered(self, frames: int) -> None:
        """The last frame's samples are in the PlaybackBuffer."""
        if self.last_arrival in self.window:
            self.recv_latency.append(time.monotonic() - self.last_arrival)
            self.audio_frames += frames

    def hook_arrivals(self, ws: Any) -> None:
        """Timestamp each data frame as ``websockets`` assembles it (in ``data_received``).

        Why this hook: ``recv()`` returns when the reader task is scheduled, which hides the
        event loop's own queueing delay, a real part of what the client adds.
        """
        assembler = getattr(ws, "recv_messages", None)
        put = getattr(assembler, "put", None)
        if assembler is None or put is None:
            return
        with contextlib.suppress(TypeError):
            # Frames that arrived with the handshake: their arrival time is unknown.
            self.arrivals.extend([time.monotonic()] * len(assembler.frames))
        arrivals = self.arrivals

        def timed_put(frame: Any) -> None:
            if frame.fin:
                arrivals.append(time.monotonic())
            put(frame)

        assembler.put = timed_put
        self.socket_clock = True


class _Speaker(VirtualSpeaker):
    """The 48 kHz device's speaker, telling the probe when a delta's samples are queued.

    A :class:`VirtualSpeaker` (so :meth:`audio.Speaker.write`, resampler tail flush on an
    item change included), without a clock of its own: the device's ticks play it.
    """

    def __init__(self, probe: _Probe) -> None:
        super().__init__(
            sample_rate=API_RATE, device_rate=DEVICE_RATE, speed=None, block_ms=FRAME_MS
        )
        self._probe = probe

    def write(self, pcm: npt.ArrayLike, item_id: str, content_index: int = 0) -> int:
        """Queue a delta's samples and time it (see :meth:`_Probe.buffered`)."""
        written = super().write(pcm, item_id, content_index)
        self._probe.buffered(written)
        return written


def _device(
    probe: _Probe, speaker: _Speaker, t0: float, block: npt.NDArray[np.float32]
) -> VirtualMicrophone:
    """48 kHz capture blocks (``block`` again and again), one per 20 ms on an ideal schedule.

    Tick ``k`` is due at ``t0 + k * 20 ms`` (its block's last sample). Each tick is a
    full-duplex callback: the probe notes the tick, the speaker is read, then the capture
    block is handed out. Nothing is skipped when the loop is late: a real device delivers
    the queued blocks back to back, which is what catching up does here.
    """
    return VirtualMicrophone(
        block,
        DEVICE_RATE,
        FRAME_MS,
        after="repeat",
        start=t0,
        speaker=speaker,
        on_block=probe.ticked,
    )


def _capture_block(index: int) -> npt.NDArray[np.float32]:
    """A 20 ms, 48 kHz block of a voice-like two-tone signal (content is irrelevant)."""
    t = np.arange(_DEVICE_BLOCK, dtype=np.float64) / DEVICE_RATE
    f = 180.0 + 7.0 * (index % 13)
    x = 0.2 * np.sin(2 * math.pi * f * t) + 0.05 * np.sin(2 * math.pi * 3.1 * f * t)
    return x.astype(np.float32)
