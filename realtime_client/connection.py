"""Opening a session: :func:`connect`, its URL and key rules, and :class:`Connect`."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Any, Literal

from . import endpoint
from . import events as ev
from ._config import initial_config
from .endpoint import DEFAULT_URL, realtime_url
from .errors import ConnectError, TransportError
from .events.codec import Dialect
from .models import DEFAULT_MODEL, warn_if_deprecated
from .reconnect import ReconnectPolicy
from .session import Session
from .tools import Tool
from .transports import Transport, WebSocketTransport

__all__ = ["DEFAULT_URL", "Connect", "connect", "realtime_url"]


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
    model: str | None = DEFAULT_MODEL,
    *,
    url: str | None = None,
    api_key: str | None = None,
    transport: Literal["websocket", "webrtc"] | Transport | Callable[[], Transport] = "websocket",
    dialect: Dialect = "ga",
    session: ev.RealtimeSession | ev.TranscriptionSession | dict[str, Any] | None = None,
    instructions: str | None = None,
    voice: str | None = None,
    tools: Iterable[Callable[..., Any] | Tool] = (),
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
    keep_responses: int = 64,
    ice_servers: Iterable[dict[str, Any]] = (),
    ssl_context: ssl.SSLContext | None = None,
    allow_insecure: bool = False,
) -> Connect:
    """Open a Realtime session.

    Args:
        model: The model: by default the current one (:data:`~realtime_client.models.
            DEFAULT_MODEL`, ``gpt-realtime-2.1``); ``None`` with ``intent="transcription"``.
            A deprecated model (:mod:`realtime_client.models`) is logged once.
        url: Base URL: default ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``;
            ``http(s)://`` becomes ``ws(s)://…/realtime``; a local server's ``server.url``.
        api_key: Default ``OPENAI_API_KEY``. Never logged or shown in reprs or errors.
            Surrounding whitespace is dropped (a key read from a file); one that still
            holds a space, a control or a non-ASCII character is refused at once
            (:class:`~realtime_client.errors.AuthenticationError`, not retried). On a
            loopback URL a placeholder is used when none is set.
        transport: ``"websocket"``, ``"webrtc"`` (the ``webrtc`` extra: events on a data
            channel, audio as Opus media; a reconnect is a new call), a
            :class:`~realtime_client.transports.Transport` (one connection; no
            reconnect), or a factory making one per connection.
        dialect: ``"ga"`` (default) or ``"beta"`` (sends ``OpenAI-Beta: realtime=v1``).
        session: Initial session config (model or GA-shaped dict).
        instructions: Shortcut for ``session.instructions``.
        voice: Shortcut for ``session.audio.output.voice``.
        tools: Python callables (or :class:`Tool`) the model may call; the
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
        keep_responses: How many finished responses ``session.protocol.responses``
            and turns ``session.stats.turns`` keep (the oldest go first); totals
            (``stats.usage``, ``stats.turns_total``, the counters) cover the whole
            session. Keeps memory flat over long conversations.
        ice_servers: WebRTC only: ICE servers (``[{"urls": "stun:…"}]``); none by default.
        ssl_context: TLS settings for ``wss://`` / ``https://`` (verification stays on by
            default).
        allow_insecure: Send the key over plain ``ws://`` / ``http://`` to a host that is
            not this machine (refused by default).

    Raises:
        ConnectError: A malformed URL, or a plain URL off loopback without
            ``allow_insecure`` (not retryable).
        AuthenticationError: No key for a server that is not on this machine.
    """
    if isinstance(reconnect, bool):
        policy = (
            ReconnectPolicy()
            if reconnect
            else ReconnectPolicy(max_attempts=0, recycle_before_expiry_s=0)
        )
    else:
        policy = reconnect
    config = initial_config(session, instructions, voice, intent)
    warn_if_deprecated(model)

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
    elif transport == "webrtc":
        if dialect != "ga":
            raise ValueError("WebRTC calls speak the GA protocol (dialect='ga')")
        base = endpoint.base_url(url)
        endpoint.check_transport_security(base, allow_insecure=allow_insecure)
        key = endpoint.auth_key(base, api_key)
        from .transports.webrtc import WebRTCTransport

        form = config.to_dict() if isinstance(config, ev.RealtimeSession) else {}
        servers = [dict(s) for s in ice_servers]

        def make_transport() -> Transport:
            return WebRTCTransport(
                base,
                api_key=key,
                model=model,
                session=form,
                headers=headers,
                ice_servers=servers,
                open_timeout=open_timeout,
                ssl_context=ssl_context,
                allow_insecure=allow_insecure,
            )

    elif transport == "websocket":
        ws_url = realtime_url(url, model, intent=intent)
        endpoint.check_transport_security(ws_url, allow_insecure=allow_insecure)
        upgrade = endpoint.upgrade_headers(
            endpoint.auth_key(ws_url, api_key), dialect=dialect, extra=headers
        )

        def make_transport() -> Transport:
            return WebSocketTransport(
                ws_url, headers=upgrade, open_timeout=open_timeout, ssl_context=ssl_context
            )

    else:
        raise ValueError(
            f"transport must be 'websocket', 'webrtc' or a Transport, got {transport!r}"
        )

    no_key = not endpoint.resolve_api_key(api_key) and not isinstance(transport, Transport)

    def make_session() -> Session:
        session = Session(
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
            keep_responses=keep_responses,
        )
        if no_key:
            # On loopback a placeholder key goes out when none is set: if the server wants
            # a real one, say that none was given (not which placeholder it refused).
            session.key_hint = (
                "the server wants an API key and none was given: set OPENAI_API_KEY or "
                "pass api_key="
            )
        return session

    return Connect(make_session)
