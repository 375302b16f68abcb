"""Identifiers shaped like the Realtime API's own.

The real service names its objects with a prefix and 21 base62 characters
(``event_AthMesa5kAl4QYCFSoTUg``, ``item_…``, ``resp_…``, ``sess_…``, ``conv_…``) and
function calls with ``call_`` and 16 characters (protocol.md §2). A generator seeded
with an integer yields the same sequence every run, which keeps recorded sessions and
test expectations stable; without a seed it draws from the OS.
"""

from __future__ import annotations

import random
import re

__all__ = ["ID_PATTERN", "IdGenerator"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#: Matches a real-looking object id: ``<prefix>_`` then base62 characters.
ID_PATTERN = re.compile(r"^(?P<prefix>[a-z]+)_(?P<body>[0-9A-Za-z]+)$")


class IdGenerator:
    """Makes ids with the real service's prefixes and lengths.

    Args:
        seed: Seed for a reproducible sequence; ``None`` uses the OS's randomness.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng: random.Random = random.SystemRandom() if seed is None else random.Random(seed)

    def new(self, prefix: str, length: int = 21) -> str:
        """Return ``prefix`` + ``_`` + ``length`` random base62 characters."""
        choice = self._rng.choice
        return prefix + "_" + "".join(choice(_BASE62) for _ in range(length))

    def event(self) -> str:
        """A server event id (``event_`` + 21)."""
        return self.new("event")

    def item(self) -> str:
        """A conversation item id (``item_`` + 21)."""
        return self.new("item")

    def response(self) -> str:
        """A response id (``resp_`` + 21)."""
        return self.new("resp")

    def session(self) -> str:
        """A session id (``sess_`` + 21)."""
        return self.new("sess")

    def conversation(self) -> str:
        """A conversation id (``conv_`` + 21)."""
        return self.new("conv")

    def call(self) -> str:
        """A function call id (``call_`` + 16)."""
        return self.new("call", 16)

    def text(self, length: int) -> str:
        """``length`` random base62 characters (used for ``obfuscation`` padding)."""
        choice = self._rng.choice
        return "".join(choice(_BASE62) for _ in range(length))
