"""The transport seam: what the session needs from a connection, nothing more.

A transport moves whole text frames (one JSON event each). It converts its library's
exceptions into :mod:`realtime_client.errors` at this boundary:
:class:`~realtime_client.errors.ConnectError` (and its subclasses) from
:meth:`Transport.connect`, :class:`~realtime_client.errors.ConnectionClosedError` from
:meth:`Transport.recv` / :meth:`Transport.send` once the connection is gone, or the
more specific :class:`~realtime_client.errors.AuthenticationError` /
:class:`~realtime_client.errors.InvalidModelError` when the server closed with 3000 /
4000 (the real service checks the key and the model *after* the upgrade).
"""

from __future__ import annotations

import abc

from ..errors import (
    AuthenticationError,
    ConnectionClosedError,
    InvalidModelError,
    SessionExpiredError,
    TransportError,
)

__all__ = ["Transport", "closed_error"]


def closed_error(code: int | None, reason: str) -> TransportError:
    """The typed error for a close code and reason from a Realtime server.

    The service closes 3000 for a bad or missing key
    (:class:`~realtime_client.errors.AuthenticationError`), 4000 for a bad model or a
    refused dialect (:class:`~realtime_client.errors.InvalidModelError`; the reason is
    ``<error.type>.<error.code>``), and 1001 when the session expires
    (:class:`~realtime_client.errors.SessionExpiredError`).
    """
    code = 1006 if code is None else code
    if code == 3000:
        return AuthenticationError(
            f"the server refused the API key (close 3000: {reason or 'no reason'})",
            code=code,
            reason=reason,
        )
    if code == 4000:
        return InvalidModelError(
            f"the server refused the session (close 4000: {reason or 'no reason'})",
            code=code,
            reason=reason,
        )
    if code == 1001 and "session_expired" in reason:
        return SessionExpiredError(code, reason)
    return ConnectionClosedError(code, reason)


class Transport(abc.ABC):
    """A bidirectional stream of JSON text frames to a Realtime endpoint."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection.

        Raises:
            ConnectError: It could not be opened (``retryable`` says whether to retry).
        """

    @abc.abstractmethod
    async def send(self, data: bytes | str) -> None:
        """Send one event as a text frame.

        Raises:
            ConnectionClosedError: The connection is closed.
        """

    @abc.abstractmethod
    async def recv(self) -> bytes | str:
        """Receive the next text frame.

        Raises:
            ConnectionClosedError: The connection closed (carries code and reason).
        """

    @abc.abstractmethod
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; idempotent."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """Whether the connection is closed."""
