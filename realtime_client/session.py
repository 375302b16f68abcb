"""The asyncio session manager: what voice apps embed.

Theory of operation
-------------------
A :class:`Session` owns one transport at a time and the sans-I/O
:class:`~realtime_client.protocol.RealtimeProtocol`. One reader task receives frames,
feeds them to the protocol, settles the futures of the requests they answer, runs the
session's own reactions (tool calls, the response queue, barge-in, playback) and then
hands each event to the registered handlers and to ``async for event in session``.

One response state machine guards the service's top race conditions:

* ``response.create`` while a response is active is queued and sent when it ends; if
  the service still answers ``conversation_already_has_active_response`` (a VAD turn
  raced us), the request is re-queued, never surfaced (``raw_responses=True`` turns this
  off);
* ``response.cancel`` is sent only when a response is active; a late
  ``response_cancel_not_active`` means it finished first, and cancel returns ``False``;
* a truncate never exceeds the audio received for the item and is skipped when nothing
  was played or the item has no audio.

Reconnect with continuity: on a retryable close (1001, 1006, 1011, 1012, 1013) or a
failed connect, the session retries with exponential backoff and jitter, re-sends its
config and tools, re-creates the conversation from local state (assistant audio as its
transcript text, under the same item ids; an id the server changes is mapped, and the
helpers translate the old id, see :attr:`Session.item_id_map`), and flushes the
microphone audio captured during the outage (bounded; overflow is counted and reported). It
recycles the connection before ``expires_at``. :class:`Reconnecting` and
:class:`Reconnected` client-side events show it happening.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlencode, urlparse, urlunparse

import numpy as np
import numpy.typing as npt
import orjson

from realtime_client.audio.formats import float32_to_pcm16
from realtime_client.audio.g711 import alaw_encode, ulaw_encode
from realtime_client.audio.resample import Resampler

from . import events as ev
from .errors import (
    AudioFormatError,
    AuthenticationError,
    ConnectError,
    ConnectionClosedError,
    InvalidEventError,
    InvalidStateError,
    LocalProtocolError,
    RealtimeError,
    ServerError,
    SessionExpiredError,
    TransportError,
)
from .events.codec import Dialect
from .protocol import RealtimeProtocol, UsageTotals, _ByClass
from .tools import FunctionTool, ToolError, ToolRegistry
from .transports import Transport, WebSocketTransport

__all__ = [
    "AudioDropped",
    "ClientEvent",
    "Connect",
    "InvalidServerEvent",
    "PRICES",
    "Reconnected",
    "Reconnecting",
    "ReconnectPolicy",
    "Session",
    "SessionStats",
    "TurnStats",
    "connect",
    "realtime_url",
]

logger = logging.getLogger("realtime_client")

DEFAULT_URL = "https://api.openai.com/v1"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}

#: USD per 1M tokens, as published for gpt-realtime (Aug 2025). Override with
#: ``connect(..., prices=...)`` for other models or price changes.
PRICES: dict[str, float] = {
    "input_text": 4.00,
    "input_audio": 32.00,
    "input_image": 5.00,
    "cached_text": 0.40,
    "cached_audio": 0.40,
    "cached_image": 0.50,
    "output_text": 16.00,
    "output_audio": 64.00,
}


# --- client-side events ------------------------------------------------------------------


@dataclass(frozen=True)
class ClientEvent:
    """Base of the events the session itself emits into the event stream."""

    type: str = "client.event"


@dataclass(frozen=True)
class Reconnecting(ClientEvent):
    """The connection was lost; the session will retry after ``delay_s`` seconds."""

    type: str = "client.reconnecting"
    attempt: int = 0
    delay_s: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class Reconnected(ClientEvent):
    """A new connection carries the session on; ``items`` were re-created."""

    type: str = "client.reconnected"
    attempt: int = 0
    items: int = 0
    flushed_audio_ms: float = 0.0


@dataclass(frozen=True)
class InvalidServerEvent(ClientEvent):
    """A frame from the server could not be parsed; the session goes on."""

    type: str = "client.invalid_server_event"
    error: str = ""
    raw: Any = None


@dataclass(frozen=True)
class AudioDropped(ClientEvent):
    """Input audio could not be kept (outage buffer full); counted in the stats."""

    type: str = "client.audio_dropped"
    dropped_ms: float = 0.0
    reason: str = ""


# --- stats -----------------------------------------------------------------------------


@dataclass
class TurnStats:
    """Latency of one response, in ms on the event loop's clock.

    Attributes:
        response_id: The response.
        speech_to_audio_ms: User speech stop (``speech_stopped``) to the first audio delta.
        create_to_delta_ms: Our ``response.create`` to the first delta (audio or text).
        duration_ms: ``response.created`` to ``response.done``.
        status: How it ended.
        usage: This response's token usage per modality (from its ``response.done``).
        cost_usd: Estimated cost of :attr:`usage` in USD, from the session's prices.
    """

    response_id: str
    speech_to_audio_ms: float | None = None
    create_to_delta_ms: float | None = None
    duration_ms: float | None = None
    status: str = "in_progress"
    usage: UsageTotals | None = None
    cost_usd: float | None = None


@dataclass
class SessionStats:
    """Counters and per-turn latency of a session (``session.stats``)."""

    turns: list[TurnStats] = field(default_factory=list)
    usage: UsageTotals = field(default_factory=UsageTotals)
    prices: dict[str, float] = field(default_factory=lambda: dict(PRICES))
    audio_sent_ms: float = 0.0
    audio_received_ms: float = 0.0
    dropped_audio_ms: float = 0.0
    dropped_events: int = 0
    reconnects: int = 0
    server_errors: int = 0
    tool_calls: int = 0
    tool_errors: int = 0

    @property
    def cost_usd(self) -> float:
        """Estimated cost of the usage so far, from :attr:`prices` (USD per 1M tokens)."""
        return _cost_usd(self.usage, self.prices)

    def last_turn(self) -> TurnStats | None:
        """The most recent turn, if any."""
        return self.turns[-1] if self.turns else None


def _cost_usd(u: UsageTotals, p: dict[str, float]) -> float:
    """Cost of some usage in USD, from a price table in USD per 1M tokens."""
    uncached_text = max(0, u.input_text_tokens - u.cached_text_tokens)
    uncached_audio = max(0, u.input_audio_tokens - u.cached_audio_tokens)
    uncached_image = max(0, u.input_image_tokens - u.cached_image_tokens)
    total = (
        uncached_text * p["input_text"]
        + uncached_audio * p["input_audio"]
        + uncached_image * p["input_image"]
        + u.cached_text_tokens * p["cached_text"]
        + u.cached_audio_tokens * p["cached_audio"]
        + u.cached_image_tokens * p["cached_image"]
        + u.output_text_tokens * p["output_text"]
        + u.output_audio_tokens * p["output_audio"]
    )
    return total / 1_000_000


@dataclass(frozen=True)
class ReconnectPolicy:
    """When and how to reconnect.

    Attributes:
        max_attempts: Attempts per outage before giving up (0 disables reconnecting).
        base_delay_s: First backoff, in seconds; doubles per attempt.
        max_delay_s: Backoff cap, in seconds.
        jitter: Random ± fraction applied to each delay.
        outage_buffer_ms: Microphone audio kept while disconnected, in ms.
        recycle_before_expiry_s: Reconnect this many seconds before ``expires_at``
            (when no response is active); 0 disables recycling.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: float = 0.25
    outage_buffer_ms: float = 10_000.0
    recycle_before_expiry_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """Backoff before ``attempt`` (1-based), in seconds, with jitter."""
        base = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return float(max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter))))


# --- audio seams -------------------------------------------------------------------------


@runtime_checkable
class AudioSink(Protocol):
    """Where output audio goes: :class:`audio.Speaker` or :class:`audio.PlaybackBuffer`."""

    def write(self, pcm: Any, item_id: str, content_index: int = 0) -> Any:
        """Queue PCM of an item for playback."""

    def clear(self) -> Any:
        """Stop playback; return the played position (``item_id``, ``played_ms``) or None.

        A sink may also have ``mark_finished(item_id, content_index)``: the session calls
        it on ``response.output_audio.done`` so a short reply is not held in prebuffer.
        """


