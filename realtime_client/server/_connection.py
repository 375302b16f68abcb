"""The transport side of one local-server session: an ordered outbox.

:class:`_Connection` queues the server events of one WebSocket connection and writes
them in order, with the connection's fault plan (drops, delays, stalls, injected errors),
the recording, keepalive pings, and a cap on what a client that never reads can make
pile up (``LocalServer.max_outbox_bytes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import orjson

from .faults import FaultPlan

if TYPE_CHECKING:
    from aiohttp import web

    from .app import LocalServer

__all__ = ["_Connection"]

log = logging.getLogger("realtime_client.server")

#: How long a close handshake may take before the connection is cut (a peer that does not
#: read would otherwise hold the closing task forever).
_CLOSE_TIMEOUT_S = 5.0
#: Response generation waits while more than ``max_outbox_bytes / _HIGH_WATER`` is queued,
#: until the writer brings it under ``max_outbox_bytes / _LOW_WATER``: a client that reads
#: gets a long reply at its own pace, never the cap's 1008.
_HIGH_WATER = 4
_LOW_WATER = 8
#: A writer that sent nothing for this long while generation waited has a client that does
#: not read: generation goes on, and the cap closes the connection.
_STALL_S = 1.0


def _abort(transport: asyncio.BaseTransport | None) -> None:
    """Cut a connection at once: no close frame, whatever is buffered is dropped.

    A transport that is closing with nothing left to write is closed (or about to be):
    it is left alone (aborting one already closed fails inside asyncio).
    """
    if not isinstance(transport, asyncio.WriteTransport):
        return
    if transport.is_closing() and transport.get_write_buffer_size() == 0:
        return
    transport.abort()


class _Connection:
    """The transport side of one session: an ordered outbox with faults and recording."""

    def __init__(
        self,
        server: LocalServer,
        ws: web.WebSocketResponse,
        request: web.BaseRequest,
        number: int,
        faults: FaultPlan,
    ) -> None:
        self.server = server
        self.ws = ws
        self.request = request
        self.number = number
        self.faults = faults
        self.sent = 0
        self.dropped = False
        #: Why the server closed the connection itself (e.g. its client stopped reading).
        self.closed_reason: str | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        # Bytes of the queued events (serialised): a client that never reads must not make
        # the outbox grow without bound (see LocalServer's max_outbox_bytes).
        self.queued_bytes = 0
        self._closer: asyncio.Task[None] | None = None
        # Backpressure: set when the outbox drains under the low-water mark; ``sent`` at
        # the last stall (while it has not moved, generation does not wait).
        self._drained = asyncio.Event()
        self._stalled_at: int | None = None
        loop = asyncio.get_running_loop()
        self.writer = loop.create_task(self._write_loop())
        self.pinger: asyncio.Task[None] | None = (
            loop.create_task(self._ping_loop(server.ping_interval_s))
            if server.ping_interval_s > 0
            else None
        )

    # SessionSink
    def send_event(self, event: dict[str, Any]) -> None:
        if self.dropped:
            return  # cut (or overflowed): nothing will ever be written
        # Serialised now: the exact size counts against the cap, and the event is sent as
        # it was when it was queued (a later change to a shared dict does not leak in).
        try:
            text: str | None = orjson.dumps(event).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = None  # the writer meets the same failure in order and closes with 1011
        self.queued_bytes += len(text) if text is not None else 0
        self._queue.put_nowait(("event", (event, text)))
        if self.queued_bytes > self.server.max_outbox_bytes:
            self._overflow()

    def room(self) -> Awaitable[None] | None:
        """``None`` while the outbox has room; else what to await before queueing more.

        Response generation calls it between deltas (``SessionSink`` backpressure).
        """
        cap = self.server.max_outbox_bytes
        if self.queued_bytes <= cap // _HIGH_WATER or self.dropped:
            return None
        if self._stalled_at is not None and self._stalled_at == self.sent:
            return None  # the client does not read: let the cap judge
        return self._wait_for_room(cap // _LOW_WATER)

    async def _wait_for_room(self, low: int) -> None:
        while self.queued_bytes > low and not self.dropped and not self.ws.closed:
            sent = self.sent
            self._drained.clear()
            try:
                await asyncio.wait_for(self._drained.wait(), _STALL_S)
            except asyncio.TimeoutError:
                if self.sent == sent:
                    self._stalled_at = sent
                    return
        self._stalled_at = None

    def _overflow(self) -> None:
        """The client stopped reading: drop what is queued and close with 1008."""
        reason = "client not reading"
        log.warning(
            "connection %d: %d bytes of events queued for a client that does not read "
            "(max_outbox_bytes %d): closing it with 1008",
            self.number,
            self.queued_bytes,
            self.server.max_outbox_bytes,
        )
        self.dropped = True
        self.closed_reason = reason
        while not self._queue.empty():
            self._queue.get_nowait()
        self.queued_bytes = 0
        if self.server.recorder is not None:
            self.server.recorder.record(self.number, "server", close=(1008, reason))
        # The writer may be stuck in a send into a full socket: the close cuts the
        # transport if the peer does not take the close frame in time.
        self._closer = asyncio.get_running_loop().create_task(self.close_ws(1008, reason))

    def close(self, code: int, reason: str) -> None:
        self._queue.put_nowait(("close", (code, reason)))

    async def _send_text(self, text: str) -> None:
        if self.server.recorder is not None:
            self.server.recorder.record(self.number, "server", text)
        await self.ws.send_str(text)

    async def _drop(self) -> None:
        self.dropped = True
        code = self.faults.close_code
        if code is not None:
            with contextlib.suppress(Exception):
                await self.ws.close(code=code, message=b"fault injected")
            if self.server.recorder is not None:
                self.server.recorder.record(self.number, "server", close=(code, "fault injected"))
            return
        _abort(self.request.transport)  # no close frame: the client sees 1006
        if self.server.recorder is not None:
            self.server.recorder.record(self.number, "server", close=(1006, "dropped"))

    async def _write_loop(self) -> None:
        f = self.faults
        try:
            while True:
                kind, payload = await self._queue.get()
                text: str | None = None
                if kind == "event":
                    payload, text = payload
                    self.queued_bytes -= len(text) if text is not None else 0
                    if self.queued_bytes <= self.server.max_outbox_bytes // _LOW_WATER:
                        self._drained.set()
                if self.dropped or self.ws.closed:
                    continue
                if kind == "close":
                    code, reason = payload
                    if self.server.recorder is not None:
                        self.server.recorder.record(self.number, "server", close=(code, reason))
                    await self.close_ws(code, reason)
                    continue
                event: dict[str, Any] = payload
                if f.drop_at is not None and event.get("type") == f.drop_at:
                    await self._drop()
                    continue
                if f.delay_s > 0:
                    await asyncio.sleep(f.delay_s)
                await self._send_text(text if text is not None else orjson.dumps(event).decode())
                self.sent += 1
                if not self._queue.empty():
                    # Neither a send into a socket with room nor taking a queued event
                    # suspends: let the other connections run between events.
                    await asyncio.sleep(0)
                if f.error_after is not None and self.sent == f.error_after:
                    injected = {
                        "type": "error",
                        "event_id": self.server.ids.event(),
                        "error": {
                            "type": "server_error",
                            "code": f.error_code,
                            "message": "The server had an error while processing your request. "
                            "Sorry about that!",
                            "param": None,
                            "event_id": None,
                        },
                    }
                    await self._send_text(orjson.dumps(injected).decode())
                if f.drop_after is not None and self.sent >= f.drop_after:
                    await self._drop()
                    continue
                if f.stall_after is not None and self.sent == f.stall_after:
                    await asyncio.sleep(f.stall_s)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("connection %d: write failed: %s", self.number, exc)
            self.dropped = True
        except Exception:
            # A bug (e.g. an event orjson cannot encode) must not leave the client waiting
            # on a silent socket: log it and close as the real service does on a 500.
            log.exception("connection %d: writer failed; closing with 1011", self.number)
            self.dropped = True
            with contextlib.suppress(Exception):
                await self.ws.close(code=1011, message=b"server_error")
            if self.server.recorder is not None:
                self.server.recorder.record(self.number, "server", close=(1011, "server_error"))

    async def close_ws(self, code: int, reason: str) -> None:
        """Close the WebSocket; cut the connection if the peer does not let it finish.

        A peer that does not read (its buffers full) or never answers the close would hold
        the close forever: after :data:`_CLOSE_TIMEOUT_S` the transport is aborted, which
        ends the close. (A timer, not a cancellation: cancelling a task that is closing
        could lose a cancellation meant for it.)
        """
        # The transport as it is now: aiohttp detaches it from the request when it starts
        # closing, though it stays open while its buffer waits for the peer.
        transport = self.request.transport
        cut = asyncio.get_running_loop().call_later(_CLOSE_TIMEOUT_S, _abort, transport)
        try:
            await self.ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError) as exc:
            log.debug("connection %d: close failed (%r); cutting it", self.number, exc)
            _abort(transport)
        finally:
            # aiohttp may return from close() having only asked the transport to close
            # once its buffer is written: to a peer that never reads, that is never (the
            # socket stays open, neither side reading). The timer stays until the buffer
            # is empty; cutting a transport already closed does nothing.
            if transport is None or transport.get_write_buffer_size() == 0:
                cut.cancel()

    async def _ping_loop(self, interval_s: float) -> None:
        """Send a PING every ``interval_s`` seconds, as the real service does (§1.1).

        The real service pings on a fixed schedule (~20.26 s, a 4-byte payload) whatever
        the client sends, so a client streaming audio still gets them; unlike aiohttp's
        ``heartbeat`` (which restarts its timer on every incoming frame) this loop does not
        reset. Nothing in protocol.md says the service drops a client that does not
        answer, so a missing PONG is ignored.
        """
        for count in itertools.count(1):
            await asyncio.sleep(interval_s)
            if self.dropped or self.ws.closed:
                return
            try:
                await self.ws.ping(count.to_bytes(4, "big"))
            except (ConnectionError, RuntimeError) as exc:
                log.debug("connection %d: ping failed: %s", self.number, exc)
                return

    async def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until the outbox is empty (or the connection is gone)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._queue.empty() and not self.dropped and not self.ws.closed:
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.005)
