"""Helpers the session tests share: a session on the in-memory pair, waiting for things."""

from __future__ import annotations

import asyncio
from typing import Any

from realtime_client import connect, memory_pair
from realtime_client.transports import MemoryTransport

from ..conftest import until

__all__ = ["error_for", "next_event", "open_pair", "recv", "until"]


async def open_pair(*, media: bool = False, **kwargs: Any) -> tuple[Any, MemoryTransport]:
    """A session opened on ``memory_pair(media=...)`` and the test's server end."""
    client_end, server_end = memory_pair(media=media)
    opening = asyncio.ensure_future(connect(transport=client_end, **kwargs))
    await server_end.send_event(
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    )
    return await opening, server_end


async def recv(server_end: MemoryTransport) -> dict[str, Any]:
    """The next event the session sent (2 s at most)."""
    return await asyncio.wait_for(server_end.recv_event(), 2)


async def next_event(session: Any, cls: type[Any], timeout: float = 10.0) -> Any:
    """The session's next event of class ``cls`` (skipping others); fails if it ends first."""

    async def wait() -> Any:
        async for event in session:
            if isinstance(event, cls):
                return event
        raise AssertionError(f"session ended before {cls.__name__}")

    return await asyncio.wait_for(wait(), timeout)


def error_for(
    sent: dict[str, Any], code: str, message: str, *, param: str | None = None
) -> dict[str, Any]:
    """The server's ``error`` event answering the client event ``sent``."""
    error: dict[str, Any] = {"type": "invalid_request_error", "code": code, "message": message}
    if param is not None:
        error["param"] = param
    error["event_id"] = sent["event_id"]
    return {"type": "error", "event_id": f"err_{sent['event_id']}", "error": error}
