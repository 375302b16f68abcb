"""A protocol-faithful, low-latency client for the OpenAI Realtime API."""

from __future__ import annotations

from . import errors
from .errors import RealtimeError

__all__ = ["RealtimeError", "errors"]

__version__ = "0.1.0"
