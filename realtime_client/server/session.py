"""One Realtime session: the state machine behind a connection, free of transport I/O.

Theory of operation
-------------------
:class:`RealtimeSession` consumes client events (raw text frames, or already-parsed
dicts) and input audio, and produces server events as plain dicts through a
:class:`SessionSink`. It never touches a socket: the WebSocket app feeds it frames and
writes what it emits; a WebRTC transport can feed it data-channel messages and decoded
microphone audio (:meth:`RealtimeSession.append_input_pcm`) and, with
``SessionOptions.audio_via_sink``, receive the output audio through an optional
``send_audio(response_id, item_id, samples)`` method of its sink instead of
``response.output_audio.delta`` events.

Handlers run synchronously and emit in protocol order, so the order of events for one
client event is exact and testable. Only three things run in the background on the
event loop: a response's generation (paced output), the idle timer of
``server_vad.idle_timeout_ms`` and the session-length timer. A response is finished or
cancelled synchronously (:meth:`_ResponseRun.finish`) whatever its task is doing, so a
barge-in emits ``speech_started`` then ``response.done`` (cancelled) back to back, as the
real service does (protocol.md §9.6).

Wire shapes follow protocol.md: GA by default, beta when the session speaks the
``OpenAI-Beta: realtime=v1`` dialect (flat session, ``response.audio.delta``,
``conversation.item.created``, ``rate_limits.updated`` after ``response.created``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import orjson
import pybase64

from .._ids import IdGenerator
from . import _schemas as schemas
from .responders import (
    FunctionCallReply,
    MessageReply,
    Reply,
    Responder,
    ResponseContext,
)
from .validation import ValidationError, enum_message, validate

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "Dialect",
    "SessionKind",
    "SessionOptions",
    "RealtimeSession",
    "SessionSink",
    "beta_default_session",
    "ga_default_session",
    "merge_session",
    "normalize_beta_session",
    "normalize_ga_session",
]

log = logging.getLogger("realtime_client.server")

Dialect = Literal["ga", "beta"]
SessionKind = Literal["realtime", "transcription"]
Int16Array = npt.NDArray[np.int16]

#: Opening of the real service's default instructions (protocol.md §5.2).
DEFAULT_INSTRUCTIONS = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. "
    "You are a local stand-in for the Realtime API, so your answers are scripted."
)

_MODEL_RATE = 24_000
_INPUT_RATES = {"pcm16": 24_000, "pcmu": 8_000, "pcma": 8_000}
_GA_FORMAT_NAMES = {"audio/pcm": "pcm16", "audio/pcmu": "pcmu", "audio/pcma": "pcma"}
_BETA_FORMAT_NAMES = {"pcm16": "pcm16", "g711_ulaw": "pcmu", "g711_alaw": "pcma"}
_SEMANTIC_SILENCE_MS = {"low": 800, "medium": 500, "auto": 500, "high": 250}
_SERVER_ERROR_TEXT = "The server had an error while processing your request. Sorry about that!"
#: The tokens-per-minute window of ``rate_limit_tokens``, in seconds.
_RATE_WINDOW_S = 60.0
#: The GA ``rate_limits.updated`` tokens limit when no budget is set (protocol.md §11).
_GA_TOKEN_LIMIT = 15_000_000
#: Largest decoded audio one ``input_audio_buffer.append`` may carry, in bytes (§13: 15 MB).
_MAX_APPEND_BYTES = 15 * 1024 * 1024


class SessionSink(Protocol):
    """Where a session's output goes (the transport's side).

    A media transport (WebRTC) may also define ``send_audio(response_id, item_id,
    samples)``, called with 24 kHz PCM16 blocks when ``SessionOptions.audio_via_sink`` is
    set.
    """

    def send_event(self, event: dict[str, Any]) -> None:
        """Queue one server event for the client, in order."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection after every event queued so far."""


@dataclass
class SessionOptions:
    """How one session behaves.

    Attributes:
        dialect: ``"ga"`` or ``"beta"``.
        kind: ``"realtime"`` or ``"transcription"`` (``?intent=transcription``).
        model: The model from the URL.
        speed: Output pacing factor: 1.0 streams audio in real time, 10.0 ten times
            faster, 0 as fast as possible.
        audio_delta_ms: Audio per ``response.output_audio.delta``, in ms.
        text_token_ms: Pacing of text and transcript deltas at speed 1, in ms per delta.
        session_limit_s: Maximum session length, in seconds (``session_expired`` after).
        max_buffer_ms: Most input audio the buffer holds before appends are refused, in ms.
            With turn detection on it applies during speech only: between turns the
            buffer keeps just the audio a coming speech start can include.
        reorder: Use the protocol's ordering freedom: input transcriptions arrive late
            and transcript deltas follow their audio instead of leading it.
        seed: Seed for ids, obfuscation and responder randomness (``None``: random).
        initial_session: A validated session config to start from (ephemeral keys).
        rate_limit_tokens: Tokens-per-minute budget (``None``: the real service's
            practically unlimited default). A response whose input would overrun what
            is left of it fails with ``rate_limit_exceeded`` (protocol.md §7.2, §10).
        audio_via_sink: Hand output audio to ``sink.send_audio`` (WebRTC) instead of
            emitting audio delta events.
    """

    dialect: Dialect = "ga"
    kind: SessionKind = "realtime"
    model: str = "gpt-realtime"
    speed: float = 1.0
    audio_delta_ms: int = 100
    text_token_ms: float = 20.0
    session_limit_s: float = 3600.0
    max_buffer_ms: float = 15 * 60 * 1000.0
    reorder: bool = False
    seed: int | None = 0
    initial_session: dict[str, Any] | None = None
    rate_limit_tokens: int | None = None
    audio_via_sink: bool = False


# --- audio helpers -------------------------------------------------------------------------


def _decode_input(raw: bytes, fmt: str) -> Int16Array:
    if fmt == "pcm16":
        if len(raw) % 2:
            raw = raw[:-1]  # the trailing odd byte is half a sample; nothing to keep
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    from realtime_client.audio.g711 import alaw_decode, ulaw_decode

    out: Int16Array = (ulaw_decode if fmt == "pcmu" else alaw_decode)(raw)
    return out


def _to_model_rate(samples: Int16Array, rate: int) -> Int16Array:
    if rate == _MODEL_RATE or samples.size == 0:
        return samples
    from realtime_client.audio.formats import float32_to_pcm16, pcm16_to_float32
    from realtime_client.audio.resample import resample

    n = round(samples.size * _MODEL_RATE / rate)
    out: Int16Array = float32_to_pcm16(resample(pcm16_to_float32(samples), rate, _MODEL_RATE)[:n])
    return out


def _encode_output(samples: Int16Array, fmt: str) -> bytes:
    """24 kHz PCM16 → bytes in the output format."""
    if fmt == "pcm16":
        return samples.astype("<i2", copy=False).tobytes()
    from realtime_client.audio.formats import float32_to_pcm16, pcm16_to_float32
    from realtime_client.audio.g711 import alaw_encode, ulaw_encode
    from realtime_client.audio.resample import resample

    n = round(samples.size * 8000 / _MODEL_RATE)
    low = float32_to_pcm16(resample(pcm16_to_float32(samples), _MODEL_RATE, 8000)[:n])
    return bytes((ulaw_encode if fmt == "pcmu" else alaw_encode)(low))


def _b64(data: bytes) -> str:
    return pybase64.b64encode(data).decode("ascii")


def _tokens(text: str | None) -> int:
    return math.ceil(len(text) / 4) if text else 0


# --- session defaults ----------------------------------------------------------------------


def _ga_turn_detection_defaults(kind: SessionKind, vad_type: str) -> dict[str, Any]:
    if vad_type == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        }
    base: dict[str, Any] = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
    }
    if kind == "realtime":
        base.update(idle_timeout_ms=None, create_response=True, interrupt_response=True)
    return base


def _beta_turn_detection_defaults(vad_type: str) -> dict[str, Any]:
    if vad_type == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "create_response": True,
        "interrupt_response": True,
    }


