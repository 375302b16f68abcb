"""The output audio buffer of a media call: what is queued for playout, and whose it is.

On a WebRTC call the server does not send ``response.output_audio.delta``: it plays each
response's audio into the call's outgoing track and reports the playout itself with
``output_audio_buffer.started`` (the first audio of a response went out),
``output_audio_buffer.stopped`` (all of it went out and the response is done) and
``output_audio_buffer.cleared`` (a barge-in or the client's ``output_audio_buffer.clear``
dropped what was left). It also truncates the unheard audio of an item itself
(protocol.md §1.2, §9.6, §16.4).

:class:`OutputAudioBuffer` is that bookkeeping, free of I/O. It turns each item's 24 kHz
audio into the track's 48 kHz with one stateful resampler per item, remembers in order
which response and item each queued sample belongs to, and is told how much the track
still holds each time a frame goes to the encoder; from that it knows how many samples of
each item were handed out, which is where a cut truncates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ._audio import StreamResampler
from ._common import MODEL_RATE, Int16Array

__all__ = ["STARTED", "STOPPED", "Cut", "OutputAudioBuffer"]

STARTED = "output_audio_buffer.started"
STOPPED = "output_audio_buffer.stopped"


@dataclass
class _Segment:
    """A run of queued samples of one item."""

    response_id: str
    item_id: str
    remaining: int


@dataclass
class _ItemAudio:
    pushed: int = 0  # samples queued in total (at the track's rate)
    handed: int = 0  # samples handed to the encoder


@dataclass
class _Playout:
    """One response's audio in the buffer."""

    items: dict[str, _ItemAudio] = field(default_factory=dict)
    queued: int = 0  # samples not handed out yet
    started: bool = False
    done: bool = False  # response.done: no more audio comes


@dataclass(frozen=True)
class Cut:
    """A response whose playout a clear stopped.

    Attributes:
        response_id: The response.
        handed_ms: Per item, the audio handed out before the cut, in ms (floored).
        unheard: The items whose audio was not all handed out (what to truncate).
        generating: Whether the response was still producing audio.
    """

    response_id: str
    handed_ms: dict[str, int]
    unheard: frozenset[str]
    generating: bool


class OutputAudioBuffer:
    """Output audio queued on a call's track, by response and item.

    Args:
        rate: The track's sample rate, in Hz (WebRTC: 48 kHz).
    """

    def __init__(self, rate: int = 48_000) -> None:
        self.rate = rate
        self._segments: deque[_Segment] = deque()
        self._playouts: dict[str, _Playout] = {}
        self._streams: dict[str, StreamResampler] = {}
        self._muted: set[str] = set()
        #: Samples queued and not handed out yet, over all responses.
        self.queued = 0
        #: The last response that queued audio, if any.
        self.last_response_id: str | None = None

    @property
    def responses(self) -> list[str]:
        """The responses with audio in the buffer (queued, playing or not yet done)."""
        return list(self._playouts)

    def push(self, response_id: str, item_id: str, samples: Int16Array) -> Int16Array:
        """Queue the next 24 kHz chunk of an item; return it at the track's rate.

        The returned samples must go to the track now, in this order. A response a clear
        cut while it was generating queues nothing more (an empty array comes back).
        """
        if response_id in self._muted:
            return np.zeros(0, dtype=np.int16)
        stream = self._streams.get(item_id)
        if stream is None:
            stream = self._streams[item_id] = StreamResampler(MODEL_RATE, self.rate)
        out = stream.process(samples)
        n = int(out.size)
        if n == 0:
            return out
        playout = self._playouts.get(response_id)
        if playout is None:
            playout = self._playouts[response_id] = _Playout()
        item = playout.items.setdefault(item_id, _ItemAudio())
        item.pushed += n
        playout.queued += n
        self.queued += n
        last = self._segments[-1] if self._segments else None
        if last is not None and last.item_id == item_id and last.response_id == response_id:
            last.remaining += n
        else:
            self._segments.append(_Segment(response_id, item_id, n))
        self.last_response_id = response_id
        return out

    def end_item(self, item_id: str) -> None:
        """The item's audio is complete (``response.output_audio.done``)."""
        self._streams.pop(item_id, None)

    def finish(self, response_id: str) -> None:
        """The response is done (``response.done``): its audio ends with what is queued."""
        self._muted.discard(response_id)
        playout = self._playouts.get(response_id)
        if playout is not None:
            playout.done = True

    def played_to(self, remaining: int) -> list[tuple[str, str]]:
        """The track holds ``remaining`` samples: account for what it handed out.

        Returns:
            ``(event type, response_id)`` of each ``output_audio_buffer.started`` /
            ``stopped`` this makes, in order.
        """
        return self.advance(max(0, self.queued - remaining))

    def advance(self, samples: int) -> list[tuple[str, str]]:
        """``samples`` more queued samples went to the encoder (see :meth:`played_to`)."""
        events: list[tuple[str, str]] = []
        samples = min(samples, self.queued)
        self.queued -= samples
        while samples > 0 and self._segments:
            segment = self._segments[0]
            take = min(samples, segment.remaining)
            playout = self._playouts[segment.response_id]
            if not playout.started:
                playout.started = True
                events.append((STARTED, segment.response_id))
            segment.remaining -= take
            samples -= take
            playout.queued -= take
            playout.items[segment.item_id].handed += take
            if segment.remaining == 0:
                self._segments.popleft()
                self._stop_if_over(segment.response_id, events)
        for response_id in list(self._playouts):  # done while already played out
            self._stop_if_over(response_id, events)
        return events

    def _stop_if_over(self, response_id: str, events: list[tuple[str, str]]) -> None:
        playout = self._playouts.get(response_id)
        if playout is None or not playout.done or playout.queued:
            return
        del self._playouts[response_id]
        if playout.started:
            events.append((STOPPED, response_id))

    def clear(self) -> list[Cut]:
        """Drop everything queued (the track must drop its queue too); what was cut.

        Responses still generating are muted: their further audio is not queued.
        """
        cuts = []
        for response_id, playout in self._playouts.items():
            ms = {
                item_id: item.handed * 1000 // self.rate for item_id, item in playout.items.items()
            }
            unheard = frozenset(
                item_id for item_id, item in playout.items.items() if item.handed < item.pushed
            )
            cuts.append(Cut(response_id, ms, unheard, generating=not playout.done))
            if not playout.done:
                self._muted.add(response_id)
        self._segments.clear()
        self._playouts.clear()
        self._streams.clear()
        self.queued = 0
        return cuts
