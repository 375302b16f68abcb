"""The protocol state machine: :class:`RealtimeProtocol` (see the package docstring)."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import events as ev
from .._dispatch import ByClass
from ..errors import InvalidEventError, InvalidStateError, RemoteProtocolError, ServerError
from ..events.codec import Dialect, RawEvent
from ..recording import iter_records, server_events
from .builders import ClientEventBuilder
from .queue import ResponseQueue
from .restore import RestorePlan, plan_restore
from .state import (
    AudioPart,
    Conversation,
    ItemState,
    PartState,
    ResponseState,
    UsageTotals,
    b64_decoded_len,
    check_index,
    output_bytes_per_ms,
)

__all__ = ["Received", "RealtimeProtocol"]

# VAD times kept for user items not (yet) announced: the latest few only.
_PENDING_SPEECH_TIMES = 64


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
        answer_events: The answer of a request settled late by another event (by client
            ``event_id``): a ``response.create`` whose ``response.created`` was first
            credited to server VAD gets that ``response.created`` when the response ends.
        absorbed: Requests whose error the core handled: a ``response.create`` that
            met an active response (queued again at the front, under the same token:
            see :meth:`RealtimeProtocol.queue_response`), a ``response.cancel`` that
            met none (its answer is ``None``).
    """

    event: ev.ServerEvent
    answered: list[tuple[str, ev.ClientEvent]] = field(default_factory=list)
    failed: list[tuple[str, ev.ClientEvent, ServerError]] = field(default_factory=list)
    absorbed: list[tuple[str, ev.ClientEvent]] = field(default_factory=list)
    answer_events: dict[str, ev.ServerEvent] = field(default_factory=dict)

    @property
    def surfaced(self) -> bool:
        """Whether the app should see this event (``False``: a race the core absorbed).

        An ``error`` that only told us about races the state machine handles (a
        ``response.create`` re-queued, a cancel that found its response finished) is not
        the caller's problem.
        """
        return not self.absorbed or bool(self.failed)


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


