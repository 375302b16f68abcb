"""Events the session itself puts in the event stream (``client.*`` types).

They are not wire events: the server never sends them. Their base was called
``ClientEvent`` before 0.2, which clashed with :data:`realtime_client.events.ClientEvent`
(the union of client wire events); ``realtime_client.session.ClientEvent`` remains as an
alias of :class:`SessionNotice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "AudioDropped",
    "InvalidServerEvent",
    "Reconnected",
    "Reconnecting",
    "SessionNotice",
]


@dataclass(frozen=True)
class SessionNotice:
    """Base of the events the session itself emits into the event stream (``client.*``)."""

    type: str = "client.event"


@dataclass(frozen=True)
class Reconnecting(SessionNotice):
    """The connection was lost; the session will retry after ``delay_s`` seconds."""

    type: str = "client.reconnecting"
    attempt: int = 0
    delay_s: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class Reconnected(SessionNotice):
    """A new connection carries the session on; ``items`` were re-created."""

    type: str = "client.reconnected"
    attempt: int = 0
    items: int = 0
    flushed_audio_ms: float = 0.0


@dataclass(frozen=True)
class InvalidServerEvent(SessionNotice):
    """A frame from the server could not be parsed; the session goes on."""

    type: str = "client.invalid_server_event"
    error: str = ""
    raw: Any = None


@dataclass(frozen=True)
class AudioDropped(SessionNotice):
    """Input audio could not be kept (outage buffer full); counted in the stats."""

    type: str = "client.audio_dropped"
    dropped_ms: float = 0.0
    reason: str = ""
