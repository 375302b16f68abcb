"""Pacing a sample clock against the wall clock: one sleep per block, no drift.

A stream that is produced faster than real time (a WAV file standing in for a microphone,
a simulated device, a server streaming a reply) must hand out its blocks when a real
device would. :class:`PacingClock` answers "when is position ``p`` of the stream due?"
from one origin, so the error of one sleep never carries over to the next: a late wake-up
makes the next sleep shorter, and the stream stays on schedule however long it runs.

Example::

    clock = PacingClock(speed=1.0)
    for k, block in enumerate(blocks):
        send(block)
        await clock.wait((k + 1) * 0.020)   # block k + 1 is due 20 ms after block k

Give positions as ``count * block_s`` (or ``frames / sample_rate``), computed from an
integer count each time, rather than summing block lengths: a running float sum would
add its own rounding error.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

__all__ = ["PacingClock"]


class PacingClock:
    """When each position of a stream is due, at ``speed`` times real time.

    The origin (position 0) is the time of :meth:`start`, or of the first :meth:`due` /
    :meth:`wait` when :meth:`start` was not called.

    Args:
        speed: 1.0 real time, 4.0 four times faster, 0 unpaced (every position is due at
            once: :meth:`wait` only yields to the event loop).
        start: The origin, on ``clock``'s time line in seconds; ``None``: see above.
        clock: Time source in seconds (``time.monotonic``, which is also the asyncio
            loop's clock).

    Raises:
        ValueError: ``speed`` is negative or not finite.
    """

    def __init__(
        self,
        speed: float = 1.0,
        *,
        start: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed < 0:
            raise ValueError(f"speed must be a finite number >= 0 (0 = unpaced), got {speed!r}")
        self._speed = float(speed)
        self._clock = clock
        self._origin = start

    @property
    def speed(self) -> float:
        """The pace: multiples of real time (0: unpaced)."""
        return self._speed

    @property
    def origin(self) -> float | None:
        """Time of position 0 on ``clock``'s time line, in seconds (``None``: not started)."""
        return self._origin

    def start(self, at: float | None = None) -> None:
        """Set position 0 to ``at`` (seconds on ``clock``'s time line), default now."""
        self._origin = self._clock() if at is None else float(at)

    def due(self, position_s: float) -> float:
        """When ``position_s`` seconds of the stream are due, on ``clock``'s time line.

        Args:
            position_s: Position in the stream, in seconds of stream time.
        """
        origin = self._origin
        if origin is None:
            origin = self._origin = self._clock()
        if self._speed == 0:
            return origin
        return origin + position_s / self._speed

    def delay_s(self, position_s: float) -> float:
        """Seconds from now until ``position_s`` is due (0 when it is due already)."""
        delay = self.due(position_s) - self._clock()
        return delay if delay > 0 else 0.0

    async def wait(self, position_s: float) -> None:
        """Sleep until ``position_s`` seconds of the stream are due.

        Unpaced, and when the position is due already, it still yields once to the event
        loop, so a loop that waits between blocks never starves other tasks.

        Args:
            position_s: Position in the stream, in seconds of stream time.
        """
        await asyncio.sleep(self.delay_s(position_s))
