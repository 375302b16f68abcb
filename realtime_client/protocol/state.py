"""Conversation state the protocol core keeps: items, parts, responses, usage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from .. import events as ev
from ..errors import RemoteProtocolError

__all__ = [
    "AudioPart",
    "Conversation",
    "ConversationSnapshot",
    "ItemState",
    "PartState",
    "ResponseState",
    "ResponseStatus",
    "UsageTotals",
    "MAX_DEFERRED_EVENTS",
    "MAX_DEFERRED_ITEMS",
    "MAX_INDEX",
    "b64_decoded_len",
    "check_index",
    "output_bytes_per_ms",
]

ResponseStatus = Literal["in_progress", "completed", "cancelled", "failed", "incomplete"]


def output_bytes_per_ms(fmt: ev.objects.AudioFormat | None) -> float:
    """Bytes of audio per millisecond for a session audio format (``None`` = PCM16 24 kHz)."""
    if isinstance(fmt, ev.PcmuFormat | ev.PcmaFormat):
        return 8.0  # G.711: 8,000 one-byte samples a second
    rate = fmt.rate if isinstance(fmt, ev.PcmFormat) and fmt.rate else 24_000
    return rate * 2 / 1000.0


def b64_decoded_len(data: str) -> int:
    """Length of the bytes a base64 string decodes to, without decoding it."""
    n = len(data)
    if n == 0:
        return 0
    pad = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return n * 3 // 4 - pad


#: Items whose early transcription events wait for them (see :meth:`Conversation.defer`).
MAX_DEFERRED_ITEMS = 64
#: Early transcription events kept per item.
MAX_DEFERRED_EVENTS = 4096

#: The largest ``content_index`` / ``output_index`` the core accepts: real responses
#: have a handful of parts and items; a hostile index must not allocate without bound.
MAX_INDEX = 1024


def check_index(index: int, name: str) -> None:
    """Refuse a negative or absurd index from the server.

    Raises:
        RemoteProtocolError: It is out of range.
    """
    if not 0 <= index <= MAX_INDEX:
        raise RemoteProtocolError(f"server sent {name} {index} (allowed: 0..{MAX_INDEX})")


@dataclass(slots=True)
class AudioPart:
    """Audio bytes retained for one content part (only with ``retain_audio_ms``)."""

    chunks: list[bytes] = field(default_factory=list)
    nbytes: int = 0
    dropped_bytes: int = 0

    def data(self) -> bytes:
        """The retained audio as one bytes object."""
        return b"".join(self.chunks)


@dataclass(slots=True)
class PartState:
    """One content part of an item, as accumulated from the server's events.

    Attributes:
        type: ``input_text``, ``input_audio``, ``output_text``, ``output_audio``, …
        text: Text so far (``output_text`` deltas, or the item's own text).
        transcript: Transcript so far (output audio transcript deltas).
        audio_ms: Output audio received for this part, in ms.
        done: The part's ``content_part.done`` (or the item's done) arrived.
    """

    type: str
    text: str = ""
    transcript: str = ""
    audio_ms: float = 0.0
    audio: AudioPart | None = None
    done: bool = False


@dataclass(slots=True)
class ItemState:
    """One conversation item and everything the server said about it.

    Attributes:
        id: The item id.
        type: ``message``, ``function_call``, ``function_call_output``, …
        role: ``user``, ``assistant`` or ``system`` for messages.
        phase: ``commentary`` (a preamble) or ``final_answer`` for a gpt-realtime-2.x
            assistant message; ``None`` for models without phases.
        status: ``in_progress``, ``completed`` or ``incomplete``.
        response_id: The response that produced it (assistant output), if any.
        parts: Content parts by content index.
        call_id, name, arguments: Function-call fields (arguments accumulate).
        output: A function-call output's result string.
        input_transcript: The user's audio transcribed (from the transcription events).
        input_transcript_done: The transcription completed (or failed).
        input_transcript_error: Why the transcription failed, if it did.
        truncated_at_ms: ``audio_end_ms`` of a ``conversation.item.truncated``.
        untruncated_audio_ms: The audio the item had received when it was (first)
            truncated, in ms: what its transcript covers.
        speech_start_ms, speech_end_ms: VAD times of a user audio item (input ms).
        in_conversation: False for out-of-band response output.
    """

    id: str
    type: str
    role: str | None = None
    phase: str | None = None
    status: str | None = None
    response_id: str | None = None
    parts: list[PartState] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""
    output: str | None = None
    input_transcript: str = ""
    input_transcript_done: bool = False
    input_transcript_error: ev.ErrorDetail | None = None
    truncated_at_ms: int | None = None
    untruncated_audio_ms: float | None = None
    speech_start_ms: int | None = None
    speech_end_ms: int | None = None
    in_conversation: bool = True

    @property
    def audio_ms(self) -> float:
        """Output audio received for this item, in ms (all parts)."""
        return sum(p.audio_ms for p in self.parts)

    @property
    def text(self) -> str:
        """The item's text: output text, else the audio transcript, else input text."""
        return "".join(p.text or p.transcript for p in self.parts)

    def part(self, index: int, kind: str = "") -> PartState:
        """The part at ``index``, created (with ``kind``) if the server skipped it.

        Raises:
            RemoteProtocolError: ``index`` is negative or beyond :data:`MAX_INDEX`.
        """
        check_index(index, "content_index")
        while len(self.parts) <= index:
            self.parts.append(PartState(type=kind))
        part = self.parts[index]
        if kind and not part.type:
            part.type = kind
        return part


