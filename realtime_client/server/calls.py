"""WebRTC calls: the SDP exchange, one aiortc peer per call, hang-up and the sideband.

Routes (protocol.md §1.2, §1.3, §16.4), added to :class:`~.app.LocalServer` by
:class:`CallDesk`:

* ``POST /v1/realtime/calls`` takes an SDP offer, either alone (``application/sdp``, with
  an ephemeral ``ek_…`` key whose session config applies, or an API key and
  ``?model=``) or as ``multipart/form-data`` with the parts ``sdp`` and ``session`` (a GA
  session with its ``model``), and answers **201** with the SDP answer as
  ``text/plain``, ``Location: /v1/realtime/calls/rtc_…`` and CORS headers, so a page on
  another origin can call. ``OPTIONS`` answers the browser's preflight.
* ``POST /v1/realtime/calls/{call_id}/hangup`` ends a call.
* A WebSocket to ``/v1/realtime?call_id=rtc_…`` with an API key joins a call as its
  sideband (:meth:`Call.join`, wired in :mod:`.app`): it gets the call's server events
  and its client events act on the call.

A :class:`Call` drives a GA :class:`~.session.ServerSession`: events travel on the
``oai-events`` data channel (``session.created`` once it opens), the remote audio track
feeds the session's input buffer and VAD (48 → 24 kHz as one stream), and responses play
on a paced outgoing track instead of ``response.output_audio.delta``. The playout is
reported as the real service reports it (``output_audio_buffer.started`` / ``stopped`` /
``cleared``, :mod:`._playout`), and on barge-in or ``output_audio_buffer.clear`` the
server truncates the item itself at the audio it handed to the track.

Faults (:mod:`.faults`) apply to calls as to WebSockets, chosen the same ways
(``LocalServer.set_faults`` / ``push_faults``, or ``?fault=…`` on the ``POST``), on the
``oai-events`` channel (sidebands are WebSockets with faults of their own):
``delay``, ``stall_after``/``stall``, ``error_after``/``error_code``, ``reorder`` and
``rate_limit_tokens`` as there; ``drop_after=N`` / ``drop_at=TYPE`` drop the peer (the
server closes its peer connection without a hang-up; the caller sees its data channel
close, a retryable 1006); with ``close_code`` set they close only the data channel (which
carries no close code), and the call ends as it does whenever that channel closes.

The answer is shaped like the real service's (protocol.md §16.4): ``a=ice-lite``, Opus
with ``minptime=10;useinbandfec=1`` then PCMU and PCMA (no G.722), ``a=setup:active``,
one BUNDLE; call ids ``rtc_u2_`` + 22 characters and session ids ``sess_u0_`` + 22.
Where it still differs, on purpose: host candidates are the machine's own UDP ports (the
service's are UDP 3478 and TCP 443 passive); no ``a=rtcp-rsize`` (aiortc sends and expects
compound RTCP); ``a=max-message-size`` is aiortc's 262144 (what it can take), not the
service's 1073741823. The server only *says* ice-lite: aioice stays a full agent in the
controlled role (it answers the caller's checks and also sends its own, which a full
caller answers); the caller, seeing a lite peer, nominates with a second check (aiortc)
or as it always does (browsers), so callers take the same path as with the service.

aiortc (the ``webrtc`` extra) is imported when the first offer arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

import orjson

from .._ids import IdGenerator
from ..errors import MissingExtraError, require_extra
from . import _schemas as schemas
from ._common import Int16Array, SessionKind, SessionSink
from ._playout import Cut, OutputAudioBuffer
from .faults import FaultPlan, FaultSpecError
from .responders import make_responder
from .session import ServerSession, SessionOptions
from .validation import ValidationError, check_depth, validate

if TYPE_CHECKING:
    from aiohttp import web

    from .app import LocalServer

__all__ = ["CALL_NOT_FOUND", "EVENTS_LABEL", "Call", "CallDesk", "shape_answer"]

log = logging.getLogger("realtime_client.server")

#: The data channel the client creates for events.
EVENTS_LABEL = "oai-events"
#: How long a call waits for its data channel to open before it is dropped, in seconds.
_OPEN_TIMEOUT_S = 30.0
#: Output audio the track may hold before its producer would wait, in ms: responses are
#: made ahead of the playout and never wait, so this is only a bound for PcmTrack.
_MAX_QUEUED_MS = 3_600_000.0
#: Audio the receiver holds before decoding, in 20 ms frames (aiortc's own: 4).
_JITTER_FRAMES = 2
#: Headers a cross-origin page may send (browser SDKs add their own ``X-…`` ones too).
_ALLOWED_HEADERS = frozenset(
    {
        "authorization",
        "content-type",
        "accept",
        "openai-beta",
        "openai-organization",
        "openai-project",
        "x-openai-agents-sdk",
    }
)
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, X-Request-Id",
}
#: The real service's message for an unknown ``call_id``.
CALL_NOT_FOUND = "No session found for the provided call_id"


#: Id prefixes of WebRTC calls and their sessions on the real service (protocol.md §16.4).
CALL_ID_PREFIX = "rtc_u2"
SESSION_ID_PREFIX = "sess_u0"
#: The real answer's Opus format parameters.
_OPUS_FMTP = {"minptime": 10, "useinbandfec": 1}
#: Audio codecs the real answer offers, in its order.
_ANSWER_CODECS = ("opus", "pcmu", "pcma")


class _CallIds(IdGenerator):
    """The session's ids, with a call's session id shape (``sess_u0_`` + 22)."""

    def session(self) -> str:
        return self.new(SESSION_ID_PREFIX, 22)


def _shape_codecs(pc: Any) -> None:
    """Before the answer: Opus (with the service's fmtp), PCMU, PCMA; nothing else."""
    for transceiver in pc.getTransceivers():
        codecs = getattr(transceiver, "_codecs", None)
        if transceiver.kind != "audio" or not isinstance(codecs, list):
            continue
        kept = [c for c in codecs if c.name.lower() in _ANSWER_CODECS]
        for codec in kept:
            if codec.name.lower() == "opus":
                codec.parameters = {**_OPUS_FMTP, **codec.parameters}
        if kept:
            transceiver._codecs = kept


def shape_answer(sdp: str) -> str:
    """The answer SDP with ``a=ice-lite`` at session level, as the real service answers."""
    if "a=ice-lite" in sdp:
        return sdp
    lines = sdp.split("\r\n")
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("t=")), 0)
    return "\r\n".join([*lines[:at], "a=ice-lite", *lines[at:]])


