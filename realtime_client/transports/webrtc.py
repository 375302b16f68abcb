"""WebRTC transport over aiortc: events on the ``oai-events`` data channel, audio as Opus.

The SDP exchange is the real service's (``POST /v1/realtime/calls``): with an ephemeral
key (``ek_…``) the offer goes alone as ``application/sdp``; with an API key it goes as a
``multipart/form-data`` form with the ``sdp`` and a ``session`` part (the model and
config). The answer is ``201`` with the SDP and ``Location: /v1/realtime/calls/rtc_…``,
whose last segment is the call id (for a sideband WebSocket, and for the hang-up that
:meth:`WebRTCTransport.close` sends).

Audio does not travel as events: :attr:`WebRTCTransport.media` is a
:class:`~realtime_client.transports.MediaChannel` at 48 kHz; the session's media audio
path sends captured audio to it and plays what it receives. The peer uses no ICE server
unless given some (aiortc's default STUN server blocks gathering for 5 s where it is
unreachable): on the real service the server's candidates are public, the client's host
candidates suffice. Needs the ``webrtc`` extra (aiortc, aiohttp).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt

from ..endpoint import check_transport_security, checked_key, is_loopback, mask_secrets, redact
from ..errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosedError,
    InvalidModelError,
    require_extra,
)
from ..models import DEFAULT_MODEL
from .base import MediaChannel, Transport

__all__ = ["WebRTCMedia", "WebRTCTransport", "calls_url"]

logger = logging.getLogger("realtime_client")

_CLOSED = object()

#: Events waiting in the data channel (the peer has not acknowledged them) past which
#: :meth:`WebRTCTransport.send` waits, as a WebSocket send waits for its socket to drain;
#: it resumes once they are down to the low mark.
SEND_HIGH_WATER = 1 << 20
SEND_LOW_WATER = 256 * 1024


def calls_url(base_url: str) -> str:
    """``POST`` target of the SDP offer for a base URL (``…/v1`` → ``…/v1/realtime/calls``).

    ``ws(s)://`` becomes ``http(s)://``; a URL already ending in ``/realtime/calls`` is kept.
    """
    try:
        parsed = urlparse(base_url)
        parsed.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise ConnectError(f"malformed URL {redact(base_url)}: {exc}", retryable=False) from None
    scheme = {"ws": "http", "wss": "https"}.get(parsed.scheme, parsed.scheme)
    if scheme not in ("http", "https"):
        raise ConnectError(f"unsupported URL scheme in {redact(base_url)}", retryable=False)
    path = parsed.path.rstrip("/")
    if path.endswith("/realtime/calls"):
        pass
    elif path.endswith("/realtime"):
        path += "/calls"
    else:
        path += "/realtime/calls"
    return f"{scheme}://{parsed.netloc}{path}"


class WebRTCMedia(MediaChannel):
    """The call's audio: an outgoing paced track and the remote track, mono PCM16 48 kHz."""

    sample_rate = 48_000

    def __init__(self, transport: WebRTCTransport, track: Any) -> None:
        self._transport = transport
        self._track = track
        self._inbox: asyncio.Queue[object] = asyncio.Queue(maxsize=500)  # 10 s of 20 ms
        #: Received frames dropped because nobody read them (the queue was full).
        self.dropped_frames = 0

    async def send(self, pcm: npt.NDArray[np.int16]) -> None:
        if self._transport.closed:
            raise ConnectionClosedError(*self._transport.close_info)
        self._track.push(pcm)
        await self._track.wait_room()  # real-time media: the caller waits, no backlog grows

    async def recv(self) -> npt.NDArray[np.int16]:
        item = await self._inbox.get()
        if item is _CLOSED:
            self._inbox.put_nowait(_CLOSED)
            raise ConnectionClosedError(*self._transport.close_info)
        assert isinstance(item, np.ndarray)
        return item

    def _deliver(self, pcm: object) -> None:
        if self._inbox.full():
            self._inbox.get_nowait()
            self.dropped_frames += 1
        self._inbox.put_nowait(pcm)