EventHandler = Callable[[Any], Any]
_T = TypeVar("_T")


_F32 = np.dtype(np.float32)


def _block_of(block: Any) -> tuple[npt.NDArray[Any], int | None]:
    """Samples and rate of a captured block (``CapturedBlock``, ``(array, rate)`` or array)."""
    if type(block) is tuple and len(block) == 2 and type(block[0]) is np.ndarray:
        return block[0], int(block[1])  # what capture devices hand out, 50 times a second
    if isinstance(block, tuple) and len(block) == 2:
        return np.asarray(block[0]), int(block[1])
    samples = getattr(block, "samples", None)
    if samples is not None:
        return np.asarray(samples), int(getattr(block, "sample_rate", 24_000))
    return np.asarray(block), None


# --- the session -------------------------------------------------------------------------


class Session:
    """One Realtime conversation over a transport (see :func:`connect` to make one).

    Iterate it for typed events (canonical GA classes, plus the client-side events of
    this module); register handlers with :meth:`on`; call the awaitable helpers to act.

    Events wait in a bounded queue (``max_event_queue``; when full the oldest is dropped
    and counted in ``stats.dropped_events``) until you iterate, so none are missed
    between ``connect`` and your ``async for``. The exception: while an audio sink is
    attached, audio deltas go to the sink and to handlers but not to ``async for``
    (unless ``attach(..., iterate_audio=True)``): the sink plays them, and an iterating
    task need not wake 50 times a second for audio it does not use.

    With ``push_to_talk=True`` the initial config (and the one re-sent after every
    reconnect) turns the server's turn detection off (``turn_detection: null``); drive
    turns with :meth:`push_to_talk_press` and :meth:`push_to_talk_release`.
    """

    def __init__(
        self,
        transport_factory: Callable[[], Transport],
        *,
        dialect: Dialect = "ga",
        config: ev.RealtimeSession | ev.TranscriptionSession | None = None,
        tools: Iterable[Callable[..., Any] | FunctionTool] = (),
        tool_timeout: float = 30.0,
        raw_responses: bool = False,
        reconnect: ReconnectPolicy | None = None,
        open_timeout: float = 10.0,
        request_timeout: float | None = 15.0,
        max_event_queue: int = 10_000,
        prices: dict[str, float] | None = None,
        retain_audio_ms: float = 0.0,
        push_to_talk: bool = False,
    ) -> None:
        self._factory = transport_factory
        self.dialect: Dialect = dialect
        self.tools = ToolRegistry(list(tools))
        self.push_to_talk = push_to_talk
        self._config = self._with_push_to_talk(self._with_tools(config))
        self.tool_timeout = tool_timeout
        self.raw_responses = raw_responses
        self.policy = reconnect or ReconnectPolicy()
        self.open_timeout = open_timeout
        self.request_timeout = request_timeout
        self.protocol = RealtimeProtocol(dialect=dialect, retain_audio_ms=retain_audio_ms)
        self.stats = SessionStats(usage=self.protocol.usage)
        if prices:
            self.stats.prices.update(prices)
        self._transport: Transport | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._futures: dict[str, asyncio.Future[Any]] = {}
        self._handlers: dict[str, list[EventHandler]] = {}
        self._queue = _EventQueue()
        self._max_queue = max_event_queue
        self._anext_busy = False  # a task is waiting in __anext__
        self._iterate_audio = False
        self._closed = False
        self._shut = False  # _shutdown ran: transport dropped, tasks cancelled
        self._closed_event = asyncio.Event()
        self._close_error: BaseException | None = None
        # _ready: the transport can carry our own requests (session.created arrived);
        # _connected: the session is usable (config sent; after a reconnect, the
        # conversation restored and the outage audio flushed).
        self._ready = asyncio.Event()
        self._connected = asyncio.Event()
        self._created = asyncio.Event()
        self._opening = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._response_queue: deque[tuple[ev.ResponseCreate, asyncio.Future[Any]]] = deque()
        self._awaiting_created = 0  # our response.create sent, response.created not yet seen
        self._outage: deque[npt.NDArray[np.int16]] = deque()
        self._outage_ms = 0.0
        self._resamplers: dict[tuple[int, int], Resampler] = {}
        self._sink: AudioSink | None = None
        self._mic_task: asyncio.Task[None] | None = None
        self._turns: dict[str, TurnStats] = {}
        self._t_create: float | None = None
        self._t_speech_stopped: float | None = None
        self._t_created: dict[str, float] = {}
        self._first_audio: set[str] = set()
        self._handled_calls: set[str] = set()
        self._recycle_task: asyncio.Task[None] | None = None
        # Item ids the server changed (or refused: None) when a reconnect restored them.
        self._item_ids: dict[str, str | None] = {}

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._connected.is_set() else "connecting"
        return f"<Session {self.dialect} {state} items={len(self.protocol.conversation)}>"

    # --- configuration -------------------------------------------------------------

    def _with_tools(
        self, config: ev.RealtimeSession | ev.TranscriptionSession | None
    ) -> ev.RealtimeSession | ev.TranscriptionSession | None:
        if not len(self.tools):
            return config
        if isinstance(config, ev.TranscriptionSession):
            raise InvalidStateError("a transcription session cannot have tools")
        base = config or ev.RealtimeSession()
        existing = list(base.tools or [])
        return base.model_copy(update={"tools": existing + self.tools.schemas()})

    def _with_push_to_talk(
        self, config: ev.RealtimeSession | ev.TranscriptionSession | None
    ) -> ev.RealtimeSession | ev.TranscriptionSession | None:
        """The config with turn detection off (``turn_detection: null``) in push-to-talk."""
        if not self.push_to_talk:
            return config
        base = config.to_dict() if config is not None else {"type": "realtime"}
        merged = _deep_merge(base, {"audio": {"input": {"turn_detection": None}}})
        return ev.SessionUpdate.model_validate(
            {"type": "session.update", "session": merged}
        ).session

    @property
    def item_id_map(self) -> dict[str, str | None]:
        """Item ids a reconnect changed: old id to the server's new id (a copy).

        The session re-creates the conversation under the same ids; when the server
        answers with another id, the local conversation adopts it and the helpers
        (:meth:`truncate`, :meth:`delete_item`, :meth:`retrieve_item`, and
        ``previous_item_id`` of :meth:`create_item`) translate the old one. ``None``
        marks an item the server refused to re-create.
        """
        return dict(self._item_ids)

    @property
    def config(self) -> ev.RealtimeSession | ev.TranscriptionSession | None:
        """The session config this client asked for (re-sent after a reconnect)."""
        return self._config

    @property
    def server_session(self) -> ev.RealtimeSession | ev.TranscriptionSession | None:
        """The session as the server last described it."""
        return self.protocol.session

    @property
    def conversation(self) -> Any:
        """The conversation state (:class:`~realtime_client.protocol.Conversation`)."""
        return self.protocol.conversation

    @property
    def closed(self) -> bool:
        """Whether the session is closed for good."""
        return self._closed

    # --- lifecycle -----------------------------------------------------------------

    async def open(self) -> Session:
        """Connect, wait for ``session.created``, send the config and wait for the answer.

        Raises:
            AuthenticationError: The key was refused (not retried).
            InvalidModelError: The model or the dialect was refused (not retried).
            ConnectError: The connection failed (after the policy's retries).
            ServerError: The server rejected the session config.
        """
        attempt = 0
        self._opening = True
        try:
            while True:
                attempt += 1
                try:
                    await self._connect_once()
                    break
                except TransportError as exc:
                    if not _retryable(exc) or attempt > self.policy.max_attempts:
                        raise
                    delay = self.policy.delay(attempt)
                    logger.warning("connect failed (%s); retrying in %.2f s", exc, delay)
                    await asyncio.sleep(delay)
        finally:
            self._opening = False
        self._close_error = None  # a failed attempt before this one is history
        self._connected.set()
        self._schedule_recycle()
        return self

    async def _connect_once(self) -> None:
        transport = self._factory()
        await transport.connect()
        self._transport = transport
        self._created.clear()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(transport))
        try:
            try:
                await self._wait_created(self.open_timeout)
            except asyncio.TimeoutError as exc:
                raise ConnectError("no session.created from the server", retryable=True) from exc
            self._ready.set()
            if self._config is not None:
                await self._send_config(self._config)
        except BaseException:
            await self._drop_transport()
            raise

    async def _wait_created(self, timeout: float) -> None:
        reader = self._reader
        assert reader is not None
        created = asyncio.ensure_future(self._created.wait())
        try:
            done, _ = await asyncio.wait(
                {created, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            created.cancel()
        if not done and not self._created.is_set():
            raise asyncio.TimeoutError
        if not self._created.is_set():
            # The reader ended first: the server refused us (bad key, bad model ...).
            error = self._close_error or ConnectError("connection closed during the handshake")
            raise error

    async def _drop_transport(self) -> None:
        transport, self._transport = self._transport, None
        self._ready.clear()
        self._connected.clear()
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            # gather: the reader's own end is not our business, but a cancellation
            # of the task calling us must still propagate.
            await asyncio.gather(reader, return_exceptions=True)

    async def close(self) -> None:
        """Close the session: stop the reader, tools and microphone, close the transport.

        Idempotent and safe to call from any task; pending requests fail with
        :class:`~realtime_client.errors.InvalidStateError`.
        """
        await self._shutdown(None)

    async def _shutdown(self, error: BaseException | None) -> None:
        """End the session for good (from close() or a fatal error); idempotent."""
        if error is not None and self._close_error is None:
            self._close_error = error
        self._closed = True
        if self._shut:
            return
        self._shut = True
        self._closed_event.set()
        current = asyncio.current_task()
        others = [
            t
            for t in (self._mic_task, self._recycle_task, self._reconnect_task, *self._tasks)
            if t is not None and t is not current and not t.done()
        ]
        for task in others:
            task.cancel()
        self._fail_pending(error or InvalidStateError("the session is closed"))
        self._queue.put(_END)
        await self._drop_transport()
        await asyncio.gather(*others, return_exceptions=True)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- events out ----------------------------------------------------------------

    def on(self, event_type: str | type[Any], handler: EventHandler) -> EventHandler:
        """Call ``handler(event)`` for each event of a type (``"*"`` for all).

        ``event_type`` is a wire type (``"response.output_audio.delta"``), a client-side
        type (``"client.reconnecting"``) or an event class. Async handlers run as tasks;
        an exception in a handler is logged, never fatal.
        """
        key = event_type if isinstance(event_type, str) else _type_key(event_type)
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
                    self._spawn(_guard(result, f"handler for {event.type}"))
        if self._sink is not None and not self._iterate_audio and event.type == _AUDIO_DELTA:
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

    def _spawn(self, coro: Awaitable[_T]) -> asyncio.Task[_T]:
        task: asyncio.Task[_T] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- the reader --------------------------------------------------------------------

    async def _read_loop(self, transport: Transport) -> None:
        # Looked up once: asyncio.get_running_loop() makes a getpid() system call.
        clock = asyncio.get_running_loop().time
        while True:
            try:
                frame = await transport.recv()
            except TransportError as exc:
                if transport is not self._transport:
                    return  # a retired connection (recycled, or replaced) finishing
                await self._connection_lost(exc)
                return
            try:
                received = self.protocol.receive(frame)
            except InvalidEventError as exc:
                logger.warning("invalid server event: %s", exc)
                self._emit(InvalidServerEvent(error=str(exc), raw=exc.raw))
                continue
            except LocalProtocolError as exc:
                logger.warning("server event breaks the protocol: %s", exc)
                self._emit(InvalidServerEvent(error=str(exc), raw=frame))
                continue
            try:
                self._react(received, clock())
            except Exception:  # a bug or a misbehaving sink must not stop the reader
                logger.exception("handling %s failed", received.event.type)

    def _react(self, received: Any, now: float) -> None:
        event = received.event
        if type(event) is ev.ResponseOutputAudioDelta:  # 50 a second: answers no request
            self._on_audio_delta(event, now)
            self._emit(event)
            return
        for event_id, client_event in received.answered:
            if isinstance(client_event, ev.ResponseCreate) and self._awaiting_created:
                self._awaiting_created -= 1
            future = self._futures.pop(event_id, None)
            if future is not None and not future.done():
                future.set_result(event)
        consumed = 0
        for event_id, client_event, error in received.failed:
            if isinstance(client_event, ev.ResponseCreate):
                self._awaiting_created = max(0, self._awaiting_created - 1)
            future = self._futures.pop(event_id, None)
            if self._recover(client_event, error, future):
                consumed += 1
                continue
            self.stats.server_errors += 1
            if future is not None and not future.done():
                future.set_exception(error)
        # The class this chain names the event as: identity checks, not isinstance misses.
        kind = _REACT_KIND[type(event)]
        if kind is ev.ResponseOutputAudioDelta:
            self._on_audio_delta(event, now)
        elif kind is ev.ResponseOutputAudioDone:
            self._sink_finished(event.item_id, event.content_index)
        elif kind is ev.ResponseOutputTextDelta:  # or an audio transcript delta
            self._first_delta_seen(event.response_id, now, audio=False)
        elif kind is ev.SessionCreated:
            self._created.set()
        elif kind is ev.Error:
            if not received.failed:
                self.stats.server_errors += 1
                # Delivered to the event stream and handlers; the log is for the record.
                logger.info("server error: %s", event.error.message)
        elif kind is ev.InputAudioBufferSpeechStarted:
            self._barge_in()
        elif kind is ev.InputAudioBufferSpeechStopped:
            self._t_speech_stopped = now
        elif kind is ev.ResponseCreated:
            rid = event.response.id or ""
            self._t_created[rid] = now
            turn = TurnStats(rid)
            self._turns[rid] = turn
            self.stats.turns.append(turn)
        elif kind is ev.ResponseDone:
            self._on_response_done(event, now)
        if received.failed and any(
            isinstance(failed[1], ev.ResponseCreate) for failed in received.failed
        ):
            self._pump_responses()  # a refused create must not hold the queue
        if consumed and consumed == len(received.failed):
            return  # a race the state machine absorbed: not the caller's problem
        self._emit(event)

    def _recover(
        self,
        client_event: ev.ClientEvent,
        error: ServerError,
        future: asyncio.Future[Any] | None,
    ) -> bool:
        """Handle the races the state machine absorbs; True when the error is consumed."""
        if error.code == "conversation_already_has_active_response" and not self.raw_responses:
            if isinstance(client_event, ev.ResponseCreate) and future is not None:
                retry = client_event.model_copy(update={"event_id": None})
                self._response_queue.appendleft((retry, future))
                logger.debug("response.create raced an active response; queued")
                return True
        if error.code == "response_cancel_not_active" and isinstance(
            client_event, ev.ResponseCancel
        ):
            if future is not None and not future.done():
                future.set_result(None)
            return True
        return False

    # --- audio out and barge-in ---------------------------------------------------------

    def _on_audio_delta(self, event: ev.ResponseOutputAudioDelta, now: float) -> None:
        self._first_delta_seen(event.response_id, now, audio=True)
        self.stats.audio_received_ms += self.protocol.last_delta_ms  # measured by _apply
        if self._sink is not None:
            try:
                pcm = self._decode_output(event)
                self._sink.write(pcm, event.item_id, event.content_index)
            except Exception:
                logger.exception("audio sink failed on a delta of %s", event.item_id)

    def _sink_finished(self, item_id: str, content_index: int) -> None:
        """Tell the sink no more audio comes for this part (it stops waiting to prebuffer)."""
        mark = getattr(self._sink, "mark_finished", None)
        if mark is None:
            return
        try:
            mark(item_id, content_index)
        except Exception:
            logger.exception("audio sink failed to finish %s", item_id)

    def _decode_output(self, event: ev.ResponseOutputAudioDelta) -> npt.NDArray[np.int16]:
        if self.protocol.output_is_g711:
            fmt = self.protocol.output_format
            from realtime_client.audio.g711 import alaw_decode, ulaw_decode

            decode = ulaw_decode if isinstance(fmt, ev.PcmuFormat) else alaw_decode
            pcm8k = decode(event.audio_bytes())
            up = _resampler_for(self._resamplers, 8_000, 24_000)
            return float32_to_pcm16(up.process(pcm8k.astype(np.float32) / 32768.0))
        return event.pcm16()

    def _first_delta_seen(self, response_id: str, now: float, *, audio: bool) -> None:
        turn = self._turns.get(response_id)
        if turn is None:
            return
        if self._t_create is not None and turn.create_to_delta_ms is None:
            turn.create_to_delta_ms = (now - self._t_create) * 1000
            self._t_create = None
        if audio and response_id not in self._first_audio:
            self._first_audio.add(response_id)
            if self._t_speech_stopped is not None:
                turn.speech_to_audio_ms = (now - self._t_speech_stopped) * 1000
                self._t_speech_stopped = None

    def _stop_playback(self) -> tuple[str, float, int] | None:
        """Clear the sink; ``(item_id, heard_ms, content_index)`` of what was playing."""
        if self._sink is None:
            return None
        try:
            position = self._sink.clear()
        except Exception:
            logger.exception("audio sink failed to clear")
            return None
        item_id = getattr(position, "item_id", None) if position is not None else None
        if not item_id:
            return None
        # What the listener will have heard: the device still plays what it holds (and
        # the fade) after a clear; sinks without that figure give the played position.
        heard: Any = getattr(position, "final_ms", None)
        if heard is None:
            heard = getattr(position, "played_ms", 0.0)
        content_index = int(getattr(position, "content_index", 0))
        item = self.protocol.conversation.get(item_id)
        response = self.protocol.responses.get(item.response_id or "") if item else None
        received = self.protocol.audio_received_ms(item_id, content_index)
        if response is not None and response.done and heard >= received:
            return None  # heard in full: nothing to cut
        return item_id, float(heard), content_index

    def _barge_in(self) -> None:
        """``speech_started``: fade out, truncate at the played position, cancel if needed."""
        if self._sink is None:
            return
        stopped = self._stop_playback()
        if stopped is not None:
            self._spawn(self._truncate_quietly(*stopped))
        if self.protocol.active_response_id and not self._server_interrupts():
            self._spawn(_guard(self.cancel_response(), "barge-in cancel"))

    def _server_interrupts(self) -> bool:
        """Whether server VAD cancels the active response by itself on speech."""
        session = self.protocol.session
        if not isinstance(session, ev.RealtimeSession) or not session.audio:
            return True  # the service's default: server_vad with interrupt_response
        td = session.audio.input.turn_detection if session.audio.input else None
        if isinstance(td, ev.ServerVad | ev.SemanticVad):
            return td.interrupt_response is not False
        return False

    async def _truncate_quietly(self, item_id: str, played_ms: float, content_index: int) -> None:
        try:
            await self.truncate(item_id, played_ms, content_index=content_index)
        except RealtimeError as exc:
            logger.warning("barge-in truncate of %s failed: %s", item_id, exc)

    # --- responses and tools ---------------------------------------------------------

    def _on_response_done(self, event: ev.ResponseDone, now: float) -> None:
        response = event.response
        rid = response.id or ""
        turn = self._turns.pop(rid, None)
        if turn is not None:
            turn.status = response.status or "completed"
            started = self._t_created.pop(rid, None)
            if started is not None:
                turn.duration_ms = (now - started) * 1000
            if response.usage is not None:
                turn.usage = UsageTotals()
                turn.usage.add(response.usage)
                turn.cost_usd = _cost_usd(turn.usage, self.stats.prices)
            _log_turn(turn)
        self._first_audio.discard(rid)
        calls = self.protocol.function_calls(rid)
        if calls and len(self.tools) and response.status == "completed":
            self._spawn(_guard(self._run_tools(rid, calls), "tool calls"))
        self._pump_responses()

    async def _run_tools(self, response_id: str, calls: list[Any]) -> None:
        mine = [c for c in calls if c.name in self.tools and c.call_id not in self._handled_calls]
        if not mine:
            return
        for call in mine:
            self._handled_calls.add(call.call_id)

        async def run(call: Any) -> tuple[str, str]:
            tool = self.tools.get(call.name)
            assert tool is not None
            self.stats.tool_calls += 1
            try:
                return call.call_id, await tool.call(call.arguments, timeout=self.tool_timeout)
            except ToolError as exc:
                self.stats.tool_errors += 1
                logger.warning("tool %s failed: %s", call.name, exc)
                return call.call_id, _error_output(exc)

        results = await asyncio.gather(*(run(c) for c in mine))
        try:
            for call_id, output in results:
                await self.send_function_output(call_id, output)
        except RealtimeError as exc:
            logger.warning("could not send a function call output: %s", exc)
            return
        if len(mine) == len(calls):
            await self.create_response()
        else:
            unknown = sorted({c.name for c in calls if c.name not in self.tools})
            logger.warning(
                "response %s called unregistered tools %s: answer them yourself",
                response_id,
                unknown,
            )

    def _pump_responses(self) -> None:
        """Send the next queued ``response.create`` if nothing is active."""
        if (
            self._response_queue
            and self.protocol.active_response_id is None
            and not self._awaiting_created
            and self._connected.is_set()
        ):
            event, future = self._response_queue.popleft()
            if future.done():
                self._pump_responses()
                return
            self._awaiting_created += 1  # now, not in the task: the next pump must see it
            self._spawn(self._send_response_create(event, future, counted=True))

    async def _send_response_create(
        self, event: ev.ResponseCreate, future: asyncio.Future[Any], *, counted: bool = False
    ) -> None:
        self.protocol.register(event)
        assert event.event_id is not None
        self._futures[event.event_id] = future
        if not counted:
            self._awaiting_created += 1
        self._t_create = asyncio.get_running_loop().time()
        try:
            await self._send(self.protocol.serialize(event))
        except RealtimeError as exc:
            self._awaiting_created = max(0, self._awaiting_created - 1)
            self.protocol.forget(event.event_id)
            self._futures.pop(event.event_id, None)
            if not future.done():
                future.set_exception(exc)

    # --- sending -----------------------------------------------------------------------

    async def _send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or self._closed:
            raise InvalidStateError("the session is not connected")
        await transport.send(data)

    async def _request(
        self, event: ev.ClientEvent, timeout: float | None = None, *, internal: bool = False
    ) -> Any:
        """Send a registered client event and wait for the answer that settles it.

        ``internal`` requests (config, restoring the conversation) go out as soon as the
        transport is ready; the caller's wait until the session is usable.
        """
        if self._closed:
            self.protocol.forget(event.event_id or "")
            raise InvalidStateError("the session is closed")
        if not internal:
            await self._wait_connected()
        assert event.event_id is not None
        future = await self._send_tracked(event)
        try:
            return await _answer(future, timeout or self.request_timeout)
        except asyncio.TimeoutError as exc:
            self.protocol.forget(event.event_id)
            self._futures.pop(event.event_id, None)
            raise InvalidStateError(f"no answer to {event.type} within the timeout") from exc

    async def _send_tracked(self, event: ev.ClientEvent) -> asyncio.Future[Any]:
        """Send a registered client event; the future its answer (or error) settles."""
        assert event.event_id is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[event.event_id] = future
        try:
            await self._send(self.protocol.serialize(event))
        except BaseException:
            self.protocol.forget(event.event_id)
            self._futures.pop(event.event_id, None)
            raise
        return future

    async def _wait_connected(self) -> None:
        if self._connected.is_set():
            return
        if self._closed:
            raise InvalidStateError("the session is closed")
        waits = {
            asyncio.ensure_future(self._connected.wait()),
            asyncio.ensure_future(self._closed_event.wait()),
        }
        try:
            await asyncio.wait(
                waits, timeout=self.open_timeout * 4, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waits:
                waiter.cancel()
        if not self._connected.is_set():
            raise InvalidStateError(
                "the session is closed" if self._closed else "the session is not connected"
            )

    def _fail_pending(self, error: BaseException) -> None:
        for future in list(self._futures.values()):
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: the caller may be gone
        self._futures.clear()
        for _event, future in self._response_queue:
            if not future.done():
                future.set_exception(error)
                future.exception()
        self._response_queue.clear()
        self.protocol.reset_pending()
        self._awaiting_created = 0

    # --- the public helpers --------------------------------------------------------------

    async def update_session(
        self,
        config: ev.RealtimeSession | ev.TranscriptionSession | dict[str, Any] | None = None,
        **fields: Any,
    ) -> ev.SessionUpdated:
        """Send ``session.update`` and wait for ``session.updated``.

        Args:
            config: A partial session (model or GA-shaped dict).
            **fields: Top-level session fields, e.g. ``instructions="Be brief."``.

        Raises:
            ServerError: The server rejected the update (it is discarded whole).
        """
        if isinstance(config, dict) or config is None:
            data = dict(config or {})
            data.update(fields)
            data.setdefault("type", "realtime")
            event = self.protocol.build_session_update(data)
        else:
            if fields:
                config = config.model_copy(update=fields)
            event = self.protocol.build_session_update(config)
        result: ev.SessionUpdated = await self._request(event)
        self._remember_config(event)
        return result

    async def _send_config(self, config: ev.RealtimeSession | ev.TranscriptionSession) -> None:
        """The initial (or restored) config, before the session counts as connected."""
        await self._request(self.protocol.build_session_update(config), internal=True)

    def _remember_config(self, event: ev.SessionUpdate) -> None:
        # Remember what we asked for so a reconnect re-sends it.
        if self._config is None or event.session.type != getattr(self._config, "type", None):
            self._config = event.session
            audio_input = event.session.to_dict().get("audio", {}).get("input", {})
            if "turn_detection" not in audio_input:  # unless the caller chose a mode
                self._config = self._with_push_to_talk(self._config)
        else:
            merged = _deep_merge(self._config.to_dict(), event.session.to_dict())
            self._config = ev.SessionUpdate.model_validate(
                {"type": "session.update", "session": merged}
            ).session

    async def send_text(
        self, text: str, *, respond: bool = True, role: Literal["user", "system"] = "user"
    ) -> Any:
        """Add a text message and (by default) ask for a response.

        Returns:
            The ``conversation.item.added`` (or beta ``created``) event of the item.
        """
        added = await self._request(self.protocol.build_text_message(text, role=role))
        if respond:
            await self.create_response()
        return added

    async def create_item(
        self, item: ev.objects.Item | dict[str, Any], *, previous_item_id: str | None = None
    ) -> Any:
        """``conversation.item.create``; returns the server's item event.

        Raises:
            InvalidStateError: ``previous_item_id`` names an item a reconnect lost.
        """
        if previous_item_id not in (None, "root"):
            previous_item_id = self._server_item_id(previous_item_id)
        return await self._request(
            self.protocol.build_item_create(item, previous_item_id=previous_item_id)
        )

    async def send_function_output(self, call_id: str, output: str) -> Any:
        """Answer a function call (``function_call_output``); does not create a response."""
        return await self._request(self.protocol.build_function_call_output(call_id, output))

    async def create_response(
        self, response: ev.ResponseCreateParams | dict[str, Any] | None = None, **overrides: Any
    ) -> ev.ResponseCreated:
        """Ask for a response; queued while another one is active.

        Returns:
            The ``response.created`` event of this request's response.
        """
        if self._closed:
            raise InvalidStateError("the session is closed")
        if overrides:
            data = (
                response.to_dict()
                if isinstance(response, ev.ResponseCreateParams)
                else dict(response or {})
            )
            data.update(overrides)
            response = data
        if isinstance(response, dict):
            response = ev.ResponseCreateParams.model_validate(response)
        event = ev.ResponseCreate() if response is None else ev.ResponseCreate(response=response)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        out_of_band = response is not None and response.conversation == "none"
        if out_of_band or self.raw_responses:
            await self._wait_connected()
            await self._send_response_create(event, future)
        else:
            self._response_queue.append((event, future))
            self._pump_responses()
        created: ev.ResponseCreated = await future
        return created

    async def cancel_response(self, response_id: str | None = None) -> bool:
        """Cancel the active response.

        Returns:
            ``True`` when the response ended ``cancelled``; ``False`` when nothing was
            active (nothing is sent) or it finished on its own first (the service's
            late ``response_cancel_not_active`` is absorbed, not surfaced).
        """
        try:
            event = self.protocol.build_response_cancel(response_id)
        except InvalidStateError:
            return False
        result = await self._request(event)
        return isinstance(result, ev.ResponseDone) and result.response.status == "cancelled"

    async def commit(self) -> ev.InputAudioBufferCommitted:
        """Commit the input buffer (push-to-talk release)."""
        result: ev.InputAudioBufferCommitted = await self._request(self.protocol.build_commit())
        return result

    async def clear_input(self) -> ev.InputAudioBufferCleared:
        """Drop the buffered input audio."""
        result: ev.InputAudioBufferCleared = await self._request(self.protocol.build_clear_input())
        return result

    async def truncate(
        self, item_id: str, audio_end_ms: float, *, content_index: int = 0
    ) -> ev.ConversationItemTruncated | None:
        """Truncate an assistant item's audio at ``audio_end_ms`` (clamped to what arrived).

        Returns ``None`` without sending anything when nothing was played or the item has
        no audio (as an item re-created as text by a reconnect has not).
        """
        if self._item_ids.get(item_id, item_id) is None:
            return None  # the server refused to re-create it: there is nothing to cut
        item_id = self._server_item_id(item_id)
        item = self.protocol.conversation.get(item_id)
        if item is None or audio_end_ms <= 0:
            return None
        if content_index >= len(item.parts) or item.parts[content_index].audio_ms <= 0:
            return None
        event = self.protocol.build_truncate(item_id, audio_end_ms, content_index=content_index)
        if event.audio_end_ms <= 0:
            self.protocol.forget(event.event_id or "")
            return None
        result: ev.ConversationItemTruncated = await self._request(event)
        return result

    async def delete_item(self, item_id: str) -> ev.ConversationItemDeleted:
        """Delete an item.

        Raises:
            InvalidStateError: The item was lost in a reconnect (see :attr:`item_id_map`).
        """
        result: ev.ConversationItemDeleted = await self._request(
            self.protocol.build_item_delete(self._server_item_id(item_id))
        )
        return result

    async def retrieve_item(self, item_id: str) -> ev.ConversationItemRetrieved:
        """Ask for the server's copy of an item.

        Raises:
            InvalidStateError: The item was lost in a reconnect (see :attr:`item_id_map`).
        """
        result: ev.ConversationItemRetrieved = await self._request(
            self.protocol.build_item_retrieve(self._server_item_id(item_id))
        )
        return result

    def _server_item_id(self, item_id: str) -> str:
        """The id the server knows an item by (a reconnect may have changed it)."""
        if item_id not in self._item_ids:
            return item_id
        new_id = self._item_ids[item_id]
        if new_id is None:
            raise InvalidStateError(
                f"item {item_id!r} is not on the server: it could not be re-created "
                "after a reconnect"
            )
        return new_id

    async def send_audio(self, block: Any, sample_rate: int | None = None) -> None:
        """Append captured audio: resampled to 24 kHz, encoded to the input format.

        Args:
            block: float32 or int16 samples (mono, or ``(frames, channels)`` averaged),
                a ``CapturedBlock``, or ``(samples, sample_rate)``.
            sample_rate: Rate of ``block`` in Hz (default: the block's, else 24,000).

        While the connection is down the audio is kept (up to the policy's
        ``outage_buffer_ms``) and flushed after reconnecting; beyond that it is
        dropped, counted in ``stats.dropped_audio_ms`` and reported with
        :class:`AudioDropped`. Awaiting this applies the socket's backpressure.
        """
        samples, rate = _block_of(block)
        rate = sample_rate if sample_rate is not None else rate or 24_000
        pcm = self._to_pcm16_24k(samples, rate)
        if not len(pcm):
            return
        ms = len(pcm) / 24.0
        transport = self._transport
        if transport is None or self._closed or not self._connected.is_set():
            if self._closed:
                raise InvalidStateError("the session is closed")
            self._keep_for_later(pcm, ms)
            return
        try:
            # Not through _send: one coroutine less per block (its checks are done above).
            await transport.send(ev.build_append(self._encode_input(pcm)))
        except TransportError:
            self._keep_for_later(pcm, ms)
            return
        self.stats.audio_sent_ms += ms

    def _to_pcm16_24k(self, samples: npt.NDArray[Any], rate: int) -> npt.NDArray[np.int16]:
        if samples.dtype is _F32 and samples.ndim == 1 and rate != 24_000 and rate > 0:
            return self._resample_to_pcm16(samples, rate)  # a float32 device: checked cheaply
        if samples.ndim == 2:
            samples = (
                samples.mean(axis=1)
                if samples.dtype.kind == "f"
                else samples.astype(np.float32).mean(axis=1) / 32768.0
            )
        elif samples.ndim != 1:
            raise AudioFormatError(
                f"audio must be (frames,) or (frames, channels), got {samples.shape}"
            )
        if rate <= 0:
            raise AudioFormatError(f"sample_rate must be positive, got {rate}")
        if rate == 24_000:
            if samples.dtype == np.int16:
                return samples
            if samples.dtype.kind != "f":
                raise AudioFormatError(f"audio must be float or int16, got {samples.dtype}")
            return float32_to_pcm16(samples)
        floats = (
            samples.astype(np.float32) / 32768.0
            if samples.dtype == np.int16
            else samples.astype(np.float32, copy=False)
        )
        return self._resample_to_pcm16(floats, rate)

    def _resample_to_pcm16(
        self, floats: npt.NDArray[np.float32], rate: int
    ) -> npt.NDArray[np.int16]:
        try:
            out = _resampler_for(self._resamplers, rate, 24_000).process(floats)
        except ValueError as exc:
            raise AudioFormatError(f"cannot resample {rate} Hz audio: {exc}") from exc
        return float32_to_pcm16(out)

    def _encode_input(self, pcm: npt.NDArray[np.int16]) -> Any:
        if self.protocol.input_is_g711:
            fmt = self.protocol.input_format
            down = _resampler_for(self._resamplers, 24_000, 8_000)
            pcm8k = float32_to_pcm16(down.process(pcm.astype(np.float32) / 32768.0))
            encode = ulaw_encode if isinstance(fmt, ev.PcmuFormat) else alaw_encode
            return encode(pcm8k).tobytes()
        return pcm

    def _keep_for_later(self, pcm: npt.NDArray[np.int16], ms: float) -> None:
        self._outage.append(pcm)
        self._outage_ms += ms
        dropped = 0.0
        while self._outage_ms > self.policy.outage_buffer_ms and self._outage:
            old = self._outage.popleft()
            self._outage_ms -= len(old) / 24.0
            dropped += len(old) / 24.0
        if dropped:
            self.stats.dropped_audio_ms += dropped
            logger.warning("outage buffer full: dropped %.0f ms of microphone audio", dropped)
            self._emit(AudioDropped(dropped_ms=dropped, reason="outage buffer full"))

    async def _flush_outage(self) -> float:
        flushed = 0.0
        while self._outage:
            pcm = self._outage[0]
            await self._send(self.protocol.build_append(self._encode_input(pcm)))
            self._outage.popleft()  # only once it went out: a failed send keeps it
            ms = len(pcm) / 24.0
            self._outage_ms -= ms
            flushed += ms
            self.stats.audio_sent_ms += ms
        return flushed

    # --- microphone and speaker ------------------------------------------------------------

    def attach(
        self, source: Any = None, sink: AudioSink | None = None, *, iterate_audio: bool = False
    ) -> None:
        """Wire audio in and out.

        Args:
            source: An async iterable of captured blocks (``audio.Microphone``, or any
                async iterator of arrays / ``(array, rate)``): each block goes to
                :meth:`send_audio`.
            sink: Where output audio goes (``audio.Speaker``, ``audio.PlaybackBuffer``):
                deltas are written tagged with their item; on ``speech_started`` the
                sink is cleared and the item truncated at the played position.
            iterate_audio: With a sink, also yield ``response.output_audio.delta`` events
                to ``async for`` (by default the sink and handlers get them, the iterator
                does not; handlers registered with :meth:`on` always see them).
        """
        if sink is not None:
            self._sink = sink
            self._iterate_audio = iterate_audio
        if source is not None:
            if self._mic_task is not None:
                raise InvalidStateError("a microphone is already attached")
            self._mic_task = self._spawn(self._pump_mic(source))

    async def _pump_mic(self, source: Any) -> None:
        try:
            async for block in source:
                await self.send_audio(block)
        except InvalidStateError:
            return  # closed under us
        except Exception:
            logger.exception("the audio source failed; capture stopped")

    async def push_to_talk_press(self) -> None:
        """Push-to-talk press: stop playback, cancel and truncate, clear the input buffer.

        The sink stops at once; ``response.cancel`` (only if a response is active) and
        the truncate at the played position go out together, so the server stops
        generating one round trip sooner. Use with ``connect(..., push_to_talk=True)``.
        """
        stopped = self._stop_playback()
        if stopped is None:
            await self.cancel_response()
        else:
            await asyncio.gather(self.cancel_response(), self._truncate_quietly(*stopped))
        await self.clear_input()

    async def push_to_talk_release(self, *, respond: bool = True) -> Any:
        """Push-to-talk release: commit the buffer and ask for a response."""
        committed = await self.commit()
        if respond:
            await self.create_response()
        return committed

    # --- reconnecting ------------------------------------------------------------------

    async def _connection_lost(self, error: TransportError) -> None:
        self._ready.clear()
        self._connected.clear()
        if self._shut:
            return
        reconnecting = self._reconnect_task is not None and not self._reconnect_task.done()
        if self._opening or reconnecting or not self._created.is_set():
            # open() or the running reconnect loop owns the retries: make their
            # requests fail now instead of waiting for a timeout.
            self._close_error = self._refine(error)
            self._fail_pending(ConnectionClosedError(1006, f"connection lost: {error}"))
            return
        if not _retryable(error) or self.policy.max_attempts <= 0:
            await self._shutdown(self._refine(error))
            return
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect(error))

    def _refine(self, error: TransportError) -> TransportError:
        last = self.protocol.last_error
        if (
            isinstance(error, AuthenticationError | ConnectError)
            and last is not None
            and last.message
        ):
            error.args = (f"{error.args[0]}: {last.message}",)
        return error

    async def _reconnect(self, error: BaseException, *, immediate: bool = False) -> None:
        """Reconnect with backoff; ``immediate`` skips the first wait (a planned recycle)."""
        self._fail_pending(ConnectionClosedError(1006, f"reconnecting after: {error}"))
        for rid in self.protocol.abandon_responses():
            self._turns.pop(rid, None)
        await self._drop_transport()
        attempt = 0
        while not self._closed:
            attempt += 1
            if attempt > self.policy.max_attempts:
                await self._shutdown(error)
                return
            delay = 0.0 if immediate and attempt == 1 else self.policy.delay(attempt)
            self.stats.reconnects += 1
            logger.warning("connection lost (%s); reconnect %d in %.2f s", error, attempt, delay)
            self._emit(Reconnecting(attempt=attempt, delay_s=delay, error=str(error)))
            await asyncio.sleep(delay)
            try:
                await self._connect_once()
                items = await self._restore_conversation()
                flushed = await self._flush_outage()
            except (TransportError, InvalidStateError) as exc:
                await self._drop_transport()
                if isinstance(exc, TransportError) and not _retryable(exc):
                    await self._shutdown(exc)
                    return
                error = exc
                continue
            except RealtimeError as exc:  # the server refused the config: nothing to retry
                await self._shutdown(exc)
                return
            self._close_error = None
            self._connected.set()
            logger.info("reconnected: %d items restored, %.0f ms audio flushed", items, flushed)
            self._emit(Reconnected(attempt=attempt, items=items, flushed_audio_ms=flushed))
            self._pump_responses()
            return

    async def _restore_conversation(self) -> int:
        """Re-create the conversation items on the new server session (same ids).

        The creates are pipelined (all sent, then all answers awaited) so a long
        conversation costs one round trip, not one per item; the new conversation is
        empty, so sending them in order keeps their order, and the answers come in that
        order too: they are matched first in, first out rather than by item id, so an
        item the server re-creates under another id is still recognised.

        The items being restored leave the local conversation first, so it mirrors the
        server's while the answers arrive (a server that numbers its own items may give
        one item another's old id). Once all are in, an item kept under its id gets its
        local state back (audio received, transcripts); one with a new id keeps the
        server's copy (text where the audio was) and goes into :attr:`item_id_map`, as
        does a refused item (``None``). If the restore fails, the local conversation is
        put back as it was, for the next attempt.
        """
        conversation = self.protocol.conversation
        saved_items = dict(conversation.items)
        saved_order = list(conversation._order)
        plan: list[tuple[str, ev.ConversationItemCreate]] = []
        for item in conversation:
            wire = _restorable(item) if item.in_conversation else None
            if wire is None:
                continue
            try:
                event = self.protocol.build_item_create(wire, item_id=item.id)
            except LocalProtocolError as exc:
                logger.warning("could not restore item %s: %s", item.id, exc)
                continue
            plan.append((item.id, event))
        for item_id, _ in plan:
            conversation._remove(item_id)
        sent: list[tuple[str, str, asyncio.Future[Any]]] = []
        answers: list[tuple[str, str | None]] = []
        try:
            for item_id, event in plan:
                assert event.event_id is not None
                # Matched by arrival order, not by the id (which the server may change).
                self.protocol.forget(event.event_id)
                self.protocol.register(event)
                sent.append((item_id, event.event_id, await self._send_tracked(event)))
            for item_id, event_id, future in sent:
                try:
                    answer = await _answer(future, self.request_timeout)
                except ServerError as exc:
                    logger.warning("could not restore item %s: %s", item_id, exc)
                    answers.append((item_id, None))
                    continue
                except asyncio.TimeoutError as exc:
                    self.protocol.forget(event_id)
                    self._futures.pop(event_id, None)
                    raise InvalidStateError("no answer while restoring the conversation") from exc
                answers.append(
                    (item_id, getattr(getattr(answer, "item", None), "id", None) or item_id)
                )
        except BaseException:
            conversation.items.clear()
            conversation.items.update(saved_items)
            conversation._order[:] = saved_order
            raise
        count = 0
        previous: str | None = None  # where a refused item goes back, locally
        for item_id, new_id in answers:
            if new_id == item_id:
                conversation.items[item_id] = saved_items[item_id]
            elif new_id is not None:
                logger.info("item %s was restored as %s", item_id, new_id)
            elif item_id not in conversation.items:
                # Refused: not on the server, but kept locally (in its place) so that
                # nothing the user said is lost and the next restore tries it again.
                conversation.items[item_id] = saved_items[item_id]
                at = conversation._order.index(previous) + 1 if previous else 0
                conversation._order.insert(at, item_id)
            self._map_item_id(item_id, new_id)
            count += new_id is not None
            previous = new_id or item_id
        # An id the server uses now means that item, not an old one it replaced.
        server_ids = {new_id for _, new_id in answers if new_id is not None}
        for old_id in [k for k in self._item_ids if k in server_ids]:
            del self._item_ids[old_id]
        return count

    def _map_item_id(self, old_id: str, new_id: str | None) -> None:
        """Record that the server knows ``old_id`` as ``new_id`` (``None``: not at all)."""
        for key, value in self._item_ids.items():
            if value == old_id:  # an id mapped by an earlier reconnect moves on with it
                self._item_ids[key] = new_id
        if new_id == old_id:
            self._item_ids.pop(old_id, None)
        else:
            self._item_ids[old_id] = new_id

    def _schedule_recycle(self) -> None:
        if self.policy.recycle_before_expiry_s <= 0 or self._recycle_task is not None:
            return
        self._recycle_task = asyncio.get_running_loop().create_task(self._recycle_loop())

    async def _recycle_loop(self) -> None:
        while not self._closed:
            session = self.protocol.session
            expires = getattr(session, "expires_at", None)
            if not expires:
                return
            wait = expires - time.time() - self.policy.recycle_before_expiry_s
            if wait > 0:
                await asyncio.sleep(min(wait, 60.0))
                continue
            busy = self._reconnect_task is not None and not self._reconnect_task.done()
            if self.protocol.active_response_id is not None or busy or self._futures:
                await asyncio.sleep(0.5)  # between turns, with nothing in flight
                continue
            logger.info("recycling the connection before the session expires")
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect(
                    ConnectionClosedError(1000, "recycled before expiry"), immediate=True
                )
            )
            await asyncio.gather(self._reconnect_task, return_exceptions=True)


_END = object()
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

    def __init__(self, session: Session) -> None:
        self._session = session

    def __aiter__(self) -> _EventIterator:
        return self

    def __anext__(self) -> Coroutine[Any, Any, Any]:
        return self._session._next_event()  # the coroutine itself: no wrapper per event


# The class of Session._react's chain each event class counts as (None: no branch).
_REACTS_TO: tuple[type[Any], ...] = (
    ev.ResponseOutputAudioDelta,
    ev.ResponseOutputAudioDone,
    ev.ResponseOutputTextDelta,
    ev.SessionCreated,
    ev.Error,
    ev.InputAudioBufferSpeechStarted,
    ev.InputAudioBufferSpeechStopped,
    ev.ResponseCreated,
    ev.ResponseDone,
)
_REACT_KIND: _ByClass[type[Any] | None] = _ByClass(
    {
        **{cls: cls for cls in _REACTS_TO},
        ev.ResponseOutputAudioTranscriptDelta: ev.ResponseOutputTextDelta,
    },
    None,
)


def _retryable(error: BaseException) -> bool:
    """Whether reconnecting after ``error`` may help (a new session after expiry does)."""
    if isinstance(error, SessionExpiredError):
        return True
    return bool(getattr(error, "retryable", False))


def _type_key(cls: type[Any]) -> str:
    wire = getattr(cls, "wire_type", "")
    if wire:
        return str(wire)
    default = getattr(cls, "type", None)
    if isinstance(default, str):
        return default
    raise InvalidStateError(f"{cls!r} is not an event class")


async def _answer(future: asyncio.Future[_T], timeout: float | None) -> _T:
    """Wait for a request's answer; ``asyncio.TimeoutError`` after ``timeout`` s (None: never).

    Not ``asyncio.wait_for``: before Python 3.12 it returns the result when the answer
    and a cancellation of the waiting task arrive in the same loop iteration, swallowing
    the cancellation (CPython gh-86296). A task cancelled that way runs on; the sessions
    benchmark met it as a client task that never ended. Awaiting the future itself keeps
    the cancellation (and cancels the future, which the reader then leaves alone).
    """
    if timeout is None:
        return await future
    timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        return await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


async def _guard(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("%s failed", what)


def _log_turn(turn: TurnStats) -> None:
    """One INFO line per finished turn: its latencies, usage and cost (no secrets)."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    u = turn.usage
    usage = (
        "usage -"
        if u is None
        else (
            f"tokens in text {u.input_text_tokens} audio {u.input_audio_tokens} "
            f"image {u.input_image_tokens} (cached text {u.cached_text_tokens} "
            f"audio {u.cached_audio_tokens} image {u.cached_image_tokens}), "
            f"out text {u.output_text_tokens} audio {u.output_audio_tokens}"
        )
    )
    cost = "-" if turn.cost_usd is None else f"${turn.cost_usd:.6f}"
    logger.info(
        "turn %s %s: create -> first delta %s, speech stop -> first audio %s, "
        "duration %s; %s; cost %s",
        turn.response_id,
        turn.status,
        ms(turn.create_to_delta_ms),
        ms(turn.speech_to_audio_ms),
        ms(turn.duration_ms),
        usage,
        cost,
    )


def _error_output(exc: BaseException) -> str:
    return orjson.dumps({"error": str(exc)}).decode()


def _resampler_for(
    cache: dict[tuple[int, int], Resampler], in_rate: int, out_rate: int
) -> Resampler:
    """The stream's resampler for a rate pair (stateful: one per direction and rate)."""
    resampler = cache.get((in_rate, out_rate))
    if resampler is None:
        resampler = Resampler(in_rate, out_rate)
        cache[(in_rate, out_rate)] = resampler
    return resampler


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _restorable(item: Any) -> dict[str, Any] | None:
    """A conversation item as something ``conversation.item.create`` accepts again."""
    if item.type == "message":
        if item.role == "assistant":
            text = item.text
            audio_ms = item.audio_ms
            if item.truncated_at_ms is not None and audio_ms > 0:
                # The service dropped the unheard part: keep the heard share of the words.
                text = text[: int(len(text) * min(1.0, item.truncated_at_ms / audio_ms))]
            if not text:
                return None
            return {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text}],
            }
        parts = []
        for part in item.parts:
            if part.type == "input_audio":
                text = item.input_transcript or part.transcript
                if text:
                    parts.append({"type": "input_text", "text": text})
            elif part.text:
                parts.append({"type": "input_text", "text": part.text})
        if not parts:
            return None
        return {"type": "message", "role": item.role or "user", "content": parts}
    if item.type == "function_call":
        return {
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    if item.type == "function_call_output":
        return {
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": item.output or "",
        }
    return None


# --- connect ----------------------------------------------------------------------------


def realtime_url(url: str | None, model: str | None, *, intent: str | None = None) -> str:
    """The WebSocket URL for a base URL, the way the official SDK builds it.

    ``http(s)://host/v1`` becomes ``ws(s)://host/v1/realtime?model=…``; without ``url``,
    ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
    """
    base = url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_URL
    parsed = urlparse(base)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parsed.scheme)
    if scheme is None:
        raise ConnectError(f"unsupported URL scheme in {base!r}", retryable=False)
    path = parsed.path.rstrip("/")
    if not path.endswith("/realtime"):
        path += "/realtime"
    query = parsed.query
    params = {}
    if model and "model=" not in query:
        params["model"] = model
    if intent and "intent=" not in query:
        params["intent"] = intent
    if params:
        query = (query + "&" if query else "") + urlencode(params)
    return urlunparse((scheme, parsed.netloc, path, "", query, ""))


