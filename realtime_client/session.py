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
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar

from . import events as ev
from ._config import deep_merge, with_push_to_talk
from ._delivery import END, EventDelivery, EventHandler, _EventQueue, guard
from ._dispatch import ByClass
from .audio_path import (
    AudioPath,
    AudioSink,
    EventAudioPath,
    InputConverter,
    Int16Array,
    OutageBuffer,
    UncommittedAudio,
    audio_path_for,
    block_of,
)
from .errors import (
    AuthenticationError,
    ConnectError,
    InvalidEventError,
    InvalidStateError,
    RemoteProtocolError,
    TransportError,
)
from .events.codec import Dialect
from .notices import AudioDropped, InvalidServerEvent, Reconnected, Reconnecting, SessionNotice
from .protocol import RealtimeProtocol, UsageTotals
from .reconnect import ReconnectMixin, ReconnectPolicy, _answer, retryable
from .responding import ResponsesMixin
from .stats import PRICES, SessionStats, TurnStats, cost_usd, log_turn
from .tools import Tool, ToolRegistry
from .transports import Transport

__all__ = [
    "AudioDropped",
    "AudioSink",
    "ClientEvent",
    "InvalidServerEvent",
    "PRICES",
    "Reconnected",
    "Reconnecting",
    "ReconnectPolicy",
    "Session",
    "SessionNotice",
    "SessionStats",
    "TurnStats",
]

logger = logging.getLogger("realtime_client")

#: The name :class:`SessionNotice` had before 0.2 (it clashed with ``events.ClientEvent``).
ClientEvent = SessionNotice

_T = TypeVar("_T")


# --- the session -------------------------------------------------------------------------


