"""Pluggable transports: WebSocket, WebRTC (``transports.webrtc``), in-memory (tests)."""

from __future__ import annotations

from .base import MediaChannel, Transport, closed_error
from .memory import MemoryMedia, MemoryTransport, memory_pair
from .websocket import WebSocketTransport

__all__ = [
    "MediaChannel",
    "MemoryMedia",
    "MemoryTransport",
    "Transport",
    "WebSocketTransport",
    "closed_error",
    "memory_pair",
]