class Connect:
    """What :func:`connect` returns: awaitable, async context manager, async iterator.

    * ``session = await connect(...)`` opens a session;
    * ``async with connect(...) as session:`` opens and closes it;
    * ``async for session in connect(...):`` yields a new session each time the
      previous one ended on a retryable error (catch it in the body and ``continue``),
      with backoff between attempts, like ``websockets.connect``.
    """

    def __init__(self, factory: Callable[[], Session]) -> None:
        self._factory = factory
        self._session: Session | None = None

    def __await__(self) -> Generator[Any, None, Session]:
        return self._factory().open().__await__()

    async def __aenter__(self) -> Session:
        self._session = await self._factory().open()
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aiter__(self) -> AsyncIterator[Session]:
        attempt = 0
        while True:
            session = self._factory()
            try:
                await session.open()
            except TransportError as exc:
                if not getattr(exc, "retryable", False):
                    raise
                attempt += 1
                await asyncio.sleep(session.policy.delay(attempt))
                continue
            attempt = 0
            try:
                yield session
            finally:
                await session.close()


def connect(
    model: str | None = "gpt-realtime",
    *,
    url: str | None = None,
    api_key: str | None = None,
    transport: Literal["websocket"] | Transport | Callable[[], Transport] = "websocket",
    dialect: Dialect = "ga",
    session: ev.RealtimeSession | ev.TranscriptionSession | dict[str, Any] | None = None,
    instructions: str | None = None,
    voice: str | None = None,
    tools: Iterable[Callable[..., Any] | FunctionTool] = (),
    tool_timeout: float = 30.0,
    intent: Literal["transcription"] | None = None,
    reconnect: ReconnectPolicy | bool = True,
    raw_responses: bool = False,
    open_timeout: float = 10.0,
    request_timeout: float | None = 15.0,
    headers: dict[str, str] | None = None,
    prices: dict[str, float] | None = None,
    retain_audio_ms: float = 0.0,
    push_to_talk: bool = False,
) -> Connect:
    """Open a Realtime session.

    Args:
        model: The model (``gpt-realtime``, ``gpt-4o-realtime-preview``, …); ``None``
            with ``intent="transcription"``.
        url: Base URL: default ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``;
            ``http(s)://`` becomes ``ws(s)://…/realtime``; a local server's ``server.url``.
        api_key: Default ``OPENAI_API_KEY``. Never logged or shown in reprs. On a
            loopback URL a placeholder is used when none is set.
        transport: ``"websocket"``, a :class:`~realtime_client.transports.Transport`
            (one connection; no reconnect), or a factory making one per connection.
        dialect: ``"ga"`` (default) or ``"beta"`` (sends ``OpenAI-Beta: realtime=v1``).
        session: Initial session config (model or GA-shaped dict).
        instructions: Shortcut for ``session.instructions``.
        voice: Shortcut for ``session.audio.output.voice``.
        tools: Python callables (or :class:`FunctionTool`) the model may call; the
            session runs them and answers automatically.
        tool_timeout: Seconds a tool may run.
        intent: ``"transcription"`` for a transcription-only session.
        reconnect: ``True`` (default policy), ``False``, or a :class:`ReconnectPolicy`.
        raw_responses: Send ``response.create`` at once even while a response is
            active, and surface the server's error instead of queueing.
        open_timeout: Seconds to wait for the connection and ``session.created``.
        request_timeout: Seconds to wait for the answer of a request (None: no limit).
        headers: Extra upgrade headers.
        prices: Overrides of :data:`PRICES` (USD per 1M tokens) for the cost estimate.
        retain_audio_ms: Keep up to this much output audio per item in the
            conversation state (for recordings); 0 keeps none.
        push_to_talk: Push-to-talk mode: the session config turns the server's turn
            detection off (``audio.input.turn_detection: null``, also after every
            reconnect); call :meth:`Session.push_to_talk_press` (stop playback, cancel
            and truncate the reply) and :meth:`Session.push_to_talk_release` (commit,
            respond).
    """
    if isinstance(reconnect, bool):
        policy = (
            ReconnectPolicy()
            if reconnect
            else ReconnectPolicy(max_attempts=0, recycle_before_expiry_s=0)
        )
    else:
        policy = reconnect
    config = _initial_config(session, instructions, voice, intent)

    if isinstance(transport, Transport):
        single = transport
        used = False

        def make_transport() -> Transport:
            nonlocal used
            if used:
                raise ConnectError("this transport object cannot reconnect", retryable=False)
            used = True
            return single

        policy = (
            ReconnectPolicy(max_attempts=0, recycle_before_expiry_s=0)
            if reconnect is True
            else policy
        )
    elif callable(transport) and not isinstance(transport, str):
        make_transport = transport
    elif transport == "websocket":
        ws_url = realtime_url(url, model, intent=intent)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            host = urlparse(ws_url).hostname or ""
            if host not in _LOOPBACK:
                raise AuthenticationError(
                    "no API key: pass api_key=... or set OPENAI_API_KEY "
                    "(or point url= at a local server)"
                )
            key = "local-test-key"
        upgrade = {"Authorization": f"Bearer {key}", **(headers or {})}
        if dialect == "beta":
            upgrade["OpenAI-Beta"] = "realtime=v1"

        def make_transport() -> Transport:
            return WebSocketTransport(ws_url, headers=upgrade, open_timeout=open_timeout)

    else:
        raise ValueError(f"transport must be 'websocket' or a Transport, got {transport!r}")

    def make_session() -> Session:
        return Session(
            make_transport,
            dialect=dialect,
            config=config,
            tools=tools,
            tool_timeout=tool_timeout,
            raw_responses=raw_responses,
            reconnect=policy,
            open_timeout=open_timeout,
            request_timeout=request_timeout,
            prices=prices,
            retain_audio_ms=retain_audio_ms,
            push_to_talk=push_to_talk,
        )

    return Connect(make_session)


def _initial_config(
    session: ev.RealtimeSession | ev.TranscriptionSession | dict[str, Any] | None,
    instructions: str | None,
    voice: str | None,
    intent: str | None,
) -> ev.RealtimeSession | ev.TranscriptionSession | None:
    parsed: ev.RealtimeSession | ev.TranscriptionSession | None
    if isinstance(session, dict):
        data = dict(session)
        data.setdefault("type", "transcription" if intent == "transcription" else "realtime")
        parsed = ev.SessionUpdate.model_validate(
            {"type": "session.update", "session": data}
        ).session
    else:
        parsed = session
    if instructions is None and voice is None:
        return parsed
    if isinstance(parsed, ev.TranscriptionSession):
        raise InvalidStateError("instructions and voice do not apply to a transcription session")
    base = parsed.to_dict() if parsed is not None else {"type": "realtime"}
    if instructions is not None:
        base["instructions"] = instructions
    if voice is not None:
        base = _deep_merge(base, {"audio": {"output": {"voice": voice}}})
    result = ev.SessionUpdate.model_validate({"type": "session.update", "session": base}).session
    return result
