"""An in-memory transport pair for tests: exact, fast, no sockets.

``client, server = memory_pair()`` gives two connected transports. Hand ``client`` to
:func:`realtime_client.connect` (``transport=client``) and drive ``server`` from the
test: ``await server.recv()`` reads what the session sent, ``await server.send(...)``
plays a server event, ``await server.close(1006)`` simulates a dropped connection.
Like ``httpx.MockTransport``, it is public so users can test their own voice apps.

``memory_pair(media=True)`` emulates a media transport (WebRTC): both ends get a
:class:`MemoryMedia` channel, and the session sends and plays audio through it instead
of audio events. The test's server end plays output audio with
``await server.media.send(pcm)`` and reads the captured audio with
``await server.media.recv()``.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import orjson

from ..errors import ConnectionClosedError
from .base import MediaChannel, Transport, closed_error

__all__ = ["MemoryMedia", "MemoryTransport", "memory_pair"]

_CLOSE = object()


class MemoryMedia(MediaChannel):
    """One end of an in-memory audio media channel (see :func:`memory_pair`)."""

    def __init__(self, transport: MemoryTransport, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._transport = transport
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self.peer: MemoryMedia | None = None
        #: Samples sent through this end so far.
        self.sent_samples = 0

    async def recv(self) -> npt.NDArray[np.int16]:
        if self._transport.closed and self._inbox.empty():
            raise closed_error(*(self._transport._closed or (1006, "")))
        item = await self._inbox.get()
        if item is _CLOSE:
            raise closed_error(*(self._transport._closed or (1006, "")))
        assert isinstance(item, np.ndarray)
        return item

    async def send(self, pcm: npt.NDArray[np.int16]) -> None:
        if self._transport.closed:
            raise ConnectionClosedError(*(self._transport._closed or (1006, "")))
        block = np.ascontiguousarray(pcm, dtype=np.int16)
        self.sent_samples += len(block)
        assert self.peer is not None
        self.peer._inbox.put_nowait(block.copy())


class MemoryTransport(Transport):
    """One end of an in-memory connection (see :func:`memory_pair`)."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self.peer: MemoryTransport | None = None
        self._closed: tuple[int, str] | None = None
        self.connected = False
        self.sent: list[bytes | str] = []
        self._media: MemoryMedia | None = None

    @property
    def media(self) -> MemoryMedia | None:
        """The emulated media channel (``memory_pair(media=True)``), else ``None``."""
        return self._media

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
                if end._media is not None:
                    end._media._inbox.put_nowait(_CLOSE)

    @property
    def closed(self) -> bool:
        return self._closed is not None


def memory_pair(
    *, media: bool = False, sample_rate: int = 48_000
) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory transports: ``(client_end, server_end)``.

    Args:
        media: Emulate a media transport: audio travels through ``.media`` on both ends
            (as on WebRTC), not as audio events.
        sample_rate: The media channel's rate, in Hz.
    """
    client, server = MemoryTransport(), MemoryTransport()
    client.peer, server.peer = server, client
    if media:
        client._media = MemoryMedia(client, sample_rate)
        server._media = MemoryMedia(server, sample_rate)
        client._media.peer, server._media.peer = server._media, client._media
    return client, server