def _request_id() -> str:
    return "req_" + secrets.token_hex(16)


class Call:
    """One WebRTC call: an aiortc peer connection driving a GA :class:`ServerSession`.

    The call is the session's sink: every server event goes to the data channel and to
    each joined sideband; output audio comes through :meth:`send_audio`.

    Args:
        desk: The server's calls.
        call_id: ``rtc_…``.
        number: The connection number (recordings, seeds).
        options: The session's options (GA, ``audio_via_sink``).
        pc: The peer connection, before the offer is applied (the outgoing
            :attr:`track` joins the offer's audio transceiver once it is).
    """

    def __init__(
        self,
        desk: CallDesk,
        call_id: str,
        number: int,
        options: SessionOptions,
        pc: Any,
        faults: FaultPlan | None = None,
    ) -> None:
        from .._rtc import RATE, PcmTrack

        self.id = call_id
        self.number = number
        self.pc = pc
        self._desk = desk
        self._rate = RATE
        #: What is queued on the outgoing track, by response and item.
        self.buffer = OutputAudioBuffer(RATE)
        # Responses are produced ahead of the playout (at the server's speed): the track
        # queues them, so no backpressure here.
        self.track = PcmTrack(max_backlog_ms=_MAX_QUEUED_MS, on_frame=self._on_frame)
        self.session = ServerSession(
            options, make_responder(desk.server.responder_spec), self, _CallIds(options.seed)
        )
        self.session.on_output_audio_buffer_clear = self._on_clear
        self.channel: Any = None
        #: Sideband WebSockets joined to the call.
        self.sidebands: list[SessionSink] = []
        #: Whether the call has ended.
        self.ended = False
        #: Seconds from the offer to the data channel's opening (``None`` until then).
        self.setup_s: float | None = None
        self._offered_at = time.monotonic()
        self._started = False
        self._held: list[str | bytes] = []  # sideband frames before the session started
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ending: asyncio.Task[None] | None = None
        self._warned_format = False
        #: The call's fault plan (:mod:`.faults`); events go through an outbox if active.
        self.faults = faults or FaultPlan()
        #: Events sent on the data channel (counted for the faults).
        self.sent = 0
        #: Whether a fault dropped the peer or closed the data channel.
        self.dropped = False
        #: Why the server ended the call itself (its peer stopped taking events).
        self.closed_reason: str | None = None
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        loop = asyncio.get_running_loop()
        if any(
            value is not None
            for value in (
                self.faults.drop_after,
                self.faults.drop_at,
                self.faults.stall_after,
                self.faults.error_after,
            )
        ) or (self.faults.delay_s > 0):
            self._outbox = asyncio.Queue()
            writer = loop.create_task(self._write_faulty())
            self._tasks.add(writer)
            writer.add_done_callback(self._tasks.discard)
        self._watchdog: asyncio.TimerHandle | None = loop.call_later(
            _OPEN_TIMEOUT_S, self._never_opened
        )
        pc.on("datachannel", self._on_datachannel)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    def __repr__(self) -> str:
        return f"<Call {self.id} conn={self.number}{' ended' if self.ended else ''}>"

    # --- the peer ---------------------------------------------------------------------

    def _on_datachannel(self, channel: Any) -> None:
        if channel.label != EVENTS_LABEL or self.channel is not None:
            return
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("close", lambda: self.hang_up_soon(1000, "data channel closed"))
        if channel.readyState == "open":
            self._open()
        else:
            channel.on("open", self._open)

    def _open(self) -> None:
        """The data channel is open: ``session.created``, then what a sideband sent early."""
        if self._started or self.ended:
            return
        self._started = True
        self.setup_s = time.monotonic() - self._offered_at
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        log.debug("call %s: data channel open after %.1f ms", self.id, self.setup_s * 1000)
        self.session.start()
        held, self._held = self._held, []
        for frame in held:
            self._receive(frame)

    def _never_opened(self) -> None:
        self._watchdog = None
        if not self._started:
            log.info("call %s: no data channel within %.0f s; dropped", self.id, _OPEN_TIMEOUT_S)
            self.hang_up_soon(1000, "never connected")

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self.hang_up_soon(1006 if self.pc.connectionState == "failed" else 1000, "peer gone")

    def _on_track(self, track: Any) -> None:
        if track.kind != "audio":
            return
        from .._rtc import decode_inline, set_jitter_buffer

        for receiver in self.pc.getReceivers():
            if receiver.track is track:
                set_jitter_buffer(receiver, _JITTER_FRAMES)
                decode_inline(receiver)
        task = asyncio.ensure_future(self._listen(track))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self, track: Any) -> None:
        """Uplink: decoded frames (mono s16, 48 kHz, our decoder) → the session's input."""
        from aiortc.mediastreams import MediaStreamError

        from .._rtc import frame_to_mono

        session = self.session
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not self._started or session.closed:
                continue  # before session.created there is no session to hear it
            try:
                session.append_input_pcm(frame_to_mono(frame), frame.sample_rate)
            except ValueError as exc:  # e.g. a G.711 input format: media is always PCM
                if not self._warned_format:
                    self._warned_format = True
                    log.warning("call %s: input audio dropped: %s", self.id, exc)

    # --- client events (data channel and sidebands) -------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        recorder = self._desk.server.recorder
        if recorder is not None:
            recorder.record(self.number, "client", message)
        self._receive(message)

    def receive_text(self, text: str | bytes) -> None:
        """A client event from a sideband (held until the session has started)."""
        if not self._started:
            self._held.append(text)
            return
        self._receive(text)

    def receive_binary(self, data: bytes) -> None:
        """A binary frame from a sideband: refused, as on any WebSocket."""
        self.session.receive_binary(data)

    def _receive(self, frame: str | bytes) -> None:
        if self.ended:
            return
        if isinstance(frame, bytes):  # a binary message: refused, as on a WebSocket
            self.session.receive_binary(frame)
            return
        self.session.receive_text(frame)

    def _on_clear(self, event_id: str | None) -> None:
        """``output_audio_buffer.clear``: stop the playout; ``cleared`` either way."""
        if self._cut():
            return
        last = self.buffer.last_response_id
        if last is None:
            self.session.client_error(
                "invalid_value",
                "There is no output audio to clear: no response has played audio yet.",
                None,
                event_id,
            )
            return
        self.session.emit("output_audio_buffer.cleared", response_id=last)

    # --- SessionSink ----------------------------------------------------------------------

    def send_event(self, event: dict[str, Any]) -> None:
        """One server event: to the data channel and every sideband, then acted upon."""
        if self._outbox is not None:
            self._outbox.put_nowait(event)
        else:
            self._send_on_channel(event)
        for sideband in self.sidebands:
            sideband.send_event(event)
        self._observe(event)

    def _send_on_channel(self, event: dict[str, Any]) -> bool:
        """Send on ``oai-events`` if it is open (and not dropped); whether it was sent."""
        channel = self.channel
        if channel is not None and channel.readyState == "open" and not self.dropped:
            text = orjson.dumps(event).decode()
            recorder = self._desk.server.recorder
            if recorder is not None:
                recorder.record(self.number, "server", text)
            channel.send(text)
            self.sent += 1
            if channel.bufferedAmount > self._desk.server.max_outbox_bytes:
                self._not_reading(channel.bufferedAmount)
            return True
        return False

    def _not_reading(self, buffered: int) -> None:
        """The peer stopped acknowledging: end the call rather than queue without bound.

        What the data channel cannot send yet waits in its buffer (SCTP sends on only
        as the peer acknowledges); a peer that froze would let it grow for ever.
        """
        reason = "client not reading"
        log.warning(
            "call %s: %d bytes of events waiting for a peer that does not take them "
            "(max_outbox_bytes %d): ending the call",
            self.id,
            buffered,
            self._desk.server.max_outbox_bytes,
        )
        self.dropped = True
        self.closed_reason = reason
        self.hang_up_soon(1008, reason)

    async def _write_faulty(self) -> None:
        """The data channel's events through the fault plan, in order (as ``_Connection``)."""
        assert self._outbox is not None
        f = self.faults
        while True:
            event = await self._outbox.get()
            if self.dropped or self.ended:
                continue
            if f.drop_at is not None and event.get("type") == f.drop_at:
                self._drop()
                continue
            if f.delay_s > 0:
                await asyncio.sleep(f.delay_s)
            if not self._send_on_channel(event):
                continue  # the channel is not open: counts for nothing
            if f.error_after is not None and self.sent == f.error_after:
                self.sent -= self._send_on_channel(  # the injected error is not counted
                    {
                        "type": "error",
                        "event_id": self._desk.server.ids.event(),
                        "error": {
                            "type": "server_error",
                            "code": f.error_code,
                            "message": "The server had an error while processing your "
                            "request. Sorry about that!",
                            "param": None,
                            "event_id": None,
                        },
                    }
                )
            if f.drop_after is not None and self.sent >= f.drop_after:
                self._drop()
                continue
            if f.stall_after is not None and self.sent == f.stall_after:
                await asyncio.sleep(f.stall_s)

    def _drop(self) -> None:
        """The fault's drop: the peer (no hang-up), or only the data channel (close_code)."""
        self.dropped = True
        log.info(
            "call %s: fault injected: dropping the %s",
            self.id,
            "data channel" if self.faults.close_code is not None else "peer",
        )
        if self.faults.close_code is not None and self.channel is not None:
            self.channel.close()  # the call then ends as on any data channel close
        else:
            self.hang_up_soon(1006, "fault injected: peer dropped")

    def close(self, code: int, reason: str) -> None:
        """The session ends the call (``session.close``, expiry)."""
        self.hang_up_soon(code, reason)

    def send_audio(self, response_id: str, item_id: str, samples: Int16Array) -> None:
        """The next 24 kHz chunk of a response's audio: onto the outgoing track."""
        out = self.buffer.push(response_id, item_id, samples)
        if out.size:
            self.track.push(out)

    def _observe(self, event: dict[str, Any]) -> None:
        """What the playout learns from the session's own events."""
        etype = event["type"]
        if etype == "input_audio_buffer.speech_started":
            td = self.session.turn_detection()
            if td is not None and td.get("interrupt_response", True):
                # Barge-in: the server stops its own output and truncates (§9.6); the
                # response is cancelled by the session right after this event.
                self._cut()
        elif etype == "response.output_audio.done":
            self.buffer.end_item(event["item_id"])
        elif etype == "response.done":
            self.buffer.finish(event["response"]["id"])

    # --- the playout ------------------------------------------------------------------------

    def _on_frame(self, samples: Int16Array, audible: bool) -> None:
        """A 20 ms frame went to the encoder: count what of each item it carried."""
        buffer = self.buffer
        if not buffer.queued and not buffer.responses:
            return
        remaining = round(self.track.backlog_ms * self._rate / 1000)
        try:
            for type_, response_id in buffer.played_to(remaining):
                self.session.emit(type_, response_id=response_id)
        except Exception:
            # This runs in aiortc's sender: a bug here must not silence the call.
            log.exception("call %s: playout accounting failed", self.id)

    def _cut(self) -> list[Cut]:
        """Drop the queued output; ``cleared`` and a truncate at what was handed out."""
        self.track.clear()
        cuts = self.buffer.clear()
        conversation = self.session.conversation
        for cut in cuts:
            self.session.emit("output_audio_buffer.cleared", response_id=cut.response_id)
            for item_id, handed_ms in cut.handed_ms.items():
                unheard = item_id in cut.unheard or item_id in conversation.live_audio
                if not unheard or item_id not in conversation.items:
                    continue
                conversation.on_truncate(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": item_id,
                        "content_index": 0,
                        "audio_end_ms": handed_ms,
                    },
                    None,
                )
        return cuts

    # --- sidebands ------------------------------------------------------------------------

    def join(self, sideband: SessionSink) -> None:
        """A sideband WebSocket joins: it gets every server event from now on."""
        self.sidebands.append(sideband)

    def leave(self, sideband: SessionSink) -> None:
        """A sideband WebSocket left (the call goes on)."""
        with contextlib.suppress(ValueError):
            self.sidebands.remove(sideband)

    # --- the end ----------------------------------------------------------------------------

    def hang_up_soon(self, code: int = 1000, reason: str = "") -> None:
        """End the call in the background (from an event handler)."""
        if self._ending is None and not self.ended:
            self._ending = asyncio.ensure_future(self.end(code, reason))
            self._desk.endings.add(self._ending)
            self._ending.add_done_callback(self._desk.endings.discard)

    async def end(self, code: int = 1000, reason: str = "") -> None:
        """End the call: the session, the sidebands (closed with ``code``) and the peer."""
        if self.ended:
            return
        self.ended = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        server = self._desk.server
        self._desk.forget(self)
        await self.session.aclose()
        with contextlib.suppress(ValueError):
            server.sessions.remove(self.session)
        for sideband in list(self.sidebands):
            sideband.close(code, reason)
        self.track.stop()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pc.close()
        if server.recorder is not None:
            server.recorder.record(self.number, "server", close=(code, reason or "hung up"))
        log.debug("call %s ended (%d %s)", self.id, code, reason)


