"""Server → client events, canonical (GA) names.

Class names are mechanical: the wire type ``response.output_audio.delta`` is
``ResponseOutputAudioDelta``. Beta wire names (``response.audio.delta`` …) are mapped
to these classes by :mod:`realtime_client.events.beta`, and so are the beta
``transcription_session.created`` / ``.updated`` (to ``SessionCreated`` /
``SessionUpdated`` with a transcription session).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pybase64
from pydantic import Field

from ..errors import InvalidEventError
from ._base import ServerEvent
from .objects import (
    ContentPart,
    ConversationInfo,
    ErrorDetail,
    Item,
    LogProb,
    RateLimit,
    Response,
    Session,
    TranscriptionUsage,
)

_LE_INT16 = np.dtype("<i2")
# Bound once, and called with positional arguments: the audio-delta decoders run 50 times a
# second per session, and keyword parsing is most of what these calls cost on a 20 ms delta
# (measured here: np.frombuffer 0.35 vs 0.6 us with dtype=; pybase64.b64decode 0.26 vs
# 0.42 us with validate=True).
_frombuffer = np.frombuffer
_b64decode = pybase64.b64decode

__all__ = [
    "ConversationCreated",
    "ConversationItemAdded",
    "ConversationItemCreated",
    "ConversationItemDeleted",
    "ConversationItemDone",
    "ConversationItemInputAudioTranscriptionCompleted",
    "ConversationItemInputAudioTranscriptionDelta",
    "ConversationItemInputAudioTranscriptionFailed",
    "ConversationItemInputAudioTranscriptionSegment",
    "ConversationItemRetrieved",
    "ConversationItemTruncated",
    "Error",
    "InputAudioBufferCleared",
    "InputAudioBufferCommitted",
    "InputAudioBufferDtmfEventReceived",
    "InputAudioBufferSpeechStarted",
    "InputAudioBufferSpeechStopped",
    "InputAudioBufferTimeoutTriggered",
    "McpListToolsCompleted",
    "McpListToolsFailed",
    "McpListToolsInProgress",
    "OutputAudioBufferCleared",
    "OutputAudioBufferStarted",
    "OutputAudioBufferStopped",
    "RateLimitsUpdated",
    "ResponseContentPartAdded",
    "ResponseContentPartDone",
    "ResponseCreated",
    "ResponseDone",
    "ResponseFunctionCallArgumentsDelta",
    "ResponseFunctionCallArgumentsDone",
    "ResponseMcpCallArgumentsDelta",
    "ResponseMcpCallArgumentsDone",
    "ResponseMcpCallCompleted",
    "ResponseMcpCallFailed",
    "ResponseMcpCallInProgress",
    "ResponseOutputAudioDelta",
    "ResponseOutputAudioDone",
    "ResponseOutputAudioTranscriptDelta",
    "ResponseOutputAudioTranscriptDone",
    "ResponseOutputItemAdded",
    "ResponseOutputItemDone",
    "ResponseOutputTextDelta",
    "ResponseOutputTextDone",
    "SERVER_EVENT_CLASSES",
    "SessionCreated",
    "SessionUpdated",
    "UnknownServerEvent",
]


class UnknownServerEvent(ServerEvent):
    """A server event whose ``type`` this library does not know; ``raw`` has it all."""


class Error(ServerEvent):
    """``error``: most are recoverable; the session goes on."""

    type: Literal["error"] = "error"
    error: ErrorDetail


class SessionCreated(ServerEvent):
    """``session.created``: the first event, with the full default session."""

    type: Literal["session.created"] = "session.created"
    session: Session


class SessionUpdated(ServerEvent):
    """``session.updated``: the full session state after a ``session.update``."""

    type: Literal["session.updated"] = "session.updated"
    session: Session


class ConversationCreated(ServerEvent):
    """``conversation.created`` (in the SDK; not seen from real servers lately)."""

    type: Literal["conversation.created"] = "conversation.created"
    conversation: ConversationInfo


class ConversationItemCreated(ServerEvent):
    """``conversation.item.created`` (the beta server's item event)."""

    type: Literal["conversation.item.created"] = "conversation.item.created"
    previous_item_id: str | None = None
    item: Item


class ConversationItemAdded(ServerEvent):
    """``conversation.item.added`` (GA): an item joined the conversation."""

    type: Literal["conversation.item.added"] = "conversation.item.added"
    previous_item_id: str | None = None
    item: Item


class ConversationItemDone(ServerEvent):
    """``conversation.item.done`` (GA): an item is final."""

    type: Literal["conversation.item.done"] = "conversation.item.done"
    previous_item_id: str | None = None
    item: Item


class ConversationItemRetrieved(ServerEvent):
    """``conversation.item.retrieved``: answer to ``conversation.item.retrieve``."""

    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: Item


class ConversationItemTruncated(ServerEvent):
    """``conversation.item.truncated``: answer to ``conversation.item.truncate``."""

    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int
    audio_end_ms: int


class ConversationItemDeleted(ServerEvent):
    """``conversation.item.deleted``: answer to ``conversation.item.delete``."""

    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str


class ConversationItemInputAudioTranscriptionDelta(ServerEvent):
    """Streaming transcription of a user audio item (may arrive late)."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int | None = None
    delta: str | None = None
    logprobs: list[LogProb] | None = None


class ConversationItemInputAudioTranscriptionCompleted(ServerEvent):
    """Final transcription of a user audio item; match it by ``item_id``."""

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int | None = None
    transcript: str
    usage: TranscriptionUsage | None = None
    logprobs: list[LogProb] | None = None


class ConversationItemInputAudioTranscriptionFailed(ServerEvent):
    """Transcription of a user audio item failed."""

    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str
    content_index: int | None = None
    error: ErrorDetail


class ConversationItemInputAudioTranscriptionSegment(ServerEvent):
    """A diarized transcription segment (times in seconds)."""

    type: Literal["conversation.item.input_audio_transcription.segment"] = (
        "conversation.item.input_audio_transcription.segment"
    )
    id: str | None = None
    item_id: str
    content_index: int | None = None
    text: str | None = None
    speaker: str | None = None
    start: float | None = None
    end: float | None = None


class InputAudioBufferCommitted(ServerEvent):
    """``input_audio_buffer.committed``: the buffer became user item ``item_id``."""

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    previous_item_id: str | None = None
    item_id: str


class InputAudioBufferCleared(ServerEvent):
    """``input_audio_buffer.cleared``: answer to ``input_audio_buffer.clear``."""

    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class InputAudioBufferSpeechStarted(ServerEvent):
    """VAD heard speech start (ms in the input time base); also the barge-in signal."""

    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class InputAudioBufferSpeechStopped(ServerEvent):
    """VAD heard speech end (ms in the input time base); a commit follows."""

    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class InputAudioBufferTimeoutTriggered(ServerEvent):
    """``idle_timeout_ms`` expired: the silent audio is committed and answered."""

    type: Literal["input_audio_buffer.timeout_triggered"] = "input_audio_buffer.timeout_triggered"
    item_id: str
    audio_start_ms: int
    audio_end_ms: int


class InputAudioBufferDtmfEventReceived(ServerEvent):
    """A SIP keypad press."""

    type: Literal["input_audio_buffer.dtmf_event_received"] = (
        "input_audio_buffer.dtmf_event_received"
    )
    event: str
    received_at: int


class ResponseCreated(ServerEvent):
    """``response.created``: status ``in_progress``, no output yet."""

    type: Literal["response.created"] = "response.created"
    response: Response


class ResponseDone(ServerEvent):
    """``response.done``: the response ended (completed, cancelled, failed, incomplete)."""

    type: Literal["response.done"] = "response.done"
    response: Response


class ResponseOutputItemAdded(ServerEvent):
    """A new output item of a response."""

    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str
    output_index: int
    item: Item


class ResponseOutputItemDone(ServerEvent):
    """An output item of a response is final."""

    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str
    output_index: int
    item: Item


class ResponseContentPartAdded(ServerEvent):
    """A new content part (``{"type": "audio"|"text", …}``) of an output item."""

    type: Literal["response.content_part.added"] = "response.content_part.added"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart


class ResponseContentPartDone(ServerEvent):
    """A content part is final."""

    type: Literal["response.content_part.done"] = "response.content_part.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart


class ResponseOutputTextDelta(ServerEvent):
    """A chunk of output text (beta: ``response.text.delta``)."""

    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseOutputTextDone(ServerEvent):
    """The full output text (beta: ``response.text.done``)."""

    type: Literal["response.output_text.done"] = "response.output_text.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    text: str


class ResponseOutputAudioDelta(ServerEvent):
    """A chunk of output audio, base64 in the session's output format.

    Beta: ``response.audio.delta``. The payload stays a string until asked for:
    :meth:`pcm16` decodes it.
    """

    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str = Field(repr=False)

    if not TYPE_CHECKING:  # hidden from type checkers, as pydantic hides its own

        def __getattr__(self, name: str) -> Any:
            # The parser's fast path (codec.parse_server_event) sets only ``__dict__`` for
            # a plain seven-field delta and leaves pydantic's bookkeeping slots empty: an
            # audio delta arrives 50 times a second and is rarely more than decoded, and
            # filling them costs more than the rest of its construction (measured: 0.4 us
            # of 1.9 at 20 ms). They are filled here, on first use, with exactly what
            # validation gives such a delta: all fields set, no extras, no private state.
            if name == "__pydantic_fields_set__":
                value: Any = set(_DELTA_FIELDS)
            elif name == "__pydantic_extra__":
                value = {}
            elif name == "__pydantic_private__":
                value = None
            else:
                return super().__getattr__(name)
            object.__setattr__(self, name, value)
            return value

    def audio_bytes(self) -> bytes:
        """The decoded payload bytes (PCM16 little-endian or G.711 codes)."""
        delta = self.delta
        cached = _last_payload
        if cached[0] is delta:
            return cached[1]
        try:
            return _b64decode(delta, None, True)  # None, True: validate
        except ValueError as exc:
            raise InvalidEventError(f"{self.type}: delta is not valid base64", delta) from exc

    def pcm16(self) -> npt.NDArray[np.int16]:
        """The payload as int16 samples (for ``audio/pcm`` output; read-only)."""
        delta = self.delta
        cached = _last_payload
        try:
            if cached[0] is delta:
                return _frombuffer(cached[1], _LE_INT16)
            return _frombuffer(_b64decode(delta, None, True), _LE_INT16)  # None, True: validate
        except ValueError as exc:  # bad base64, or an odd byte count
            raise InvalidEventError(f"{self.type}: delta is not PCM16: {exc}", delta) from exc


_DELTA_FIELDS = frozenset(ResponseOutputAudioDelta.model_fields)

# The payload the parser decoded last (a large delta's, see codec._split_audio_delta), with
# the very string it came from. A one-entry memo rather than a per-event slot, because
# setting a slot on every delta costs more than it saves: the session decodes each delta
# right after parsing it, so one entry hits; a miss only decodes again. It is keyed by
# identity and holds the string, so it can never answer for a different payload.
_last_payload: tuple[str, bytes] = ("", b"")


def _remember_payload(delta: str, decoded: bytes) -> None:
    """Record ``decoded`` as the payload of ``delta`` (the parser's split path)."""
    global _last_payload
    _last_payload = (delta, decoded)


class ResponseOutputAudioDone(ServerEvent):
    """No more audio for this content part (beta: ``response.audio.done``)."""

    type: Literal["response.output_audio.done"] = "response.output_audio.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int


class ResponseOutputAudioTranscriptDelta(ServerEvent):
    """A chunk of the output audio's transcript (beta: ``response.audio_transcript.delta``)."""

    type: Literal["response.output_audio_transcript.delta"] = (
        "response.output_audio_transcript.delta"
    )
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseOutputAudioTranscriptDone(ServerEvent):
    """The full transcript of the output audio."""

    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    transcript: str


class ResponseFunctionCallArgumentsDelta(ServerEvent):
    """A chunk of a function call's JSON arguments."""

    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str


class ResponseFunctionCallArgumentsDone(ServerEvent):
    """A function call's arguments are complete (GA adds ``name``)."""

    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    arguments: str
    name: str | None = None


class ResponseMcpCallArgumentsDelta(ServerEvent):
    """A chunk of an MCP call's arguments."""

    type: Literal["response.mcp_call_arguments.delta"] = "response.mcp_call_arguments.delta"
    response_id: str
    item_id: str
    output_index: int
    delta: str


class ResponseMcpCallArgumentsDone(ServerEvent):
    """An MCP call's arguments are complete."""

    type: Literal["response.mcp_call_arguments.done"] = "response.mcp_call_arguments.done"
    response_id: str
    item_id: str
    output_index: int
    arguments: str


class ResponseMcpCallInProgress(ServerEvent):
    """An MCP call started."""

    type: Literal["response.mcp_call.in_progress"] = "response.mcp_call.in_progress"
    item_id: str
    output_index: int


class ResponseMcpCallCompleted(ServerEvent):
    """An MCP call completed."""

    type: Literal["response.mcp_call.completed"] = "response.mcp_call.completed"
    item_id: str
    output_index: int


class ResponseMcpCallFailed(ServerEvent):
    """An MCP call failed."""

    type: Literal["response.mcp_call.failed"] = "response.mcp_call.failed"
    item_id: str
    output_index: int


class McpListToolsInProgress(ServerEvent):
    """Listing an MCP server's tools started."""

    type: Literal["mcp_list_tools.in_progress"] = "mcp_list_tools.in_progress"
    item_id: str


class McpListToolsCompleted(ServerEvent):
    """Listing an MCP server's tools completed."""

    type: Literal["mcp_list_tools.completed"] = "mcp_list_tools.completed"
    item_id: str


class McpListToolsFailed(ServerEvent):
    """Listing an MCP server's tools failed."""

    type: Literal["mcp_list_tools.failed"] = "mcp_list_tools.failed"
    item_id: str


class RateLimitsUpdated(ServerEvent):
    """``rate_limits.updated``: one per response."""

    type: Literal["rate_limits.updated"] = "rate_limits.updated"
    rate_limits: list[RateLimit]


class OutputAudioBufferStarted(ServerEvent):
    """WebRTC/SIP: the server began playing a response's audio (early beta: ``audio_started``)."""

    type: Literal["output_audio_buffer.started"] = "output_audio_buffer.started"
    response_id: str


class OutputAudioBufferStopped(ServerEvent):
    """WebRTC/SIP: the output buffer drained (early beta: ``audio_stopped``)."""

    type: Literal["output_audio_buffer.stopped"] = "output_audio_buffer.stopped"
    response_id: str


class OutputAudioBufferCleared(ServerEvent):
    """WebRTC/SIP: the output buffer was cleared (early beta: ``audio_cleared``)."""

    type: Literal["output_audio_buffer.cleared"] = "output_audio_buffer.cleared"
    response_id: str


#: Every known server event class by its canonical (GA) wire type.
SERVER_EVENT_CLASSES: dict[str, type[ServerEvent]] = {
    cls.wire_type: cls
    for cls in (
        Error,
        SessionCreated,
        SessionUpdated,
        ConversationCreated,
        ConversationItemCreated,
        ConversationItemAdded,
        ConversationItemDone,
        ConversationItemRetrieved,
        ConversationItemTruncated,
        ConversationItemDeleted,
        ConversationItemInputAudioTranscriptionDelta,
        ConversationItemInputAudioTranscriptionCompleted,
        ConversationItemInputAudioTranscriptionFailed,
        ConversationItemInputAudioTranscriptionSegment,
        InputAudioBufferCommitted,
        InputAudioBufferCleared,
        InputAudioBufferSpeechStarted,
        InputAudioBufferSpeechStopped,
        InputAudioBufferTimeoutTriggered,
        InputAudioBufferDtmfEventReceived,
        ResponseCreated,
        ResponseDone,
        ResponseOutputItemAdded,
        ResponseOutputItemDone,
        ResponseContentPartAdded,
        ResponseContentPartDone,
        ResponseOutputTextDelta,
        ResponseOutputTextDone,
        ResponseOutputAudioDelta,
        ResponseOutputAudioDone,
        ResponseOutputAudioTranscriptDelta,
        ResponseOutputAudioTranscriptDone,
        ResponseFunctionCallArgumentsDelta,
        ResponseFunctionCallArgumentsDone,
        ResponseMcpCallArgumentsDelta,
        ResponseMcpCallArgumentsDone,
        ResponseMcpCallInProgress,
        ResponseMcpCallCompleted,
        ResponseMcpCallFailed,
        McpListToolsInProgress,
        McpListToolsCompleted,
        McpListToolsFailed,
        RateLimitsUpdated,
        OutputAudioBufferStarted,
        OutputAudioBufferStopped,
        OutputAudioBufferCleared,
    )
}
