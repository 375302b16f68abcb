"""WebSocket transport over ``websockets`` (compression off: 7–24× faster for audio)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from ..endpoint import mask_secrets, redact
from ..errors import AuthenticationError, ConnectError, ConnectionClosedError, TransportError
from .base import Transport, closed_error

__all__ = ["DEFAULT_MAX_FRAME", "WebSocketTransport"]

#: Largest incoming frame by default, in bytes.
DEFAULT_MAX_FRAME = 8 * 1024 * 1024

# Headers whose values are credentials (OpenAI's bearer; Azure's api-key).
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key"})


class _RedactSecrets(logging.Filter):
    """Masks API keys in ``websockets``' debug log of the upgrade headers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_secrets(record.msg)
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in record.args)
        return True


_WS_LOGGER = logging.getLogger("realtime_client.websockets")
_WS_LOGGER.addFilter(_RedactSecrets())


class WebSocketTransport(Transport):
    """A Realtime WebSocket connection.

    Args:
        url: ``wss://…/v1/realtime?model=…`` (or ``ws://`` on loopback).
        headers: Upgrade headers (``Authorization``; ``OpenAI-Beta`` for beta).
        open_timeout: Seconds to wait for the handshake.
        ssl_context: TLS settings for ``wss://`` (verification stays on by default).
        max_size: Largest incoming frame in bytes (default 8 MiB, as the Agents SDK;
            ``None`` = unlimited, as the official SDK). A larger frame closes the
            connection with 1009 instead of costing memory and seconds to parse.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        open_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        max_size: int | None = DEFAULT_MAX_FRAME,
    ) -> None:
        self.url = url
        self._headers = dict(headers or {})
        self._open_timeout = open_timeout
        self._ssl = ssl_context
        self._max_size = max_size
        self._ws: ClientConnection | None = None

    def __repr__(self) -> str:  # never shows headers: they hold the key
        return f"WebSocketTransport({redact(self.url)!r})"

    async def connect(self) -> None:
        kwargs: dict[str, Any] = {
            "additional_headers": self._headers,
            "compression": None,
            "max_size": self._max_size,
            "open_timeout": self._open_timeout,
            "ping_interval": 20.0,
            "ping_timeout": 20.0,
            "user_agent_header": None,
            "max_queue": None,
            "logger": _WS_LOGGER,  # its header dump would otherwise show the key
        }
        if self.url.startswith("wss:"):
            kwargs["ssl"] = self._ssl or ssl.create_default_context()
        try:
            self._ws = await ws_connect(self.url, **kwargs)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                message = f"the server refused the API key (HTTP {status})"
                raise AuthenticationError(message) from exc
            if status == 404:
                raise ConnectError(
                    f"no Realtime endpoint at {redact(self.url)} (HTTP 404): a base URL "
                    "ends in /v1, e.g. http://127.0.0.1:8000/v1",
                    retryable=False,
                ) from exc
            raise ConnectError(
                f"WebSocket upgrade refused with HTTP {status}", retryable=status >= 500
            ) from exc
        except InvalidURI as exc:
            raise ConnectError(f"invalid URL {redact(self.url)}", retryable=False) from exc
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            message = f"could not connect to {redact(self.url)}: {exc}"
            scrubbed = self._scrub(message)
            if scrubbed != message:  # the cause would show the header too: left out
                raise ConnectError(scrubbed) from None
            raise ConnectError(message) from exc

    def _scrub(self, text: str) -> str:
        """``text`` with bearer tokens and the credential headers' values masked."""
        secrets = (v for k, v in self._headers.items() if k.lower() in _SECRET_HEADERS)
        return mask_secrets(text, secrets)

    def _conn(self) -> ClientConnection:
        if self._ws is None:
            raise ConnectionClosedError(1006, "not connected")
        return self._ws

    async def send(self, data: bytes | str) -> None:
        ws = self._conn()
        try:
            await ws.send(data, text=True)
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc

    async def recv(self) -> bytes | str:
        ws = self._conn()
        try:
            return await ws.recv(decode=False)
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc

    @staticmethod
    def _closed(exc: ConnectionClosed) -> TransportError:
        rcvd = exc.rcvd
        if rcvd is not None:
            return closed_error(rcvd.code, rcvd.reason)
        sent = exc.sent
        if sent is not None and sent.code == 1009:  # we refused a frame past max_size
            return closed_error(1009, "frame too large: " + (sent.reason or "over max_size"))
        return closed_error(1006, "connection lost")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._ws is not None:
            await self._ws.close(code, reason)

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.state is websockets.State.CLOSED
