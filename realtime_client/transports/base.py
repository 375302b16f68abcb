"""The transport seam: what the session needs from a connection, nothing more.

A transport moves whole text frames (one JSON event each). A transport that also carries
audio as media (WebRTC) offers a :class:`MediaChannel` in :attr:`Transport.media`: the
session then sends captured audio and plays output audio through it instead of
``input_audio_buffer.append`` and ``response.output_audio.delta`` events (see
:mod:`realtime_client.audio_path`). It converts its library's
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

import numpy as np
import numpy.typing as npt

from ..errors import (
    AuthenticationError,
    ConnectionClosedError,
    InvalidModelError,
    SessionExpiredError,
    TransportError,
)

__all__ = ["MediaChannel", "Transport", "closed_error"]


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


class MediaChannel(abc.ABC):
    """Audio carried beside the events, pull-based like aiortc's ``MediaStreamTrack.recv``.

    Both directions are mono PCM16 at :attr:`sample_rate` (48 kHz for WebRTC); the
    transport does the codec (Opus) and the packet timing.
    """

    #: Rate of the frames in both directions, in Hz.
    sample_rate: int = 48_000

    @abc.abstractmethod
    async def recv(self) -> npt.NDArray[np.int16]:
        """The next block of output audio the server sent (mono PCM16).

        Raises:
            ConnectionClosedError: The connection is closed.
        """

    @abc.abstractmethod
    async def send(self, pcm: npt.NDArray[np.int16]) -> None:
        """Send captured audio (mono PCM16 at :attr:`sample_rate`, any length).

        Raises:
            ConnectionClosedError: The connection is closed.
        """


class Transport(abc.ABC):
    """A bidirectional stream of JSON text frames to a Realtime endpoint."""

    @property
    def media(self) -> MediaChannel | None:
        """The audio media channel, where the transport carries audio as media (WebRTC).

        ``None`` (the default) means audio travels as events on this transport.
        """
        return None

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
