"""Minting ephemeral keys (``POST /v1/realtime/client_secrets``) for browsers and apps.

A server that holds the real API key mints a short-lived ``ek_…`` key carrying the
session config and hands it to a browser, which then calls the Realtime API directly
(WebRTC: the SDP offer alone, ``Authorization: Bearer ek_…``). Needs aiohttp (the
``webrtc`` or ``server`` extra).

.. code-block:: python

    secret = await mint_ephemeral_key(session={"model": "gpt-realtime"})
    secret.value        # "ek_…": hand it to the page; never log it
    secret.expires_at   # Unix time
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any

from . import endpoint
from .errors import AuthenticationError, ConnectError, InvalidModelError, require_extra
from .models import DEFAULT_MODEL

__all__ = ["EphemeralKey", "mint_ephemeral_key"]


@dataclass(frozen=True)
class EphemeralKey:
    """An ephemeral key and what it carries.

    Attributes:
        value: The ``ek_…`` key (kept out of the repr).
        expires_at: When it stops opening sessions, in Unix seconds.
        session: The session config it carries, with the server's defaults filled in.
    """

    value: str = field(repr=False)
    expires_at: int
    session: dict[str, Any]


async def mint_ephemeral_key(
    session: dict[str, Any] | None = None,
    *,
    api_key: str | None = None,
    url: str | None = None,
    expires_after_s: int = 600,
    ssl_context: ssl.SSLContext | None = None,
    allow_insecure: bool = False,
) -> EphemeralKey:
    """Mint an ephemeral key (GA ``client_secrets``).

    Args:
        session: The session config the key carries (GA shape; ``type`` defaults to
            ``"realtime"``, ``model`` to ``gpt-realtime``).
        api_key: The real key (default ``OPENAI_API_KEY``; a placeholder on loopback).
        url: Base URL (default ``OPENAI_BASE_URL`` or the OpenAI API).
        expires_after_s: Lifetime, 10..7200 s.
        ssl_context: TLS settings (verification stays on by default).
        allow_insecure: Allow plain ``http://`` to a host that is not this machine.

    Raises:
        AuthenticationError: The key was refused (401/403).
        InvalidModelError: The request was refused (other 4xx), with the server's message.
        ConnectError: The server could not be reached or failed (5xx).
    """
    aiohttp = require_extra("aiohttp", "webrtc")
    if not 10 <= expires_after_s <= 7200:
        raise ValueError(f"expires_after_s must be 10..7200, got {expires_after_s}")
    base = endpoint.base_url(url).rstrip("/")
    endpoint.check_transport_security(base, allow_insecure=allow_insecure)
    key = endpoint.auth_key(base, api_key)
    body = {
        "expires_after": {"anchor": "created_at", "seconds": expires_after_s},
        "session": {"type": "realtime", "model": DEFAULT_MODEL, **(session or {})},
    }
    target = f"{base}/realtime/client_secrets"
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                target,
                data=json.dumps(body),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                ssl=ssl_context,
            ) as response,
        ):
            status = response.status
            text: str = await response.text()
    except aiohttp.ClientError as exc:
        raise ConnectError(f"cannot reach {endpoint.redact(target)}: {exc}") from exc
    message = _message(text)
    if status in (401, 403):
        raise AuthenticationError(f"the server refused the API key (HTTP {status}): {message}")
    if 400 <= status < 500:
        raise InvalidModelError(f"the server refused the key request (HTTP {status}): {message}")
    if status >= 300:
        raise ConnectError(f"the server failed (HTTP {status}): {message}", retryable=True)
    try:
        data = json.loads(text)
        return EphemeralKey(str(data["value"]), int(data["expires_at"]), dict(data["session"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConnectError(f"unexpected client_secrets answer: {exc}", retryable=False) from exc


def _message(text: str) -> str:
    try:
        message = json.loads(text)["error"]["message"]
        return str(message)
    except (ValueError, KeyError, TypeError):
        return text.strip()[:200] or "no details"