class Session(EventDelivery, ResponsesMixin, ReconnectMixin):
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

    Memory stays flat over a long conversation: ``protocol.responses`` and
    ``stats.turns`` keep the latest ``keep_responses`` finished responses and turns
    (totals are counters), the event queue holds ``max_event_queue`` events at most,
    and the conversation keeps each item's text but no audio (unless
    ``retain_audio_ms``).
    """

    def __init__(
        self,
        transport_factory: Callable[[], Transport],
        *,
        dialect: Dialect = "ga",
        config: ev.RealtimeSession | ev.TranscriptionSession | None = None,
        tools: Iterable[Callable[..., Any] | Tool] = (),
        tool_timeout: float = 30.0,
        raw_responses: bool = False,
        reconnect: ReconnectPolicy | None = None,
        open_timeout: float = 10.0,
        request_timeout: float | None = 15.0,
        max_event_queue: int = 10_000,
        prices: dict[str, float] | None = None,
        retain_audio_ms: float = 0.0,
        push_to_talk: bool = False,
        keep_responses: int = 64,
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
        self.protocol = RealtimeProtocol(
            dialect=dialect, retain_audio_ms=retain_audio_ms, keep_responses=keep_responses
        )
        self.protocol.absorb_response_races = not raw_responses
        self.stats = SessionStats(usage=self.protocol.usage, turns=deque(maxlen=keep_responses))
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
        self._outage = OutageBuffer(self.policy.outage_buffer_ms)
        # Sent since the server last committed (or cleared) its input buffer: lost with
        # the server session if the connection drops, so it is sent again.
        self._uncommitted = UncommittedAudio(self.policy.resend_uncommitted_ms)
        self._uncommitted_overflow_ms = 0.0
        # The connection's input stream, in ms of audio sent on it; where our last commit
        # or clear request went in it; where the server's VAD last heard speech end.
        self._sent_ms = 0.0
        self._buffer_request_at: float | None = None
        self._speech_end_ms: float | None = None
        self._input = InputConverter()
        # The transport-specific half of audio: events until a media transport connects.
        self._audio: AudioPath = EventAudioPath(self)
        self._mic_task: asyncio.Task[None] | None = None
        #: The thread whose event loop runs the session (set when it connects).
        self._thread: int | None = None
        self._turns: dict[str, TurnStats] = {}
        self._t_create: float | None = None
        self._t_speech_stopped: float | None = None
        self._t_created: dict[str, float] = {}
        self._first_audio: set[str] = set()
        # Call ids whose tool already ran (a repeated response.done must not run it
        # again): the latest few hundred, in order, as a bounded ordered set.
        self._handled_calls: dict[str, None] = {}
        self._recycle_task: asyncio.Task[None] | None = None
        self._init_responses()
        #: What an :class:`AuthenticationError` at open says instead of the server's text
        #: (set by :func:`connect` when no key was given: the server's message would
        #: quote the placeholder key sent to a loopback server).
        self.key_hint: str | None = None

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
        return with_push_to_talk(config) if self.push_to_talk else config

    @property
    def item_id_map(self) -> dict[str, str | None]:
        """Item ids a reconnect changed: old id to the server's new id (a copy).

        The session re-creates the conversation under the same ids; when the server
        answers with another id, the local conversation adopts it and the helpers
        (:meth:`truncate`, :meth:`delete_item`, :meth:`retrieve_item`, and
        ``previous_item_id`` of :meth:`create_item`) translate the old one. ``None``
        marks an item the server refused to re-create.
        """
        return self.protocol.item_id_map

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
    def audio_path(self) -> AudioPath:
        """How audio travels on the current connection (``kind``: ``events`` or ``media``)."""
        return self._audio

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
                except AuthenticationError as exc:
                    if self.key_hint is not None:
                        raise AuthenticationError(self.key_hint) from exc
                    raise
                except TransportError as exc:
                    if not retryable(exc) or attempt > self.policy.max_attempts:
                        raise
                    delay = self.policy.delay(attempt)
                    logger.warning(
                        "connect failed (%s); retrying in %.2f s (attempt %d of %d%s)",
                        exc,
                        delay,
                        attempt,
                        self.policy.max_attempts,
                        "; is the server running?" if attempt == 1 else "",
                    )
                    await asyncio.sleep(delay)
        finally:
            self._opening = False
        self._close_error = None  # a failed attempt before this one is history
        self._connected.set()
        self._schedule_recycle()
        return self

    async def _connect_once(self) -> None:
        self._thread = threading.get_ident()
        transport = self._factory()
        await transport.connect()
        self._transport = transport
        self._sent_ms = 0.0  # a new server session: a new input stream
        self._buffer_request_at = self._speech_end_ms = None
        path = audio_path_for(transport, self)
        if path.kind != self._audio.kind:
            path.sink = self._audio.sink
            self._audio = path
        self._audio.start(transport)
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
        self._audio.stop()
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
        self._queue.put(END)
        await self._drop_transport()
        await asyncio.gather(*others, return_exceptions=True)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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
                self._pump_responses()  # an unreadable response.done still ended its response
                continue
            except RemoteProtocolError as exc:
                logger.warning("server event breaks the protocol: %s", exc)
                self._emit(InvalidServerEvent(error=str(exc), raw=frame))
                continue
            except Exception as exc:  # no event may end the reader: report it and go on
                logger.exception("applying a server event failed")
                self._emit(InvalidServerEvent(error=f"{type(exc).__name__}: {exc}", raw=frame))
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
        for event_id, _request in received.answered:
            future = self._futures.pop(event_id, None)
            if future is not None and not future.done():
                future.set_result(received.answer_events.get(event_id, event))
        for event_id, request in received.absorbed:
            # A race the core handled: a re-queued response.create keeps waiting (its
            # future is the queue's token); a cancel that found nothing answers None.
            future = self._futures.pop(event_id, None)
            if isinstance(request, ev.ResponseCancel) and future is not None:
                if not future.done():
                    future.set_result(None)
        for event_id, _request, error in received.failed:
            future = self._futures.pop(event_id, None)
            self.stats.server_errors += 1
            if future is not None and not future.done():
                future.set_exception(error)
        # The class this chain names the event as: identity checks, not isinstance misses.
        kind = _REACT_KIND[type(event)]
        if kind is ev.ResponseOutputAudioDelta:
            self._on_audio_delta(event, now)
        elif kind is ev.ResponseOutputAudioDone:
            self._audio.on_audio_done(event)
        elif kind is ev.OutputAudioBufferStarted:  # or stopped / cleared
            self._audio.on_buffer_event(event)
        elif kind is ev.ResponseOutputTextDelta:  # or an audio transcript delta
            self._first_delta_seen(event.response_id, now, audio=False)
        elif kind is ev.SessionCreated:
            self._created.set()
        elif kind is ev.Error:
            if not received.failed and received.surfaced:
                self.stats.server_errors += 1
                # Delivered to the event stream and handlers; the log is for the record.
                logger.info("server error: %s", event.error.message)
        elif kind is ev.InputAudioBufferSpeechStarted:
            self._audio.barge_in()
        elif kind is ev.InputAudioBufferSpeechStopped:
            self._t_speech_stopped = now
            self._speech_end_ms = float(event.audio_end_ms)
        elif kind is ev.InputAudioBufferCommitted:  # or cleared
            self._committed()
        elif kind is ev.ResponseCreated:
            rid = event.response.id or ""
            self._t_created[rid] = now
            turn = TurnStats(rid)
            self._turns[rid] = turn
            self.stats.turns.append(turn)
            self.stats.turns_total += 1
        elif kind is ev.ResponseDone:
            self._on_response_done(event, now)
        if received.failed or received.absorbed:
            self._pump_responses()  # a refused or re-queued create must not hold the queue
        if received.surfaced:
            self._emit(event)

    # --- audio out and barge-in ---------------------------------------------------------

    def _on_audio_delta(self, event: ev.ResponseOutputAudioDelta, now: float) -> None:
        self._first_delta_seen(event.response_id, now, audio=True)
        try:
            self._audio.on_delta(event)
        except InvalidEventError as exc:  # the payload is not audio of the session's format
            ms = self.protocol.last_delta_ms
            self.protocol.add_output_audio_ms(event.item_id, event.content_index, -ms)
            logger.warning("invalid server event: %s", exc)
            self._emit(InvalidServerEvent(error=str(exc), raw=event.raw))
            return
        self.stats.audio_received_ms += self.protocol.last_delta_ms  # measured by _apply

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
                turn.cost_usd = cost_usd(turn.usage, self.stats.prices)
            log_turn(turn)
        self._first_audio.discard(rid)
        calls = self.protocol.function_calls(rid)
        if calls and len(self.tools) and response.status == "completed":
            self._spawn(guard(self._run_tools(rid, calls), "tool calls"))
        self._response_done_for_waiters(rid)
        self._pump_responses()

    # --- sending -----------------------------------------------------------------------

    def _check_thread(self, event_id: str | None = None) -> None:
        """Refuse a call from another thread: it would break the connection's framing.

        ``event_id``: a built request to forget first.
        """
        if self._thread is not None and threading.get_ident() != self._thread:
            if event_id is not None:
                self.protocol.forget(event_id)
            raise InvalidStateError(
                "the session runs on another thread's event loop: call it there, e.g. with "
                "asyncio.run_coroutine_threadsafe(session.send_audio(block), loop)"
            )

    async def _send(self, data: bytes) -> None:
        self._check_thread()
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
        self._check_thread(event.event_id or "")
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

    def _fail_pending(self, error: BaseException, *, keep_responses: bool = False) -> None:
        """Fail the requests in flight (and, unless ``keep_responses``, the queued creates).

        With ``keep_responses`` (a reconnect), ``response.create`` requests wait for the
        new connection: queued ones stay queued, and ones sent but never answered are
        queued again at the front (the lost connection created nothing for them).
        """
        if keep_responses:
            for event_id in self.protocol.requeue_unanswered_responses():
                self._futures.pop(event_id, None)  # the future lives on as the queue's token
        for future in list(self._futures.values()):
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: the caller may be gone
        self._futures.clear()
        # A response in progress (and a tool run's follow-up) is lost with the server
        # session: respond() stops waiting for it either way.
        waiters: list[asyncio.Future[Any]] = [
            *self._done_waiters.values(),
            *self._follow_up_waiters.values(),
        ]
        self._done_waiters.clear()
        self._follow_up_waiters.clear()
        if not keep_responses:
            waiters += self.protocol.drain_responses()
        for future in waiters:
            if not future.done():
                future.set_exception(error)
                future.exception()
        self.protocol.reset_pending()

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
            merged = deep_merge(self._config.to_dict(), event.session.to_dict())
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
            previous_item_id = self.protocol.server_item_id(previous_item_id)
        return await self._request(
            self.protocol.build_item_create(item, previous_item_id=previous_item_id)
        )

    async def send_function_output(self, call_id: str, output: str) -> Any:
        """Answer a function call (``function_call_output``); does not create a response."""
        return await self._request(self.protocol.build_function_call_output(call_id, output))

    async def commit(self) -> ev.InputAudioBufferCommitted:
        """Commit the input buffer (push-to-talk release)."""
        self._buffer_request_at = self._sent_ms
        result: ev.InputAudioBufferCommitted = await self._request(self.protocol.build_commit())
        return result

    async def clear_input(self) -> ev.InputAudioBufferCleared:
        """Drop the buffered input audio."""
        self._buffer_request_at = self._sent_ms
        result: ev.InputAudioBufferCleared = await self._request(self.protocol.build_clear_input())
        return result

    async def truncate(
        self, item_id: str, audio_end_ms: float, *, content_index: int = 0
    ) -> ev.ConversationItemTruncated | None:
        """Truncate an assistant item's audio at ``audio_end_ms`` (clamped to what arrived).

        Returns ``None`` without sending anything when nothing was played or the item has
        no audio (as an item re-created as text by a reconnect has not).
        """
        event = self.protocol.plan_truncate(item_id, audio_end_ms, content_index=content_index)
        if event is None:
            return None
        result: ev.ConversationItemTruncated = await self._request(event)
        return result

    async def delete_item(self, item_id: str) -> ev.ConversationItemDeleted:
        """Delete an item.

        Raises:
            InvalidStateError: The item was lost in a reconnect (see :attr:`item_id_map`).
        """
        result: ev.ConversationItemDeleted = await self._request(
            self.protocol.build_item_delete(self.protocol.server_item_id(item_id))
        )
        return result

    async def retrieve_item(self, item_id: str) -> ev.ConversationItemRetrieved:
        """Ask for the server's copy of an item.

        Raises:
            InvalidStateError: The item was lost in a reconnect (see :attr:`item_id_map`).
        """
        result: ev.ConversationItemRetrieved = await self._request(
            self.protocol.build_item_retrieve(self.protocol.server_item_id(item_id))
        )
        return result

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

        Raises:
            InvalidStateError: The session is closed, or this runs on another thread than
                the session's event loop (nothing is sent; hand the call over with
                ``asyncio.run_coroutine_threadsafe``).
        """
        self._check_thread()  # before the resampler's state is touched
        samples, rate = block_of(block)
        rate = sample_rate if sample_rate is not None else rate or 24_000
        pcm = self._input.to_pcm16_24k(samples, rate)
        if not len(pcm):
            return
        ms = len(pcm) / 24.0
        transport = self._transport
        if transport is None or self._closed or not self._connected.is_set():
            if self._closed:
                raise InvalidStateError("the session is closed")
            self._keep_for_later(pcm)
            return
        try:
            # Not through _send: one coroutine less per block (its checks are done above).
            await self._audio.send(transport, pcm)
        except TransportError:
            self._keep_for_later(pcm)
            return
        self.stats.audio_sent_ms += ms
        self._sent_ms += ms
        if self._uncommitted.limit_ms > 0:
            self._uncommitted_overflow_ms += self._uncommitted.keep_sent(pcm, self._sent_ms)

    def _keep_for_later(self, pcm: Int16Array) -> None:
        dropped = self._outage.keep(pcm)
        if dropped:
            self.stats.dropped_audio_ms += dropped
            logger.warning("outage buffer full: dropped %.0f ms of microphone audio", dropped)
            self._emit(AudioDropped(dropped_ms=dropped, reason="outage buffer full"))

    async def _flush_outage(self) -> float:
        """After a reconnect: the uncommitted speech again, then the outage audio."""

        async def send(pcm: Int16Array) -> None:
            transport = self._transport
            if transport is None or self._closed:
                raise InvalidStateError("the session is not connected")
            await self._audio.send(transport, pcm)

        lost, self._uncommitted_overflow_ms = self._uncommitted_overflow_ms, 0.0
        if lost:
            # Older than what the resend buffer keeps: that part of the utterance is gone.
            self.stats.dropped_audio_ms += lost
            self._emit(
                AudioDropped(dropped_ms=lost, reason="uncommitted audio past the resend buffer")
            )
        # Re-sent audio stays uncommitted on the new session until it commits: kept.
        resent = await self._uncommitted.resend(send, self._sent_ms)
        self._sent_ms += resent
        self.stats.resent_audio_ms += resent

        async def send_outage(pcm: Int16Array) -> None:
            await send(pcm)  # now uncommitted on the new session too
            self._sent_ms += len(pcm) / 24.0
            if self._uncommitted.limit_ms > 0:
                self._uncommitted_overflow_ms += self._uncommitted.keep_sent(pcm, self._sent_ms)

        flushed = await self._outage.flush(send_outage)
        self.stats.audio_sent_ms += flushed
        return resent + flushed

    def _committed(self) -> None:
        """The server committed or cleared its input buffer: release what it had.

        Our own commit or clear took everything sent before the request; a VAD commit
        at least the speech up to where VAD heard it end. Audio sent after that is in
        the server's next buffer and stays held (re-sent should the connection drop).
        """
        upto = self._buffer_request_at
        if upto is None:
            upto = self._speech_end_ms if self._speech_end_ms is not None else self._sent_ms
        self._buffer_request_at = None
        self._uncommitted.release(upto)
        self._uncommitted_overflow_ms = 0.0  # what overflowed was older: committed now

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

        Raises:
            InvalidStateError: A source is given while another one is still being read
                (one that has ended can be replaced), or the session is closed.
        """
        if sink is not None:
            self._audio.sink = sink
            self._iterate_audio = iterate_audio
        if source is not None:
            if self._closed:
                raise InvalidStateError("the session is closed")
            if self._mic_task is not None and not self._mic_task.done():
                raise InvalidStateError("a microphone is already attached")
            rate = getattr(source, "sample_rate", None)
            if isinstance(rate, int) and not isinstance(rate, bool):
                self._input.prepare(rate)  # the filter is designed now, not on block one
            self._mic_task = self._spawn(self._pump_mic(source))

    async def _pump_mic(self, source: Any) -> None:
        try:
            async for block in source:
                await self.send_audio(block)
        except InvalidStateError:
            return  # closed under us
        except Exception:
            logger.exception("the audio source failed; capture stopped")

    async def interrupt(self) -> None:
        """Stop the assistant now: playback stops, the response is cancelled and cut.

        Over events (WebSocket) the sink stops at once, and ``response.cancel`` (only if
        a response is active) and the truncate at the heard position go out together, so
        the server stops generating one round trip sooner. Over media (WebRTC) the
        session sends ``output_audio_buffer.clear`` and the cancel; the server cuts the
        item itself.
        """
        await self._audio.interrupt()

    async def push_to_talk_press(self) -> None:
        """Push-to-talk press: :meth:`interrupt`, then clear the input buffer.

        Use with ``connect(..., push_to_talk=True)``.
        """
        await self.interrupt()
        await self.clear_input()

    async def push_to_talk_release(self, *, respond: bool = True) -> Any:
        """Push-to-talk release: commit the buffer and ask for a response."""
        committed = await self.commit()
        if respond:
            await self.create_response()
        return committed

    # --- reconnecting ------------------------------------------------------------------


# The class of Session._react's chain each event class counts as (None: no branch).
_REACTS_TO: tuple[type[Any], ...] = (
    ev.InputAudioBufferCommitted,
    ev.ResponseOutputAudioDelta,
    ev.ResponseOutputAudioDone,
    ev.OutputAudioBufferStarted,
    ev.ResponseOutputTextDelta,
    ev.SessionCreated,
    ev.Error,
    ev.InputAudioBufferSpeechStarted,
    ev.InputAudioBufferSpeechStopped,
    ev.ResponseCreated,
    ev.ResponseDone,
)
_REACT_KIND: ByClass[type[Any] | None] = ByClass(
    {
        **{cls: cls for cls in _REACTS_TO},
        ev.ResponseOutputAudioTranscriptDelta: ev.ResponseOutputTextDelta,
        ev.OutputAudioBufferStopped: ev.OutputAudioBufferStarted,
        ev.OutputAudioBufferCleared: ev.OutputAudioBufferStarted,
        ev.InputAudioBufferCleared: ev.InputAudioBufferCommitted,
    },
    None,
)
