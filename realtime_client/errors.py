"""The package's error tree.

Every exception this package raises on purpose derives from :class:`RealtimeError`.
Third-party exceptions (``websockets``, ``orjson``, ``pydantic``, ``aiohttp``) are
converted where they cross into our code, with ``raise ... from exc`` so the cause
stays visible.

.. code-block:: text

    RealtimeError
     ├── TransportError                 the connection itself
     │    ├── ConnectError              could not open (DNS, refused, TLS, handshake)
     │    │    ├── AuthenticationError  bad or missing API key (server closes 3000)
     │    │    └── InvalidModelError    missing or unknown model, beta shape refused (4000)
     │    └── ConnectionClosedError     closed with a code and a reason
     │         └── SessionExpiredError  the session hit its maximum duration (1001)
     ├── ProtocolError
     │    ├── LocalProtocolError        *we* were about to break the protocol
     │    │                             (e.g. truncating an item that has no audio)
     │    ├── RemoteProtocolError       the peer sent something that breaks it
     │    └── InvalidEventError         malformed event: not JSON, no ``type``,
     │                                  wrong field types (also a ``ValueError``)
     ├── ServerError                    an ``error`` event (code, message, param, event_id)
     ├── InvalidStateError              the call does not fit the object's state
     ├── AudioFormatError               wrong sample rate, shape or dtype (``ValueError``)
     ├── RecordingError                 a cassette line that is not a record (``ValueError``)
     └── MissingExtraError              an optional extra is not installed (``ImportError``)

The ``realtime_client.audio`` package stands alone and has its own small tree rooted at
:class:`realtime_client.audio.AudioError`; the session converts those at its boundary.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AudioFormatError",
    "AuthenticationError",
    "ConnectError",
    "ConnectionClosedError",
    "InvalidEventError",
    "InvalidModelError",
    "InvalidStateError",
    "LocalProtocolError",
    "MissingExtraError",
    "ProtocolError",
    "RealtimeError",
    "RecordingError",
    "RemoteProtocolError",
    "ServerError",
    "SessionExpiredError",
    "TransportError",
    "require_extra",
]


class RealtimeError(Exception):
    """Root of every error raised by ``realtime_client``."""


class TransportError(RealtimeError):
    """The connection failed or ended."""


class ConnectError(TransportError):
    """Opening the connection failed.

    Attributes:
        retryable: Whether trying again may succeed (network trouble, 5xx), as
            opposed to a configuration problem (bad key, bad model).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class AuthenticationError(ConnectError):
    """The server refused the API key (WebSocket close 3000, or HTTP 401/403).

    Attributes:
        code: The close code (3000) when the refusal came as a close, else ``None``.
        reason: The close reason, e.g. ``invalid_request_error.invalid_api_key``.
    """

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message, retryable=False)
        self.code = code
        self.reason = reason


class InvalidModelError(ConnectError):
    """The model is missing or unknown, or the dialect was refused (close 4000).

    Attributes:
        code: The close code (4000) when the refusal came as a close, else ``None``.
        reason: The close reason, e.g. ``invalid_request_error.invalid_model``.
    """

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message, retryable=False)
        self.code = code
        self.reason = reason


class ConnectionClosedError(TransportError):
    """The connection closed.

    Attributes:
        code: The WebSocket close code (``1006`` when the socket dropped without one).
        reason: The close reason the peer gave, possibly empty.
    """

    #: Close codes after which reconnecting is reasonable.
    RETRYABLE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: code {code}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.reason = reason
        #: Whether the close code suggests a reconnect may succeed.
        self.retryable = code in self.RETRYABLE_CODES


class SessionExpiredError(ConnectionClosedError):
    """The session reached its maximum duration (``session_expired``, close 1001)."""


class ProtocolError(RealtimeError):
    """Something broke the Realtime protocol."""


class LocalProtocolError(ProtocolError):
    """This side was about to break the protocol; nothing was sent."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol."""


class InvalidEventError(ProtocolError, ValueError):
    """An event could not be parsed or does not match its schema.

    Attributes:
        raw: The offending input (text, bytes or dict), kept for diagnosis.
    """

    def __init__(self, message: str, raw: Any = None) -> None:
        super().__init__(message)
        self.raw = raw


class ServerError(RealtimeError):
    """The server answered with an ``error`` event.

    Attributes:
        type: ``error.type``, e.g. ``"invalid_request_error"``.
        code: ``error.code``, e.g. ``"response_cancel_not_active"``; may be ``None``.
        message: The human-readable text.
        param: The offending parameter path, if any.
        event_id: The *client* event id that caused the error, if the client sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(f"{code or type}: {message}")
        self.type = type
        self.code = code
        self.message = message
        self.param = param
        self.event_id = event_id


class InvalidStateError(RealtimeError, RuntimeError):
    """The operation does not fit the current state (e.g. sending on a closed session)."""


class AudioFormatError(RealtimeError, ValueError):
    """Audio of the wrong rate, shape or sample type was given."""


class RecordingError(RealtimeError, ValueError):
    """A recording (cassette) line that is not a usable record; says which line and why."""


class MissingExtraError(RealtimeError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


def require_extra(module: str, extra: str) -> Any:
    """Import an optional dependency or raise :class:`MissingExtraError` naming its extra.

    Args:
        module: The module to import, e.g. ``"aiohttp"``.
        extra: The ``realtime-client`` extra that provides it, e.g. ``"server"``.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module} is required for this feature: pip install 'realtime-client[{extra}]'"
        ) from exc