def ga_default_session(
    session_id: str, model: str, expires_at: int, kind: SessionKind = "realtime"
) -> dict[str, Any]:
    """The GA ``session.created`` payload, keys in the real order (protocol.md §5.2)."""
    pcm = {"type": "audio/pcm", "rate": 24000}
    if kind == "transcription":
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": session_id,
            "expires_at": expires_at,
            "audio": {
                "input": {
                    "format": dict(pcm),
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": _ga_turn_detection_defaults(kind, "server_vad"),
                }
            },
            "include": None,
        }
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": dict(pcm),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": _ga_turn_detection_defaults(kind, "server_vad"),
            },
            "output": {"format": dict(pcm), "voice": "alloy", "speed": 1.0},
        },
        "include": None,
    }


def beta_default_session(session_id: str, model: str, expires_at: int) -> dict[str, Any]:
    """The beta ``session.created`` payload (protocol.md §5.2, REC-BETA)."""
    return {
        "id": session_id,
        "object": "realtime.session",
        "model": model,
        "expires_at": expires_at,
        "modalities": ["audio", "text"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "turn_detection": _beta_turn_detection_defaults("server_vad"),
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
        "client_secret": None,
        "tools": [],
    }


def merge_session(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``.

    Objects merge key by key, except that an object whose ``type`` changes is replaced
    (a new audio format or VAD type starts from its own defaults). Lists and scalars
    replace.
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        old = out.get(key)
        if (
            isinstance(value, dict)
            and isinstance(old, dict)
            and value.get("type", old.get("type")) == old.get("type")
        ):
            out[key] = merge_session(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _fill(template: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` on top of ``template``'s defaults, in the template's key order."""
    out = dict(template)
    out.update(given)
    return out


def normalize_ga_session(state: dict[str, Any], kind: SessionKind) -> dict[str, Any]:
    """Fill the defaults a partial GA session object implies (formats, VAD, tools)."""
    if isinstance(state.get("tools"), list):
        state["tools"] = [{"type": t.get("type", "function"), **t} for t in state["tools"]]
    audio = state.get("audio")
    if not isinstance(audio, dict):
        return state
    for side in ("input", "output"):
        part = audio.get(side)
        if not isinstance(part, dict):
            continue
        fmt = part.get("format")
        if isinstance(fmt, dict) and fmt.get("type", "audio/pcm") == "audio/pcm":
            part["format"] = {"type": "audio/pcm", "rate": fmt.get("rate", 24000)}
        td = part.get("turn_detection")
        if isinstance(td, dict):
            part["turn_detection"] = _fill(
                _ga_turn_detection_defaults(kind, td.get("type", "server_vad")), td
            )
    return state


def normalize_beta_session(state: dict[str, Any]) -> dict[str, Any]:
    """Fill the defaults a partial beta session implies."""
    td = state.get("turn_detection")
    if isinstance(td, dict):
        state["turn_detection"] = _fill(
            _beta_turn_detection_defaults(td.get("type", "server_vad")), td
        )
    return state


# --- responses ------------------------------------------------------------------------------


@dataclass
class _ResponseConfig:
    modalities: tuple[str, ...]
    voice: Any
    output_format: str
    output_format_wire: Any
    instructions: str
    tools: list[dict[str, Any]]
    tool_choice: Any
    max_output_tokens: Any
    temperature: float | None
    conversation: str  # "auto" or "none"
    metadata: dict[str, Any] | None
    input_items: list[dict[str, Any]] | None


@dataclass
class _ItemStream:
    """One output item being generated; knows how to close itself at any point."""

    kind: Literal["message", "function_call"]
    item: dict[str, Any]
    output_index: int
    previous_item_id: str | None
    in_conversation: bool
    audio_mode: bool = False
    text: str = ""  # text, transcript or arguments sent so far
    audio_chunks: list[Int16Array] = field(default_factory=list)
    audio_ms_sent: float = 0.0
    audio_samples_sent: int = 0  # 24 kHz samples sent so far
    cut_ms: int | None = None  # audio_end_ms of a truncate received while streaming
    closed: bool = False


@dataclass
class _ResponseRun:
    id: str
    config: _ResponseConfig
    index: int
    created_at: float
    items: list[_ItemStream] = field(default_factory=list)
    current: _ItemStream | None = None
    status: str = "in_progress"
    finished: bool = False
    task: asyncio.Task[None] | None = None
    clock_s: float = 0.0  # content time already streamed, in seconds
    started: float = 0.0  # loop time of the first delta
    out_text_tokens: int = 0
    out_audio_ms: float = 0.0
    in_text_tokens: int = 0
    in_audio_ms: float = 0.0
    cancel_reason: str | None = None
    error: dict[str, Any] | None = None  # status_details.error of a failed response


class RealtimeSession:
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
        self.ga = options.dialect == "ga"
        self.closed = False
        self.session_id = self.ids.session()
        self.conversation_id = self.ids.conversation()
        self.expires_at = int(time.time() + options.session_limit_s)
        if self.ga:
            state = ga_default_session(
                self.session_id, options.model, self.expires_at, options.kind
            )
            if options.initial_session:
                init = {k: v for k, v in options.initial_session.items() if k != "type"}
                state = normalize_ga_session(merge_session(state, init), options.kind)
        else:
            state = beta_default_session(self.session_id, options.model, self.expires_at)
            if options.initial_session:
                state = normalize_beta_session(merge_session(state, options.initial_session))
        self.state: dict[str, Any] = state
        # conversation
        self.items: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.item_audio: dict[str, Int16Array] = {}  # 24 kHz PCM16 per audio item
        self.call_names: dict[str, str] = {}  # call_id -> function name
        # assistant audio items still streaming, by item id (truncate may cut them live)
        self._live_audio: dict[str, _ItemStream] = {}
        # input audio
        self._buffer: list[Int16Array] = []
        self._buffer_samples = 0
        self._buffer_rate = _INPUT_RATES[self._input_format()]
        self._buffer_start_ms = 0.0  # stream position of the buffer's first sample
        self._stream_ms = 0.0  # total input audio, in ms (the audio time base)
        self._vad: Any = None
        self._vad_origin_ms = 0.0
        self._vad_signature: tuple[Any, ...] | None = None
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0.0
        self._committed_audio_items = 0
        # responses
        self._runs: dict[str, _ResponseRun] = {}
        self._default_run: _ResponseRun | None = None
        self._response_count = 0
        self._last_input_tokens = 0
        self._audio_output_started = False
        # rate limit (SessionOptions.rate_limit_tokens): tokens used in the current window
        self._rate_used = 0
        self._rate_window_start: float | None = None
        # timers
        self._idle_handle: asyncio.TimerHandle | None = None
        self._expiry_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.on_event_received: Callable[[dict[str, Any]], None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Emit ``session.created`` and start the session-length timer."""
        self._emit("session.created", session=self._session_view())
        loop = asyncio.get_running_loop()
        self._expiry_handle = loop.call_later(self.options.session_limit_s, self._expire)
        self._configure_vad()

    def _expire(self) -> None:
        if self.closed:
            return
        minutes = self.options.session_limit_s / 60
        self._error(
            "session_expired", f"Your session hit the maximum duration of {minutes:g} minutes."
        )
        self.close()
        self.sink.close(1001, "invalid_request_error.session_expired")

    def close(self) -> None:
        """Stop timers and background tasks; emit nothing more."""
        if self.closed:
            return
        self.closed = True
        for handle in (self._idle_handle, self._expiry_handle):
            if handle is not None:
                handle.cancel()
        for run in list(self._runs.values()):
            run.finished = True
            if run.task is not None:
                run.task.cancel()
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """:meth:`close`, then wait for the background tasks to end."""
        self.close()
        tasks = [t for t in self._tasks if not t.done()]
        tasks += [r.task for r in self._runs.values() if r.task is not None and not r.task.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- emitting ----------------------------------------------------------------------------

    def _emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": type_, "event_id": self.ids.event(), **fields}
        if not self.closed:
            self.sink.send_event(event)
        return event

    def _error(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        self._emit(
            "error",
            error={
                "type": type_,
                "code": code,
                "message": message,
                "param": param,
                "event_id": event_id,
            },
        )

    def _obfuscation(self, delta: str) -> str:
        # Pads the frame so its size does not reveal the text (protocol.md §2).
        return self.ids.text(16 - len(delta.encode()) % 16)

    # --- config views -------------------------------------------------------------------------

    def _session_view(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    def _audio_in(self) -> dict[str, Any]:
        if self.ga:
            a: dict[str, Any] = self.state["audio"]["input"]
            return a
        return {}

    def _input_format(self) -> str:
        if self.ga:
            return _GA_FORMAT_NAMES[self._audio_in()["format"]["type"]]
        return _BETA_FORMAT_NAMES[self.state["input_audio_format"]]

    def _output_format(self) -> str:
        if self.ga:
            return _GA_FORMAT_NAMES[self.state["audio"]["output"]["format"]["type"]]
        return _BETA_FORMAT_NAMES[self.state["output_audio_format"]]

    def _turn_detection(self) -> dict[str, Any] | None:
        td = self._audio_in().get("turn_detection") if self.ga else self.state["turn_detection"]
        return td if isinstance(td, dict) else None

    def _transcription(self) -> dict[str, Any] | None:
        tr = (
            self._audio_in().get("transcription")
            if self.ga
            else self.state.get("input_audio_transcription")
        )
        return tr if isinstance(tr, dict) else None

    def _voice(self) -> Any:
        return self.state["audio"]["output"]["voice"] if self.ga else self.state["voice"]

    # --- input ---------------------------------------------------------------------------------

    def receive_text(self, text: str | bytes) -> None:
        """Handle one text frame: parse it, validate it, dispatch it."""
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self._error("invalid_json", f"Invalid event: failed to parse JSON value. {exc}")
            return
        if not isinstance(event, dict):
            self._error("invalid_event", "Invalid event: expected a JSON object.")
            return
        self.receive_event(event)

    def receive_binary(self, data: bytes) -> None:
        """Handle one binary frame: the real service refuses them (non-fatal)."""
        self._error(
            "invalid_event", "Expected a text WebSocket message; binary frames are not supported."
        )

    def receive_event(self, event: dict[str, Any]) -> None:
        """Validate and dispatch one parsed client event."""
        if self.closed:
            return
        if self.on_event_received is not None:
            self.on_event_received(event)
        raw_id = event.get("event_id")
        event_id = raw_id if isinstance(raw_id, str) else None
        etype = event.get("type")
        if etype is None:
            self._error("invalid_event", "The 'type' field is missing.", None, event_id)
            return
        table = schemas.GA_EVENTS if self.ga else schemas.BETA_EVENTS
        accepted = schemas.GA_CLIENT_EVENT_TYPES if self.ga else schemas.BETA_CLIENT_EVENT_TYPES
        if not isinstance(etype, str) or etype not in table:
            self._error("invalid_value", enum_message(etype, accepted), "type", event_id)
            return
        try:
            clean = validate(table[etype], event)
            handler = self._handlers[etype]
            handler(self, clean, event_id)
        except ValidationError as exc:
            self._error(exc.code, exc.message, exc.param, event_id)
        except Exception:
            # A bug here must not kill the connection: answer like the real service's 500.
            log.exception("error while handling %s", etype)
            self._error(None, _SERVER_ERROR_TEXT, None, event_id, type_="server_error")

    def append_input_pcm(self, samples: Int16Array, sample_rate: int = 24_000) -> None:
        """Add decoded input audio (the WebRTC media path), as if it had been appended.

        Args:
            samples: Mono PCM16.
            sample_rate: Its rate in Hz; must equal the session's input rate.
        """
        if sample_rate != self._buffer_rate:
            samples = _to_model_rate(samples, sample_rate)
            if self._buffer_rate != _MODEL_RATE:
                raise ValueError("media input needs a 24 kHz input format")
        self._append_samples(samples, None)

    # --- handlers: session -------------------------------------------------------------------

    def _on_session_update(self, event: dict[str, Any], event_id: str | None) -> None:
        update = event["session"]
        if self.ga:
            spec = (
                schemas.GA_TRANSCRIPTION_SESSION
                if self.options.kind == "transcription"
                else schemas.GA_REALTIME_SESSION
            )
            update = validate(spec, update, "session")
            body = {k: v for k, v in update.items() if k != "type"}
            new = normalize_ga_session(merge_session(self.state, body), self.options.kind)
        else:
            new = normalize_beta_session(merge_session(self.state, update))
            new.pop("client_secret", None)
            new["client_secret"] = None
        if self.options.kind == "realtime":
            old_voice = self._voice()
            new_voice = new["audio"]["output"]["voice"] if self.ga else new["voice"]
            if new_voice != old_voice and self._audio_output_started:
                self._error(
                    "cannot_update_voice",
                    "Cannot update a conversation's voice if assistant audio is present.",
                    "session.audio.output.voice" if self.ga else "session.voice",
                    event_id,
                )
                return
        old_state, old_format, old_rate = self.state, self._input_format(), self._buffer_rate
        self.state = new
        self._buffer_rate = _INPUT_RATES[self._input_format()]
        try:
            self._configure_vad()
        except Exception:
            # All or nothing: an update the VAD cannot take leaves the session as it was.
            self.state, self._buffer_rate = old_state, old_rate
            raise
        if self._input_format() != old_format:
            # A new input format starts a new buffer; the time base keeps counting.
            self._clear_buffer()
        self._emit("session.updated", session=self._session_view())

    def _on_transcription_session_update(self, event: dict[str, Any], eid: str | None) -> None:
        update = dict(event["session"])
        update.pop("client_secret", None)
        for key in ("include", "modalities"):
            update.pop(key, None)
        self.state = normalize_beta_session(merge_session(self.state, update))
        self._configure_vad()
        session = {
            "id": self.session_id,
            "object": "realtime.transcription_session",
            "expires_at": self.expires_at,
            "modalities": ["text"],
            "input_audio_format": self.state["input_audio_format"],
            "input_audio_transcription": self.state["input_audio_transcription"],
            "turn_detection": self.state["turn_detection"],
            "input_audio_noise_reduction": self.state["input_audio_noise_reduction"],
            "include": event["session"].get("include"),
            "client_secret": None,
        }
        self._emit("transcription_session.updated", session=session)

    def _on_session_close(self, event: dict[str, Any], event_id: str | None) -> None:
        self.close()
        self.sink.close(1000, "")

    # --- handlers: input audio buffer ------------------------------------------------------------

    def _on_append(self, event: dict[str, Any], event_id: str | None) -> None:
        try:
            raw = pybase64.b64decode(event["audio"], validate=True)
        except ValueError:
            self._error(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded audio.",
                "audio",
                event_id,
            )
            return
        if len(raw) > _MAX_APPEND_BYTES:
            self._error(
                "invalid_value",
                "Invalid 'audio': audio too large. Expected at most "
                f"{_MAX_APPEND_BYTES} bytes of decoded audio per append, but got "
                f"{len(raw)} bytes instead.",
                "audio",
                event_id,
            )
            return
        samples = _decode_input(raw, self._input_format())
        self._append_samples(samples, event_id)

    def _append_samples(self, samples: Int16Array, event_id: str | None) -> None:
        rate = self._buffer_rate
        added_ms = samples.size * 1000.0 / rate
        buffered_ms = self._buffer_samples * 1000.0 / rate
        # With the VAD listening for a turn, old silence is dropped (below), so the buffer
        # cap only matters with the VAD off or during speech.
        capped = self._vad is None or self._vad.speaking
        if capped and buffered_ms + added_ms > self.options.max_buffer_ms:
            self._error(
                "input_audio_buffer_full",
                f"Error appending to input audio buffer: the buffer already holds "
                f"{buffered_ms:.2f}ms of audio and may hold at most "
                f"{self.options.max_buffer_ms:.0f}ms. Commit or clear it first.",
                None,
                event_id,
            )
            return
        if samples.size == 0:
            return
        if self._buffer_samples == 0:
            self._buffer_start_ms = self._stream_ms
        self._buffer.append(samples)
        self._buffer_samples += samples.size
        self._stream_ms += added_ms
        if self._vad is not None:
            for ev in self._vad.process(samples):
                self._on_vad_event(ev)
            if self._vad is not None and not self._vad.speaking:
                self._trim_unspoken()

    def _trim_unspoken(self) -> None:
        """Drop buffered audio that no future speech start can reach back to.

        A speech start reported later begins at most ``prefix_padding_ms`` before the
        first of the onset frames still to come, and those begin no earlier than
        ``min_speech_ms`` (whole frames) before the current end; two more frames cover
        rounding and the detector's partial frame. The time base is untouched:
        ``_take_buffer`` advances ``_buffer_start_ms`` by what it removes.
        """
        vad = self._vad
        frame_ms = vad.frame_ms
        onset_ms = max(1, math.ceil(vad.min_speech_ms / frame_ms)) * frame_ms
        keep_ms = vad.prefix_padding_ms + onset_ms + 2 * frame_ms
        cut_ms = self._stream_ms - keep_ms
        if cut_ms > self._buffer_start_ms:
            self._take_buffer(cut_ms)

    def _buffer_array(self) -> Int16Array:
        if not self._buffer:
            return np.zeros(0, dtype=np.int16)
        if len(self._buffer) > 1:
            self._buffer = [np.concatenate(self._buffer)]
        return self._buffer[0]

    def _take_buffer(
        self, end_ms: float | None = None, start_ms: float | None = None
    ) -> Int16Array:
        """Remove and return buffered audio up to stream position ``end_ms`` (all if None)."""
        data = self._buffer_array()
        rate = self._buffer_rate
        end = data.size if end_ms is None else round((end_ms - self._buffer_start_ms) * rate / 1000)
        end = max(0, min(end, data.size))
        start = 0 if start_ms is None else round((start_ms - self._buffer_start_ms) * rate / 1000)
        start = max(0, min(start, end))
        taken: Int16Array = data[start:end].copy()
        rest = data[end:]
        self._buffer = [rest] if rest.size else []
        self._buffer_samples = int(rest.size)
        self._buffer_start_ms += end * 1000.0 / rate
        return taken

    def _clear_buffer(self) -> None:
        self._buffer = []
        self._buffer_samples = 0
        self._buffer_start_ms = self._stream_ms

    def _on_commit(self, event: dict[str, Any], event_id: str | None) -> None:
        ms = self._buffer_samples * 1000.0 / self._buffer_rate
        if ms < 100.0:
            self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                None,
                event_id,
            )
            return
        item_id = self._speech_item_id or self.ids.item()
        self._speech_item_id = None
        if self._vad is not None:
            self._configure_vad(force=True)
        self._commit_audio(self._take_buffer(), item_id)

    def _on_clear(self, event: dict[str, Any], event_id: str | None) -> None:
        self._clear_buffer()
        self._speech_item_id = None
        if self._vad is not None:
            self._configure_vad(force=True)
        self._emit("input_audio_buffer.cleared")

    def _commit_audio(self, samples: Int16Array, item_id: str) -> None:
        previous = self.order[-1] if self.order else None
        self._emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        audio = _to_model_rate(samples, self._buffer_rate)
        item = self._new_item(
            item_id, "message", role="user", content=[{"type": "input_audio", "transcript": None}]
        )
        self.item_audio[item_id] = audio
        self._insert(item, previous)
        self._announce_item(item, previous)
        if self._transcription() is not None:
            # Decide the transcript now, at commit: a responder may move on to its next
            # turn before a late (reordered) transcription is emitted.
            text = self.responder.transcribe(audio, item_index=self._committed_audio_items)
            if self.options.reorder:
                loop = asyncio.get_running_loop()
                delay = 0.3 if self.options.speed <= 0 else 0.3 / self.options.speed + 0.2
                loop.call_later(delay, self._transcribe, item_id, audio, text)
            else:
                self._transcribe(item_id, audio, text)
        self._committed_audio_items += 1

    def _transcribe(self, item_id: str, audio: Int16Array, text: str | None) -> None:
        if self.closed:
            return
        seconds = audio.size / _MODEL_RATE
        if text is None:
            text = f"[{seconds:.2f} seconds of audio]"
        model = (self._transcription() or {}).get("model") or "whisper-1"
        words = _split_words(text) if model != "whisper-1" else [text]
        for word in words:
            if self.ga:
                self._emit(
                    "conversation.item.input_audio_transcription.delta",
                    item_id=item_id,
                    content_index=0,
                    delta=word,
                    obfuscation=self._obfuscation(word),
                )
            else:
                self._emit(
                    "conversation.item.input_audio_transcription.delta",
                    item_id=item_id,
                    content_index=0,
                    delta=word,
                )
        if model == "whisper-1":
            usage: dict[str, Any] = {"type": "duration", "seconds": round(seconds, 3)}
        else:
            audio_tokens = max(1, round(seconds * 10))
            out_tokens = _tokens(text)
            usage = {
                "type": "tokens",
                "total_tokens": audio_tokens + out_tokens,
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": out_tokens,
            }
        self._emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=text,
            usage=usage,
        )
        item = self.items.get(item_id)
        if item is not None:
            item["content"][0]["transcript"] = text

    # --- VAD ------------------------------------------------------------------------------------

    def _configure_vad(self, force: bool = False) -> None:
        td = self._turn_detection()
        if td is None:
            self._vad = None
            self._vad_signature = None
            self._speech_item_id = None
            return
        if td.get("type") == "semantic_vad":
            params = (0.5, 300, _SEMANTIC_SILENCE_MS.get(td.get("eagerness") or "auto", 500))
        else:
            params = (
                float(td.get("threshold", 0.5)),
                int(td.get("prefix_padding_ms", 300)),
                int(td.get("silence_duration_ms", 200)),
            )
        signature = (*params, self._buffer_rate)
        if not force and signature == self._vad_signature:
            return
        from realtime_client.audio.vad import EnergyVAD

        self._vad = EnergyVAD(
            self._buffer_rate,
            threshold=params[0],
            prefix_padding_ms=params[1],
            silence_duration_ms=params[2],
        )
        self._vad_signature = signature
        self._vad_origin_ms = self._stream_ms

    def _on_vad_event(self, ev: Any) -> None:
        from realtime_client.audio.vad import SpeechStarted

        td = self._turn_detection() or {}
        if isinstance(ev, SpeechStarted):
            start_ms = max(self._vad_origin_ms + ev.audio_start_ms, self._buffer_start_ms)
            self._speech_start_ms = start_ms
            self._speech_item_id = self.ids.item()
            self._cancel_idle_timer()
            self._emit(
                "input_audio_buffer.speech_started",
                audio_start_ms=int(start_ms),
                item_id=self._speech_item_id,
            )
            run = self._default_run
            if td.get("interrupt_response", True) and run is not None:
                self._finish(run, "cancelled", reason="turn_detected")
                # _finish re-arms the idle timer, but the timeout only counts while nobody
                # speaks (protocol.md §8): it is armed again after the next response.
                self._cancel_idle_timer()
            return
        end_ms = self._vad_origin_ms + ev.audio_end_ms
        item_id = self._speech_item_id or self.ids.item()
        self._speech_item_id = None
        self._emit("input_audio_buffer.speech_stopped", audio_end_ms=int(end_ms), item_id=item_id)
        samples = self._take_buffer(end_ms, start_ms=self._speech_start_ms)
        self._commit_audio(samples, item_id)
        if (
            self.options.kind == "realtime"
            and td.get("create_response", True)
            and self._default_run is None
        ):
            self._start_response({}, None)

    def _cancel_idle_timer(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _arm_idle_timer(self, run: _ResponseRun) -> None:
        td = self._turn_detection()
        if not td or td.get("type") != "server_vad" or not td.get("idle_timeout_ms"):
            return
        loop = asyncio.get_running_loop()
        # The timeout counts from the end of playback: response.done + unplayed audio.
        played = loop.time() - run.started if run.started else 0.0
        remaining = max(0.0, run.out_audio_ms / 1000.0 - played)
        self._cancel_idle_timer()
        self._idle_handle = loop.call_later(
            remaining + td["idle_timeout_ms"] / 1000.0, self._idle_timeout
        )

    def _idle_timeout(self) -> None:
        self._idle_handle = None
        if self.closed or self._default_run is not None:
            return
        if self._vad is not None and self._vad.speaking:
            return  # the user is talking: their turn, not a timeout, ends the silence
        item_id = self.ids.item()
        self._emit(
            "input_audio_buffer.timeout_triggered",
            audio_start_ms=int(self._buffer_start_ms),
            audio_end_ms=int(self._stream_ms),
            item_id=item_id,
        )
        self._speech_item_id = None
        if self._vad is not None:
            self._configure_vad(force=True)
        self._commit_audio(self._take_buffer(), item_id)
        self._start_response({}, None)

    # --- conversation ---------------------------------------------------------------------------

    def _new_item(self, item_id: str, type_: str, **fields: Any) -> dict[str, Any]:
        item: dict[str, Any] = {"id": item_id}
        if not self.ga:
            item["object"] = "realtime.item"
        item["type"] = type_
        item["status"] = fields.pop("status", "completed")
        item.update(fields)
        return item

    def _insert(self, item: dict[str, Any], previous: str | None) -> None:
        item_id = item["id"]
        self.items[item_id] = item
        if previous is None:
            self.order.append(item_id)
        elif previous == "root":
            self.order.insert(0, item_id)
        else:
            self.order.insert(self.order.index(previous) + 1, item_id)
        if item.get("type") == "function_call" and item.get("call_id"):
            self.call_names[item["call_id"]] = item.get("name", "")

    def _announce_item(self, item: dict[str, Any], previous: str | None) -> None:
        if self.ga:
            self._emit(
                "conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)
            )
            self._emit(
                "conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item)
            )
        else:
            self._emit(
                "conversation.item.created", previous_item_id=previous, item=copy.deepcopy(item)
            )

    def _on_item_create(self, event: dict[str, Any], event_id: str | None) -> None:
        given = event["item"]
        previous = event.get("previous_item_id")
        if previous is not None and previous != "root" and previous not in self.items:
            self._error(
                "invalid_value",
                f"Error adding item: the previous item with id '{previous}' does not exist.",
                "previous_item_id",
                event_id,
            )
            return
        item_id = given.get("id") or self.ids.item()
        if item_id in self.items:
            self._error(
                "invalid_value",
                f"Error adding item: an item with id '{item_id}' already exists.",
                "item.id",
                event_id,
            )
            return
        itype = given.get("type", "message")
        audio_parts: list[Int16Array] = []
        if itype == "message":
            role = given.get("role")
            if role is None:
                raise ValidationError(
                    "missing_required_parameter",
                    "Missing required parameter: 'item.role'.",
                    "item.role",
                )
            content = []
            for i, part in enumerate(given.get("content") or []):
                part = dict(part)
                if part.get("type") in ("input_audio", "audio", "output_audio") and "audio" in part:
                    try:
                        raw = pybase64.b64decode(part.pop("audio"), validate=True)
                    except ValueError:
                        raise ValidationError(
                            "invalid_value",
                            f"Invalid 'item.content[{i}].audio': expected base64-encoded audio.",
                            f"item.content[{i}].audio",
                        ) from None
                    fmt = self._input_format()
                    audio_parts.append(_to_model_rate(_decode_input(raw, fmt), _INPUT_RATES[fmt]))
                    part.setdefault("transcript", None)
                content.append(part)
            item = self._new_item(item_id, "message", role=role, content=content)
        elif itype == "function_call":
            call_id = given.get("call_id") or self.ids.call()
            item = self._new_item(
                item_id,
                "function_call",
                name=given.get("name"),
                call_id=call_id,
                arguments=given.get("arguments", ""),
            )
        elif itype == "function_call_output":
            call_id = given.get("call_id")
            if call_id not in self.call_names:
                self._error(
                    "invalid_value",
                    f"Tool call ID '{call_id}' not found in conversation.",
                    "item.call_id",
                    event_id,
                )
                return
            item = self._new_item(
                item_id, "function_call_output", call_id=call_id, output=given.get("output", "")
            )
        else:
            item = {"id": item_id, **{k: v for k, v in given.items() if k != "id"}}
        if audio_parts:
            self.item_audio[item_id] = np.concatenate(audio_parts)
        anchor = previous if previous is not None else (self.order[-1] if self.order else None)
        self._insert(item, previous)
        self._announce_item(item, anchor if previous != "root" else None)

    def _on_item_retrieve(self, event: dict[str, Any], event_id: str | None) -> None:
        item_id = event["item_id"]
        item = self.items.get(item_id)
        if item is None:
            self._error(
                "item_retrieve_invalid_item_id",
                f"Error retrieving item: the item with id '{item_id}' does not exist.",
                "item_id",
                event_id,
            )
            return
        out = copy.deepcopy(item)
        audio = self.item_audio.get(item_id)
        if audio is not None:
            for part in out.get("content", []):
                if part.get("type") in ("input_audio", "audio", "output_audio"):
                    fmt = (
                        self._input_format()
                        if part["type"] == "input_audio"
                        else self._output_format()
                    )
                    part["audio"] = _b64(
                        _encode_output(audio, fmt) if fmt != "pcm16" else audio.tobytes()
                    )
                    break
        self._emit("conversation.item.retrieved", item=out)

    def _on_item_delete(self, event: dict[str, Any], event_id: str | None) -> None:
        item_id = event["item_id"]
        if item_id not in self.items:
            self._error(
                "item_delete_invalid_item_id",
                f"Error deleting item: the item with id '{item_id}' does not exist.",
                "item_id",
                event_id,
            )
            return
        del self.items[item_id]
        self.order.remove(item_id)
        self.item_audio.pop(item_id, None)
        self._emit("conversation.item.deleted", item_id=item_id)

    def _on_item_truncate(self, event: dict[str, Any], event_id: str | None) -> None:
        item_id = event["item_id"]
        content_index = event["content_index"]
        audio_end_ms = event["audio_end_ms"]
        item = self.items.get(item_id)
        if item is None:
            self._error(
                "item_truncate_invalid_item_id",
                f"Error truncating item: the item with id '{item_id}' does not exist.",
                "item_id",
                event_id,
            )
            return
        live = self._live_audio.get(item_id)
        if live is not None and content_index == 0:
            self._truncate_live(live, audio_end_ms, event_id)
            return
        content = item.get("content") or []
        audio_types = ("output_audio", "audio")
        if (
            item.get("type") != "message"
            or item.get("role") != "assistant"
            or content_index >= len(content)
            or content[content_index].get("type") not in audio_types
        ):
            self._error(
                "invalid_value",
                "Only model output audio messages can be truncated",
                "item_id",
                event_id,
            )
            return
        audio = self.item_audio.get(item_id, np.zeros(0, dtype=np.int16))
        duration_ms = audio.size * 1000 // _MODEL_RATE
        if audio_end_ms > duration_ms:
            self._error(
                "invalid_value",
                f"Audio content of {duration_ms}ms is already shorter than {audio_end_ms}ms",
                "audio_end_ms",
                event_id,
            )
            return
        keep = audio_end_ms * _MODEL_RATE // 1000
        self.item_audio[item_id] = audio[:keep].copy()
        part = content[content_index]
        transcript = part.get("transcript") or ""
        part["transcript"] = _cut_transcript(transcript, audio_end_ms, duration_ms)
        self._emit(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=content_index,
            audio_end_ms=audio_end_ms,
        )

    def _truncate_live(self, stream: _ItemStream, audio_end_ms: int, event_id: str | None) -> None:
        """Truncate an assistant audio item that is still streaming.

        Only audio already sent can have been played, so that is the item's length for
        the check; the cut itself is applied when the item closes.
        """
        duration_ms = stream.audio_samples_sent * 1000 // _MODEL_RATE
        if stream.cut_ms is not None:
            duration_ms = min(duration_ms, stream.cut_ms)
        if audio_end_ms > duration_ms:
            self._error(
                "invalid_value",
                f"Audio content of {duration_ms}ms is already shorter than {audio_end_ms}ms",
                "audio_end_ms",
                event_id,
            )
            return
        stream.cut_ms = audio_end_ms
        self._emit(
            "conversation.item.truncated",
            item_id=stream.item["id"],
            content_index=0,
            audio_end_ms=audio_end_ms,
        )

    # --- responses -------------------------------------------------------------------------------

    def _on_response_create(self, event: dict[str, Any], event_id: str | None) -> None:
        if self.options.kind == "transcription":
            self._error(
                "invalid_value",
                "Responses are not available in a transcription session.",
                "type",
                event_id,
            )
            return
        self._start_response(event.get("response") or {}, event_id)

    def _resolve_config(self, params: dict[str, Any]) -> _ResponseConfig:
        s = self.state
        conversation = params.get("conversation", "auto")
        if conversation not in ("auto", "none") and conversation != self.conversation_id:
            raise ValidationError(
                "invalid_value",
                enum_message(conversation, ["auto", "none"]),
                "response.conversation",
            )
        if self.ga:
            modalities = tuple(params.get("output_modalities") or s["output_modalities"])
            out = (params.get("audio") or {}).get("output") or {}
            fmt_wire = out.get("format") or s["audio"]["output"]["format"]
            if fmt_wire.get("type") == "audio/pcm":
                fmt_wire = {"type": "audio/pcm", "rate": fmt_wire.get("rate", 24000)}
            voice = out.get("voice", s["audio"]["output"]["voice"])
            fmt = _GA_FORMAT_NAMES[fmt_wire["type"]]
            max_tokens = params.get("max_output_tokens", s["max_output_tokens"])
            temperature = None
        else:
            mods = params.get("modalities") or s["modalities"]
            modalities = ("audio",) if "audio" in mods else ("text",)
            fmt_wire = params.get("output_audio_format", s["output_audio_format"])
            fmt = _BETA_FORMAT_NAMES[fmt_wire]
            voice = params.get("voice", s["voice"])
            max_tokens = params.get("max_response_output_tokens", s["max_response_output_tokens"])
            temperature = params.get("temperature", s["temperature"])
        input_items = params.get("input")
        if input_items is not None:
            resolved = []
            for i, it in enumerate(input_items):
                if it.get("type") == "item_reference":
                    ref = self.items.get(it.get("id", ""))
                    if ref is None:
                        raise ValidationError(
                            "invalid_value",
                            f"Item with id '{it.get('id')}' not found in conversation.",
                            f"response.input[{i}].id",
                        )
                    resolved.append(ref)
                else:
                    resolved.append(it)
            input_items = resolved
        return _ResponseConfig(
            modalities=modalities if modalities else ("audio",),
            voice=voice,
            output_format=fmt,
            output_format_wire=fmt_wire,
            instructions=params.get("instructions", s["instructions"]),
            tools=list(params.get("tools", s["tools"])),
            tool_choice=params.get("tool_choice", s["tool_choice"]),
            max_output_tokens=max_tokens,
            temperature=temperature,
            conversation="none" if conversation == "none" else "auto",
            metadata=params.get("metadata"),
            input_items=input_items,
        )

    def _start_response(self, params: dict[str, Any], event_id: str | None) -> None:
        config = self._resolve_config(params)
        if config.conversation == "auto" and self._default_run is not None:
            self._error(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self._default_run.id}. Wait until the response is finished before creating "
                "a new one.",
                None,
                event_id,
            )
            return
        self._cancel_idle_timer()
        loop = asyncio.get_running_loop()
        run = _ResponseRun(
            id=self.ids.response(),
            config=config,
            index=self._response_count,
            created_at=loop.time(),
        )
        self._response_count += 1
        self._runs[run.id] = run
        if config.conversation == "auto":
            self._default_run = run
        self._emit("response.created", response=self._response_object(run))
        if not self.ga:
            self._emit_rate_limits(run, after_created=True)
        run.task = loop.create_task(self._generate(run))

    def _response_object(self, run: _ResponseRun, usage: Any = None) -> dict[str, Any]:
        c = run.config
        details: Any = None
        if run.status == "cancelled":
            details = {"type": "cancelled", "reason": run.cancel_reason or "client_cancelled"}
        elif run.status == "incomplete":
            details = {"type": "incomplete", "reason": "max_output_tokens"}
        elif run.status == "failed":
            details = {
                "type": "failed",
                "error": run.error
                or {"type": "server_error", "code": None, "message": _SERVER_ERROR_TEXT},
            }
        output = [copy.deepcopy(s.item) for s in run.items]
        conv_id = self.conversation_id if c.conversation == "auto" else None
        if self.ga:
            return {
                "object": "realtime.response",
                "id": run.id,
                "status": run.status,
                "status_details": details,
                "output": output,
                "conversation_id": conv_id,
                "output_modalities": list(c.modalities),
                "max_output_tokens": c.max_output_tokens,
                "audio": {
                    "output": {"format": copy.deepcopy(c.output_format_wire), "voice": c.voice}
                },
                "usage": usage,
                "metadata": c.metadata,
            }
        return {
            "object": "realtime.response",
            "id": run.id,
            "status": run.status,
            "status_details": details,
            "output": output,
            "conversation_id": conv_id,
            "modalities": ["text", "audio"] if "audio" in c.modalities else ["text"],
            "voice": c.voice,
            "output_audio_format": c.output_format_wire,
            "temperature": c.temperature,
            "max_output_tokens": c.max_output_tokens,
            "usage": usage,
            "metadata": c.metadata,
        }

    def _context(self, run: _ResponseRun) -> ResponseContext:
        c = run.config
        if c.input_items is not None:
            items = [copy.deepcopy(i) for i in c.input_items]
        else:
            items = [copy.deepcopy(self.items[i]) for i in self.order]
        user_text: str | None = None
        user_audio: Int16Array | None = None
        for it in reversed(items):
            if it.get("type") == "message" and it.get("role") == "user":
                for part in it.get("content") or []:
                    if part.get("type") == "input_text" and part.get("text"):
                        user_text = part["text"]
                    elif part.get("type") in ("input_audio", "audio"):
                        user_text = part.get("transcript") or user_text
                        audio = self.item_audio.get(it.get("id", ""))
                        if audio is not None:
                            user_audio = audio
                break
        function_output = None
        if items and items[-1].get("type") == "function_call_output":
            last = items[-1]
            function_output = {
                "call_id": last.get("call_id"),
                "output": last.get("output"),
                "name": self.call_names.get(last.get("call_id", ""), ""),
            }
        # usage inputs: every text and audio of the context, plus the instructions
        run.in_text_tokens = _tokens(c.instructions) + sum(_tokens(_item_text(i)) for i in items)
        run.in_audio_ms = sum(
            self.item_audio[i["id"]].size * 1000.0 / _MODEL_RATE
            for i in items
            if i.get("id") in self.item_audio
        )
        return ResponseContext(
            response_index=run.index,
            items=items,
            user_text=user_text,
            user_audio=user_audio,
            function_output=function_output,
            instructions=c.instructions,
            tools=copy.deepcopy(c.tools),
            output_modalities=c.modalities,
            metadata=c.metadata,
            rng=random.Random(self.rng.random()),
        )

    async def _generate(self, run: _ResponseRun) -> None:
        try:
            context = self._context(run)
            if self._rate_limited(run):
                return
            reply = await self.responder.respond(context)
            if run.finished:
                return
            await self._stream_reply(run, reply)
            if not run.finished:
                self._finish(run, run.status if run.status != "in_progress" else "completed")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("responder failed; the response ends as failed")
            if not run.finished:
                self._finish(run, "failed")

    async def _pace(self, run: _ResponseRun, content_s: float) -> None:
        """Wait until ``content_s`` seconds of content may have been sent."""
        loop = asyncio.get_running_loop()
        if not run.started:
            run.started = loop.time()
        speed = self.options.speed
        run.clock_s += content_s
        if speed <= 0:
            await asyncio.sleep(0)
            return
        delay = run.started + run.clock_s / speed - loop.time()
        await asyncio.sleep(max(0.0, delay))

    async def _stream_reply(self, run: _ResponseRun, reply: Reply) -> None:
        budget = _token_budget(run.config.max_output_tokens)
        for out in reply.outputs:
            if run.finished:
                return
            if isinstance(out, FunctionCallReply):
                await self._stream_function_call(run, out)
            elif isinstance(out, MessageReply):
                await self._stream_message(run, out, budget)
            if run.status == "incomplete":
                return

    def _open_item(
        self, run: _ResponseRun, kind: Literal["message", "function_call"], item: dict[str, Any]
    ) -> _ItemStream:
        in_conv = run.config.conversation == "auto"
        previous = (self.order[-1] if self.order else None) if in_conv else None
        stream = _ItemStream(
            kind=kind,
            item=item,
            output_index=len(run.items),
            previous_item_id=previous,
            in_conversation=in_conv,
        )
        run.items.append(stream)
        run.current = stream
        self._emit(
            "response.output_item.added",
            response_id=run.id,
            output_index=stream.output_index,
            item=copy.deepcopy(item),
        )
        if in_conv:
            self._insert(item, None)
            if self.ga:
                self._emit(
                    "conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)
                )
            else:
                self._emit(
                    "conversation.item.created", previous_item_id=previous, item=copy.deepcopy(item)
                )
        return stream

    async def _stream_function_call(self, run: _ResponseRun, out: FunctionCallReply) -> None:
        call_id = out.call_id or self.ids.call()
        item = self._new_item(
            self.ids.item(),
            "function_call",
            status="in_progress",
            name=out.name,
            call_id=call_id,
            arguments="",
        )
        stream = self._open_item(run, "function_call", item)
        self.call_names[call_id] = out.name
        args = out.arguments
        for i in range(0, len(args), 12):
            chunk = args[i : i + 12]
            self._emit(
                "response.function_call_arguments.delta",
                response_id=run.id,
                item_id=item["id"],
                output_index=stream.output_index,
                call_id=call_id,
                delta=chunk,
            )
            stream.text += chunk
            run.out_text_tokens += _tokens(chunk)
            await self._pace(run, self.options.text_token_ms / 1000)
            if run.finished:
                return
        self._close_item(run, stream, "completed")

    async def _stream_message(self, run: _ResponseRun, out: MessageReply, budget: int) -> None:
        audio_mode = "audio" in run.config.modalities
        item = self._new_item(
            self.ids.item(), "message", status="in_progress", role="assistant", content=[]
        )
        text = out.text
        samples: Int16Array | None = None
        if audio_mode:
            samples = out.audio if out.audio is not None else await self.responder.synthesize(text)
            if run.finished:
                return
        stream = self._open_item(run, "message", item)
        stream.audio_mode = audio_mode
        if audio_mode and stream.in_conversation:
            self._live_audio[item["id"]] = stream
        part = {"type": "audio", "transcript": ""} if audio_mode else {"type": "text", "text": ""}
        self._emit(
            "response.content_part.added",
            response_id=run.id,
            item_id=item["id"],
            output_index=stream.output_index,
            content_index=0,
            part=part,
        )
        words = _split_words(text)
        if audio_mode:
            assert samples is not None
            self._audio_output_started = True
            # Output tokens run at 20 per second of audio: cut at the token budget.
            max_ms = budget * 50.0
            total = samples.size
            if total * 1000.0 / _MODEL_RATE > max_ms:
                samples = samples[: int(max_ms * _MODEL_RATE / 1000)]
                run.status = "incomplete"
            step = max(1, self.options.audio_delta_ms * _MODEL_RATE // 1000)
            n_chunks = max(1, math.ceil(samples.size / step))
            sent_words = 0
            for k in range(n_chunks):
                chunk = samples[k * step : (k + 1) * step]
                due_words = (
                    len(words) if k == n_chunks - 1 else math.ceil(len(words) * (k + 1) / n_chunks)
                )
                if run.status == "incomplete" and k == n_chunks - 1:
                    due_words = math.floor(len(words) * samples.size / max(1, total))
                if not self.options.reorder:
                    sent_words = self._transcript_deltas(run, stream, words, sent_words, due_words)
                self._audio_delta(run, stream, chunk)
                if self.options.reorder:
                    sent_words = self._transcript_deltas(run, stream, words, sent_words, due_words)
                await self._pace(run, chunk.size / _MODEL_RATE)
                if run.finished:
                    return
        else:
            sent = 0
            for word in words:
                if sent >= budget:
                    run.status = "incomplete"
                    break
                self._emit(
                    "response.output_text.delta" if self.ga else "response.text.delta",
                    response_id=run.id,
                    item_id=item["id"],
                    output_index=stream.output_index,
                    content_index=0,
                    delta=word,
                    **({"obfuscation": self._obfuscation(word)} if self.ga else {}),
                )
                stream.text += word
                sent += 1
                run.out_text_tokens += 1
                await self._pace(run, self.options.text_token_ms / 1000)
                if run.finished:
                    return
        self._close_item(run, stream, "incomplete" if run.status == "incomplete" else "completed")

    def _transcript_deltas(
        self, run: _ResponseRun, stream: _ItemStream, words: list[str], sent: int, due: int
    ) -> int:
        for word in words[sent:due]:
            self._emit(
                "response.output_audio_transcript.delta"
                if self.ga
                else "response.audio_transcript.delta",
                response_id=run.id,
                item_id=stream.item["id"],
                output_index=stream.output_index,
                content_index=0,
                delta=word,
                **({"obfuscation": self._obfuscation(word)} if self.ga else {}),
            )
            stream.text += word
            run.out_text_tokens += 1
        return max(sent, due)

    def _audio_delta(self, run: _ResponseRun, stream: _ItemStream, chunk: Int16Array) -> None:
        stream.audio_chunks.append(chunk)
        stream.audio_samples_sent += chunk.size
        ms = chunk.size * 1000.0 / _MODEL_RATE
        stream.audio_ms_sent += ms
        run.out_audio_ms += ms
        if self.options.audio_via_sink:
            send_audio = getattr(self.sink, "send_audio", None)
            if send_audio is not None:
                send_audio(run.id, stream.item["id"], chunk)
                return
        self._emit(
            "response.output_audio.delta" if self.ga else "response.audio.delta",
            response_id=run.id,
            item_id=stream.item["id"],
            output_index=stream.output_index,
            content_index=0,
            delta=_b64(_encode_output(chunk, run.config.output_format)),
        )

    def _close_item(self, run: _ResponseRun, stream: _ItemStream, status: str) -> None:
        """Emit the closing events of an output item (also used on cancel)."""
        if stream.closed:
            return
        stream.closed = True
        item = stream.item
        self._live_audio.pop(item["id"], None)
        common = {"response_id": run.id, "item_id": item["id"], "output_index": stream.output_index}
        if stream.kind == "function_call":
            args_done: dict[str, Any] = {
                **common,
                "call_id": item["call_id"],
                "arguments": stream.text,
            }
            if self.ga:
                args_done["name"] = item["name"]
            if status == "completed":
                self._emit("response.function_call_arguments.done", **args_done)
            item["arguments"] = stream.text
        elif stream.audio_mode:
            self._emit(
                "response.output_audio.done" if self.ga else "response.audio.done",
                **common,
                content_index=0,
            )
            self._emit(
                "response.output_audio_transcript.done"
                if self.ga
                else "response.audio_transcript.done",
                **common,
                content_index=0,
                transcript=stream.text,
            )
            self._emit(
                "response.content_part.done",
                **common,
                content_index=0,
                part={"type": "audio", "transcript": stream.text},
            )
            audio = (
                np.concatenate(stream.audio_chunks)
                if stream.audio_chunks
                else np.zeros(0, dtype=np.int16)
            )
            transcript = stream.text
            if stream.cut_ms is not None:
                # A truncate arrived while the item streamed: the item keeps what was
                # played, as if it had been truncated after completing.
                duration_ms = audio.size * 1000 // _MODEL_RATE
                transcript = _cut_transcript(transcript, stream.cut_ms, duration_ms)
                audio = audio[: stream.cut_ms * _MODEL_RATE // 1000].copy()
            item["content"] = [
                {"type": "output_audio" if self.ga else "audio", "transcript": transcript}
            ]
            # A deleted item (conversation.item.delete while streaming) keeps no audio.
            if item["id"] in self.items:
                self.item_audio[item["id"]] = audio
        else:
            self._emit(
                "response.output_text.done" if self.ga else "response.text.done",
                **common,
                content_index=0,
                text=stream.text,
            )
            self._emit(
                "response.content_part.done",
                **common,
                content_index=0,
                part={"type": "text", "text": stream.text},
            )
            item["content"] = [{"type": "output_text" if self.ga else "text", "text": stream.text}]
        item["status"] = status
        if stream.in_conversation and item["id"] in self.items:
            self.items[item["id"]] = item
            if self.ga:
                self._emit(
                    "conversation.item.done",
                    previous_item_id=stream.previous_item_id,
                    item=copy.deepcopy(item),
                )
        self._emit(
            "response.output_item.done",
            response_id=run.id,
            output_index=stream.output_index,
            item=copy.deepcopy(item),
        )
        if run.current is stream:
            run.current = None

    def _finish(self, run: _ResponseRun, status: str, reason: str | None = None) -> None:
        """End a response now: close its open item, emit ``response.done`` (+ rate limits)."""
        if run.finished:
            return
        run.finished = True
        run.status = status
        run.cancel_reason = reason
        if run.current is not None:
            self._close_item(run, run.current, "incomplete")
        usage = self._usage(run)
        if self.options.rate_limit_tokens is not None:
            self._rate_window()  # a window that has ended starts afresh
            self._rate_used += usage["total_tokens"]
        self._emit("response.done", response=self._response_object(run, usage))
        self._last_input_tokens = usage["input_tokens"]
        if self.ga:
            self._emit_rate_limits(run, total=usage["total_tokens"])
        self._runs.pop(run.id, None)
        if self._default_run is run:
            self._default_run = None
            self._arm_idle_timer(run)
        task = run.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    def _rate_window(self) -> tuple[int, float]:
        """Tokens used in the current rate-limit window, and seconds until it resets."""
        now = asyncio.get_running_loop().time()
        start = self._rate_window_start
        if start is None or now - start >= _RATE_WINDOW_S:
            self._rate_window_start = start = now
            self._rate_used = 0
        return self._rate_used, start + _RATE_WINDOW_S - now

    def _rate_limited(self, run: _ResponseRun) -> bool:
        """Fail ``run`` as the real service does when its input overruns the TPM budget.

        The real service answers with ``response.done`` (status ``failed``, no output,
        zero usage) whose ``status_details.error`` is ``{type: "tokens", code:
        "rate_limit_exceeded", message}`` (protocol.md §7.2, §10), not an ``error`` event.
        """
        limit = self.options.rate_limit_tokens
        if limit is None:
            return False
        used, reset_s = self._rate_window()
        requested = run.in_text_tokens + round(run.in_audio_ms / 100)
        if used + requested <= limit:
            return False
        run.error = {
            "type": "tokens",
            "code": "rate_limit_exceeded",
            "message": (
                f"Rate limit reached for {self.options.model} in organization org-local on "
                f"tokens per min (TPM): Limit {limit}, Used {used}, Requested {requested}. "
                f"Please try again in {reset_s:.3f}s. Visit "
                "https://platform.openai.com/account/rate-limits to learn more."
            ),
        }
        self._finish(run, "failed")
        return True

    def _usage(self, run: _ResponseRun) -> dict[str, Any]:
        produced = run.out_text_tokens or run.out_audio_ms or any(s.closed for s in run.items)
        if run.status in ("cancelled", "failed") and not produced:
            in_text = in_audio = out_text = out_audio = 0
        else:
            in_text = run.in_text_tokens
            in_audio = round(run.in_audio_ms / 100)  # 10 tokens per second of input audio
            out_text = run.out_text_tokens
            out_audio = round(run.out_audio_ms / 50)  # 20 tokens per second of output audio
        input_tokens = in_text + in_audio
        output_tokens = out_text + out_audio
        cached = min(self._last_input_tokens, input_tokens) // 64 * 64 if input_tokens else 0
        cached_text = min(cached, in_text)
        in_details: dict[str, Any] = {"text_tokens": in_text, "audio_tokens": in_audio}
        cached_details: dict[str, Any] = {
            "text_tokens": cached_text,
            "audio_tokens": cached - cached_text,
        }
        if self.ga:
            in_details["image_tokens"] = 0
            cached_details["image_tokens"] = 0
        in_details["cached_tokens"] = cached
        in_details["cached_tokens_details"] = cached_details
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": in_details,
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }

    def _emit_rate_limits(
        self, run: _ResponseRun, *, total: int = 0, after_created: bool = False
    ) -> None:
        budget = self.options.rate_limit_tokens
        tokens: dict[str, Any]
        if budget is not None:
            used, reset_s = self._rate_window()
            tokens = {
                "name": "tokens",
                "limit": budget,
                "remaining": max(0, budget - used),
                "reset_seconds": round(reset_s, 3),
            }
        elif self.ga:
            tokens = {
                "name": "tokens",
                "limit": _GA_TOKEN_LIMIT,
                "remaining": _GA_TOKEN_LIMIT - total,
                "reset_seconds": 0.001,
            }
        else:
            tokens = {"name": "tokens", "limit": 20000, "remaining": 18000, "reset_seconds": 6.0}
        if self.ga:
            self._emit("rate_limits.updated", rate_limits=[tokens])
            return
        self._emit(
            "rate_limits.updated",
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                tokens,
            ],
        )

    def _on_response_cancel(self, event: dict[str, Any], event_id: str | None) -> None:
        rid = event.get("response_id")
        run = self._runs.get(rid) if rid else self._default_run
        if run is None or run.finished:
            self._error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                None,
                event_id,
            )
            return
        self._finish(run, "cancelled", reason="client_cancelled")

    _handlers: dict[str, Callable[[RealtimeSession, dict[str, Any], str | None], None]] = {
        "session.update": _on_session_update,
        "transcription_session.update": _on_transcription_session_update,
        "session.close": _on_session_close,
        "input_audio_buffer.append": _on_append,
        "session.input_audio_buffer.append": _on_append,
        "input_audio_buffer.commit": _on_commit,
        "input_audio_buffer.clear": _on_clear,
        "conversation.item.create": _on_item_create,
        "conversation.item.retrieve": _on_item_retrieve,
        "conversation.item.delete": _on_item_delete,
        "conversation.item.truncate": _on_item_truncate,
        "response.create": _on_response_create,
        "response.cancel": _on_response_cancel,
    }


def _token_budget(max_output_tokens: Any) -> int:
    return 1_000_000_000 if max_output_tokens in (None, "inf") else int(max_output_tokens)


def _split_words(text: str) -> list[str]:
    """Split into deltas the way a tokenizer streams: each word keeps its leading space."""
    if not text:
        return []
    out: list[str] = []
    current = ""
    for ch in text:
        if ch == " " and current.strip():
            out.append(current)
            current = ch
        else:
            current += ch
    if current:
        out.append(current)
    return out


def _cut_transcript(transcript: str, end_ms: int, duration_ms: int) -> str:
    """The words of ``transcript`` spoken in the first ``end_ms`` of ``duration_ms`` ms."""
    if not duration_ms:
        return transcript
    words = transcript.split()
    return " ".join(words[: math.floor(len(words) * end_ms / duration_ms)])


def _item_text(item: dict[str, Any]) -> str:
    parts = [
        part[key]
        for part in item.get("content") or []
        for key in ("text", "transcript")
        if part.get(key)
    ]
    parts += [item[key] for key in ("arguments", "output") if item.get(key)]
    return " ".join(parts)
