"""Typed events of the Realtime API, canonical (GA) vocabulary, both dialects on the wire.

``from realtime_client import events`` then ``events.ResponseOutputAudioDelta``,
``events.parse_server_event(text)``, ``events.dumps(event, dialect="beta")``.
"""

from __future__ import annotations

from . import beta, objects
from ._base import ClientEvent, Event, ServerEvent, WireModel
from .client import *  # noqa: F403
from .client import __all__ as _client_all
from .codec import Dialect, build_append, dumps, parse_client_event, parse_server_event, to_wire
from .objects import *  # noqa: F403
from .objects import __all__ as _objects_all
from .server import *  # noqa: F403
from .server import __all__ as _server_all

__all__ = [
    "ClientEvent",
    "Dialect",
    "Event",
    "ServerEvent",
    "WireModel",
    "beta",
    "build_append",
    "dumps",
    "objects",
    "parse_client_event",
    "parse_server_event",
    "to_wire",
    *_client_all,
    *_objects_all,
    *_server_all,
]
