"""Reconnect with continuity: the policy, the reconnect loop, restore and recycling.

:class:`ReconnectMixin` is the part of :class:`~realtime_client.session.Session` that
survives a lost connection: on a retryable close (1001, 1006, 1011, 1012, 1013) or a
failed connect it retries with exponential backoff and jitter, re-sends the config,
re-creates the conversation from the protocol core's restore plan, flushes the
microphone audio kept during the outage, and recycles the connection before the
session expires.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosedError,
    InvalidStateError,
    RealtimeError,
    ServerError,
    SessionExpiredError,
    TransportError,
)
from .notices import Reconnected, Reconnecting

if TYPE_CHECKING:
    from .protocol import RealtimeProtocol
    from .stats import SessionStats
    from .transports import Transport

__all__ = ["ReconnectMixin", "ReconnectPolicy", "retryable"]

logger = logging.getLogger("realtime_client")

_T = TypeVar("_T")


@dataclass(frozen=True)
class ReconnectPolicy:
    """When and how to reconnect.

    Attributes:
        max_attempts: Attempts per outage before giving up (0 disables reconnecting).
        base_delay_s: First backoff, in seconds; doubles per attempt.
        max_delay_s: Backoff cap, in seconds.
        jitter: Random ± fraction applied to each delay.
        outage_buffer_ms: Microphone audio kept while disconnected, in ms.
        resend_uncommitted_ms: Audio sent since the server's last commit that is kept,
            in ms, and sent again after a reconnect (the old server session's buffered,
            uncommitted speech is gone with it); 0 keeps none.
        recycle_before_expiry_s: Reconnect this many seconds before ``expires_at``
            (when no response is active); 0 disables recycling.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: float = 0.25
    outage_buffer_ms: float = 10_000.0
    resend_uncommitted_ms: float = 15_000.0
    recycle_before_expiry_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """Backoff before ``attempt`` (1-based), in seconds, with jitter."""
        base = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return float(max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter))))


def retryable(error: BaseException) -> bool:
    """Whether reconnecting after ``error`` may help (a new session after expiry does)."""
    if isinstance(error, SessionExpiredError):
        return True
    return bool(getattr(error, "retryable", False))


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


class ReconnectMixin:
    """The reconnecting part of the session (its state lives on the session)."""

    # What this part uses of the session (declared for the type checker).
    protocol: RealtimeProtocol
    stats: SessionStats
    policy: ReconnectPolicy
    request_timeout: float | None
    _closed: bool
    _shut: bool
    _opening: bool
    _close_error: BaseException | None
    _ready: asyncio.Event
    _connected: asyncio.Event
    _created: asyncio.Event
    _reconnect_task: asyncio.Task[None] | None
    _recycle_task: asyncio.Task[None] | None
    _futures: dict[str, asyncio.Future[Any]]
    _turns: dict[str, Any]
    _transport: Transport | None
    _emit: Callable[[Any], None]
    _fail_pending: Callable[..., None]
    _drop_transport: Callable[[], Awaitable[None]]
    _connect_once: Callable[[], Awaitable[None]]
    _shutdown: Callable[[BaseException | None], Awaitable[None]]
    _flush_outage: Callable[[], Awaitable[float]]
    _pump_responses: Callable[[], None]
    _send_tracked: Callable[[Any], Awaitable[asyncio.Future[Any]]]

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
        if not retryable(error) or self.policy.max_attempts <= 0:
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
        self._fail_pending(
            ConnectionClosedError(1006, f"reconnecting after: {error}"), keep_responses=True
        )
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
                if isinstance(exc, TransportError) and not retryable(exc):
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
        """Re-create the conversation on the new server session (the core's restore plan).

        The creates are pipelined (all sent, then all answers awaited) so a long
        conversation costs one round trip, not one per item; the answers come in order
        and are matched in order (the server may answer under another id). What the
        local conversation becomes is the plan's decision (:class:`RestorePlan`); if
        the restore fails, the conversation is put back as it was, for the next attempt.
        """
        plan = self.protocol.restore_plan()
        for item_id, why in plan.skipped:
            logger.info("item %s is not restored: %s", item_id, why)
        plan.begin()
        sent: list[tuple[str, str, asyncio.Future[Any]]] = []
        answers: list[tuple[str, str | None]] = []
        try:
            for item_id, event in plan.creates:
                assert event.event_id is not None
                sent.append((item_id, event.event_id, await self._send_tracked(event)))
            for item_id, event_id, future in sent:
                try:
                    answer = await _answer(future, self.request_timeout)
                except ServerError as exc:
                    logger.warning("could not restore item %s: %s", item_id, exc)
                    answers.append((item_id, None))
                    continue
                except asyncio.TimeoutError as exc:
                    self._futures.pop(event_id, None)
                    raise InvalidStateError("no answer while restoring the conversation") from exc
                new_id = getattr(getattr(answer, "item", None), "id", None) or item_id
                if new_id != item_id:
                    logger.info("item %s was restored as %s", item_id, new_id)
                answers.append((item_id, new_id))
        except BaseException:
            plan.abort()
            raise
        return plan.finish(answers)

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