class RealtimeProtocol(ResponseQueue, ClientEventBuilder):
    """The conversation state machine of one Realtime connection (no I/O).

    Args:
        dialect: ``"ga"`` (default) or ``"beta"``: how frames are parsed and serialized.
        retain_audio_ms: Keep up to this many ms of output audio bytes per item
            (0 = keep none; the ms count is kept regardless).
        client_id_prefix: Prefix of the client ``event_id`` values we generate.
        keep_responses: How many finished responses :attr:`responses` keeps (the
            oldest are forgotten first; in-progress ones are always kept). Session
            totals (:attr:`usage`) are counters and cover every response. Over a long
            conversation this is what keeps memory flat: the conversation's items stay
            (their text is the conversation), per-response bookkeeping does not.

    Raises:
        ValueError: A bad ``dialect``, ``retain_audio_ms`` or ``keep_responses``.
    """

    def __init__(
        self,
        *,
        dialect: Dialect = "ga",
        retain_audio_ms: float = 0.0,
        client_id_prefix: str = "client_evt_",
        keep_responses: int = 64,
    ) -> None:
        if dialect not in ("ga", "beta"):
            raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}")
        if retain_audio_ms < 0:
            raise ValueError("retain_audio_ms must be >= 0")
        if keep_responses < 1:
            raise ValueError(f"keep_responses must be >= 1, got {keep_responses}")
        self.keep_responses = keep_responses
        # Finished response ids, oldest first: past keep_responses they are forgotten.
        self._finished: deque[str] = deque()
        self._finished_set: set[str] = set()
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
        # VAD times arrive before their user item exists (speech_started names its id);
        # they move into the item when it appears, and only the latest few wait.
        self._speech_times: dict[str, tuple[int | None, int | None]] = {}
        #: Absorb the ``response.create`` race (re-queue on
        #: ``conversation_already_has_active_response``); ``False`` surfaces it.
        self.absorb_response_races = True
        # The response queue: (response.create, the caller's token) waiting their turn;
        # the tokens of those sent; how many sent creates await their response.created.
        self._response_queue: deque[tuple[ev.ResponseCreate, Any]] = deque()
        self._response_tokens: dict[str, Any] = {}
        self.awaiting_created = 0
        # response.created events credited to VAD while one of ours waited (see
        # _settle_credited), by response id.
        self._credited_to_vad: dict[str, ev.ResponseCreated] = {}
        # Item ids a restore changed: old id -> the server's id (None: not re-created).
        self._item_ids: dict[str, str | None] = {}

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
            try:
                event = ev.parse_server_event(data, dialect=self.dialect)
            except InvalidEventError as exc:
                self._salvage(exc.raw)
                raise
        else:
            event = data
        received = Received(event)
        if type(event) is ev.ResponseOutputAudioDelta:  # the hot path: it settles nothing
            self._apply_audio_delta(event)
            return received
        self._apply(event)
        self._settle(event, received)
        return received

    def _salvage(self, raw: Any) -> None:
        """What an event that failed strict parsing still decides.

        A ``response.done`` that names its response ends it (status ``incomplete``,
        reason ``invalid_response_done``): otherwise it would stay active for ever, later
        cancels would target a finished response and queued creates would never go out.
        """
        if not isinstance(raw, dict) or raw.get("type") != "response.done":
            return
        response = raw.get("response")
        rid = response.get("id") if isinstance(response, dict) else None
        if not isinstance(rid, str) or not rid:
            return
        state = self._response(rid)
        if not state.done:
            state.status = "incomplete"
            state.status_details = ev.StatusDetails(
                type="incomplete", reason="invalid_response_done"
            )
        if self.active_response_id == rid:
            self.active_response_id = None
        self._auto_responses_expected = 0
        self._retire(rid)

    def receive_all(self, frames: Iterable[RawEvent]) -> list[Received]:
        """Apply many frames in order (e.g. the lines of a JSONL recording)."""
        return [self.receive(f) for f in frames]

    def replay_jsonl(self, text: str) -> list[Received]:
        """Drive the core from a recording (:mod:`realtime_client.recording`'s format).

        The server's events are applied in order; client and meta records are skipped
        (bare event lines count as server events). Elided audio is applied as silence of
        its recorded length; the returned events keep it, at most
        :data:`~realtime_client.recording.MAX_ELIDED_TOTAL` bytes (512 MiB) a recording.

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
                error = _server_error(event.error)
                if not self._absorb(pending, error, received):
                    received.failed.append((pending.event_id, pending.event, error))
            elif client_id in self._answered_cancels:
                # The response finished on its own just before our cancel reached the
                # server: its response.done answered the cancel, then this error came.
                late = self._answered_cancels.pop(client_id)
                if event.error.code == "response_cancel_not_active":
                    received.absorbed.append((client_id, late))
                else:
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
            self._settle_credited(event.response.id, received)
        elif role == _RESPONSE_CREATED:
            assert isinstance(event, ev.ResponseCreated)
            if event.response.conversation_id is not None and self._auto_responses_expected:
                # Server VAD's own response for a turn it committed, not ours: our
                # response.create is answered by a later response.created or an error.
                self._auto_responses_expected -= 1
                if self._fifo.get("response.created") and event.response.id:
                    self._credited_to_vad[event.response.id] = event
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
                if role == _RESPONSE_CREATED:
                    self._created_arrived(event_id)
                return
        if role == _COMMITTED and self._vad_creates_responses():
            self._auto_responses_expected += 1  # a commit by VAD (or idle timeout), not ours

    def _settle_credited(self, response_id: str | None, received: Received) -> None:
        """A response credited to VAD ended while our ``response.create`` still waits.

        The service answers every ``response.create`` with ``response.created`` or an
        error before it finishes another response; if neither came for ours, the response
        we credited to VAD (an unrequested commit arrived between our create and its
        ``response.created``) was ours after all: it answers our create now.
        """
        created = self._credited_to_vad.pop(response_id or "", None)
        queue = self._fifo.get("response.created")
        if created is None or not queue:
            return
        event_id = queue.popleft()
        pending = self._pending.pop(event_id, None)
        if pending is None:
            return
        received.answered.append((event_id, pending.event))
        received.answer_events[event_id] = created
        self._created_arrived(event_id)

    def _absorb(self, pending: _Pending, error: ServerError, received: Received) -> bool:
        """Handle the races the state machine absorbs; True when the error is consumed."""
        request = pending.event
        if isinstance(request, ev.ResponseCreate):
            token = self._created_arrived(pending.event_id)
            if (
                error.code == "conversation_already_has_active_response"
                and self.absorb_response_races
                and token is not None
            ):
                # A VAD turn raced us: ask again when the active response ends.
                retry = request.model_copy(update={"event_id": None})
                self._response_queue.appendleft((retry, token))
                received.absorbed.append((pending.event_id, request))
                return True
            return False
        if isinstance(request, ev.ResponseCancel) and error.code == "response_cancel_not_active":
            received.absorbed.append((pending.event_id, request))
            return True
        return False

    def _created_arrived(self, event_id: str) -> Any:
        """A sent ``response.create`` was answered (or refused): its token, if queued."""
        if event_id in self._response_tokens or self.awaiting_created:
            self.awaiting_created = max(0, self.awaiting_created - 1)
        return self._response_tokens.pop(event_id, None)

    def _turn_detection(self) -> tuple[bool, Any]:
        """``(described, turn_detection)`` of the session's audio input."""
        session = self.session
        if not isinstance(session, ev.RealtimeSession) or not session.audio:
            return False, None
        if session.audio.input is None:
            return False, None
        return True, session.audio.input.turn_detection

    def _vad_creates_responses(self) -> bool:
        """Whether the server answers its own VAD commits with a response."""
        if not isinstance(self.session, ev.RealtimeSession):
            return False
        described, td = self._turn_detection()
        if not described:
            return True  # not described: the service's default is server VAD that responds
        if isinstance(td, ev.ServerVad | ev.SemanticVad):
            return td.create_response is not False
        return False

    def server_cancels_on_speech(self) -> bool:
        """Whether server VAD cancels the active response by itself when the user speaks.

        The session's barge-in sends ``response.cancel`` only where it does not.
        """
        described, td = self._turn_detection()
        if not described:
            return True  # the service's default: server_vad with interrupt_response
        if isinstance(td, ev.ServerVad | ev.SemanticVad):
            return td.interrupt_response is not False
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
            raise RemoteProtocolError(f"server sent a {item.type!r} item without an id")
        state = self.conversation.items.get(item_id)
        if state is None:
            state = ItemState(id=item_id, type=item.type or "unknown")
            state.speech_start_ms, state.speech_end_ms = self._speech_times.pop(
                item_id, (None, None)
            )
            self.conversation.items[item_id] = state
            for early in self.conversation.take_deferred(item_id):
                self._apply_transcription(early, state)
        if response_id is not None:
            state.response_id = response_id
        status = getattr(item, "status", None)
        if status is not None:
            state.status = status
        if isinstance(item, ev.MessageItem):
            state.role = item.role
            state.phase = item.phase or state.phase
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
        ms = self.last_delta_ms = b64_decoded_len(event.delta) / self.output_bytes_per_ms
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
        self.conversation.place(
            state.id, event.previous_item_id, "previous_item_id" in event.model_fields_set
        )

    def _apply_item_done(self, event: ev.ConversationItemDone) -> None:
        state = self._item(event.item)
        self.conversation.place(
            state.id, event.previous_item_id, "previous_item_id" in event.model_fields_set
        )
        for part in state.parts:
            part.done = True

    def _apply_item_retrieved(self, event: ev.ConversationItemRetrieved) -> None:
        self._item(event.item)

    def _apply_item_deleted(self, event: ev.ConversationItemDeleted) -> None:
        self.conversation.remove(event.item_id)

    def _apply_item_truncated(self, event: ev.ConversationItemTruncated) -> None:
        found = self.conversation.items.get(event.item_id)
        if found is not None:
            if found.untruncated_audio_ms is None:
                found.untruncated_audio_ms = found.audio_ms
            found.truncated_at_ms = event.audio_end_ms
            part = found.part(event.content_index)
            part.audio_ms = min(part.audio_ms, float(event.audio_end_ms))

    def _apply_input_transcription(self, event: Any) -> None:
        conv = self.conversation
        found = conv.items.get(event.item_id)
        if found is None:
            conv.defer(event.item_id, event)
        else:
            self._apply_transcription(event, found)

    def _apply_speech_started(self, event: ev.InputAudioBufferSpeechStarted) -> None:
        self.speaking = True
        known = self.conversation.items.get(event.item_id)
        if known is not None:
            known.speech_start_ms = event.audio_start_ms
            return
        self._speech_times[event.item_id] = (event.audio_start_ms, None)
        while len(self._speech_times) > _PENDING_SPEECH_TIMES:  # items that never came
            del self._speech_times[next(iter(self._speech_times))]

    def _apply_speech_stopped(self, event: ev.InputAudioBufferSpeechStopped) -> None:
        self.speaking = False
        known = self.conversation.items.get(event.item_id)
        if known is not None:
            known.speech_end_ms = event.audio_end_ms
            return
        start = self._speech_times.get(event.item_id, (None, None))[0]
        self._speech_times[event.item_id] = (start, event.audio_end_ms)

    def _apply_committed(self, event: ev.InputAudioBufferCommitted) -> None:
        self.speaking = False

    def _apply_response_created(self, event: ev.ResponseCreated) -> None:
        response = event.response
        if response.id is None:
            raise RemoteProtocolError("server sent response.created without a response id")
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
        check_index(event.output_index, "output_index")
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
        item = self.conversation.items.get(item_id)
        if item is not None:
            return item.speech_start_ms, item.speech_end_ms
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
            raise RemoteProtocolError("server sent response.done without a response id")
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
                check_index(index, "output_index")
                while len(state.output_item_ids) <= index:
                    state.output_item_ids.append("")
                state.output_item_ids[index] = item_state.id
        if response.usage is not None:
            self.usage.add(response.usage)
        if self.active_response_id == response.id:
            self.active_response_id = None
        self._retire(response.id)

    def _retire(self, response_id: str) -> None:
        """A response finished: forget the oldest finished ones past ``keep_responses``."""
        if response_id in self._finished_set:
            return  # a second response.done for it
        self._finished.append(response_id)
        self._finished_set.add(response_id)
        while len(self._finished) > self.keep_responses:
            old = self._finished.popleft()
            self._finished_set.discard(old)
            state = self.responses.get(old)
            if state is not None and state.done:
                del self.responses[old]

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

    def audio_item_of(self, response_id: str) -> tuple[str, int] | None:
        """``(item_id, content_index)`` of a response's audio output, if it has any yet.

        What output audio that arrives as media (WebRTC) belongs to: the first output
        message of the response with an ``output_audio`` part (or, before its parts are
        announced, its first message).
        """
        state = self.responses.get(response_id)
        if state is None:
            return None
        first: str | None = None
        for item_id in state.output_item_ids:
            item = self.conversation.get(item_id)
            if item is None or item.type != "message":
                continue
            for index, part in enumerate(item.parts):
                if part.type == "output_audio":
                    return item_id, index
            first = first or item_id
        return (first, 0) if first is not None else None

    def add_output_audio_ms(self, item_id: str, content_index: int, ms: float) -> None:
        """Count output audio that arrived outside the events (media), in ms.

        Truncate clamps and audio-per-item figures then work as with deltas.
        """
        item = self.conversation.get(item_id)
        if item is not None:
            item.part(content_index, "output_audio").audio_ms += ms

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
        for rid in abandoned:
            self._retire(rid)
        self.active_response_id = None
        return abandoned

    def reset_pending(self) -> list[tuple[str, ev.ClientEvent]]:
        """Drop every pending request (connection lost); returns what was dropped.

        Queued ``response.create`` requests stay queued (see :meth:`drain_responses`).
        """
        dropped = [(k, p.event) for k, p in self._pending.items()]
        self._pending.clear()
        self._fifo.clear()
        self._response_tokens.clear()
        self._credited_to_vad.clear()
        self.awaiting_created = 0
        # What the old connection's VAD was about to do is gone with it.
        self._auto_responses_expected = 0
        self.speaking = False
        return dropped

    # --- item ids across reconnects ----------------------------------------------------

    @property
    def item_id_map(self) -> dict[str, str | None]:
        """Item ids a restore changed: old id to the server's id (``None``: refused). A copy."""
        return dict(self._item_ids)

    def server_item_id(self, item_id: str) -> str:
        """The id the server knows an item by (a restore may have changed it).

        Raises:
            InvalidStateError: The server refused to re-create the item.
        """
        if item_id not in self._item_ids:
            return item_id
        new_id = self._item_ids[item_id]
        if new_id is None:
            raise InvalidStateError(
                f"item {item_id!r} is not on the server: it could not be re-created "
                "after a reconnect"
            )
        return new_id

    def item_lost(self, item_id: str) -> bool:
        """Whether a restore could not re-create the item (it is not on the server)."""
        return item_id in self._item_ids and self._item_ids[item_id] is None

    def map_item_id(self, old_id: str, new_id: str | None) -> None:
        """Record that the server knows ``old_id`` as ``new_id`` (``None``: not at all)."""
        for key, value in self._item_ids.items():
            if value == old_id:  # an id mapped by an earlier reconnect moves on with it
                self._item_ids[key] = new_id
        if new_id == old_id:
            self._item_ids.pop(old_id, None)
        else:
            self._item_ids[old_id] = new_id

    def forget_item_ids(self, server_ids: Iterable[str]) -> None:
        """Ids the server uses now name those items, not older ones they replaced."""
        for old_id in [k for k in self._item_ids if k in set(server_ids)]:
            del self._item_ids[old_id]

    def restore_plan(self) -> RestorePlan:
        """What to send to re-create this conversation on a new server session.

        See :class:`~realtime_client.protocol.RestorePlan`: call ``begin()`` before
        sending its ``creates``, then ``finish(answers)`` (or ``abort()``).
        """
        return plan_restore(self)


# How _apply handles each event class (unbound methods).
_transcription = RealtimeProtocol._apply_input_transcription
_APPLY: ByClass[Callable[[RealtimeProtocol, Any], None]] = ByClass(
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
_SETTLE_ROLE: ByClass[int] = ByClass(
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