class CallDesk:
    """The WebRTC calls of one :class:`~.app.LocalServer`: its routes and live calls.

    Args:
        server: The server (keys, models, responder, pacing, recorder).
    """

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        #: Live calls by id.
        self.calls: dict[str, Call] = {}
        #: Calls ending in the background (see :meth:`Call.hang_up_soon`).
        self.endings: set[asyncio.Task[None]] = set()
        self._candidates_checked = False

    def add_routes(self, app: web.Application) -> None:
        """Register the call routes on ``app``."""
        app.router.add_post("/v1/realtime/calls", self._handle_offer)
        app.router.add_route("OPTIONS", "/v1/realtime/calls", self._handle_preflight)
        hangup = "/v1/realtime/calls/{call_id}/hangup"
        app.router.add_post(hangup, self._handle_hangup)
        app.router.add_route("OPTIONS", hangup, self._handle_preflight)

    def get(self, call_id: str) -> Call | None:
        """The live call ``call_id``, if any."""
        return self.calls.get(call_id)

    def forget(self, call: Call) -> None:
        """Take an ended call off the table."""
        if self.calls.get(call.id) is call:
            del self.calls[call.id]

    async def close_all(self) -> None:
        """End every call, and wait for those already ending (the server stops)."""
        await asyncio.gather(
            *(call.end(1001, "server shutting down") for call in list(self.calls.values())),
            *self.endings,
            return_exceptions=True,
        )

    def not_found(self) -> web.StreamResponse:
        """The real service's answer for an unknown ``call_id`` (HTTP 404)."""
        return self._error(404, CALL_NOT_FOUND, "call_id_not_found", "")

    # --- HTTP -------------------------------------------------------------------------------

    def _error(
        self, status: int, message: str, code: str | None, param: str | None = None
    ) -> web.StreamResponse:
        return self.server._http_error(status, message, code, param)

    @staticmethod
    def _with_cors(response: web.StreamResponse) -> web.StreamResponse:
        response.headers.update(_CORS)
        response.headers["X-Request-Id"] = _request_id()
        return response

    async def _handle_preflight(self, request: web.Request) -> web.StreamResponse:
        """``OPTIONS``: let a page on any origin POST with the headers browser SDKs add."""
        aioweb = require_extra("aiohttp.web", "server")
        asked = request.headers.get("Access-Control-Request-Headers", "")
        names = [h.strip() for h in asked.split(",") if h.strip()]
        allowed = [n for n in names if n.lower() in _ALLOWED_HEADERS or n.lower().startswith("x-")]
        response: web.StreamResponse = aioweb.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": ", ".join(allowed)
                or "Authorization, Content-Type, OpenAI-Beta, X-OpenAI-Agents-SDK",
                "Access-Control-Max-Age": "86400",
            },
        )
        return response

    async def _handle_hangup(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/realtime/calls/{call_id}/hangup``."""
        aioweb = require_extra("aiohttp.web", "server")
        _eph, failure = self.server._http_auth(request, ephemeral_ok=True)
        if failure is not None:
            return self._with_cors(failure)
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            return self._with_cors(self.not_found())
        await call.end(1000, "hung up")
        return self._with_cors(aioweb.Response(status=200))

    async def _handle_offer(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/realtime/calls``: the offer in, 201 and the answer out."""
        return self._with_cors(await self._answer(request))

    async def _read_offer(
        self, request: web.Request
    ) -> tuple[str, dict[str, Any] | None, web.StreamResponse | None]:
        """The offer SDP and the ``session`` part (multipart only), or a 400."""
        aiohttp = require_extra("aiohttp", "server")
        kind = request.content_type
        if kind == "application/sdp":
            try:
                return await request.text(), None, None
            except (UnicodeDecodeError, LookupError):  # not text in its charset (or none)
                return "", None, self._invalid_offer()
        if kind != "multipart/form-data":
            return (
                "",
                None,
                self._error(
                    400,
                    f"Unsupported content type '{kind}': send the SDP offer as 'application/sdp', "
                    "or a 'multipart/form-data' form with the parts 'sdp' and 'session'.",
                    "invalid_value",
                ),
            )
        parts: dict[str, str] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, aiohttp.BodyPartReader) and part.name:
                try:
                    parts[part.name] = await part.text()
                except (UnicodeDecodeError, LookupError):
                    # Not text in its charset: an SDP that is no offer, a session that is
                    # no JSON; a part nobody reads is skipped.
                    if part.name == "sdp":
                        return "", None, self._invalid_offer()
                    if part.name == "session":
                        return "", None, self._unparsable_session()
        if "sdp" not in parts:
            return (
                "",
                None,
                self._error(
                    400, "Missing required parameter: 'sdp'.", "missing_required_parameter", "sdp"
                ),
            )
        if "session" not in parts:
            return parts["sdp"], None, None
        try:
            session = orjson.loads(parts["session"])
        except orjson.JSONDecodeError:
            return "", None, self._unparsable_session()
        if not isinstance(session, dict):
            return (
                "",
                None,
                self._error(
                    400,
                    "Invalid type for 'session': expected an object, but got "
                    f"{type(session).__name__} instead.",
                    "invalid_type",
                    "session",
                ),
            )
        try:
            check_depth(session, "'session' part", "session")
        except ValidationError as exc:
            return "", None, self._error(400, exc.message, exc.code, exc.param)
        return parts["sdp"], session, None

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        server = self.server
        aioweb = require_extra("aiohttp.web", "server")
        eph, failure = server._http_auth(request, ephemeral_ok=True)
        if failure is not None:
            return failure
        try:
            sdp, part, failure = await asyncio.wait_for(
                self._read_offer(request), server.handshake_timeout_s
            )
        except asyncio.TimeoutError:
            return server._request_timeout()
        if failure is not None:
            return failure
        if eph is not None and eph.dialect != "ga":
            return self._error(
                400,
                "This ephemeral key was made for the beta Realtime API; WebRTC calls speak "
                "GA. Make one with POST /v1/realtime/client_secrets.",
                "beta_api_shape_disabled",
            )
        session = {"type": "realtime", **(eph.session if eph is not None else {}), **(part or {})}
        kind: SessionKind = "realtime"
        spec = schemas.GA_REALTIME_SESSION
        if session.get("type") == "transcription":
            kind, spec = "transcription", schemas.GA_TRANSCRIPTION_SESSION
        try:
            session = validate(spec, session, "session")
        except ValidationError as exc:
            return self._error(400, exc.message, exc.code, exc.param)
        model = session.get("model") or request.query.get("model")
        if model is None and eph is not None:
            model = "gpt-realtime"  # what client_secrets defaults to
        if kind == "realtime":
            if not model:
                return self._error(
                    400,
                    "You must provide a model parameter: the 'model' of the 'session' part, "
                    "for example gpt-realtime-1.5.",
                    "missing_model",
                    "session.model",
                )
            if not server._model_ok(model):
                return self._error(
                    400,
                    f'Model "{model}" is not supported in realtime mode.',
                    "invalid_model",
                    "session.model",
                )
        if not sdp.lstrip().startswith("v=") or "\nm=" not in sdp:
            return self._invalid_offer()
        try:
            rtc = require_extra("aiortc", "webrtc")
            from .._rtc import ensure_host_candidates
        except MissingExtraError as exc:
            return self._error(501, f"WebRTC calls need the webrtc extra: {exc}", None)
        if not self._candidates_checked:
            ensure_host_candidates()
            self._candidates_checked = True
        faults = server._next_faults.popleft() if server._next_faults else server._faults
        if "fault" in request.query:
            try:
                faults = FaultPlan.parse(request.query["fault"])
            except FaultSpecError as exc:
                return self._error(400, str(exc), "invalid_value", "fault")
        number = next(server._counter)
        server.connection_count += 1
        options = SessionOptions(
            dialect="ga",
            kind=kind,
            model=model or "gpt-realtime",
            speed=server.speed,
            timing=server.timing,
            audio_delta_ms=server.audio_delta_ms,
            session_limit_s=server.session_limit_s,
            max_buffer_ms=server.max_buffer_ms,
            seed=None if server.seed is None else server.seed + number,
            initial_session=session or None,
            audio_via_sink=True,
            max_errors_per_s=server.max_errors_per_s,
            audio_items_kept=server.audio_items_kept,
            audio_kept_ms=server.audio_kept_s * 1000.0,
            items_kept=server.items_kept,
            text_kept_chars=server.text_kept_chars,
            reorder=faults.reorder,
            rate_limit_tokens=faults.rate_limit_tokens,
        )
        pc = rtc.RTCPeerConnection(configuration=rtc.RTCConfiguration(iceServers=[]))
        call = Call(self, server.ids.new(CALL_ID_PREFIX, 22), number, options, pc, faults)
        try:
            await pc.setRemoteDescription(rtc.RTCSessionDescription(sdp=sdp, type="offer"))
            if any(t.kind == "audio" for t in pc.getTransceivers()):
                # Onto the offer's audio transceiver (added before the offer, the track
                # would get a transceiver and ICE transport of its own, never used).
                pc.addTrack(call.track)
            _shape_codecs(pc)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError, KeyError … on a bad offer
            log.info("call offer refused: %r", exc)
            await call.end(1000, "invalid offer")
            return self._invalid_offer()
        self.calls[call.id] = call
        server.sessions.append(call.session)
        if server.on_session is not None:
            server.on_session(call.session)
        if server.recorder is not None:
            opened = {
                "type": "connection.opened",
                "dialect": "ga",
                "model": options.model,
                "transport": "webrtc",
                "call_id": call.id,
            }
            server.recorder.write("meta", opened, conn=number)
        response: web.StreamResponse = aioweb.Response(
            status=201,
            text=shape_answer(pc.localDescription.sdp),
            content_type="text/plain",
            charset="utf-8",
            headers={"Location": f"/v1/realtime/calls/{call.id}"},
        )
        return response

    def _unparsable_session(self) -> web.StreamResponse:
        return self._error(
            400, "We could not parse the JSON body of the 'session' part.", None, "session"
        )

    def _invalid_offer(self) -> web.StreamResponse:
        return self._error(
            400, "Invalid SDP offer. Please try again with a WHIP-compliant offer.", "invalid_offer"
        )
