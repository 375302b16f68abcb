"""One Realtime session: the state machine behind a connection, free of transport I/O.

Theory of operation
-------------------
:class:`ServerSession` consumes client events (raw text frames, or already-parsed dicts)
and input audio, and produces server events as plain dicts through a
:class:`SessionSink`. It never touches a socket: the WebSocket app feeds it frames and
writes what it emits; a WebRTC transport can feed it data-channel messages and decoded
microphone audio (:meth:`ServerSession.append_input_pcm`) and, with
``SessionOptions.audio_via_sink``, receive the output audio through an optional
``send_audio(response_id, item_id, samples)`` method of its sink instead of
``response.output_audio.delta`` events.

The session speaks GA inside and maps to beta once, at its edge (:mod:`._dialect`):
client events are validated in their dialect and read into the GA shape; server events
are built in GA and written out in the session's dialect. Its config (:attr:`state`) is
GA-shaped whatever the dialect. The work is split into parts with one job each, wired
here:

==========================  =================================================================
:mod:`._defaults`           the session config each dialect starts from, and how it fills in
:mod:`._dialect`            the edge: validation, GA ⇄ beta, obfuscation, rate-limit events
:mod:`._input`              the input audio buffer (+ its 24 kHz twin) and the VAD
:mod:`._turns`              appends, commits, VAD decisions, idle timeout, transcription
:mod:`._conversation`       items and their audio; create, retrieve, delete, truncate
:mod:`._responses`          response generation, streaming and pacing, usage, rate limits
:mod:`._audio`              codecs; every stream resampled by one stateful resampler
==========================  =================================================================

Handlers run synchronously and emit in protocol order, so the order of events for one
client event is exact and testable. The ``error`` events client events draw are budgeted
per session (``SessionOptions.max_errors_per_s``), so a client flooding garbage costs the
server little and is closed (1008) rather than served an error per frame forever.

Only three things run in the background on the event loop: a response's generation
(paced output), the idle timer of ``server_vad.idle_timeout_ms`` and the session-length
timer.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from .._ids import IdGenerator
from ._audio import CODECS, Codec
from ._common import (
    SERVER_ERROR_TEXT,
    Dialect,
    Int16Array,
    SessionKind,
    SessionOptions,
    SessionSink,
)
from ._conversation import AudioStore, Conversation
from ._defaults import (
    DEFAULT_INSTRUCTIONS,
    DEFAULTS,
    beta_default_session,
    ga_default_session,
    merge_session,
    model_defaults,
    normalize_beta_session,
    normalize_ga_session,
)
from ._dialect import make_edge
from ._input import InputBuffer
from ._responses import ResponseRun, Responses
from ._turns import TurnTaking
from .responders import Responder
from .validation import ValidationError, check_depth

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "Dialect",
    "RealtimeSession",
    "ServerSession",
    "SessionKind",
    "SessionOptions",
    "SessionSink",
    "beta_default_session",
    "ga_default_session",
    "merge_session",
    "normalize_beta_session",
    "normalize_ga_session",
]

log = logging.getLogger("realtime_client.server")

_Handler = Callable[[dict[str, Any], "str | None"], None]


class ServerSession:
    """The Realtime protocol's server side for one connection.

    Args:
        options: Dialect, kind, pacing and limits.
        responder: What answers.
        sink: Where server events (and close requests) go.
        ids: Id generator (defaults to one seeded with ``options.seed``).
    """

    def __init__(
        self,
        options: SessionOptions,
        responder: Responder,
        sink: SessionSink,
        ids: IdGenerator | None = None,
    ) -> None:
        self.options = options
        self.responder = responder
        self.sink = sink
        self.ids = ids or IdGenerator(options.seed)
        self.rng = random.Random(options.seed)
        self._timing_rng = random.Random(options.seed)
        self.closed = False
        self.session_id = self.ids.session()
        self.conversation_id = self.ids.conversation()
        self.expires_at = int(time.time() + options.session_limit_s)
        self.defaults = DEFAULTS[options.dialect]
        self.edge = make_edge(options.dialect, self.ids, options.kind)
        state = self.defaults.initial_state(
            self.session_id, options.model, self.expires_at, options.kind
        )
        if options.initial_session:
            update = self.edge.initial_session(options.initial_session)
            state = self.defaults.normalize(merge_session(state, update), options.kind)
        #: The session config, in the GA shape whatever the dialect.
        self.state: dict[str, Any] = state
        self.conversation = Conversation(
            self,
            audio_items_kept=options.audio_items_kept,
            audio_kept_ms=options.audio_kept_ms,
            items_kept=options.items_kept,
            text_kept_chars=options.text_kept_chars,
        )
        self.buffer = InputBuffer(self.input_codec().rate, options.vad)
        self.responses = Responses(
            self,
            self.conversation,
            self.edge,
            self.defaults,
            on_started=self._on_response_started,
            on_finished=self._on_response_finished,
        )
        self.turns = TurnTaking(self, self.buffer, self.conversation, self.responses)
        self._expiry_handle: asyncio.TimerHandle | None = None
        # The error budget: a token bucket refilled at max_errors_per_s.
        self._in_client_event = 0  # > 0 while a client event is being handled
        rate = options.max_errors_per_s
        self._error_burst = 2.0 * rate if rate is not None else 0.0
        self._error_tokens = self._error_burst
        self._error_tokens_at = time.monotonic()
        self._unsent_run = 0  # errors unsent since the bucket was last full
        #: ``error`` events not sent because the client drew them past the budget.
        self.errors_unsent = 0
        # 2.x models acknowledge a function output sent during a response only after it
        # is done, with the client's next event (protocol.md §16.2).
        self._phased = model_defaults(options.model).phase
        self._held_items: list[tuple[dict[str, Any], str | None]] = []
        self._release_handle: asyncio.TimerHandle | None = None
        self._later: set[asyncio.TimerHandle] = set()  # delayed answers (timing profile)
        #: Handles ``output_audio_buffer.clear`` (with its event id) on a call; ``None``
        #: on a WebSocket, where the event is refused with an error.
        self.on_output_audio_buffer_clear: Callable[[str | None], None] | None = None
        #: Called with every client event received (before validation), if set.
        self.on_event_received: Callable[[dict[str, Any]], None] | None = None
        self._handlers: dict[str, _Handler] = {
            "session.update": self._on_session_update,
            "transcription_session.update": self._on_transcription_session_update,
            "session.close": self._on_session_close,
            "input_audio_buffer.append": self.turns.on_append,
            "session.input_audio_buffer.append": self.turns.on_append,
            "input_audio_buffer.commit": self.turns.on_commit,
            "input_audio_buffer.clear": self.turns.on_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.retrieve": self.conversation.on_retrieve,
            "conversation.item.delete": self.conversation.on_delete,
            "conversation.item.truncate": self.conversation.on_truncate,
            "response.create": self.responses.on_create,
            "response.cancel": self.responses.on_cancel,
            "output_audio_buffer.clear": self._on_output_audio_buffer_clear,
        }

    # --- the conversation, as before the split ---------------------------------------------

    @property
    def items(self) -> dict[str, dict[str, Any]]:
        """The conversation's items by id (GA-shaped)."""
        return self.conversation.items

    @property
    def order(self) -> list[str]:
        """The conversation's item ids, in order."""
        return self.conversation.order

    @property
    def item_audio(self) -> AudioStore:
        """24 kHz PCM16 of the last audio items, by item id (see :class:`AudioStore`)."""
        return self.conversation.item_audio

    @property
    def call_names(self) -> dict[str, str]:
        """Function name of each call id."""
        return self.conversation.call_names

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Emit ``session.created`` and start the session-length timer."""
        self.emit("session.created", session=self._session_view())
        loop = asyncio.get_running_loop()
        self._expiry_handle = loop.call_later(self.options.session_limit_s, self._expire)
        self._configure_vad()

    def _expire(self) -> None:
        if self.closed:
            return
        minutes = self.options.session_limit_s / 60
        self.error(
            "session_expired", f"Your session hit the maximum duration of {minutes:g} minutes."
        )
        self.close()
        self.sink.close(1001, "invalid_request_error.session_expired")

    def close(self) -> None:
        """Stop timers and background tasks; emit nothing more."""
        if self.closed:
            return
        self.closed = True
        self.turns.close()
        for handle in (self._expiry_handle, self._release_handle, *self._later):
            if handle is not None:
                handle.cancel()
        self.responses.close()

    async def aclose(self) -> None:
        """:meth:`close`, then wait for the background tasks to end."""
        self.close()
        tasks = [
            r.task for r in self.responses.runs.values() if r.task is not None and not r.task.done()
        ]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- emitting ----------------------------------------------------------------------------

    def emit(self, type_: str, **fields: Any) -> None:
        """Send one server event, given in GA terms, in the session's dialect."""
        event = self.edge.write(type_, fields)
        if event is not None and not self.closed:
            self.sink.send_event(event)

    def error(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        """Send an ``error`` event (``param`` in GA terms; the edge renames it for beta).

        While a client event is handled, the error counts against the session's error
        budget (``SessionOptions.max_errors_per_s``) and is not sent past it.
        """
        if self._in_client_event and not self._error_budget_allows():
            return
        self.emit(
            "error",
            error={
                "type": type_,
                "code": code,
                "message": message,
                "param": param,
                "event_id": event_id,
            },
        )

    def client_error(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """An ``error`` answering a client event handled outside :meth:`receive_event`.

        Like :meth:`error`, within the session's error budget (a WebRTC call's own
        ``output_audio_buffer.clear`` uses it).
        """
        self._in_client_event += 1
        try:
            self.error(code, message, param, event_id)
        finally:
            self._in_client_event -= 1

    def _error_budget_allows(self) -> bool:
        """Take one error from the budget: whether to send it (a flood closes the session)."""
        rate = self.options.max_errors_per_s
        if rate is None:
            return True
        now = time.monotonic()
        burst = self._error_burst
        tokens = min(burst, self._error_tokens + (now - self._error_tokens_at) * rate)
        self._error_tokens_at = now
        if tokens >= burst:
            self._unsent_run = 0  # the client calmed down: its past is forgiven
        if tokens >= 1.0:
            self._error_tokens = tokens - 1.0
            return True
        self._error_tokens = tokens
        self.errors_unsent += 1
        self._unsent_run += 1
        if self._unsent_run >= 10.0 * rate and not self.closed:
            self.emit(
                "error",
                error={
                    "type": "invalid_request_error",
                    "code": "too_many_invalid_events",
                    "message": f"Too many invalid events: more than {rate:g} errors a second "
                    f"for too long ({self._unsent_run} unanswered). Closing the connection.",
                    "param": None,
                    "event_id": None,
                },
            )
            self.close()
            self.sink.close(1008, "invalid_request_error.too_many_invalid_events")
        return False

    # --- config views -------------------------------------------------------------------------

    def _session_view(self) -> dict[str, Any]:
        # The tools are shared, not copied: they are replaced, never changed in place.
        view = copy.deepcopy({k: v for k, v in self.state.items() if k != "tools"})
        return {k: self.state["tools"] if k == "tools" else view[k] for k in self.state}

    def _merged(self, update: dict[str, Any]) -> dict[str, Any]:
        """The config with ``update`` merged in; tools the update leaves alone are shared."""
        state = self.state
        if "tools" in update or "tools" not in state:
            return merge_session(state, update)
        merged = merge_session({k: v for k, v in state.items() if k != "tools"}, update)
        return {k: state["tools"] if k == "tools" else merged[k] for k in (*state, *merged)}

    def input_codec(self) -> Codec:
        """The input audio format's codec."""
        return CODECS[self.state["audio"]["input"]["format"]["type"]]

    def output_codec(self) -> Codec:
        """The output audio format's codec."""
        return CODECS[self.state["audio"]["output"]["format"]["type"]]

    def turn_detection(self) -> dict[str, Any] | None:
        """The turn detection config, or ``None`` when it is off."""
        td = self.state["audio"]["input"].get("turn_detection")
        return td if isinstance(td, dict) else None

    def transcription(self) -> dict[str, Any] | None:
        """The input transcription config, or ``None`` when it is off."""
        tr = self.state["audio"]["input"].get("transcription")
        return tr if isinstance(tr, dict) else None

    # --- input ---------------------------------------------------------------------------------

    def receive_text(self, text: str | bytes) -> None:
        """Handle one text frame: parse it, validate it, dispatch it."""
        if self.closed:
            return
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self.client_error("invalid_json", f"Invalid event: failed to parse JSON value. {exc}")
            return
        if not isinstance(event, dict):
            self.client_error("invalid_event", "Invalid event: expected a JSON object.")
            return
        self.receive_event(event)

    def receive_binary(self, data: bytes) -> None:
        """Handle one binary frame: the real service refuses them (non-fatal)."""
        if self.closed:
            return
        self.client_error(
            "invalid_event", "Expected a text WebSocket message; binary frames are not supported."
        )

    def receive_event(self, event: dict[str, Any]) -> None:
        """Validate and dispatch one parsed client event."""
        if self.closed:
            return
        self._in_client_event += 1
        try:
            self._receive_event(event)
        finally:
            self._in_client_event -= 1

    def _receive_event(self, event: dict[str, Any]) -> None:
        if self.on_event_received is not None:
            self.on_event_received(event)
        self._release_held_items()
        raw_id = event.get("event_id")
        event_id = raw_id if isinstance(raw_id, str) else None
        etype = event.get("type")
        if etype is None:
            self.error("invalid_event", "The 'type' field is missing.", None, event_id)
            return
        try:
            check_depth(event)  # before anything copies it (deep copies recurse)
            clean = self.edge.read(event)
            self._handlers[clean["type"]](clean, event_id)
        except ValidationError as exc:
            self.error(exc.code, exc.message, exc.param, event_id)
        except Exception:
            # A bug here must not kill the connection: answer like the real service's 500.
            log.exception("error while handling %s", etype)
            self.error(None, SERVER_ERROR_TEXT, None, event_id, type_="server_error")

    def append_input_pcm(self, samples: Int16Array, sample_rate: int = 24_000) -> None:
        """Add decoded input audio (the WebRTC media path), as if it had been appended.

        The media stream is resampled as one continuous stream when its rate is not the
        buffer's.

        Args:
            samples: Mono PCM16.
            sample_rate: Its rate in Hz; must equal the session's input rate, or the
                input format must be 24 kHz ``audio/pcm``.
        """
        self.turns.append_media(samples, sample_rate)

    # --- session config -------------------------------------------------------------------------

    def _configure_vad(self, force: bool = False) -> None:
        self.turns.configure_vad(force)

    def _apply_state(self, new: dict[str, Any]) -> None:
        """Make ``new`` the config, all or nothing (a VAD that refuses it changes nothing)."""
        old_state, old_codec = self.state, self.input_codec()
        self.state = new
        try:
            self._configure_vad()
        except Exception:
            self.state = old_state
            raise
        codec = self.input_codec()
        if codec != old_codec:
            # A new input format starts a new buffer; the time base keeps counting.
            self.buffer.restart(codec.rate)

    def _on_session_update(self, event: dict[str, Any], event_id: str | None) -> None:
        body = {k: v for k, v in event["session"].items() if k != "type"}
        new = self.defaults.normalize(self._merged(body), self.options.kind)
        if self.options.kind == "realtime":
            old_voice = self.state["audio"]["output"]["voice"]
            new_voice = new["audio"]["output"]["voice"]
            if new_voice != old_voice and self.responses.audio_output_started:
                self.error(
                    "cannot_update_voice",
                    "Cannot update a conversation's voice if assistant audio is present.",
                    "session.audio.output.voice",
                    event_id,
                )
                return
        self._apply_state(new)
        delay = self.delay_s(self.options.timing.session_updated_ms)
        self._emit_later(delay, "session.updated", session=self._session_view())

    def _on_transcription_session_update(self, event: dict[str, Any], eid: str | None) -> None:
        # Beta only (the GA edge refuses the type): the session's input side changes, and
        # the answer shows it as a transcription session whatever the session's kind.
        update = event["session"]
        audio_in = (update.get("audio") or {}).get("input") or {}
        new = self._merged({"audio": {"input": audio_in}})
        self._apply_state(self.defaults.normalize(new, self.options.kind))
        audio = self.state["audio"]["input"]
        view = {
            "type": "transcription",
            "id": self.session_id,
            "object": "realtime.transcription_session",
            "expires_at": self.expires_at,
            "modalities": ["text"],
            "audio": {
                "input": {
                    key: copy.deepcopy(audio[key])
                    for key in ("format", "transcription", "turn_detection", "noise_reduction")
                }
            },
            "include": update.get("include"),
            "client_secret": None,
        }
        self.emit("session.updated", session=view)

    def _on_session_close(self, event: dict[str, Any], event_id: str | None) -> None:
        self.close()
        self.sink.close(1000, "")

    # --- between the parts ----------------------------------------------------------------------

    def _on_response_started(self) -> None:
        self.turns.cancel_idle_timer()

    def _on_response_finished(self, run: ResponseRun) -> None:
        self.turns.arm_idle_timer(run)
        if self._held_items and self._release_handle is None:
            loop = asyncio.get_running_loop()
            self._release_handle = loop.call_later(HELD_ITEM_GRACE_S, self._release_held_items)

    def _emit_later(self, delay: float, type_: str, **fields: Any) -> None:
        """:meth:`emit` after ``delay`` seconds (now if it is 0)."""
        if delay <= 0:
            self.emit(type_, **fields)
            return

        def fire() -> None:
            self._later.discard(handle)
            self.emit(type_, **fields)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._later.add(handle)

    def delay_s(self, ms: float) -> float:
        """A timing-profile delay of ``ms`` content milliseconds, jittered, in seconds.

        0 at speed 0 or for no delay; otherwise ``ms`` ± the profile's jitter, over speed.
        """
        speed = self.options.speed
        if ms <= 0 or speed <= 0:
            return 0.0
        jitter = self.options.timing.jitter
        factor = 1.0 + self._timing_rng.uniform(-jitter, jitter) if jitter else 1.0
        return ms * factor / 1000.0 / speed

    def _on_output_audio_buffer_clear(self, event: dict[str, Any], event_id: str | None) -> None:
        if self.on_output_audio_buffer_clear is not None:
            self.on_output_audio_buffer_clear(event_id)
            return
        self.error(
            "invalid_value",
            "output_audio_buffer.clear is only supported for WebRTC and SIP connections; "
            "on a WebSocket, stop playback locally and send conversation.item.truncate.",
            "type",
            event_id,
        )

    def _on_item_create(self, event: dict[str, Any], event_id: str | None) -> None:
        item = event.get("item") or {}
        if (
            self._phased
            and self.responses.default_run is not None
            and item.get("type") == "function_call_output"
        ):
            self._held_items.append((event, event_id))
            return
        self.conversation.on_create(event, event_id)

    def _release_held_items(self) -> None:
        """Add the function outputs held during a response, once it is done."""
        if not self._held_items or self.responses.default_run is not None or self.closed:
            return
        if self._release_handle is not None:
            self._release_handle.cancel()
            self._release_handle = None
        held, self._held_items = self._held_items, []
        for event, event_id in held:
            self.conversation.on_create(event, event_id)


#: How long a held function output waits for the client's next event after the response
#: ends before it is acknowledged anyway, in seconds.
HELD_ITEM_GRACE_S = 0.25


#: The former name of :class:`ServerSession`, kept for existing code. (Not to be confused
#: with :class:`realtime_client.events.RealtimeSession`, the session *config* model.)
RealtimeSession = ServerSession
