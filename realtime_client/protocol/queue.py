"""The response queue of the protocol core: one ``response.create`` in flight at a time.

Part of :class:`~realtime_client.protocol.RealtimeProtocol` (its state lives there): a
``response.create`` waits in the queue while a response is active in the default
conversation or another create of ours awaits its ``response.created``, so two never race
each other; after a lost connection the creates sent but never answered are asked again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from .. import events as ev

__all__ = ["ResponseQueue"]

_MISSING = object()


class ResponseQueue:
    """The queueing half of the protocol core (its state lives on the protocol)."""

    _response_queue: deque[tuple[ev.ResponseCreate, Any]]
    _response_tokens: dict[str, Any]
    _pending: dict[str, Any]
    active_response_id: str | None
    awaiting_created: int
    register: Callable[..., ev.ClientEvent]
    forget: Callable[[str], None]

    def queue_response(self, event: ev.ResponseCreate, token: Any) -> None:
        """Queue a ``response.create``; :meth:`next_response` says when it may go out.

        Args:
            event: The request (not yet registered).
            token: The caller's handle (the session's future), returned with the event
                and kept across a re-queue after a race.
        """
        self._response_queue.append((event, token))

    def next_response(self, *, ready: bool = True) -> tuple[ev.ResponseCreate, Any] | None:
        """The queued ``response.create`` to send now, registered, or ``None`` to wait.

        One goes out only when no response is active in the default conversation and
        none of ours still awaits its ``response.created`` (so two never race each
        other). ``ready`` is the shell's "the connection is usable".

        Args:
            ready: Whether the connection can carry it now.
        """
        if (
            not ready
            or not self._response_queue
            or self.active_response_id is not None
            or self.awaiting_created
        ):
            return None
        event, token = self._response_queue.popleft()
        self.start_response(event, token)
        return event, token

    def start_response(self, event: ev.ResponseCreate, token: Any = None) -> ev.ResponseCreate:
        """Register a ``response.create`` about to be sent outside the queue.

        Out-of-band responses (``conversation: "none"``) and ``raw_responses`` sessions
        send at once; it still counts as awaiting its ``response.created``.
        """
        self.register(event)
        assert event.event_id is not None
        self._response_tokens[event.event_id] = token
        self.awaiting_created += 1
        return event

    def response_not_sent(self, event_id: str) -> None:
        """Sending a registered ``response.create`` failed: it awaits nothing."""
        self.forget(event_id)
        if self._response_tokens.pop(event_id, _MISSING) is not _MISSING:
            self.awaiting_created = max(0, self.awaiting_created - 1)

    def requeue_unanswered_responses(self) -> list[str]:
        """Queue again, at the front and in order, the creates sent but never answered.

        For a lost connection: it answered them neither with ``response.created`` nor an
        error, so nothing was created and the next connection may ask again. Returns the
        old client ``event_id`` values (they will not be answered).
        """
        unanswered = [
            (event_id, self._pending[event_id].event, token)
            for event_id, token in self._response_tokens.items()
            if token is not None and event_id in self._pending
        ]
        for event_id, request, token in reversed(unanswered):
            assert isinstance(request, ev.ResponseCreate)
            retry = request.model_copy(update={"event_id": None})
            self._response_queue.appendleft((retry, token))
            self.forget(event_id)
            self._response_tokens.pop(event_id, None)
        self.awaiting_created = 0
        return [event_id for event_id, _, _ in unanswered]

    def drain_responses(self) -> list[Any]:
        """Empty the queue (the session is closing); returns the waiting tokens."""
        tokens = [token for _, token in self._response_queue]
        self._response_queue.clear()
        return tokens

    @property
    def queued_responses(self) -> int:
        """How many ``response.create`` requests wait in the queue."""
        return len(self._response_queue)
