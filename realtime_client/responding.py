"""Responses and tools: ask for responses, cancel them, run tools, and ``respond()``.

:class:`ResponsesMixin` is the part of :class:`~realtime_client.session.Session` that asks
for responses (queued one at a time through the protocol core), runs registered tools
when a response calls them and asks for the answer, and offers :meth:`respond`: one
awaitable that sends a message, waits for the finished reply (through any tool calls)
and returns it as an :class:`Answer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from . import events as ev
from .errors import InvalidStateError, LocalProtocolError, RealtimeError
from .events.codec import describe_errors
from .protocol import UsageTotals
from .tools import ToolError, ToolRegistry

if TYPE_CHECKING:
    from .protocol import ItemState, RealtimeProtocol
    from .stats import SessionStats

__all__ = ["Answer", "ResponsesMixin", "ToolCall"]

logger = logging.getLogger("realtime_client")

# Tool call ids remembered as already handled (see ResponsesMixin._run_tools).
_HANDLED_CALLS_KEPT = 512
# Follow-up responses (asked for after tools ran) remembered for respond().
_FOLLOW_UPS_KEPT = 64


@dataclass
class ToolCall:
    """A function call made on the way to an answer, and what the tool returned.

    Attributes:
        name: The function's name.
        arguments: Its arguments, as the JSON string the model sent.
        call_id: The call's id.
        output: The output sent back (``None`` if none was sent, e.g. an unknown tool).
    """

    name: str
    arguments: str
    call_id: str
    output: str | None


@dataclass
class Answer:
    """The finished reply :meth:`ResponsesMixin.respond` returns.

    Attributes:
        text: The answer's words: the text or audio transcript of the last response's
            assistant messages (a 2.x ``commentary`` preamble not included).
        status: How the last response ended: ``completed``, ``cancelled``,
            ``incomplete`` or ``failed``.
        response_ids: Every response on the way, in order (more than one when tools ran).
        audio_ms: Assistant audio received over all of them, in ms.
        usage: Tokens over all of them.
        tool_calls: The function calls made on the way, with their outputs.
        preambles: What a 2.x model said while tools ran (its ``commentary`` messages).
        items: The assistant messages, in order.
    """

    text: str
    status: str
    response_ids: list[str]
    audio_ms: float = 0.0
    usage: UsageTotals = field(default_factory=UsageTotals)
    tool_calls: list[ToolCall] = field(default_factory=list)
    preambles: list[str] = field(default_factory=list)
    items: list[ItemState] = field(default_factory=list)


class ResponsesMixin:
    """The responses-and-tools part of the session (its state lives on the session)."""

    # What this part uses of the session (declared for the type checker).
    protocol: RealtimeProtocol
    stats: SessionStats
    tools: ToolRegistry
    tool_timeout: float
    raw_responses: bool
    _closed: bool
    _connected: asyncio.Event
    _futures: dict[str, asyncio.Future[Any]]
    _handled_calls: dict[str, None]
    _t_create: float | None
    _spawn: Callable[[Awaitable[Any]], asyncio.Task[Any]]
    _send: Callable[[bytes], Awaitable[None]]
    _request: Callable[..., Awaitable[Any]]
    _wait_connected: Callable[[], Awaitable[None]]
    send_text: Callable[..., Awaitable[Any]]
    send_function_output: Callable[[str, str], Awaitable[Any]]

    # respond()'s waiters: response.done by response id; the follow-up a tool run asked
    # for, by the id of the response that called the tools.
    _done_waiters: dict[str, asyncio.Future[None]]
    _follow_ups: dict[str, str | RealtimeError | None]
    _follow_up_waiters: dict[str, asyncio.Future[str | None]]

    def _init_responses(self) -> None:
        self._done_waiters = {}
        self._follow_ups = {}
        self._follow_up_waiters = {}

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
            try:
                response = ev.ResponseCreateParams.model_validate(response)
            except ValidationError as exc:
                raise LocalProtocolError(f"response create: {describe_errors(exc)}") from exc
        event = ev.ResponseCreate() if response is None else ev.ResponseCreate(response=response)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        out_of_band = response is not None and response.conversation == "none"
        if out_of_band or self.raw_responses:
            await self._wait_connected()
            self.protocol.start_response(event, future)
            await self._send_response_create(event, future)
        else:
            self.protocol.queue_response(event, future)
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

    async def respond(
        self,
        text: str | None = None,
        *,
        timeout: float | None = 60.0,
        **overrides: Any,
    ) -> Answer:
        """Send ``text`` (or nothing), ask for a response and return the finished reply.

        With no ``text`` the response answers the conversation as it is (e.g. the audio
        just committed with push-to-talk). When the reply calls registered tools, they
        run, their outputs go back and the model answers again: this returns after that
        final answer, with the calls listed in :attr:`Answer.tool_calls`. Calls of
        unregistered tools end it at the response that made them.

        Args:
            text: A user message to send first.
            timeout: Seconds to wait for the whole reply; ``None`` waits for ever.
            **overrides: ``response.create`` parameters (``instructions``,
                ``output_modalities``, ``metadata`` …).

        Returns:
            The reply: its text or transcript, status, audio, usage and tool calls.

        Raises:
            TimeoutError: The reply took longer than ``timeout``; the response in
                progress is cancelled first. Cancelling the awaiting task cancels it too.
            RealtimeError: Sending failed (closed session, lost connection …).
        """
        current: list[str] = []

        async def run() -> Answer:
            if text is not None:
                await self.send_text(text, respond=False)
            created = await self.create_response(**overrides)
            rid = created.response.id or ""
            chain: list[str] = []
            while True:
                current[:] = [rid]
                await self._response_finished(rid)
                chain.append(rid)
                next_id = await self._follow_up(rid)
                if next_id is None:
                    return self._answer(chain)
                rid = next_id

        try:
            return await asyncio.wait_for(run(), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            if current:
                await self._cancel_quietly(current[0])
            raise

    async def _cancel_quietly(self, response_id: str) -> None:
        state = self.protocol.responses.get(response_id)
        if state is None or state.done:
            return
        with contextlib.suppress(RealtimeError):
            await asyncio.shield(self.cancel_response(response_id))

    async def _response_finished(self, response_id: str) -> None:
        """Wait for ``response.done`` of ``response_id`` (at once if it came already)."""
        state = self.protocol.responses.get(response_id)
        if state is not None and state.done:
            return
        waiter = self._done_waiters.get(response_id)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._done_waiters[response_id] = waiter
        await waiter

    def _response_done_for_waiters(self, response_id: str) -> None:
        waiter = self._done_waiters.pop(response_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _will_follow_up(self, response_id: str) -> bool:
        """Whether the session's tool run will ask for a response after this one."""
        state = self.protocol.responses.get(response_id)
        calls = self.protocol.function_calls(response_id)
        return bool(
            state is not None
            and state.status == "completed"
            and calls
            and len(self.tools)
            and all(c.name in self.tools for c in calls)
        )

    async def _follow_up(self, response_id: str) -> str | None:
        """The response the tool run asked for after ``response_id``, if one comes."""
        if not self._will_follow_up(response_id):
            return None
        if response_id in self._follow_ups:
            stashed = self._follow_ups.pop(response_id)
            if isinstance(stashed, RealtimeError):
                raise stashed
            return stashed
        waiter = self._follow_up_waiters.get(response_id)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._follow_up_waiters[response_id] = waiter
        return await waiter

    def _followed_up(
        self, response_id: str, next_id: str | None, error: RealtimeError | None = None
    ) -> None:
        """The tool run after ``response_id`` asked for ``next_id`` (or failed: ``error``)."""
        waiter = self._follow_up_waiters.pop(response_id, None)
        if waiter is not None:
            if not waiter.done():
                if error is not None:
                    waiter.set_exception(error)
                else:
                    waiter.set_result(next_id)
            return
        self._follow_ups[response_id] = error if error is not None else next_id
        while len(self._follow_ups) > _FOLLOW_UPS_KEPT:
            del self._follow_ups[next(iter(self._follow_ups))]

    def _answer(self, chain: list[str]) -> Answer:
        protocol = self.protocol
        answer = Answer(text="", status="completed", response_ids=list(chain))
        outputs = {
            i.call_id: i.output
            for i in protocol.conversation
            if i.type == "function_call_output" and i.call_id
        }
        final: list[str] = []
        for rid in chain:
            state = protocol.responses.get(rid)
            if state is None:
                continue
            answer.status = state.status
            if state.usage is not None:
                answer.usage.add(state.usage)
            final = []
            for item_id in state.output_item_ids:
                item = protocol.conversation.get(item_id)
                if item is None:
                    continue
                if item.type == "function_call":
                    answer.tool_calls.append(
                        ToolCall(
                            item.name or "",
                            item.arguments,
                            item.call_id or "",
                            outputs.get(item.call_id or ""),
                        )
                    )
                elif item.type == "message" and item.role == "assistant":
                    answer.items.append(item)
                    answer.audio_ms += protocol.audio_received_ms(item.id)
                    if item.phase == "commentary":
                        answer.preambles.append(item.text)
                    else:
                        final.append(item.text)
        answer.text = " ".join(t for t in final if t)
        return answer

    async def _run_tools(self, response_id: str, calls: list[Any]) -> None:
        mine = [c for c in calls if c.name in self.tools and c.call_id not in self._handled_calls]
        if not mine:
            return
        for call in mine:
            self._handled_calls[call.call_id] = None
        while len(self._handled_calls) > _HANDLED_CALLS_KEPT:
            del self._handled_calls[next(iter(self._handled_calls))]

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
            self._followed_up(response_id, None, exc)
            return
        if len(mine) == len(calls):
            try:
                created = await self.create_response()
            except RealtimeError as exc:  # refused, or the connection went: respond() says so
                logger.warning("could not ask for the response after the tool outputs: %s", exc)
                self._followed_up(response_id, None, exc)
                return
            self._followed_up(response_id, created.response.id)
        else:
            unknown = sorted({c.name for c in calls if c.name not in self.tools})
            logger.warning(
                "response %s called unregistered tools %s: answer them yourself",
                response_id,
                unknown,
            )

    def _pump_responses(self) -> None:
        """Send the next queued ``response.create`` if the core says it may go now."""
        while True:
            ready = self.protocol.next_response(ready=self._connected.is_set())
            if ready is None:
                return
            event, future = ready
            assert event.event_id is not None
            if future.done():  # the caller stopped waiting
                self.protocol.response_not_sent(event.event_id)
                continue
            self._futures[event.event_id] = future
            self._spawn(self._send_response_create(event, future))
            return

    async def _send_response_create(
        self, event: ev.ResponseCreate, future: asyncio.Future[Any]
    ) -> None:
        """Send a ``response.create`` the core registered (queued, out of band, or raw)."""
        assert event.event_id is not None
        self._futures[event.event_id] = future
        self._t_create = asyncio.get_running_loop().time()
        try:
            await self._send(self.protocol.serialize(event))
        except RealtimeError as exc:
            self.protocol.response_not_sent(event.event_id)
            self._futures.pop(event.event_id, None)
            if not future.done():
                future.set_exception(exc)


def _error_output(exc: BaseException) -> str:
    return orjson.dumps({"error": str(exc)}).decode()
