"""Client events out: every ``build_*`` of :class:`~realtime_client.protocol.RealtimeProtocol`.

Each builder checks the event against the local state first (an illegal one raises
:class:`~realtime_client.errors.LocalProtocolError` and nothing is sent), gives it a client
``event_id`` and registers the answer that settles it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from .. import events as ev
from ..errors import InvalidStateError, LocalProtocolError
from ..events.codec import Dialect, describe_errors
from .state import Conversation, ItemState, ResponseState

__all__ = ["ClientEventBuilder"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _checked(build: _F) -> _F:
    """Arguments that make no valid event raise :class:`LocalProtocolError`, not pydantic's
    ``ValidationError`` (``retrieve_item(5)``, ``instructions=nan`` …)."""

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return build(*args, **kwargs)
        except ValidationError as exc:
            what = build.__name__.removeprefix("build_").replace("_", " ")
            raise LocalProtocolError(f"{what}: {describe_errors(exc)}") from exc

    return wrapper  # type: ignore[return-value]


def _check_position(audio_end_ms: Any, content_index: Any) -> None:
    """A truncate position must be a finite number of ms; a content index an int >= 0."""
    if (
        not isinstance(audio_end_ms, int | float)
        or isinstance(audio_end_ms, bool)
        or not math.isfinite(audio_end_ms)
    ):
        raise LocalProtocolError(f"audio_end_ms must be a finite number, got {audio_end_ms!r}")
    if type(content_index) is not int or content_index < 0:
        raise LocalProtocolError(f"content_index must be an int >= 0, got {content_index!r}")


class ClientEventBuilder:
    """The building half of the protocol core (its state lives on the protocol)."""

    dialect: Dialect
    conversation: Conversation
    responses: dict[str, ResponseState]
    active_response_id: str | None
    _ids: Any
    register: Callable[..., ev.ClientEvent]
    forget: Callable[[str], None]
    item_lost: Callable[[str], bool]
    server_item_id: Callable[[str], str]
    audio_received_ms: Callable[..., float]

    def serialize(self, event: ev.ClientEvent) -> bytes:
        """Wire bytes of a client event in this connection's dialect."""
        return ev.dumps(event, dialect=self.dialect)

    @_checked
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

    @_checked
    def build_item_create(
        self,
        item: ev.objects.Item | dict[str, Any],
        *,
        previous_item_id: str | None = None,
        item_id: str | None = None,
        match_in_order: bool = False,
    ) -> ev.ConversationItemCreate:
        """``conversation.item.create``; the answer is matched by the item's id.

        Args:
            item: The item (model or GA-shaped dict).
            previous_item_id: Insert after this item (``"root"`` = first); it must exist.
            item_id: Give the item this id (otherwise a client id is assigned so the
                answer can be matched).
            match_in_order: Settle it with the next item answer in order rather than by
                its id (a restore: the server may answer under another id).
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
        self.register(event, key=None if match_in_order else getattr(item, "id", None))
        return event

    def next_item_id(self) -> str:
        """A client-chosen item id (the service accepts client ids up to 32 chars)."""
        return f"item_c{next(self._ids):020d}"[:26]

    @_checked
    def build_text_message(
        self, text: str, *, role: Literal["user", "system"] = "user"
    ) -> ev.ConversationItemCreate:
        """A user (or system) text message item."""
        item = ev.MessageItem(role=role, content=[ev.ContentPart(type="input_text", text=text)])
        return self.build_item_create(item)

    @_checked
    def build_function_call_output(self, call_id: str, output: str) -> ev.ConversationItemCreate:
        """The result of a function call, as a ``function_call_output`` item."""
        return self.build_item_create(ev.FunctionCallOutputItem(call_id=call_id, output=output))

    @_checked
    def build_item_retrieve(self, item_id: str) -> ev.ConversationItemRetrieve:
        """``conversation.item.retrieve``."""
        event = ev.ConversationItemRetrieve(item_id=item_id)
        self.register(event, key=item_id)
        return event

    @_checked
    def build_item_delete(self, item_id: str) -> ev.ConversationItemDelete:
        """``conversation.item.delete`` (the item must be known)."""
        if item_id not in self.conversation.items:
            raise LocalProtocolError(f"cannot delete unknown item {item_id!r}")
        event = ev.ConversationItemDelete(item_id=item_id)
        self.register(event, key=item_id)
        return event

    @_checked
    def build_truncate(
        self, item_id: str, audio_end_ms: float, *, content_index: int = 0
    ) -> ev.ConversationItemTruncate:
        """``conversation.item.truncate`` at the played position.

        ``audio_end_ms`` is clamped to the audio received for the item and to an earlier
        truncation of it (the service rejects a truncate past the end: "Audio content
        of X ms is already shorter than Y ms").

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
        _check_position(audio_end_ms, content_index)
        if audio_end_ms < 0:
            raise LocalProtocolError(f"audio_end_ms must be >= 0, got {audio_end_ms!r}")
        end = int(min(audio_end_ms, self.truncatable_ms(item, content_index)))
        event = ev.ConversationItemTruncate(
            item_id=item_id, content_index=content_index, audio_end_ms=end
        )
        self.register(event, key=item_id)
        return event

    @staticmethod
    def truncatable_ms(item: ItemState, content_index: int = 0) -> float:
        """How much of a part's audio a truncate may keep: received, and not past a cut."""
        if content_index >= len(item.parts):
            return 0.0
        received = item.parts[content_index].audio_ms
        if item.truncated_at_ms is not None:
            received = min(received, float(item.truncated_at_ms))
        return received

    def plan_truncate(
        self, item_id: str, audio_end_ms: float, *, content_index: int = 0
    ) -> ev.ConversationItemTruncate | None:
        """The truncate worth sending for a played position, or ``None`` (send nothing).

        Nothing is sent when the item is unknown or lost in a reconnect, nothing was
        played, the part has no audio (an item re-created as text), or the clamped
        position is 0. Illegal targets still raise as in :meth:`build_truncate`.
        """
        _check_position(audio_end_ms, content_index)
        if self.item_lost(item_id):
            return None
        item = self.conversation.get(self.server_item_id(item_id))
        if item is None or audio_end_ms <= 0:
            return None
        if content_index >= len(item.parts) or item.parts[content_index].audio_ms <= 0:
            return None
        if self.truncatable_ms(item, content_index) < 1:
            return None  # cut at 0 already: there is nothing left to cut
        event = self.build_truncate(item.id, audio_end_ms, content_index=content_index)
        if event.audio_end_ms <= 0:
            self.forget(event.event_id or "")
            return None
        return event

    def cut_after_stop(self, item_id: str, heard_ms: float, content_index: int = 0) -> float | None:
        """Where to truncate after playback stopped with ``heard_ms`` heard (``None``: don't).

        A response that is done and was heard in full needs no cut.
        """
        item = self.conversation.get(item_id)
        response = self.responses.get(item.response_id or "") if item else None
        received = self.audio_received_ms(item_id, content_index)
        if response is not None and response.done and heard_ms >= received:
            return None
        return heard_ms

    @_checked
    def build_response_create(
        self, response: ev.ResponseCreateParams | dict[str, Any] | None = None
    ) -> ev.ResponseCreate:
        """``response.create`` with optional per-response overrides."""
        if isinstance(response, dict):
            response = ev.ResponseCreateParams.model_validate(response)
        event = ev.ResponseCreate() if response is None else ev.ResponseCreate(response=response)
        self.register(event)
        return event

    @_checked
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
