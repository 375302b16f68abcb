"""An in-memory transport pair for tests: exact, fast, no sockets.

``client, server = memory_pair()`` gives two connected transports. Hand ``client`` to
:func:`realtime_client.connect` (``transport=client``) and drive ``server`` from the
test: ``await server.recv()`` reads what the session sent, ``await server.send(...)``
plays a server event, ``await server.close(1006)`` simulates a dropped connection.
Like ``httpx.MockTransport``, it is public so users can test their own voice apps.
"""

from __future__ import annotations

import asyncio

import orjson

from ..errors import ConnectionClosedError
from .base import Transport, closed_error

__all__ = ["MemoryTransport", "memory_pair"]

_CLOSE = object()


class MemoryTransport(Transport):
    """One end of an in-memory connection (see :func:`memory_pair`)."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self.peer: MemoryTransport | None = None
        self._closed: tuple[int, str] | None = None
        self.connected = False
        self.sent: list[bytes | str] = []

    async def connect(self) -> None:
        if self._closed is not None:
            raise ConnectionClosedError(*self._closed)
        self.connected = True

    async def send(self, data: bytes | str) -> None:
        if self._closed is not None:
            raise ConnectionClosedError(*self._closed)
        self.sent.append(data)
        assert self.peer is not None
        self.peer._inbox.put_nowait(data)

    async def send_event(self, event: dict[str, object]) -> None:
        """Send a dict as a JSON text frame (for the test's server end)."""
        await self.send(orjson.dumps(event))

    async def recv(self) -> bytes | str:
        if self._closed is not None and self._inbox.empty():
            raise closed_error(*self._closed)
        item = await self._inbox.get()
        if item is _CLOSE:
            assert self._closed is not None
            raise closed_error(*self._closed)
        assert isinstance(item, bytes | str)
        return item

    async def recv_event(self) -> dict[str, object]:
        """Receive the next frame decoded as a dict (for the test's server end)."""
        data: dict[str, object] = orjson.loads(await self.recv())
        return data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        for end in (self, self.peer):
            if end is not None and end._closed is None:
                end._closed = (code, reason)
                end._inbox.put_nowait(_CLOSE)

    @property
    def closed(self) -> bool:
        return self._closed is not None


def memory_pair() -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory transports: ``(client_end, server_end)``."""
    client, server = MemoryTransport(), MemoryTransport()
    client.peer, server.peer = server, client
    return client, server
