"""Playback buffer: what the output callback plays, and how much of each item was heard.

Theory of operation
-------------------
Audio arrives tagged with the conversation item it belongs to, ``(item_id, content_index)``
(one ``response.output_audio.delta`` after another), and is queued in arrival order. The
output callback pulls fixed-size blocks with :meth:`PlaybackBuffer.read` (or
:meth:`~PlaybackBuffer.read_into`, which does not allocate).

Position is counted on the device's sample clock: every frame handed to the callback
(audio or silence) advances a frame counter, and each item remembers the spans of that
counter its samples occupied. The frames handed out most recently are still inside the
device (its output latency, reported by the stream and set through
:attr:`PlaybackBuffer.output_latency_s`), so the frames that have *reached the speaker* are::

    played position = frames handed out - output latency (in frames)

and an item's played duration is the part of its spans before that position. Nothing is
estimated from wall time. The figure can lag the true position by at most the time since the
last callback (one block): it never claims more than was heard, which is what
``conversation.item.truncate``'s ``audio_end_ms`` needs.

States: the buffer starts *waiting*: it outputs silence until ``prebuffer_ms`` of audio is
queued (or the first or last queued item is marked finished: a complete item has nothing
more to wait for), then *plays*. When playback passes from a finished item to an unfinished
one, the prebuffer condition is checked again, so the next item starts with the same
cushion as the first (the silence while it fills is not an underrun: the item before it
ended normally). If the queue runs dry while the playing item is not finished, that is an
underrun: the rest of the block is silence, the underrun is counted, the silence inserted
until the item resumes (or finishes, or is cleared) is counted in ``underrun_ms``, and the
buffer waits for ``prebuffer_ms`` again before resuming. Running dry after an item was
marked finished is a normal end.

:meth:`PlaybackBuffer.clear` (barge-in) never touches samples already handed out. While
playing, the next ``fade_ms`` of queued audio (or all of it, if less is queued) is faded out
linearly to zero over exactly that length, the rest is dropped, and later reads yield the
fade then silence. While waiting (prebuffering, or after an underrun) the device is already
outputting silence, so nothing is faded: everything queued is dropped, and nothing of it
counts as played. Late audio for a cleared item (deltas already in flight) is not played;
it is counted in ``discarded_ms``.

Overflow policy: with ``max_buffered_ms`` set, a write that would exceed it keeps what fits
and drops the excess, counted in ``overflows`` / ``overflow_ms`` (the return value of
:meth:`~PlaybackBuffer.write` says how many frames were kept). From then on every later
write for that item is dropped and counted too, even once there is room again: the loss is
only ever at the end of an item, so played positions stay true positions in the item (what
``conversation.item.truncate`` needs). By default the buffer is unbounded, since the server
sends audio faster than real time. ``max_buffered_ms`` must be at least ``prebuffer_ms``,
or playback could never start.

Thread safety: one lock guards the queue and counters; it is held for the copy of one block
at most, never across conversions or allocations of the caller's data.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .errors import AudioError, AudioFormatError
from .formats import as_float32

__all__ = [
    "PlaybackBuffer",
    "PlaybackError",
    "PlaybackStats",
    "PlayedPosition",
]

Float32Array = npt.NDArray[np.float32]
_Key = tuple[str, int]


class PlaybackError(AudioError, ValueError):
    """An invalid argument to the playback buffer (item id, content index, duration)."""


def _playable(samples: Float32Array, *, in_place: bool = False) -> Float32Array:
    """The one rule for audio going to a device, whatever its rate.

    NaN or inf raise :class:`AudioFormatError`; finite samples beyond ±1 are clipped (as
    the microphone side does before sending). Returns ``samples`` itself when nothing is
    beyond ±1, else a clipped copy (or ``samples``, clipped, when ``in_place``).
    """
    if samples.size == 0:
        return samples
    lo, hi = float(samples.min()), float(samples.max())  # NaN propagates, quietly
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise AudioFormatError("playback samples must be finite: got NaN or inf")
    if lo < -1.0 or hi > 1.0:
        if in_place:
            np.clip(samples, -1.0, 1.0, out=samples)
            return samples
        clipped: Float32Array = np.clip(samples, -1.0, 1.0)
        return clipped
    return samples


@dataclass(frozen=True, slots=True)
class PlayedPosition:
    """How much of one item's audio was played.

    Attributes:
        item_id: The conversation item the audio belongs to.
        content_index: The content part within that item.
        played_ms: Milliseconds of the item that had reached the speaker when this was
            computed (device sample clock, corrected by the output latency). This is the
            value for ``conversation.item.truncate``'s ``audio_end_ms``.
        final_ms: Milliseconds of the item that will have been played once the device
            drains what it already holds (frames handed out, plus the fade for a clear).
            ``played_ms(item_id)`` reaches this value one output latency later.
    """

    item_id: str
    content_index: int
    played_ms: float
    final_ms: float


@dataclass(frozen=True, slots=True)
class PlaybackStats:
    """Counters of a :class:`PlaybackBuffer` (a snapshot).

    Attributes:
        frames_out: Frames handed to the output callback since creation (audio and silence).
        buffered_ms: Audio queued and not yet handed out, in ms.
        underruns: Times the queue ran dry while the playing item was unfinished.
        underrun_ms: Silence inserted during those underruns, in ms.
        overflows: Writes that did not fit under ``max_buffered_ms``.
        overflow_ms: Audio dropped by those writes, in ms.
        discarded_ms: Audio written for an item after it was cleared (not played), in ms.
        cleared_ms: Queued audio dropped by :meth:`PlaybackBuffer.clear`, in ms.
        output_latency_s: The output latency last reported by the device, in seconds.
    """

    frames_out: int
    buffered_ms: float
    underruns: int
    underrun_ms: float
    overflows: int
    overflow_ms: float
    discarded_ms: float
    cleared_ms: float
    output_latency_s: float


@dataclass(slots=True)
class _Item:
    received: int = 0
    finished: bool = False
    cleared: bool = False
    # A write for this item overflowed: later writes are dropped so the loss is at its end.
    overflowed: bool = False
    # [start, end) spans of the global output frame counter holding this item's samples.
    spans: list[list[int]] = field(default_factory=list)


@dataclass(slots=True)
class _Segment:
    key: _Key
    data: Float32Array
    pos: int = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos


class PlaybackBuffer:
    """Queue of item-tagged PCM feeding an output callback, with exact played accounting.

    Mono only: the device layer duplicates the signal onto the device's channels.

    Args:
        sample_rate: Rate of the audio written and read, in Hz (the device's rate).
        prebuffer_ms: Audio to queue before starting or resuming after an underrun, in ms.
        fade_ms: Default fade-out length for :meth:`clear`, in ms.
        max_buffered_ms: Most audio the queue may hold, in ms; ``None`` for no limit.

    Raises:
        PlaybackError: A negative or non-finite duration, a non-positive rate, or
            ``max_buffered_ms`` below ``prebuffer_ms`` (playback could never start).
    """

    def __init__(
        self,
        sample_rate: int = 24_000,
        *,
        prebuffer_ms: float = 60.0,
        fade_ms: float = 5.0,
        max_buffered_ms: float | None = None,
    ) -> None:
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise PlaybackError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
        self._rate = sample_rate
        self._prebuffer = self._ms_to_frames(prebuffer_ms, "prebuffer_ms")
        self._fade_ms = float(fade_ms)
        self._ms_to_frames(fade_ms, "fade_ms")
        self._max: int | None = None
        if max_buffered_ms is not None:
            self._max = self._ms_to_frames(max_buffered_ms, "max_buffered_ms")
            # Compared in ms, so the check does not depend on the rate's rounding.
            if max_buffered_ms < prebuffer_ms:
                raise PlaybackError(
                    f"max_buffered_ms ({max_buffered_ms!r}) must be >= prebuffer_ms "
                    f"({prebuffer_ms!r}): the queue could never reach the prebuffer"
                )
        self._lock = threading.Lock()
        self._queue: deque[_Segment] = deque()
        self._fade: deque[_Segment] = deque()
        self._buffered = 0  # frames in _queue (not _fade)
        self._items: dict[_Key, _Item] = {}
        self._playing = False
        self._current: _Key | None = None  # item whose samples were handed out last
        self._starved = False
        self._frames_out = 0
        self._latency_s = 0.0
        self._underruns = 0
        self._underrun_frames = 0
        self._overflows = 0
        self._overflow_frames = 0
        self._discarded_frames = 0
        self._cleared_frames = 0

    # -- configuration -------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Rate of the audio in this buffer, in Hz."""
        return self._rate

    @property
    def output_latency_s(self) -> float:
        """Time from handing a frame to the callback until it reaches the speaker, in s.

        Set by the device layer from the stream's reported latency; 0 without a device.
        """
        return self._latency_s

    @output_latency_s.setter
    def output_latency_s(self, value: float) -> None:
        self._latency_s = self._check_latency(value)

    def _ms_to_frames(self, ms: float, name: str) -> int:
        if not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
            raise PlaybackError(f"{name} must be a finite number of ms >= 0, got {ms!r}")
        return int(round(ms * self._rate / 1000.0))

    @staticmethod
    def _check_latency(value: float) -> float:
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise PlaybackError(f"output_latency_s must be finite seconds >= 0, got {value!r}")
        return float(value)

    # -- producer side ---------------------------------------------------------------

    def write(self, pcm: npt.ArrayLike, item_id: str, content_index: int = 0) -> int:
        """Queue audio for an item.

        Args:
            pcm: Mono samples at :attr:`sample_rate`: float32 in [-1, 1] or int16, shaped
                ``(frames,)`` or ``(frames, 1)``. Finite float samples beyond ±1 are
                clipped; NaN and inf are refused.
            item_id: The conversation item the audio belongs to.
            content_index: The content part within the item (>= 0).

        Returns:
            Frames queued: fewer than given when ``max_buffered_ms`` cut the write, 0 for
            every later write of an item that overflowed once (both counted in
            ``overflows`` / ``overflow_ms``), 0 when the item was already cleared (counted
            in ``discarded_ms``).

        Raises:
            AudioFormatError: Not mono, not a numeric sample type, or NaN / inf samples
                (nothing of the write is queued).
            PlaybackError: Invalid ``item_id`` / ``content_index``, or the item was already
                marked finished.
        """
        key = _check_key(item_id, content_index)
        samples = as_float32(pcm)
        if samples.ndim == 2 and samples.shape[1] == 1:
            samples = samples[:, 0]
        if samples.ndim != 1:
            raise AudioFormatError(
                f"PlaybackBuffer is mono: expected (frames,) or (frames, 1), got {samples.shape}"
            )
        # Own the data: the caller may reuse its array; done outside the lock.
        samples = _playable(np.array(samples, dtype=np.float32, copy=True), in_place=True)
        n = len(samples)
        with self._lock:
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = _Item()
            if item.cleared:
                self._discarded_frames += n
                return 0
            if item.finished:
                raise PlaybackError(f"item {key[0]!r}/{key[1]} was marked finished")
            if item.overflowed:
                # Keep the loss at the item's end: a later write must not resume it after
                # a hole, which would shift every later sample's position in the item.
                self._overflows += 1
                self._overflow_frames += n
                return 0
            if self._max is not None and self._buffered + n > self._max:
                keep = max(0, self._max - self._buffered)
                item.overflowed = True
                self._overflows += 1
                self._overflow_frames += n - keep
                samples = samples[:keep]
                n = keep
            if n:
                self._queue.append(_Segment(key, samples))
                self._buffered += n
                item.received += n
            return n

    def mark_finished(self, item_id: str, content_index: int | None = None) -> None:
        """Say no more audio will come for an item (``response.output_audio.done``).

        Playback then starts even if less than ``prebuffer_ms`` is queued, and running dry
        after its last sample is a normal end, not an underrun.

        Args:
            item_id: The item.
            content_index: One content part, or ``None`` for every part of the item.
        """
        with self._lock:
            for key in self._keys(item_id, content_index, create=True):
                self._items[key].finished = True
                if key == self._current:
                    self._starved = False

    # -- consumer side (output callback thread) ---------------------------------------

    def read(self, frames: int) -> Float32Array:
        """Return the next ``frames`` frames for the output callback (silence-filled).

        Args:
            frames: Number of frames the device asks for.
        """
        out = np.empty(frames, dtype=np.float32)
        self.read_into(out)
        return out

    def read_into(self, out: Float32Array, output_latency_s: float | None = None) -> None:
        """Fill ``out`` (1-D float32) with the next frames; allocation-free.

        Args:
            out: Destination, 1-D float32; its length is the number of frames read.
            output_latency_s: The stream's output latency reported with this callback, in
                seconds, measured from the end of this block; updated atomically with the
                frame counter. ``None`` keeps the previous value.
        """
        if out.ndim != 1:
            raise AudioFormatError(f"read_into needs a 1-D array, got shape {out.shape}")
        frames = len(out)
        latency = None if output_latency_s is None else self._check_latency(output_latency_s)
        with self._lock:
            if latency is not None:
                self._latency_s = latency
            filled = self._drain(self._fade, out, 0)
            if not self._playing and self._ready():
                self._playing = True
                self._starved = False
            if self._playing:
                filled = self._drain(self._queue, out, filled)
                if not self._queue:
                    self._playing = False
            if filled < frames:
                out[filled:] = 0.0
                if not self._starved:
                    # Silence while the item handed out last still expects audio: underrun.
                    cur = self._items.get(self._current) if self._current else None
                    if cur is not None and not (cur.finished or cur.cleared):
                        self._starved = True
                        self._underruns += 1
                if self._starved:
                    self._underrun_frames += frames - filled
            self._frames_out += frames

    def _ready(self) -> bool:
        """Whether the queue may start playing: prebuffer reached, or nothing to wait for."""
        if not self._queue:
            return False
        return (
            self._buffered >= self._prebuffer
            or self._items[self._queue[0].key].finished
            or self._items[self._queue[-1].key].finished
        )

    def _drain(self, queue: deque[_Segment], out: Float32Array, filled: int) -> int:
        """Copy queued segments into ``out[filled:]``; return the new fill level.

        For the main queue, stops playing where a finished item hands over to an
        unfinished one that is not :meth:`_ready` (it waits for its prebuffer).
        """
        frames = len(out)
        while filled < frames and queue:
            seg = queue[0]
            if queue is self._queue and seg.key != self._current:
                prev = self._items.get(self._current) if self._current else None
                if (
                    prev is not None
                    and prev.finished
                    and not self._items[seg.key].finished
                    and not self._ready()
                ):
                    self._playing = False
                    break
            n = min(seg.remaining, frames - filled)
            out[filled : filled + n] = seg.data[seg.pos : seg.pos + n]
            start = self._frames_out + filled
            spans = self._items[seg.key].spans
            if spans and spans[-1][1] == start:
                spans[-1][1] = start + n
            else:
                spans.append([start, start + n])
            self._current = seg.key
            seg.pos += n
            filled += n
            if queue is self._queue:
                self._buffered -= n
            if seg.remaining == 0:
                queue.popleft()
        return filled

    # -- barge-in ---------------------------------------------------------------------

    def clear(self, fade_ms: float | None = None) -> PlayedPosition | None:
        """Stop playback: fade out over ``fade_ms``, drop the rest, report the position.

        Samples already handed to the device are not touched. While playing, the next
        read yields the fade (``fade_ms``, or less if less is queued, ramped to zero over
        exactly its length), then silence; while waiting for the prebuffer (or after an
        underrun) the device is silent already, so nothing is faded and nothing of the
        queued audio counts as played. Items with queued audio are marked cleared: later
        writes for them are discarded (counted).

        Args:
            fade_ms: Fade-out length in ms; ``None`` uses the buffer's default.

        Returns:
            The position of the item being played (the one handed out last, or the first
            queued one if nothing of it was played yet), or ``None`` if there is none.
        """
        fade = self._fade_frames(fade_ms)
        with self._lock:
            if self._current is None and self._queue:
                self._current = self._queue[0].key
            key = self._current
            # Only fade what is audible: a waiting buffer outputs silence, and fading in
            # from there would be a click. Never more than is queued, so the ramp below
            # reaches zero instead of stopping part-way.
            fade = min(fade, self._buffered) if self._playing else 0
            # Take the next `fade` frames of the queue and ramp them down to zero.
            taken = 0
            pieces: list[_Segment] = []
            while taken < fade and self._queue:
                seg = self._queue[0]
                n = min(seg.remaining, fade - taken)
                pieces.append(_Segment(seg.key, seg.data[seg.pos : seg.pos + n].copy()))
                seg.pos += n
                taken += n
                if seg.remaining == 0:
                    self._queue.popleft()
            offset = 0
            for piece in pieces:
                n = len(piece.data)
                # Gain (fade - i) / (fade + 1) for i = 0..fade-1: falls to ~0, never 1 -> 0.
                ramp = np.arange(fade - offset, fade - offset - n, -1, dtype=np.float32)
                piece.data *= ramp / np.float32(fade + 1)
                offset += n
                self._fade.append(piece)
            for seg in self._queue:
                self._cleared_frames += seg.remaining
                self._items[seg.key].cleared = True
            for piece in pieces:
                self._items[piece.key].cleared = True
            if key is not None:
                self._items[key].cleared = True
            self._queue.clear()
            self._buffered = 0
            self._playing = False
            self._starved = False
            if key is None:
                return None
            played = self._played_frames(key)
            final = self._handed(key) + sum(len(p.data) for p in pieces if p.key == key)
            return PlayedPosition(key[0], key[1], self._ms(played), self._ms(final))

    def _fade_frames(self, fade_ms: float | None) -> int:
        if fade_ms is None:
            fade_ms = self._fade_ms
        return self._ms_to_frames(fade_ms, "fade_ms")

    # -- queries ----------------------------------------------------------------------

    def played_ms(self, item_id: str, content_index: int | None = None) -> float:
        """Milliseconds of an item that have reached the speaker (0 for unknown items).

        Args:
            item_id: The item.
            content_index: One content part, or ``None`` for the sum over its parts.
        """
        with self._lock:
            keys = self._keys(item_id, content_index)
            return self._ms(sum(self._played_frames(k) for k in keys))

    def received_ms(self, item_id: str, content_index: int | None = None) -> float:
        """Milliseconds of audio written for an item (0 for unknown items).

        Args:
            item_id: The item.
            content_index: One content part, or ``None`` for the sum over its parts.
        """
        with self._lock:
            keys = self._keys(item_id, content_index)
            return self._ms(sum(self._items[k].received for k in keys))

    def position(self) -> PlayedPosition | None:
        """Played position of the item handed out last (``None`` before any playback)."""
        with self._lock:
            key = self._current
            if key is None:
                return None
            played = self._played_frames(key)
            return PlayedPosition(key[0], key[1], self._ms(played), self._ms(self._handed(key)))

    @property
    def current_item(self) -> tuple[str, int] | None:
        """``(item_id, content_index)`` of the audio handed out last, or ``None``."""
        return self._current

    @property
    def buffered_ms(self) -> float:
        """Audio queued and not yet handed out, in ms (excluding a pending fade)."""
        return self._ms(self._buffered)

    @property
    def playing(self) -> bool:
        """Whether the buffer is handing out audio (not waiting for the prebuffer)."""
        return self._playing

    @property
    def stalled(self) -> bool:
        """Whether queued audio is held back until more arrives or its item is finished.

        True while not playing with less than ``prebuffer_ms`` queued and no queued item
        marked finished: reads yield silence until a write reaches the prebuffer or
        :meth:`mark_finished` is called.
        """
        with self._lock:
            return not self._playing and bool(self._queue) and not self._ready()

    @property
    def underruns(self) -> int:
        """Times the queue ran dry while the playing item was unfinished."""
        return self._underruns

    @property
    def underrun_ms(self) -> float:
        """Silence inserted during underruns, in ms."""
        return self._ms(self._underrun_frames)

    @property
    def frames_out(self) -> int:
        """Frames handed to the output callback since creation (audio and silence)."""
        return self._frames_out

    def stats(self) -> PlaybackStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return PlaybackStats(
                frames_out=self._frames_out,
                buffered_ms=self._ms(self._buffered),
                underruns=self._underruns,
                underrun_ms=self._ms(self._underrun_frames),
                overflows=self._overflows,
                overflow_ms=self._ms(self._overflow_frames),
                discarded_ms=self._ms(self._discarded_frames),
                cleared_ms=self._ms(self._cleared_frames),
                output_latency_s=self._latency_s,
            )

    def forget(self, item_id: str) -> None:
        """Drop the bookkeeping of an item that is no longer queued (bounds memory).

        Raises:
            PlaybackError: The item still has queued audio.
        """
        with self._lock:
            keys = set(self._keys(item_id, None))
            if any(seg.key in keys for seg in (*self._queue, *self._fade)):
                raise PlaybackError(f"item {item_id!r} still has queued audio")
            for key in keys:
                del self._items[key]
                if self._current == key:
                    self._current = None

    # -- internals (lock held) -----------------------------------------------------------

    def _keys(self, item_id: str, content_index: int | None, *, create: bool = False) -> list[_Key]:
        if content_index is None:
            if not isinstance(item_id, str) or not item_id:
                raise PlaybackError(f"item_id must be a non-empty str, got {item_id!r}")
            keys = [k for k in self._items if k[0] == item_id]
            if not keys and create:
                keys = [(item_id, 0)]
        else:
            key = _check_key(item_id, content_index)
            keys = [key] if key in self._items or create else []
        if create:
            for key in keys:
                self._items.setdefault(key, _Item())
        return keys

    def _handed(self, key: _Key) -> int:
        return sum(end - start for start, end in self._items[key].spans)

    def _played_frames(self, key: _Key) -> int:
        pos = self._frames_out - int(round(self._latency_s * self._rate))
        total = 0
        for start, end in self._items[key].spans:
            if start >= pos:
                break
            total += min(end, pos) - start
        return total

    def _ms(self, frames: int) -> float:
        return frames * 1000.0 / self._rate


def _check_key(item_id: str, content_index: int) -> _Key:
    if not isinstance(item_id, str) or not item_id:
        raise PlaybackError(f"item_id must be a non-empty str, got {item_id!r}")
    if isinstance(content_index, bool) or not isinstance(content_index, int) or content_index < 0:
        raise PlaybackError(f"content_index must be an int >= 0, got {content_index!r}")
    return (item_id, content_index)
