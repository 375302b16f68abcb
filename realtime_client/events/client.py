"""Client → server events, canonical (GA) names.

``session.update`` → ``SessionUpdate``; the mapping is mechanical. The beta dialect's
``transcription_session.update`` has no class of its own: the beta edge adapter maps it
to ``SessionUpdate`` with a :class:`~realtime_client.events.TranscriptionSession`. The
translation API's ``session.close`` and ``session.input_audio_buffer.append`` belong to
a separate protocol and are not modelled.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import ClientEvent
from .objects import Item, ResponseCreateParams, Session

__all__ = [
    "CLIENT_EVENT_CLASSES",
    "ConversationItemCreate",
    "ConversationItemDelete",
    "ConversationItemRetrieve",
    "ConversationItemTruncate",
    "InputAudioBufferAppend",
    "InputAudioBufferClear",
    "InputAudioBufferCommit",
    "OutputAudioBufferClear",
    "ResponseCancel",
    "ResponseCreate",
    "SessionUpdate",
    "UnknownClientEvent",
]


class UnknownClientEvent(ClientEvent):
    """A client event whose ``type`` this library does not know."""


class SessionUpdate(ClientEvent):
    """``session.update``: a partial session config (GA needs ``session.type``)."""

    type: Literal["session.update"] = "session.update"
    session: Session


class InputAudioBufferAppend(ClientEvent):
    """``input_audio_buffer.append``: base64 audio in the session's input format.

    On the hot path use :func:`realtime_client.events.build_append` instead, which
    goes straight from samples to wire bytes.
    """

    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    audio: str = Field(repr=False)


class InputAudioBufferCommit(ClientEvent):
    """``input_audio_buffer.commit``: turn the buffer into a user item (≥ 100 ms)."""

    type: Literal["input_audio_buffer.commit"] = "input_audio_buffer.commit"


class InputAudioBufferClear(ClientEvent):
    """``input_audio_buffer.clear``: drop buffered input audio."""

    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"


class OutputAudioBufferClear(ClientEvent):
    """``output_audio_buffer.clear`` (WebRTC/SIP): stop playback and drop unplayed audio."""

    type: Literal["output_audio_buffer.clear"] = "output_audio_buffer.clear"


class ConversationItemCreate(ClientEvent):
    """``conversation.item.create``: add an item (``previous_item_id`` ``"root"`` = first)."""

    type: Literal["conversation.item.create"] = "conversation.item.create"
    previous_item_id: str | None = None
    item: Item


class ConversationItemRetrieve(ClientEvent):
    """``conversation.item.retrieve``: ask for the server's copy of an item."""

    type: Literal["conversation.item.retrieve"] = "conversation.item.retrieve"
    item_id: str


class ConversationItemTruncate(ClientEvent):
    """``conversation.item.truncate``: cut assistant audio where playback stopped.

    ``audio_end_ms`` is inclusive and may not exceed the item's audio duration.
    """

    _always_set = ("type", "content_index")

    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    item_id: str
    content_index: int = 0
    audio_end_ms: int


class ConversationItemDelete(ClientEvent):
    """``conversation.item.delete``."""

    type: Literal["conversation.item.delete"] = "conversation.item.delete"
    item_id: str


class ResponseCreate(ClientEvent):
    """``response.create`` with optional per-response overrides."""

    type: Literal["response.create"] = "response.create"
    response: ResponseCreateParams | None = None


class ResponseCancel(ClientEvent):
    """``response.cancel``: cancel the active (or the given) response."""

    type: Literal["response.cancel"] = "response.cancel"
    response_id: str | None = None


#: Every known client event class by its canonical (GA) wire type.
CLIENT_EVENT_CLASSES: dict[str, type[ClientEvent]] = {
    cls.wire_type: cls
    for cls in (
        SessionUpdate,
        InputAudioBufferAppend,
        InputAudioBufferCommit,
        InputAudioBufferClear,
        OutputAudioBufferClear,
        ConversationItemCreate,
        ConversationItemRetrieve,
        ConversationItemTruncate,
        ConversationItemDelete,
        ResponseCreate,
        ResponseCancel,
    )
}
