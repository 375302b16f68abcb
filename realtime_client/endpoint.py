"""Where a session connects: the API key, the WebSocket URL, and when to use the local server.

Pure functions, no I/O: the environment is read only through the ``environ`` mapping each
one takes (default :data:`os.environ`), so every decision is testable as a table.

The rules, shared by :func:`realtime_client.connect`, ``realtime-replay`` and
``realtime-chat``:

* The API key is the one passed, else ``OPENAI_API_KEY`` (:func:`resolve_api_key`).
* The base URL is the one passed, else ``OPENAI_BASE_URL``, else the OpenAI API
  (:func:`base_url`); ``http(s)://host/v1`` becomes ``ws(s)://host/v1/realtime?model=…``
  the way the official SDK builds it (:func:`realtime_url`).
* A loopback server (``127.0.0.1``, ``::1``, ``localhost``) needs no key: a placeholder is
  sent (:func:`auth_key`); anywhere else a missing key is an
  :class:`~realtime_client.errors.AuthenticationError` before any connection is tried.
* No URL and no key: the offline path, the embedded local server
  (:func:`use_local_server`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode, urlparse, urlunparse

from .errors import AuthenticationError, ConnectError

__all__ = [
    "DEFAULT_URL",
    "LOCAL_API_KEY",
    "auth_key",
    "base_url",
    "describe_server",
    "check_transport_security",
    "is_loopback",
    "is_loopback_host",
    "mask_secrets",
    "redact",
    "realtime_url",
    "MAX_KEY_LENGTH",
    "checked_key",
    "resolve_api_key",
    "upgrade_headers",
    "use_local_server",
]

DEFAULT_URL = "https://api.openai.com/v1"
"""The OpenAI API's base URL."""

