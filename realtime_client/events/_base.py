"""Base classes shared by every wire model.

Every model keeps unknown fields (``extra="allow"``) and re-serializes them unchanged,
so a field the server adds tomorrow (as it added ``obfuscation``) survives a round trip.
Serialization emits only the fields that were set, plus each model's discriminator
(``type``), so ``parse(x).to_dict() == x`` for every valid event.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict

__all__ = ["ClientEvent", "Event", "ServerEvent", "WireModel"]


class WireModel(BaseModel):
    """A JSON object of the protocol: tolerant of unknown fields, exact on output."""

    # strict: "0" is not an int and 1 is not a str (pydantic's lax mode would coerce
    # both); ints are still accepted where floats are expected.
    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)

    #: Fields always serialized even when left at their default (discriminators).
    _always_set: ClassVar[tuple[str, ...]] = ("type",)
    #: Of ``_always_set``, those this class gives a non-None default (computed once).
    _forced: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._forced = frozenset(
            name
            for name in cls._always_set
            if name in cls.model_fields and cls.model_fields[name].default is not None
        )

    def model_post_init(self, context: Any, /) -> None:
        # A discriminator left at its default must still reach the wire: the server
        # needs ``session.type`` and every event needs its ``type``.
        if self._forced:
            self.__pydantic_fields_set__.update(self._forced)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: a JSON-ready dict holding only the fields that were set."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class Event(WireModel):
    """Base of every event; ``type`` is the wire name."""

    # The wire form this event was parsed from, in a slot rather than a pydantic
    # private attribute: private attributes cost ~2 µs per event on the audio hot path.
    __slots__ = ("_wire",)

    type: str
    event_id: str | None = None

    #: The canonical (GA) wire type of the class; empty for the generic fallbacks.
    wire_type: ClassVar[str] = ""

    @property
    def raw(self) -> dict[str, Any]:
        """The wire dict this event was parsed from (in its original dialect).

        For an event built locally, its GA wire form.
        """
        raw = getattr(self, "_wire", None)
        if raw is None:
            return self.to_dict()
        if isinstance(raw, dict):
            return raw
        parsed: dict[str, Any] = orjson.loads(raw)  # kept as text on the fast path
        object.__setattr__(self, "_wire", parsed)
        return parsed

    def _set_wire(self, raw: Any) -> None:
        """Remember the wire form (text or dict) this event was parsed from."""
        object.__setattr__(self, "_wire", raw)

    def to_json(self) -> bytes:
        """The GA wire form as compact JSON bytes."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        default = cls.model_fields["type"].default
        cls.wire_type = default if isinstance(default, str) else ""


class ServerEvent(Event):
    """Base of every server → client event."""


class ClientEvent(Event):
    """Base of every client → server event."""
