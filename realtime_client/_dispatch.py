"""Dispatch on an event's exact class in one dict lookup (the protocol core and the session)."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["ByClass"]

_V = TypeVar("_V")


class ByClass(dict[type[Any], _V]):
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
