"""A protocol-faithful, low-latency client for the OpenAI Realtime API.

.. code-block:: python

    from realtime_client import connect, events

    async with connect("gpt-realtime", instructions="Be brief.") as session:
        await session.send_text("Hello!")
        async for event in session:
            if isinstance(event, events.ResponseDone):
                break
"""

from __future__ import annotations

from . import errors, events
from .errors import RealtimeError, ServerError
from .protocol import RealtimeProtocol
from .session import (
    PRICES,
    AudioDropped,
    ClientEvent,
    Connect,
    InvalidServerEvent,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    Session,
    SessionStats,
    TurnStats,
    connect,
)
from .tools import FunctionTool, ToolError
from .transports import MemoryTransport, Transport, WebSocketTransport, memory_pair

__all__ = [
    "PRICES",
    "AudioDropped",
    "ClientEvent",
    "Connect",
    "FunctionTool",
    "InvalidServerEvent",
    "MemoryTransport",
    "RealtimeError",
    "RealtimeProtocol",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "ServerError",
    "Session",
    "SessionStats",
    "ToolError",
    "Transport",
    "TurnStats",
    "WebSocketTransport",
    "connect",
    "errors",
    "events",
    "memory_pair",
]

__version__ = "0.1.0"
