"""The dialect edge: the one place where a session's GA vocabulary meets the wire's dialect.

Everything behind the edge speaks GA. A client event is validated against its dialect's
schema (so errors name the fields the client sent) and, for beta, mapped to the GA shape
by :func:`~realtime_client.events.beta.client_from_beta_wire`. A server event leaves as
GA, or is mapped by :func:`~realtime_client.events.beta.server_to_beta_wire` (beta
names, the flat session, items with ``object``, no ``conversation.item.done`` …).

Two things are not a mapping of one event, so each dialect states them here:

* GA pads text deltas with ``obfuscation`` (protocol.md §2); beta does not.
* ``rate_limits.updated`` (protocol.md §11): GA sends one tokens entry after
  ``response.done``; beta sends requests and tokens right after ``response.created``.
"""

from __future__ import annotations

from typing import Any, Literal

from realtime_client.events.beta import client_from_beta_wire, server_to_beta_wire

from .._ids import IdGenerator
from . import _schemas as schemas
from ._common import Dialect, SessionKind
from .validation import Obj, ValidationError, enum_message, validate

__all__ = ["BetaEdge", "DialectEdge", "GAEdge", "RateBudget", "make_edge"]

#: ``(limit, used, seconds until the window resets)`` of a tokens-per-minute budget.
RateBudget = tuple[int, int, float]

#: The GA ``rate_limits.updated`` tokens limit when no budget is set (protocol.md §11).
_GA_TOKEN_LIMIT = 15_000_000
#: Server events whose text GA pads with ``obfuscation`` (protocol.md §2).
_OBFUSCATED = frozenset(
    {
        "response.output_text.delta",
        "response.output_audio_transcript.delta",
        "conversation.item.input_audio_transcription.delta",
    }
)


def _budget_entry(budget: RateBudget) -> dict[str, Any]:
    limit, used, reset_s = budget
    return {
        "name": "tokens",
        "limit": limit,
        "remaining": max(0, limit - used),
        "reset_seconds": round(reset_s, 3),
    }


class DialectEdge:
    """Reads client events into the GA vocabulary and writes server events out of it.

    Args:
        ids: The session's id generator (server event ids, obfuscation padding).
        kind: ``"realtime"`` or ``"transcription"``.
    """

    name: Dialect
    #: After which event ``rate_limits.updated`` follows: ``"created"`` or ``"done"``.
    rate_limits_after: Literal["created", "done"]
    _events: dict[str, Obj]
    _accepted: tuple[str, ...]

    def __init__(self, ids: IdGenerator, kind: SessionKind) -> None:
        self.ids = ids
        self.kind = kind

    def read(self, event: dict[str, Any]) -> dict[str, Any]:
        """Validate one client event (it has a ``type``) and return its GA form.

        Raises:
            ValidationError: An unknown type or an invalid field, named as the client
                named it.
        """
        etype = event["type"]
        if not isinstance(etype, str) or etype not in self._events:
            raise ValidationError("invalid_value", enum_message(etype, self._accepted), "type")
        return self._to_ga(validate(self._events[etype], event))

    def _to_ga(self, event: dict[str, Any]) -> dict[str, Any]:
        return event

    def write(self, type_: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The wire form of one GA server event, with a fresh ``event_id`` (or ``None``)."""
        raise NotImplementedError

    def initial_session(self, session: dict[str, Any]) -> dict[str, Any]:
        """An ephemeral key's session config (in this dialect) as a GA-shaped update."""
        raise NotImplementedError

    def rate_limits(self, budget: RateBudget | None, total_tokens: int) -> list[dict[str, Any]]:
        """The ``rate_limits`` list of a ``rate_limits.updated``.

        Args:
            budget: The tokens-per-minute budget's state, or ``None`` when none is set.
            total_tokens: Tokens the response just finished used.
        """
        raise NotImplementedError


class GAEdge(DialectEdge):
    """The GA dialect: the session's own vocabulary, plus validation and padding."""

    name: Dialect = "ga"
    rate_limits_after: Literal["created", "done"] = "done"
    _events = schemas.GA_EVENTS
    _accepted = schemas.GA_CLIENT_EVENT_TYPES

    def _to_ga(self, event: dict[str, Any]) -> dict[str, Any]:
        if event["type"] == "session.update":
            # session.update's schema depends on the session's kind.
            spec = (
                schemas.GA_TRANSCRIPTION_SESSION
                if self.kind == "transcription"
                else schemas.GA_REALTIME_SESSION
            )
            event["session"] = validate(spec, event["session"], "session")
        return event

    def write(self, type_: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        # The padding is drawn before the event id: the seeded id sequence depends on it.
        pad = self._obfuscation(fields["delta"]) if type_ in _OBFUSCATED else None
        event: dict[str, Any] = {"type": type_, "event_id": self.ids.event(), **fields}
        if pad is not None:
            event["obfuscation"] = pad
        return event

    def _obfuscation(self, delta: str) -> str:
        # Pads the frame so its size does not reveal the text (protocol.md §2).
        return self.ids.text(16 - len(delta.encode()) % 16)

    def initial_session(self, session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if k != "type"}

    def rate_limits(self, budget: RateBudget | None, total_tokens: int) -> list[dict[str, Any]]:
        if budget is not None:
            return [_budget_entry(budget)]
        return [
            {
                "name": "tokens",
                "limit": _GA_TOKEN_LIMIT,
                "remaining": _GA_TOKEN_LIMIT - total_tokens,
                "reset_seconds": 0.001,
            }
        ]


class BetaEdge(DialectEdge):
    """The beta dialect (``OpenAI-Beta: realtime=v1``), mapped to and from GA."""

    name: Dialect = "beta"
    rate_limits_after: Literal["created", "done"] = "created"
    _events = schemas.BETA_EVENTS
    _accepted = schemas.BETA_CLIENT_EVENT_TYPES

    def _to_ga(self, event: dict[str, Any]) -> dict[str, Any]:
        return client_from_beta_wire(event)

    def write(self, type_: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        wire = server_to_beta_wire({"type": type_, **fields})
        if wire is None:
            return None  # a GA-only event: no id is drawn for it
        wire_type = wire.pop("type")
        return {"type": wire_type, "event_id": self.ids.event(), **wire}

    def initial_session(self, session: dict[str, Any]) -> dict[str, Any]:
        # The ephemeral key's flat session, as session.update would apply it.
        update = client_from_beta_wire({"type": "session.update", "session": session})
        ga: dict[str, Any] = update["session"]
        return ga

    def rate_limits(self, budget: RateBudget | None, total_tokens: int) -> list[dict[str, Any]]:
        tokens = (
            _budget_entry(budget)
            if budget is not None
            else {"name": "tokens", "limit": 20000, "remaining": 18000, "reset_seconds": 6.0}
        )
        requests = {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012}
        return [requests, tokens]


def make_edge(dialect: Dialect, ids: IdGenerator, kind: SessionKind) -> DialectEdge:
    """The edge of ``dialect``."""
    return (GAEdge if dialect == "ga" else BetaEdge)(ids, kind)