class WebRTCTransport(Transport):
    """One Realtime call over WebRTC.

    Args:
        url: Base URL (``https://api.openai.com/v1``, a local server's ``server.url``) or
            the calls URL itself.
        api_key: An API key (sends the multipart form) or an ephemeral ``ek_…`` key
            (sends the SDP alone). Never logged.
        model: The model, for the form's ``session`` part.
        session: Further session config for the form (GA shape).
        headers: Extra HTTP headers on the SDP request.
        ice_servers: ICE servers for real networks, e.g. ``[{"urls": "stun:…"}]``; none
            by default.
        open_timeout: Seconds for the SDP exchange and the data channel to open.
        ssl_context: TLS settings for ``https://`` (verification stays on by default).
        allow_insecure: Allow sending the key over plain ``http://`` to a host that is
            not loopback.
        jitter_buffer_ms: Audio the receiver holds before decoding, in ms (20 ms
            steps, 20–160). Default: 20 ms to a server on this machine (no network jitter
            to ride out), 40 ms elsewhere (one late packet). aiortc's own is 80 ms.
            Measured mouth-to-ear on loopback (``bench.webrtc``): 21 / 41 / 81 ms.

    :meth:`send` hands an event to the data channel and returns at once, unless more than
    :data:`SEND_HIGH_WATER` bytes wait there unacknowledged (a stalled peer or a slow
    path): then it waits until they are down to :data:`SEND_LOW_WATER`, or the call ends
    (:class:`~realtime_client.errors.ConnectionClosedError`), as a WebSocket send waits
    for its socket.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        model: str | None = DEFAULT_MODEL,
        session: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ice_servers: Sequence[Mapping[str, Any]] = (),
        open_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        allow_insecure: bool = False,
        jitter_buffer_ms: float | None = None,
    ) -> None:
        self._rtc = require_extra("aiortc", "webrtc")
        self._aiohttp = require_extra("aiohttp", "webrtc")
        self.url = calls_url(url)
        self._loopback = is_loopback(self.url)
        check_transport_security(self.url, allow_insecure=allow_insecure)
        self._key = checked_key(api_key)
        self._model = model
        self._session = dict(session or {})
        self._headers = dict(headers or {})
        self._ice_servers = [dict(s) for s in ice_servers]
        self._open_timeout = open_timeout
        self._ssl = ssl_context
        if jitter_buffer_ms is None:
            jitter_buffer_ms = 20.0 if self._loopback else 40.0
        self._jitter_frames = max(1, min(8, round(jitter_buffer_ms / 20)))
        self._pc: Any = None
        self._channel: Any = None
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._media: WebRTCMedia | None = None
        self._closed: tuple[int, str] | None = None
        self._room = asyncio.Event()  # set: the data channel takes more
        self._room.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The call id (``rtc_…``) from the answer's ``Location`` header.
        self.call_id: str | None = None

    def __repr__(self) -> str:
        return f"<WebRTCTransport {redact(self.url)} call={self.call_id}>"

    @property
    def media(self) -> WebRTCMedia | None:
        """The call's audio channel (once connected)."""
        return self._media

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def close_info(self) -> tuple[int, str]:
        """``(code, reason)`` of the end, in WebSocket terms (1006: the peer vanished)."""
        return self._closed or (1006, "")

    # --- connecting -------------------------------------------------------------------

    async def connect(self) -> None:
        from .._rtc import PcmTrack, ensure_host_candidates

        if self._loopback:
            ensure_host_candidates()
        rtc = self._rtc
        config = rtc.RTCConfiguration(
            iceServers=[rtc.RTCIceServer(**server) for server in self._ice_servers]
        )
        pc = self._pc = rtc.RTCPeerConnection(configuration=config)
        channel = self._channel = pc.createDataChannel("oai-events")
        channel.bufferedAmountLowThreshold = SEND_LOW_WATER
        channel.on("bufferedamountlow", self._room.set)
        track = PcmTrack()
        pc.addTrack(track)
        self._media = WebRTCMedia(self, track)
        from .._rtc import decode_inline, set_jitter_buffer

        opened = asyncio.get_running_loop().create_future()

        @channel.on("open")  # type: ignore[untyped-decorator]
        def _on_open() -> None:
            if not opened.done():
                opened.set_result(None)

        @channel.on("message")  # type: ignore[untyped-decorator]
        def _on_message(message: str | bytes) -> None:
            self._inbox.put_nowait(message)

        @channel.on("close")  # type: ignore[untyped-decorator]
        def _on_close() -> None:
            self._end(1006, "data channel closed")

        @pc.on("track")  # type: ignore[untyped-decorator]
        def _on_track(remote: Any) -> None:
            if remote.kind == "audio":
                for receiver in pc.getReceivers():
                    if receiver.track is remote:
                        set_jitter_buffer(receiver, self._jitter_frames)
                        decode_inline(receiver)
                self._spawn(self._pull(remote))

        @pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        async def _on_state() -> None:
            if pc.connectionState == "failed":
                self._end(1006, "ICE/DTLS failed")
                if not opened.done():
                    opened.set_exception(
                        ConnectError("the WebRTC connection failed (ICE/DTLS)", retryable=True)
                    )
            elif pc.connectionState == "closed":
                self._end(1000, "peer connection closed")

        try:
            await pc.setLocalDescription(await pc.createOffer())
            answer = await asyncio.wait_for(
                self._exchange(pc.localDescription.sdp), self._open_timeout
            )
            await pc.setRemoteDescription(rtc.RTCSessionDescription(sdp=answer, type="answer"))
            await asyncio.wait_for(opened, self._open_timeout)
        except asyncio.TimeoutError as exc:
            await self._teardown()
            hint = (
                " (this machine has only loopback: only a local server can answer)"
                if self._loopback
                else ""
            )
            raise ConnectError(
                f"WebRTC call did not open within {self._open_timeout} s{hint}", retryable=True
            ) from exc
        except BaseException:
            await self._teardown()
            raise

    async def _exchange(self, offer: str) -> str:
        """POST the offer; the answer SDP. Sets :attr:`call_id`."""
        aiohttp = self._aiohttp
        headers = {"Authorization": f"Bearer {self._key}", **self._headers}
        if self._key.startswith("ek_"):
            body: Any = offer
            headers["Content-Type"] = "application/sdp"
        else:
            form = aiohttp.FormData()
            form.add_field("sdp", offer, content_type="application/sdp")
            session = {"type": "realtime", **self._session}
            if self._model and "model" not in session:
                session["model"] = self._model
            form.add_field("session", json.dumps(session), content_type="application/json")
            body = form
            headers["Accept"] = "application/sdp"
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(self.url, data=body, headers=headers, ssl=self._ssl) as response,
            ):
                text: str = await response.text()
                status = response.status
                location = response.headers.get("Location", "")
        except aiohttp.ClientError as exc:
            raise ConnectError(
                f"cannot reach {redact(self.url)}: {self._scrub(str(exc))}", retryable=True
            ) from None
        except ValueError as exc:  # aiohttp refusing a header value (a bad extra header)
            raise ConnectError(
                f"cannot send the call's request: {self._scrub(str(exc))}", retryable=False
            ) from None
        if status in (401, 403):
            raise AuthenticationError(
                f"the server refused the API key (HTTP {status}): {self._scrub(_message(text))}",
                code=status,
            )
        if 400 <= status < 500:
            raise InvalidModelError(
                f"the server refused the call (HTTP {status}): {self._scrub(_message(text))}",
                code=status,
            )
        if status >= 300:
            raise ConnectError(
                f"the server failed the call (HTTP {status}): {self._scrub(_message(text))}",
                retryable=status >= 500,
            )
        self.call_id = location.rstrip("/").rsplit("/", 1)[-1] or None
        return text

    def _scrub(self, text: str) -> str:
        """``text`` with the key masked (a server may echo a header it refused)."""
        return mask_secrets(text, (self._key,))

    async def _pull(self, remote: Any) -> None:
        """Downlink: decoded frames (mono from our decoder) → PCM16 for the media channel."""
        from .._rtc import frame_to_mono

        with contextlib.suppress(Exception):  # the track ends with the call
            while True:
                frame = await remote.recv()
                if self._media is not None:
                    self._media._deliver(frame_to_mono(frame))

    # --- events -------------------------------------------------------------------------

    async def send(self, data: bytes | str) -> None:
        channel = self._channel
        if self._closed is not None or channel is None or channel.readyState != "open":
            raise ConnectionClosedError(*self.close_info)
        channel.send(data.decode() if isinstance(data, bytes) else data)
        if channel.bufferedAmount > SEND_HIGH_WATER:
            # The peer is not acknowledging (stalled, or a slow path): wait for room
            # rather than buffer without bound. A close wakes this too.
            self._room.clear()
            await self._room.wait()
            if self._closed is not None:
                raise ConnectionClosedError(*self.close_info)

    async def recv(self) -> bytes | str:
        item = await self._inbox.get()
        if item is _CLOSED:
            self._inbox.put_nowait(_CLOSED)
            raise ConnectionClosedError(*self.close_info)
        assert isinstance(item, bytes | str)
        return item

    # --- closing ------------------------------------------------------------------------

    def _end(self, code: int, reason: str) -> None:
        if self._closed is None:
            self._closed = (code, reason)
            self._room.set()
            self._inbox.put_nowait(_CLOSED)
            if self._media is not None:
                self._media._deliver(_CLOSED)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Hang up (``POST …/calls/{id}/hangup``, best effort) and close the peer."""
        already = self._closed is not None
        self._end(code, reason or "closed by the client")
        if not already and self.call_id:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._hangup(), 2.0)
        await self._teardown()

    async def _hangup(self) -> None:
        aiohttp = self._aiohttp
        headers = {"Authorization": f"Bearer {self._key}", **self._headers}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/{self.call_id}/hangup", headers=headers, ssl=self._ssl),
        ):
            pass

    async def _teardown(self) -> None:
        self._end(1000, "closed")
        for task in list(self._tasks):
            task.cancel()
        if self._pc is not None:
            pc, self._pc = self._pc, None
            with contextlib.suppress(Exception):
                await pc.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _message(text: str) -> str:
    """The ``error.message`` of a JSON error body, else the text (short)."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        message = json.loads(text)["error"]["message"]
        if isinstance(message, str):
            return message
    return text.strip()[:200] or "no details"