LOCAL_API_KEY = "local-test-key"
"""The key sent to a loopback server when none is set (a local server takes any key)."""

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_SECRET_QUERY = re.compile(r"((?:^|&)(?:api[-_]?key|key|token|secret)=)[^&]*", re.IGNORECASE)
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def resolve_api_key(
    api_key: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The API key: ``api_key`` if given (non-blank), else ``OPENAI_API_KEY``, else ``None``.

    Surrounding whitespace is dropped (see :func:`checked_key`).

    Args:
        api_key: A key passed by the caller.
        environ: The environment (default ``os.environ``).
    """
    key = (api_key or "").strip() or (_env(environ).get("OPENAI_API_KEY") or "").strip()
    return checked_key(key) if key else None


def checked_key(key: str) -> str:
    """``key`` without surrounding whitespace (a key read from a file keeps its newline).

    Raises:
        AuthenticationError: What is left cannot go in an HTTP header (a space, a control
            or a non-ASCII character inside it). The message never shows the key.
    """
    cleaned = key.strip()
    if len(cleaned) > MAX_KEY_LENGTH:
        raise AuthenticationError(
            f"the API key is {len(cleaned)} characters long, more than the {MAX_KEY_LENGTH} "
            "an HTTP header can carry here (keys are a few hundred at most)"
        )
    if cleaned and cleaned.isascii() and cleaned.isprintable() and " " not in cleaned:
        return cleaned
    raise AuthenticationError(
        "the API key holds a space, a control or a non-ASCII character, so it cannot be "
        f"sent in an HTTP header (it is {len(key)} characters long; was it read from a "
        "file with something else in it?)"
    )


#: The longest API key sent (servers refuse headers of 8 KiB; real keys are far shorter).
MAX_KEY_LENGTH = 2048


def base_url(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The base URL in effect: ``url``, else ``OPENAI_BASE_URL``, else :data:`DEFAULT_URL`.

    Args:
        url: A base URL passed by the caller.
        environ: The environment (default ``os.environ``).
    """
    return url or _env(environ).get("OPENAI_BASE_URL") or DEFAULT_URL


def realtime_url(
    url: str | None = None,
    model: str | None = None,
    *,
    intent: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The WebSocket URL for a base URL, the way the official SDK builds it.

    ``http(s)://host/v1`` becomes ``ws(s)://host/v1/realtime?model=…``; a ``ws(s)://``
    URL keeps its scheme; a path already ending in ``/realtime`` and query parameters
    already given are kept.

    Args:
        url: Base URL (default: see :func:`base_url`).
        model: Added as ``model=`` unless the URL has one.
        intent: Added as ``intent=`` (``"transcription"``) unless the URL has one.
        environ: The environment (default ``os.environ``).

    Raises:
        ConnectError: The scheme is not http, https, ws or wss (not retryable).
    """
    base = base_url(url, environ=environ)
    try:
        parsed = urlparse(base)
        parsed.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise ConnectError(f"malformed URL {redact(base)}: {exc}", retryable=False) from None
    scheme = _WS_SCHEMES.get(parsed.scheme)
    if scheme is None:
        raise ConnectError(f"unsupported URL scheme in {redact(base)}", retryable=False)
    if not parsed.hostname:
        raise ConnectError(f"no host in the URL {redact(base)}", retryable=False)
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


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine (all of 127.0.0.0/8, ``::1``, ``localhost``)."""
    try:
        host = urlparse(url).hostname or ""
    except ValueError:
        return False
    return is_loopback_host(host)


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address is this machine (127.0.0.0/8, ``::1``, ``localhost``)."""
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_BEARER = re.compile(r"(Bearer\s+|openai-insecure-api-key\.)\S+", re.IGNORECASE)


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with bearer tokens and each of ``secrets`` masked (for errors and logs)."""
    text = _BEARER.sub(r"\1***", text)
    for secret in secrets:
        if secret.strip():
            text = text.replace(secret.strip(), "***")
    return text


def redact(url: str) -> str:
    """``url`` fit for a message: credentials in it (``user:key@``, ``api_key=``) masked."""
    try:
        parsed = urlparse(url)
        netloc = parsed.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = _SECRET_QUERY.sub(r"\1***", parsed.query)
        return urlunparse((parsed.scheme, netloc, parsed.path, "", query, ""))
    except ValueError:
        return "<a malformed URL>"


def check_transport_security(url: str, *, allow_insecure: bool = False) -> None:
    """Refuse to send a key unencrypted (``ws://``, ``http://``) to a host off this machine.

    Raises:
        ConnectError: The URL is plain and not loopback, and ``allow_insecure`` is off.
    """
    scheme = urlparse(url).scheme
    if scheme in ("ws", "http") and not allow_insecure and not is_loopback(url):
        raise ConnectError(
            f"refusing to send the API key unencrypted to {redact(url)}: use "
            "wss:// or https://, or pass allow_insecure=True",
            retryable=False,
        )


def auth_key(
    url: str, api_key: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str:
    """The key to send to ``url``: :func:`resolve_api_key`, or a placeholder on loopback.

    Args:
        url: The server's URL (base or WebSocket).
        api_key: A key passed by the caller.
        environ: The environment (default ``os.environ``).

    Raises:
        AuthenticationError: No key, and ``url`` is not a loopback server.
    """
    key = resolve_api_key(api_key, environ=environ)
    if key:
        return key
    if not is_loopback(url):
        raise AuthenticationError(
            "no API key: set OPENAI_API_KEY or pass an API key "
            "(or use a local server's URL, which needs none)"
        )
    return LOCAL_API_KEY


def upgrade_headers(
    key: str, *, dialect: str = "ga", extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The WebSocket upgrade headers: bearer key, extra headers, the beta header if asked.

    Args:
        key: The API key to send (see :func:`auth_key`).
        dialect: ``"beta"`` adds ``OpenAI-Beta: realtime=v1``.
        extra: More headers (they cannot replace the beta header).
    """
    headers = {"Authorization": f"Bearer {key}", **(extra or {})}
    if dialect == "beta":
        headers["OpenAI-Beta"] = "realtime=v1"
    return headers


def use_local_server(
    url: str | None = None,
    api_key: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether to start the embedded local server: no URL given and no API key at all.

    ``OPENAI_BASE_URL`` alone does not count as a URL: without a key there is nothing to
    send it, and the offline path is the useful one.

    Args:
        url: A base URL passed by the caller.
        api_key: A key passed by the caller.
        environ: The environment (default ``os.environ``).
    """
    return url is None and resolve_api_key(api_key, environ=environ) is None


def describe_server(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The server for messages: ``url``, else ``OPENAI_BASE_URL``, else "the OpenAI API".

    Args:
        url: A base URL passed by the caller.
        environ: The environment (default ``os.environ``).
    """
    return url or _env(environ).get("OPENAI_BASE_URL") or "the OpenAI API"
