"""Events out of the session: handlers, the bounded queue, ``async for event in session``.

:class:`EventDelivery` is the part of :class:`~realtime_client.session.Session` that hands
each event to the registered handlers and to the one iterating task.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from . import events as ev
from .errors import InvalidStateError

if TYPE_CHECKING:
    from .audio_path import AudioPath
    from .stats import SessionStats

__all__ = ["END", "EventDelivery", "EventHandler", "guard", "type_key"]

logger = logging.getLogger("realtime_client")

EventHandler = Callable[[Any], Any]


class EventDelivery:
    """Handlers and the event queue (the session's state lives on the session)."""

    stats: SessionStats
    _audio: AudioPath
    _handlers: dict[str, list[EventHandler]]
    _queue: _EventQueue
    _max_queue: int
    _anext_busy: bool
    _iterate_audio: bool
    _close_error: BaseException | None
    _spawn: Callable[[Awaitable[Any]], asyncio.Task[Any]]

    def on(self, event_type: str | type[Any], handler: EventHandler) -> EventHandler:
        """Call ``handler(event)`` for each event of a type (``"*"`` for all).

        ``event_type`` is a wire type (``"response.output_audio.delta"``), a client-side
        type (``"client.reconnecting"``) or an event class. Async handlers run as tasks;
        an exception in a handler is logged, never fatal.
        """
        key = event_type if isinstance(event_type, str) else type_key(event_type)
        self._handlers.setdefault(key, []).append(handler)
        return handler

    def __aiter__(self) -> AsyncIterator[Any]:
        return _EventIterator(self)

    async def _next_event(self) -> Any:
        if self._anext_busy:
            raise InvalidStateError("this session is already being iterated by another task")
        items = self._queue._items
        if not items:
            self._anext_busy = True
            try:
                while not items:
                    await self._queue.wait()
            finally:
                self._anext_busy = False
        item = items.popleft()
        if item is _END:
            self._queue.put(_END)  # so every later iteration ends too
            error = self._close_error
            if error is not None and not isinstance(error, InvalidStateError):
                raise error
            raise StopAsyncIteration
        return item

    def _emit(self, event: Any) -> None:
        for key in (event.type, "*") if self._handlers else ():
            for handler in self._handlers.get(key, ()):
                try:
                    result = handler(event)
                except Exception:
                    logger.exception("event handler %r failed on %s", handler, event.type)
                    continue
                if inspect.isawaitable(result):
                    self._spawn(guard(result, f"handler for {event.type}"))
        if self._audio.sink is not None and not self._iterate_audio and event.type == _AUDIO_DELTA:
            # Played by the sink and seen by handlers: waking the iterating task 50 times a
            # second per session for audio it does not play costs ~9 % of a session's CPU.
            return
        if len(self._queue) >= self._max_queue:
            self._queue.drop_oldest()
            self.stats.dropped_events += 1
            if self.stats.dropped_events in (1, 100, 10_000):
                logger.warning(
                    "event queue full (%d): nobody iterates the session? dropped %d so far",
                    self._max_queue,
                    self.stats.dropped_events,
                )
        self._queue.put(event)


END = _END = object()
_AUDIO_DELTA = ev.ResponseOutputAudioDelta.wire_type


class _EventQueue:
    """The session's event queue: a deque and at most one waiting reader.

    Cheaper than ``asyncio.Queue`` per event (no loop lookup, no unfinished-task
    bookkeeping), which matters at 50 audio deltas a second per session. One reader at
    a time: the session refuses a second iterating task.
    """

    __slots__ = ("_items", "_loop", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Any) -> None:
        """Append ``item`` and wake the reader if it waits."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def drop_oldest(self) -> None:
        """Discard the oldest item (the queue is full)."""
        self._items.popleft()

    def wait(self) -> asyncio.Future[None]:
        """A future the next :meth:`put` completes (awaited directly: no coroutine)."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            loop = self._loop
            if loop is None:  # once: get_running_loop() costs a getpid() system call
                loop = self._loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
        return waiter


class _EventIterator:
    """``async for event in session``: one per loop; the session refuses two at once."""

    def __init__(self, session: EventDelivery) -> None:
        self._session = session

    def __aiter__(self) -> _EventIterator:
        return self

    def __anext__(self) -> Coroutine[Any, Any, Any]:
        return self._session._next_event()  # the coroutine itself: no wrapper per event


def type_key(cls: type[Any]) -> str:
    wire = getattr(cls, "wire_type", "")
    if wire:
        return str(wire)
    default = getattr(cls, "type", None)
    if isinstance(default, str):
        return default
    raise InvalidStateError(f"{cls!r} is not an event class")


async def guard(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("%s failed", what)
