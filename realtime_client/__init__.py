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
from .connection import Connect, connect
from .errors import RealtimeError, ServerError
from .notices import AudioDropped, InvalidServerEvent, Reconnected, Reconnecting, SessionNotice
from .protocol import RealtimeProtocol
from .reconnect import ReconnectPolicy
from .responding import Answer, ToolCall
from .session import Session
from .stats import PRICES, SessionStats, TurnStats
from .tools import Tool, ToolError
from .transports import MemoryTransport, Transport, WebSocketTransport, memory_pair

__all__ = [
    "PRICES",
    "Answer",
    "AudioDropped",
    "Connect",
    "InvalidServerEvent",
    "MemoryTransport",
    "RealtimeError",
    "RealtimeProtocol",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "ServerError",
    "Session",
    "SessionNotice",
    "SessionStats",
    "Tool",
    "ToolCall",
    "ToolError",
    "Transport",
    "TurnStats",
    "WebSocketTransport",
    "connect",
    "errors",
    "events",
    "memory_pair",
]

__version__ = "0.2.0"