@dataclass(slots=True)
class ResponseState:
    """One response and its lifecycle.

    Attributes:
        id: ``resp_…``.
        status: ``in_progress`` until ``response.done`` says otherwise.
        status_details: Why it ended (cancel reason, failure error, incomplete reason).
        output_item_ids: Its output items in ``output_index`` order.
        conversation_id: ``None`` for an out-of-band response.
        usage: Its token usage (from ``response.done``).
        metadata: The metadata it was created with.
    """

    id: str
    status: str = "in_progress"
    status_details: ev.StatusDetails | None = None
    output_item_ids: list[str] = field(default_factory=list)
    conversation_id: str | None = None
    usage: ev.Usage | None = None
    metadata: dict[str, str] | None = None

    @property
    def done(self) -> bool:
        """Whether ``response.done`` arrived."""
        return self.status != "in_progress"

    @property
    def out_of_band(self) -> bool:
        """Whether the response writes outside the default conversation."""
        return self.conversation_id is None


@dataclass(slots=True)
class UsageTotals:
    """Token usage summed over every ``response.done`` of the session, per modality."""

    responses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    cached_tokens: int = 0
    cached_text_tokens: int = 0
    cached_audio_tokens: int = 0
    cached_image_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    output_reasoning_tokens: int = 0

    def add(self, usage: ev.Usage) -> None:
        """Add one response's usage."""
        self.responses += 1
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        details = usage.input_token_details
        if details is not None:
            self.input_text_tokens += details.text_tokens or 0
            self.input_audio_tokens += details.audio_tokens or 0
            self.input_image_tokens += details.image_tokens or 0
            self.cached_tokens += details.cached_tokens or 0
            cached = details.cached_tokens_details
            if cached is not None:
                self.cached_text_tokens += cached.text_tokens or 0
                self.cached_audio_tokens += cached.audio_tokens or 0
                self.cached_image_tokens += cached.image_tokens or 0
        out = usage.output_token_details
        if out is not None:
            self.output_text_tokens += out.text_tokens or 0
            self.output_audio_tokens += out.audio_tokens or 0
            self.output_reasoning_tokens += out.reasoning_tokens or 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class Conversation:
    """Items in server order, plus every item the server told us about by id.

    Read it with :attr:`order`, iteration, :meth:`get` and :meth:`last`. The protocol
    core changes it from the server's events; :meth:`snapshot`, :meth:`restore`,
    :meth:`remove` and :meth:`insert` are what a restore after a reconnect uses.
    """

    def __init__(self) -> None:
        self.items: dict[str, ItemState] = {}
        self._order: list[str] = []
        # Transcription events that arrived before their item (late / out of order).
        self._orphan_transcripts: dict[str, list[ev.ServerEvent]] = {}

    @property
    def order(self) -> list[str]:
        """Item ids of the default conversation, in server order."""
        return list(self._order)

    def __iter__(self) -> Iterator[ItemState]:
        return (self.items[i] for i in self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def get(self, item_id: str) -> ItemState | None:
        """The item with this id, if known."""
        return self.items.get(item_id)

    def last(self) -> ItemState | None:
        """The last item of the conversation."""
        return self.items[self._order[-1]] if self._order else None

    def place(self, item_id: str, previous_item_id: str | None, given: bool) -> None:
        """Put a known item in order after ``previous_item_id`` (``None``/``"root"``: first).

        ``given`` says whether the server named a predecessor at all; without one the
        item goes last. An item already placed keeps its place.
        """
        if item_id in self._order:
            return  # `done` after `added`: keep its place
        if not given:
            self._order.append(item_id)
        elif previous_item_id is None or previous_item_id == "root":
            self._order.insert(0, item_id)
        elif previous_item_id in self._order:
            self._order.insert(self._order.index(previous_item_id) + 1, item_id)
        else:
            self._order.append(item_id)  # its predecessor was deleted or never seen

    def remove(self, item_id: str) -> ItemState | None:
        """Take an item out of the conversation; returns it (``None`` if unknown)."""
        if item_id in self._order:
            self._order.remove(item_id)
        return self.items.pop(item_id, None)

    def insert(self, item: ItemState, *, after: str | None) -> None:
        """Put an item back after ``after`` (``None``: first), replacing any of its id."""
        self.remove(item.id)
        self.items[item.id] = item
        at = self._order.index(after) + 1 if after in self._order else 0
        self._order.insert(at, item.id)

    def defer(self, item_id: str, event: ev.ServerEvent) -> None:
        """Keep a transcription event that arrived before its item.

        Only the latest :data:`MAX_DEFERRED_ITEMS` items' events wait (an item that never
        comes must not keep its events for ever), at most :data:`MAX_DEFERRED_EVENTS` each.
        """
        events = self._orphan_transcripts.setdefault(item_id, [])
        if len(events) < MAX_DEFERRED_EVENTS:
            events.append(event)
        while len(self._orphan_transcripts) > MAX_DEFERRED_ITEMS:
            del self._orphan_transcripts[next(iter(self._orphan_transcripts))]

    def take_deferred(self, item_id: str) -> list[ev.ServerEvent]:
        """The transcription events kept for an item that has just appeared."""
        return self._orphan_transcripts.pop(item_id, [])

    def snapshot(self) -> ConversationSnapshot:
        """The items and their order, to :meth:`restore` later (items are shared)."""
        return ConversationSnapshot(dict(self.items), list(self._order))

    def restore(self, snapshot: ConversationSnapshot) -> None:
        """Go back to a :meth:`snapshot`."""
        self.items.clear()
        self.items.update(snapshot.items)
        self._order[:] = snapshot.order


@dataclass(frozen=True)
class ConversationSnapshot:
    """The conversation's items and order at one moment (see :meth:`Conversation.snapshot`)."""

    items: dict[str, ItemState]
    order: list[str]
