"""The sans-I/O protocol core: server events in, conversation state and client events out.

Theory of operation
-------------------
:class:`RealtimeProtocol` owns no socket, no task and no clock. Feed it every server
frame with :meth:`RealtimeProtocol.receive` (text, bytes, a dict or a parsed event); it
parses it in the connection's dialect, applies it to a :class:`Conversation`, and
returns a :class:`Received` that says which of *our* requests the event answered or
failed. Build client events with the ``build_*`` methods: each gets a client
``event_id``, is registered as a pending request with the answer that settles it, and
is checked first against the local state (truncating a non-audio item, for example,
raises :class:`~realtime_client.errors.LocalProtocolError` and nothing is sent).
:meth:`RealtimeProtocol.serialize` turns it into wire bytes in the dialect.

What the conversation keeps, all from the server's events:

* items in server order (``previous_item_id``; ``null`` = at the root), with content
  parts, text and transcripts accumulated from deltas, function calls with their
  arguments, and input-audio transcriptions per user item, which may arrive late and
  out of order (kept aside until their item appears);
* the audio each assistant item has received, in ms of the output format: what a
  ``conversation.item.truncate`` may not exceed; the audio bytes themselves only when
  ``retain_audio_ms`` asks for them (capped per item);
* responses and their lifecycle (``in_progress`` → ``completed`` | ``cancelled`` |
  ``failed`` | ``incomplete``, with status details), which one is active in the
  default conversation, usage totals per modality, the last rate limits, the session.

Answers are matched to requests the way the service allows: errors by the echoed
``event_id``; successes by the object they name (item id for truncate / delete /
retrieve / create) or, where the service echoes nothing, first-in-first-out per kind
(``session.updated``, ``input_audio_buffer.committed`` / ``cleared``,
``response.created``). The session manager turns these into awaitable results.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from . import events as ev
from .errors import InvalidStateError, LocalProtocolError, ServerError
from .events.codec import Dialect, RawEvent
from .recording import iter_records, server_events

__all__ = [
    "AudioPart",
    "Conversation",
    "ItemState",
    "PartState",
    "Received",
    "RealtimeProtocol",
    "ResponseState",
    "UsageTotals",
    "output_bytes_per_ms",
]

_V = TypeVar("_V")

ResponseStatus = Literal["in_progress", "completed", "cancelled", "failed", "incomplete"]


def output_bytes_per_ms(fmt: ev.objects.AudioFormat | None) -> float:
    """Bytes of audio per millisecond for a session audio format (``None`` = PCM16 24 kHz)."""
    if isinstance(fmt, ev.PcmuFormat | ev.PcmaFormat):
        return 8.0  # G.711: 8,000 one-byte samples a second
    rate = fmt.rate if isinstance(fmt, ev.PcmFormat) and fmt.rate else 24_000
    return rate * 2 / 1000.0


def _b64_decoded_len(data: str) -> int:
    """Length of the bytes a base64 string decodes to, without decoding it."""
    n = len(data)
    if n == 0:
        return 0
    pad = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return n * 3 // 4 - pad


@dataclass
class AudioPart:
    """Audio bytes retained for one content part (only with ``retain_audio_ms``)."""

    chunks: list[bytes] = field(default_factory=list)
    nbytes: int = 0
    dropped_bytes: int = 0

    def data(self) -> bytes:
        """The retained audio as one bytes object."""
        return b"".join(self.chunks)


@dataclass
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


@dataclass
class ItemState:
    """One conversation item and everything the server said about it.

    Attributes:
        id: The item id.
        type: ``message``, ``function_call``, ``function_call_output``, …
        role: ``user``, ``assistant`` or ``system`` for messages.
        status: ``in_progress``, ``completed`` or ``incomplete``.
        response_id: The response that produced it (assistant output), if any.
        parts: Content parts by content index.
        call_id, name, arguments: Function-call fields (arguments accumulate).
        output: A function-call output's result string.
        input_transcript: The user's audio transcribed (from the transcription events).
        input_transcript_done: The transcription completed (or failed).
        input_transcript_error: Why the transcription failed, if it did.
        truncated_at_ms: ``audio_end_ms`` of a ``conversation.item.truncated``.
        speech_start_ms, speech_end_ms: VAD times of a user audio item (input ms).
        in_conversation: False for out-of-band response output.
    """

    id: str
    type: str
    role: str | None = None
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
        """The part at ``index``, created (with ``kind``) if the server skipped it."""
        while len(self.parts) <= index:
            self.parts.append(PartState(type=kind))
        part = self.parts[index]
        if kind and not part.type:
            part.type = kind
        return part


@dataclass
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


@dataclass
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

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class Conversation:
    """Items in server order, plus every item the server told us about by id."""

    def __init__(self) -> None:
        self.items: dict[str, ItemState] = {}
        self._order: list[str] = []
        # Transcription events that arrived before their item (late / out of order).
        self._orphan_transcripts: dict[str, list[ev.ServerEvent]] = {}

    @property
    def order(self) -> list[str]:
        """Item ids of the default conversation, in server order."""
        return list(self._order)

    def __iter__(self) -> Any:
        return (self.items[i] for i in self._order)

    def __len__(self) -> int:
        return len(self._order)

    def get(self, item_id: str) -> ItemState | None:
        """The item with this id, if known."""
        return self.items.get(item_id)

    def last(self) -> ItemState | None:
        """The last item of the conversation."""
        return self.items[self._order[-1]] if self._order else None

    def _place(self, item_id: str, previous_item_id: str | None, given: bool) -> None:
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

    def _remove(self, item_id: str) -> None:
        self.items.pop(item_id, None)
        if item_id in self._order:
            self._order.remove(item_id)


@dataclass
class _Pending:
    event_id: str
    event: ev.ClientEvent
    answer_types: frozenset[str]
    key: str | None  # the object id the answer must name, when it names one


@dataclass(slots=True)
class Received:
    """What one server event did, as seen by the requests we sent.

    Attributes:
        event: The parsed server event.
        answered: ``(client event_id, client event)`` pairs this event settled.
        failed: ``(client event_id, client event, ServerError)`` for an ``error``
            event that names one of our requests.
    """

    event: ev.ServerEvent
    answered: list[tuple[str, ev.ClientEvent]] = field(default_factory=list)
    failed: list[tuple[str, ev.ClientEvent, ServerError]] = field(default_factory=list)


def _server_error(detail: ev.ErrorDetail) -> ServerError:
    return ServerError(
        detail.message or "",
        type=detail.type or "invalid_request_error",
        code=detail.code,
        param=detail.param,
        event_id=detail.event_id,
    )


_ANSWERS: dict[str, tuple[frozenset[str], str | None]] = {
    # client type: (server types that settle it, the field the answer keys on)
    "session.update": (frozenset({"session.updated"}), None),
    "input_audio_buffer.commit": (frozenset({"input_audio_buffer.committed"}), None),
    "input_audio_buffer.clear": (frozenset({"input_audio_buffer.cleared"}), None),
    "output_audio_buffer.clear": (frozenset({"output_audio_buffer.cleared"}), None),
    "conversation.item.create": (
        frozenset({"conversation.item.added", "conversation.item.created"}),
        "item_id",
    ),
    "conversation.item.retrieve": (frozenset({"conversation.item.retrieved"}), "item_id"),
    "conversation.item.truncate": (frozenset({"conversation.item.truncated"}), "item_id"),
    "conversation.item.delete": (frozenset({"conversation.item.deleted"}), "item_id"),
    "response.create": (frozenset({"response.created"}), None),
    "response.cancel": (frozenset({"response.done"}), "response_id"),
}


class RealtimeProtocol:
    """The conversation state machine of one Realtime connection (no I/O).

    Args:
        dialect: ``"ga"`` (default) or ``"beta"``: how frames are parsed and serialized.
        retain_audio_ms: Keep up to this many ms of output audio bytes per item
            (0 = keep none; the ms count is kept regardless).
        client_id_prefix: Prefix of the client ``event_id`` values we generate.
    """

    def __init__(
        self,
        *,
        dialect: Dialect = "ga",
        retain_audio_ms: float = 0.0,
        client_id_prefix: str = "client_evt_",
    ) -> None:
        if dialect not in ("ga", "beta"):
            raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}")
        if retain_audio_ms < 0:
            raise ValueError("retain_audio_ms must be >= 0")
        self.dialect: Dialect = dialect
        self.retain_audio_ms = retain_audio_ms
        self.conversation = Conversation()
        self.session: ev.RealtimeSession | ev.TranscriptionSession | None = None
        #: The session's audio formats (``None``: not described, i.e. PCM16 24 kHz).
        self.output_format: ev.objects.AudioFormat | None = None
        self.input_format: ev.objects.AudioFormat | None = None
        #: Bytes of output audio per millisecond in the session's output format.
        self.output_bytes_per_ms = output_bytes_per_ms(None)
        #: Whether the input / output format is G.711 (else PCM16): read per audio block.
        self.input_is_g711 = False
        self.output_is_g711 = False
        #: Milliseconds of audio in the last ``response.output_audio.delta`` received.
        self.last_delta_ms = 0.0
        self.responses: dict[str, ResponseState] = {}
        self.active_response_id: str | None = None
        self.usage = UsageTotals()
        self.rate_limits: list[ev.RateLimit] = []
        self.speaking = False
        self.last_error: ev.ErrorDetail | None = None
        self._ids = itertools.count(1)
        self._prefix = client_id_prefix
        self._pending: dict[str, _Pending] = {}
        self._fifo: dict[str, deque[str]] = {}
        # Cancels answered by a response.done that may still draw a late
        # response_cancel_not_active error (the response ended first).
        self._answered_cancels: dict[str, ev.ClientEvent] = {}
        # response.created events expected from server VAD turns (not from our requests).
        self._auto_responses_expected = 0
        # VAD times arrive before their user item exists (speech_started names its id).
        self._speech_times: dict[str, tuple[int | None, int | None]] = {}

    # --- receiving ------------------------------------------------------------------

    def receive(self, data: RawEvent | ev.ServerEvent) -> Received:
        """Parse (if needed) and apply one server event.

        Args:
            data: A text frame, bytes, a dict, or an already parsed event.

        Returns:
            The event and the requests it settled.

        Raises:
            InvalidEventError: The frame is malformed (the state is unchanged).
        """
        if type(data) is bytes or not isinstance(data, ev.ServerEvent):
            event = ev.parse_server_event(data, dialect=self.dialect)
        else:
            event = data
        received = Received(event)
        if type(event) is ev.ResponseOutputAudioDelta:  # the hot path: it settles nothing
            self._apply_audio_delta(event)
            return received
        self._apply(event)
        self._settle(event, received)
        return received

    def receive_all(self, frames: Iterable[RawEvent]) -> list[Received]:
        """Apply many frames in order (e.g. the lines of a JSONL recording)."""
        return [self.receive(f) for f in frames]

    def replay_jsonl(self, text: str) -> list[Received]:
        """Drive the core from a recording (:mod:`realtime_client.recording`'s format).

        The server's events are applied in order; client and meta records are skipped
        (bare event lines count as server events). Elided audio is applied as silence of
        its recorded length.

        Raises:
            RecordingError: A line is not a usable record.
        """
        records = iter_records(text.splitlines())
        return [self.receive(event) for event in server_events(records)]

    def _settle(self, event: ev.ServerEvent, received: Received) -> None:
        role = _SETTLE_ROLE[type(event)]
        if role == _ERROR:
            assert isinstance(event, ev.Error)
            self.last_error = event.error
            client_id = event.error.event_id
            pending = self._pending.pop(client_id, None) if client_id else None
            if pending is not None:
                self._drop_fifo(pending)
                received.failed.append(
                    (pending.event_id, pending.event, _server_error(event.error))
                )
            elif client_id in self._answered_cancels:
                # The response finished on its own just before our cancel reached the
                # server: its response.done answered the cancel, then this error came.
                late = self._answered_cancels.pop(client_id)
                received.failed.append((client_id, late, _server_error(event.error)))
            return
        kind = event.type
        key: str | None = None
        if role == _NAMES_ITEM:
            key = getattr(getattr(event, "item", None), "id", None)
        elif role == _NAMES_ITEM_ID:
            key = getattr(event, "item_id", None)
        elif role == _RESPONSE_DONE:
            assert isinstance(event, ev.ResponseDone)
            key = event.response.id
            # Whatever a commit was going to trigger has happened (or never will).
            self._auto_responses_expected = 0
        elif role == _RESPONSE_CREATED:
            assert isinstance(event, ev.ResponseCreated)
            if event.response.conversation_id is not None and self._auto_responses_expected:
                # Server VAD's own response for a turn it committed, not ours: our
                # response.create is answered by a later response.created or an error.
                self._auto_responses_expected -= 1
                return
        # Keyed answers first: they name the object.
        for pending in list(self._pending.values()) if self._pending else ():
            if kind in pending.answer_types and pending.key is not None and pending.key == key:
                del self._pending[pending.event_id]
                self._drop_fifo(pending)
                received.answered.append((pending.event_id, pending.event))
                if isinstance(pending.event, ev.ResponseCancel):
                    self._answered_cancels[pending.event_id] = pending.event
                    while len(self._answered_cancels) > 16:  # only the latest matter
                        del self._answered_cancels[next(iter(self._answered_cancels))]
                return
        queue = self._fifo.get(kind)
        while queue:
            event_id = queue.popleft()
            pending_fifo = self._pending.pop(event_id, None)
            if pending_fifo is not None:
                received.answered.append((event_id, pending_fifo.event))
                return
        if role == _COMMITTED and self._vad_creates_responses():
            self._auto_responses_expected += 1  # a commit by VAD (or idle timeout), not ours

    def _vad_creates_responses(self) -> bool:
        """Whether the server answers its own VAD commits with a response."""
        session = self.session
        if not isinstance(session, ev.RealtimeSession):
            return False
        if session.audio is None or session.audio.input is None:
            return True  # not described: the service's default is server VAD that responds
        td = session.audio.input.turn_detection
        if isinstance(td, ev.ServerVad | ev.SemanticVad):
            return td.create_response is not False
        return False

    def _drop_fifo(self, pending: _Pending) -> None:
        for kind in pending.answer_types:
            queue = self._fifo.get(kind)
            if queue and pending.event_id in queue:
                queue.remove(pending.event_id)

    # --- applying -------------------------------------------------------------------

    def _item(self, item: ev.objects.Item, *, response_id: str | None = None) -> ItemState:
        item_id = getattr(item, "id", None)
        if not item_id:
            raise LocalProtocolError(f"server sent a {item.type!r} item without an id")
        state = self.conversation.items.get(item_id)
        if state is None:
            state = ItemState(id=item_id, type=item.type or "unknown")
            state.speech_start_ms, state.speech_end_ms = self._speech_times.get(
                item_id, (None, None)
            )
            self.conversation.items[item_id] = state
            for early in self.conversation._orphan_transcripts.pop(item_id, []):
                self._apply_transcription(early, state)
        if response_id is not None:
            state.response_id = response_id
        status = getattr(item, "status", None)
        if status is not None:
            state.status = status
        if isinstance(item, ev.MessageItem):
            state.role = item.role
            for index, content in enumerate(item.content):
                part = state.part(index, content.type or "")
                if content.text and not part.text:
                    part.text = content.text
                if content.transcript and not part.transcript:
                    part.transcript = content.transcript
                if content.type == "input_audio" and content.transcript:
                    state.input_transcript = content.transcript
        elif isinstance(item, ev.FunctionCallItem):
            state.call_id = item.call_id or state.call_id
            state.name = item.name or state.name
            if item.arguments:
                state.arguments = item.arguments
        elif isinstance(item, ev.FunctionCallOutputItem):
            state.call_id = item.call_id
            state.output = item.output
        return state

    def _apply_transcription(self, event: ev.ServerEvent, item: ItemState) -> None:
        if isinstance(event, ev.ConversationItemInputAudioTranscriptionDelta):
            if not item.input_transcript_done:
                item.input_transcript += event.delta or ""
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionCompleted):
            item.input_transcript = event.transcript
            item.input_transcript_done = True
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionFailed):
            item.input_transcript_error = event.error
            item.input_transcript_done = True

    def _apply(self, event: ev.ServerEvent) -> None:
        _APPLY[type(event)](self, event)

    def _apply_audio_delta(self, event: ev.ResponseOutputAudioDelta) -> None:
        item = self._output_item(event)
        part = item.part(event.content_index, "output_audio")
        ms = self.last_delta_ms = _b64_decoded_len(event.delta) / self.output_bytes_per_ms
        part.audio_ms += ms
        if self.retain_audio_ms > 0:
            self._retain(part, event)

    def _apply_session(self, event: ev.SessionCreated | ev.SessionUpdated) -> None:
        self.session = event.session
        self._refresh_formats()

    def _apply_item_added(
        self, event: ev.ConversationItemAdded | ev.ConversationItemCreated
    ) -> None:
        state = self._item(event.item)
        self.conversation._place(
            state.id, event.previous_item_id, "previous_item_id" in event.model_fields_set
        )

    def _apply_item_done(self, event: ev.ConversationItemDone) -> None:
        state = self._item(event.item)
        self.conversation._place(
            state.id, event.previous_item_id, "previous_item_id" in event.model_fields_set
        )
        for part in state.parts:
            part.done = True

    def _apply_item_retrieved(self, event: ev.ConversationItemRetrieved) -> None:
        self._item(event.item)

    def _apply_item_deleted(self, event: ev.ConversationItemDeleted) -> None:
        self.conversation._remove(event.item_id)

    def _apply_item_truncated(self, event: ev.ConversationItemTruncated) -> None:
        found = self.conversation.items.get(event.item_id)
        if found is not None:
            found.truncated_at_ms = event.audio_end_ms
            part = found.part(event.content_index)
            part.audio_ms = min(part.audio_ms, float(event.audio_end_ms))

    def _apply_input_transcription(self, event: Any) -> None:
        conv = self.conversation
        found = conv.items.get(event.item_id)
        if found is None:
            conv._orphan_transcripts.setdefault(event.item_id, []).append(event)
        else:
            self._apply_transcription(event, found)

    def _apply_speech_started(self, event: ev.InputAudioBufferSpeechStarted) -> None:
        self.speaking = True
        self._speech_times[event.item_id] = (event.audio_start_ms, None)

    def _apply_speech_stopped(self, event: ev.InputAudioBufferSpeechStopped) -> None:
        self.speaking = False
        start = self._speech_times.get(event.item_id, (None, None))[0]
        self._speech_times[event.item_id] = (start, event.audio_end_ms)
        known = self.conversation.items.get(event.item_id)
        if known is not None:
            known.speech_end_ms = event.audio_end_ms

    def _apply_committed(self, event: ev.InputAudioBufferCommitted) -> None:
        self.speaking = False

    def _apply_response_created(self, event: ev.ResponseCreated) -> None:
        response = event.response
        if response.id is None:
            raise LocalProtocolError("server sent response.created without a response id")
        self.responses[response.id] = ResponseState(
            id=response.id,
            conversation_id=response.conversation_id,
            metadata=response.metadata,
        )
        if response.conversation_id is not None:
            self.active_response_id = response.id

    def _apply_response_done(self, event: ev.ResponseDone) -> None:
        self._response_done(event.response)

    def _apply_output_item(
        self, event: ev.ResponseOutputItemAdded | ev.ResponseOutputItemDone
    ) -> None:
        response_state = self._response(event.response_id)
        state = self._item(event.item, response_id=event.response_id)
        if response_state.out_of_band:
            state.in_conversation = False
        while len(response_state.output_item_ids) <= event.output_index:
            response_state.output_item_ids.append("")
        response_state.output_item_ids[event.output_index] = state.id
        if isinstance(event, ev.ResponseOutputItemDone):
            for part in state.parts:
                part.done = True

    def _apply_content_part(
        self, event: ev.ResponseContentPartAdded | ev.ResponseContentPartDone
    ) -> None:
        item = self._output_item(event)
        kind = {"audio": "output_audio", "text": "output_text"}.get(
            event.part.type or "", event.part.type or ""
        )
        part = item.part(event.content_index, kind)
        if isinstance(event, ev.ResponseContentPartDone):
            part.done = True
            if event.part.text is not None:
                part.text = event.part.text
            if event.part.transcript is not None:
                part.transcript = event.part.transcript

    def _apply_text_delta(self, event: ev.ResponseOutputTextDelta) -> None:
        self._output_item(event).part(event.content_index, "output_text").text += event.delta

    def _apply_text_done(self, event: ev.ResponseOutputTextDone) -> None:
        self._output_item(event).part(event.content_index, "output_text").text = event.text

    def _apply_transcript_delta(self, event: ev.ResponseOutputAudioTranscriptDelta) -> None:
        part = self._output_item(event).part(event.content_index, "output_audio")
        part.transcript += event.delta

    def _apply_transcript_done(self, event: ev.ResponseOutputAudioTranscriptDone) -> None:
        part = self._output_item(event).part(event.content_index, "output_audio")
        part.transcript = event.transcript

    def _apply_arguments_delta(self, event: ev.ResponseFunctionCallArgumentsDelta) -> None:
        item = self._output_item(event, "function_call")
        item.call_id = item.call_id or event.call_id
        item.arguments += event.delta

    def _apply_arguments_done(self, event: ev.ResponseFunctionCallArgumentsDone) -> None:
        item = self._output_item(event, "function_call")
        item.call_id = event.call_id
        item.arguments = event.arguments
        if event.name:
            item.name = event.name

    def _apply_rate_limits(self, event: ev.RateLimitsUpdated) -> None:
        self.rate_limits = list(event.rate_limits)

    def _apply_nothing(self, event: ev.ServerEvent) -> None:
        """Events that change no conversation state (errors, acknowledgements, ...)."""

    def speech_times(self, item_id: str) -> tuple[int | None, int | None]:
        """VAD ``(audio_start_ms, audio_end_ms)`` of a user item, in input ms."""
        return self._speech_times.get(item_id, (None, None))

    def _output_item(self, event: Any, kind: str = "message") -> ItemState:
        """The item an output event names (``item_id``, ``response_id``), made if unseen."""
        item = self.conversation.items.get(event.item_id)
        return (
            item if item is not None else self._placeholder(event.item_id, event.response_id, kind)
        )

    def _placeholder(self, item_id: str, response_id: str, kind: str = "message") -> ItemState:
        # A delta for an item we never saw announced (reordered or lost events).
        state = ItemState(id=item_id, type=kind, role="assistant" if kind == "message" else None)
        state.response_id = response_id
        self.conversation.items[item_id] = state
        return state

    def _response(self, response_id: str) -> ResponseState:
        state = self.responses.get(response_id)
        if state is None:
            state = ResponseState(id=response_id)
            self.responses[response_id] = state
        return state

    def _response_done(self, response: ev.Response) -> None:
        if response.id is None:
            raise LocalProtocolError("server sent response.done without a response id")
        state = self._response(response.id)
        state.status = response.status or "completed"
        state.status_details = response.status_details
        state.usage = response.usage
        state.conversation_id = response.conversation_id
        if response.metadata is not None:
            state.metadata = response.metadata
        if response.output:
            for index, item in enumerate(response.output):
                item_state = self._item(item, response_id=response.id)
                if state.out_of_band:
                    item_state.in_conversation = False
                while len(state.output_item_ids) <= index:
                    state.output_item_ids.append("")
                state.output_item_ids[index] = item_state.id
        if response.usage is not None:
            self.usage.add(response.usage)
        if self.active_response_id == response.id:
            self.active_response_id = None

    def _refresh_formats(self) -> None:
        # Read once per session.created / session.updated, not once per audio delta.
        session = self.session
        audio = getattr(session, "audio", None)
        out = getattr(audio, "output", None)
        self.output_format = out.format if out is not None else None
        inp = getattr(audio, "input", None)
        self.input_format = inp.format if inp is not None else None
        self.output_bytes_per_ms = output_bytes_per_ms(self.output_format)
        self.input_is_g711 = isinstance(self.input_format, ev.PcmuFormat | ev.PcmaFormat)
        self.output_is_g711 = isinstance(self.output_format, ev.PcmuFormat | ev.PcmaFormat)

    def _retain(self, part: PartState, event: ev.ResponseOutputAudioDelta) -> None:
        if part.audio is None:
            part.audio = AudioPart()
        data = event.audio_bytes()
        cap = int(self.retain_audio_ms * self.output_bytes_per_ms)
        room = max(0, cap - part.audio.nbytes)
        kept = data[:room]
        if kept:
            part.audio.chunks.append(kept)
            part.audio.nbytes += len(kept)
        part.audio.dropped_bytes += len(data) - len(kept)

    # --- queries --------------------------------------------------------------------

    @property
    def active_response(self) -> ResponseState | None:
        """The in-progress response of the default conversation, if any."""
        rid = self.active_response_id
        return self.responses.get(rid) if rid else None

    def audio_received_ms(self, item_id: str, content_index: int = 0) -> float:
        """Output audio received for an item's content part, in ms (0 if unknown)."""
        item = self.conversation.get(item_id)
        if item is None or content_index >= len(item.parts):
            return 0.0
        return item.parts[content_index].audio_ms

    def function_calls(self, response_id: str) -> list[ItemState]:
        """The function-call items a response produced, in output order."""
        state = self.responses.get(response_id)
        if state is None:
            return []
        items = (self.conversation.get(i) for i in state.output_item_ids if i)
        return [i for i in items if i is not None and i.type == "function_call"]

    def pending_requests(self) -> dict[str, ev.ClientEvent]:
        """Client events still waiting for their answer, by client ``event_id``."""
        return {k: p.event for k, p in self._pending.items()}

    # --- building -------------------------------------------------------------------

    def next_event_id(self) -> str:
        """A fresh client ``event_id``."""
        return f"{self._prefix}{next(self._ids)}"

    def register(self, event: ev.ClientEvent, key: str | None = None) -> ev.ClientEvent:
        """Give a client event an ``event_id`` and wait for the answer that settles it."""
        if event.event_id is None:
            event.event_id = self.next_event_id()
            event.model_fields_set.add("event_id")
        answers = _ANSWERS.get(event.type)
        if answers is not None:
            types, _ = answers
            self._pending[event.event_id] = _Pending(event.event_id, event, types, key)
            if key is None:
                for kind in types:
                    self._fifo.setdefault(kind, deque()).append(event.event_id)
        return event

    def forget(self, event_id: str) -> None:
        """Stop waiting for an answer to ``event_id`` (e.g. the send failed)."""
        pending = self._pending.pop(event_id, None)
        if pending is not None:
            self._drop_fifo(pending)

    def abandon_responses(self, reason: str = "connection_lost") -> list[str]:
        """Mark every in-progress response ended (the connection carrying it is gone).

        They end ``incomplete`` with ``status_details.reason == reason``, and their
        in-progress items ``incomplete``; the default conversation has no active
        response afterwards. Returns the ids abandoned.
        """
        abandoned = []
        for response in self.responses.values():
            if response.done:
                continue
            response.status = "incomplete"
            response.status_details = ev.StatusDetails(type="incomplete", reason=reason)
            for item_id in response.output_item_ids:
                item = self.conversation.get(item_id)
                if item is not None and item.status == "in_progress":
                    item.status = "incomplete"
            abandoned.append(response.id)
        self.active_response_id = None
        return abandoned

    def reset_pending(self) -> list[tuple[str, ev.ClientEvent]]:
        """Drop every pending request (connection lost); returns what was dropped."""
        dropped = [(k, p.event) for k, p in self._pending.items()]
        self._pending.clear()
        self._fifo.clear()
        # What the old connection's VAD was about to do is gone with it.
        self._auto_responses_expected = 0
        self.speaking = False
        return dropped

    def serialize(self, event: ev.ClientEvent) -> bytes:
        """Wire bytes of a client event in this connection's dialect."""
        return ev.dumps(event, dialect=self.dialect)

    def build_session_update(
        self, session: ev.RealtimeSession | ev.TranscriptionSession | dict[str, Any]
    ) -> ev.SessionUpdate:
        """``session.update`` with a partial session (a model or a GA-shaped dict).

        A transcription session (``type: "transcription"``) is a ``session.update`` too:
        in the beta dialect :meth:`serialize` sends it as ``transcription_session.update``
        with the flat beta shape, and the server's ``transcription_session.updated``
        arrives as the ``session.updated`` that settles it.
        """
        if isinstance(session, dict):
            session = ev.SessionUpdate.model_validate(
                {"type": "session.update", "session": session}
            ).session
        event = ev.SessionUpdate(session=session)
        self.register(event)
        return event

    def build_append(self, audio: Any) -> bytes:
        """Wire bytes of an ``input_audio_buffer.append`` (not tracked: no answer comes)."""
        return ev.build_append(audio)

    def build_commit(self) -> ev.InputAudioBufferCommit:
        """``input_audio_buffer.commit``."""
        event = ev.InputAudioBufferCommit()
        self.register(event)
        return event

    def build_clear_input(self) -> ev.InputAudioBufferClear:
        """``input_audio_buffer.clear``."""
        event = ev.InputAudioBufferClear()
        self.register(event)
        return event

    def build_clear_output(self) -> ev.OutputAudioBufferClear:
        """``output_audio_buffer.clear`` (WebRTC/SIP only)."""
        event = ev.OutputAudioBufferClear()
        self.register(event)
        return event

    def build_item_create(
        self,
        item: ev.objects.Item | dict[str, Any],
        *,
        previous_item_id: str | None = None,
        item_id: str | None = None,
    ) -> ev.ConversationItemCreate:
        """``conversation.item.create``; the answer is matched by the item's id.

        Args:
            item: The item (model or GA-shaped dict).
            previous_item_id: Insert after this item (``"root"`` = first); it must exist.
            item_id: Give the item this id (otherwise a client id is assigned so the
                answer can be matched).
        """
        if isinstance(item, dict):
            item = ev.ConversationItemCreate.model_validate(
                {"type": "conversation.item.create", "item": item}
            ).item
        if (
            previous_item_id not in (None, "root")
            and previous_item_id not in self.conversation.items
        ):
            raise LocalProtocolError(
                f"previous_item_id {previous_item_id!r} is not in the conversation"
            )
        if isinstance(item, ev.FunctionCallOutputItem):
            calls = [i for i in self.conversation.items.values() if i.type == "function_call"]
            if not any(c.call_id == item.call_id for c in calls):
                raise LocalProtocolError(f"no function call with call_id {item.call_id!r}")
        current = getattr(item, "id", None)
        if item_id is not None or current is None:
            new_id = item_id or self.next_item_id()
            item = item.model_copy(update={"id": new_id})
            item.model_fields_set.add("id")
        kwargs: dict[str, Any] = {"item": item}
        if previous_item_id is not None:
            kwargs["previous_item_id"] = previous_item_id
        event = ev.ConversationItemCreate(**kwargs)
        self.register(event, key=getattr(item, "id", None))
        return event

    def next_item_id(self) -> str:
        """A client-chosen item id (the service accepts client ids up to 32 chars)."""
        return f"item_c{next(self._ids):020d}"[:26]

    def build_text_message(
        self, text: str, *, role: Literal["user", "system"] = "user"
    ) -> ev.ConversationItemCreate:
        """A user (or system) text message item."""
        item = ev.MessageItem(role=role, content=[ev.ContentPart(type="input_text", text=text)])
        return self.build_item_create(item)

    def build_function_call_output(self, call_id: str, output: str) -> ev.ConversationItemCreate:
        """The result of a function call, as a ``function_call_output`` item."""
        return self.build_item_create(ev.FunctionCallOutputItem(call_id=call_id, output=output))

    def build_item_retrieve(self, item_id: str) -> ev.ConversationItemRetrieve:
        """``conversation.item.retrieve``."""
        event = ev.ConversationItemRetrieve(item_id=item_id)
        self.register(event, key=item_id)
        return event

    def build_item_delete(self, item_id: str) -> ev.ConversationItemDelete:
        """``conversation.item.delete`` (the item must be known)."""
        if item_id not in self.conversation.items:
            raise LocalProtocolError(f"cannot delete unknown item {item_id!r}")
        event = ev.ConversationItemDelete(item_id=item_id)
        self.register(event, key=item_id)
        return event

    def build_truncate(
        self, item_id: str, audio_end_ms: float, *, content_index: int = 0
    ) -> ev.ConversationItemTruncate:
        """``conversation.item.truncate`` at the played position.

        ``audio_end_ms`` is clamped to the audio received for the item (the service
        rejects a truncate past the end: "Audio content of X ms is already shorter
        than Y ms").

        Raises:
            LocalProtocolError: The item is unknown, not an assistant message, or has
                no audio in that content part.
        """
        item = self.conversation.get(item_id)
        if item is None:
            raise LocalProtocolError(f"cannot truncate unknown item {item_id!r}")
        if item.type != "message" or item.role != "assistant":
            raise LocalProtocolError(
                f"only assistant audio can be truncated; {item_id!r} is a {item.role or item.type}"
                f" {item.type}"
            )
        if content_index >= len(item.parts) or item.parts[content_index].type != "output_audio":
            raise LocalProtocolError(
                f"item {item_id!r} has no audio at content_index {content_index}"
            )
        if audio_end_ms < 0:
            raise LocalProtocolError(f"audio_end_ms must be >= 0, got {audio_end_ms}")
        received = item.parts[content_index].audio_ms
        end = int(min(audio_end_ms, received))
        event = ev.ConversationItemTruncate(
            item_id=item_id, content_index=content_index, audio_end_ms=end
        )
        self.register(event, key=item_id)
        return event

    def build_response_create(
        self, response: ev.ResponseCreateParams | dict[str, Any] | None = None
    ) -> ev.ResponseCreate:
        """``response.create`` with optional per-response overrides."""
        if isinstance(response, dict):
            response = ev.ResponseCreateParams.model_validate(response)
        event = ev.ResponseCreate() if response is None else ev.ResponseCreate(response=response)
        self.register(event)
        return event

    def build_response_cancel(self, response_id: str | None = None) -> ev.ResponseCancel:
        """``response.cancel`` of the active (or the given) response.

        Raises:
            InvalidStateError: No such response is in progress (the service would
                answer ``response_cancel_not_active``).
        """
        target = response_id or self.active_response_id
        state = self.responses.get(target) if target else None
        if state is None or state.done:
            raise InvalidStateError("no active response to cancel")
        event = (
            ev.ResponseCancel()
            if response_id is None
            else ev.ResponseCancel(response_id=response_id)
        )
        self.register(event, key=target)
        return event


class _ByClass(dict[type[Any], _V]):
    """``{event class: value}``, read with an event's exact class: one dict lookup.

    Dispatching on event classes this way, not with ``isinstance`` chains, matters per
    event: a miss of ``isinstance`` on a pydantic class costs ~80 ns (``ABCMeta``), and the
    protocol and session chains ran 20-30 of them. A class not listed (a subclass, or an
    event nobody lists) takes the value of its nearest listed base, else ``default``;
    found once, then cached.
    """

    def __init__(self, listed: dict[type[Any], _V], default: _V) -> None:
        super().__init__(listed)
        self._listed = dict(listed)
        self._default = default

    def __missing__(self, cls: type[Any]) -> _V:
        value = next((self._listed[b] for b in cls.__mro__ if b in self._listed), self._default)
        self[cls] = value
        return value


# How _apply handles each event class (unbound methods).
_transcription = RealtimeProtocol._apply_input_transcription
_APPLY: _ByClass[Callable[[RealtimeProtocol, Any], None]] = _ByClass(
    {
        ev.ResponseOutputAudioDelta: RealtimeProtocol._apply_audio_delta,
        ev.SessionCreated: RealtimeProtocol._apply_session,
        ev.SessionUpdated: RealtimeProtocol._apply_session,
        ev.ConversationItemAdded: RealtimeProtocol._apply_item_added,
        ev.ConversationItemCreated: RealtimeProtocol._apply_item_added,
        ev.ConversationItemDone: RealtimeProtocol._apply_item_done,
        ev.ConversationItemRetrieved: RealtimeProtocol._apply_item_retrieved,
        ev.ConversationItemDeleted: RealtimeProtocol._apply_item_deleted,
        ev.ConversationItemTruncated: RealtimeProtocol._apply_item_truncated,
        ev.ConversationItemInputAudioTranscriptionDelta: _transcription,
        ev.ConversationItemInputAudioTranscriptionCompleted: _transcription,
        ev.ConversationItemInputAudioTranscriptionFailed: _transcription,
        ev.InputAudioBufferSpeechStarted: RealtimeProtocol._apply_speech_started,
        ev.InputAudioBufferSpeechStopped: RealtimeProtocol._apply_speech_stopped,
        ev.InputAudioBufferCommitted: RealtimeProtocol._apply_committed,
        ev.ResponseCreated: RealtimeProtocol._apply_response_created,
        ev.ResponseDone: RealtimeProtocol._apply_response_done,
        ev.ResponseOutputItemAdded: RealtimeProtocol._apply_output_item,
        ev.ResponseOutputItemDone: RealtimeProtocol._apply_output_item,
        ev.ResponseContentPartAdded: RealtimeProtocol._apply_content_part,
        ev.ResponseContentPartDone: RealtimeProtocol._apply_content_part,
        ev.ResponseOutputTextDelta: RealtimeProtocol._apply_text_delta,
        ev.ResponseOutputTextDone: RealtimeProtocol._apply_text_done,
        ev.ResponseOutputAudioTranscriptDelta: RealtimeProtocol._apply_transcript_delta,
        ev.ResponseOutputAudioTranscriptDone: RealtimeProtocol._apply_transcript_done,
        ev.ResponseFunctionCallArgumentsDelta: RealtimeProtocol._apply_arguments_delta,
        ev.ResponseFunctionCallArgumentsDone: RealtimeProtocol._apply_arguments_done,
        ev.RateLimitsUpdated: RealtimeProtocol._apply_rate_limits,
    },
    RealtimeProtocol._apply_nothing,
)

# What an event class means to _settle.
_OTHER, _ERROR, _NAMES_ITEM, _NAMES_ITEM_ID = 0, 1, 2, 3
_RESPONSE_DONE, _RESPONSE_CREATED, _COMMITTED = 4, 5, 6
_SETTLE_ROLE: _ByClass[int] = _ByClass(
    {
        ev.Error: _ERROR,
        ev.ConversationItemAdded: _NAMES_ITEM,
        ev.ConversationItemCreated: _NAMES_ITEM,
        ev.ConversationItemRetrieved: _NAMES_ITEM,
        ev.ConversationItemTruncated: _NAMES_ITEM_ID,
        ev.ConversationItemDeleted: _NAMES_ITEM_ID,
        ev.ResponseDone: _RESPONSE_DONE,
        ev.ResponseCreated: _RESPONSE_CREATED,
        ev.InputAudioBufferCommitted: _COMMITTED,
    },
    _OTHER,
)
