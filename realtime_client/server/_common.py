"""What the parts of a server session share: options, the sink, text helpers, the host.

A :class:`~.session.ServerSession` is wired from parts (input buffer, turn taking,
conversation, responses, the dialect edge). They speak the GA vocabulary only and reach
the session through the narrow :class:`SessionHost` interface.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from .._ids import IdGenerator
from .responders import Responder

if TYPE_CHECKING:
    from ._audio import Codec

__all__ = [
    "MODEL_RATE",
    "SERVER_ERROR_TEXT",
    "Dialect",
    "Int16Array",
    "SessionHost",
    "SessionKind",
    "SessionOptions",
    "SessionSink",
    "TIMINGS",
    "TimingProfile",
    "cut_transcript",
    "item_text",
    "split_words",
    "tokens",
]

Dialect = Literal["ga", "beta"]
SessionKind = Literal["realtime", "transcription"]
Int16Array = npt.NDArray[np.int16]

#: The model's audio rate: everything inside a session is 24 kHz PCM16.
MODEL_RATE = 24_000
SERVER_ERROR_TEXT = "The server had an error while processing your request. Sorry about that!"


class SessionSink(Protocol):
    """Where a session's output goes (the transport's side).

    A media transport (WebRTC) may also define ``send_audio(response_id, item_id,
    samples)``, called with 24 kHz PCM16 blocks when ``SessionOptions.audio_via_sink`` is
    set, and ``room()``: ``None`` while its outbox has room, else an awaitable that
    response generation awaits before it queues more (backpressure).
    """

    def send_event(self, event: dict[str, Any]) -> None:
        """Queue one server event for the client, in order."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection after every event queued so far."""


@dataclass(frozen=True)
class TimingProfile:
    """How long the "model" takes, in content time (divided by ``SessionOptions.speed``).

    Attributes:
        response_created_ms: From the commit or ``response.create`` to ``response.created``.
        first_output_ms: From ``response.created`` to the first output item.
        session_updated_ms: From ``session.update`` to ``session.updated``.
        jitter: Each delay varies by up to this fraction either way (seeded).
        generation_speed: Output is generated this many times faster than real time
            (the real service's audio arrives ahead of playback).
    """

    response_created_ms: float = 0.0
    first_output_ms: float = 0.0
    session_updated_ms: float = 0.0
    jitter: float = 0.0
    generation_speed: float = 1.0


#: The named timing profiles: ``instant`` (the default, for tests) and ``realistic`` (what
#: the real service's recordings show: protocol.md §16; the demo and replay can pick it).
TIMINGS: dict[str, TimingProfile] = {
    "instant": TimingProfile(),
    "realistic": TimingProfile(
        response_created_ms=250.0,
        first_output_ms=200.0,
        session_updated_ms=250.0,
        jitter=0.2,
        generation_speed=3.0,
    ),
}


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
        initial_session: A validated session config to start from (ephemeral keys), in
            the session's dialect.
        timing: How long the "model" takes (:data:`TIMINGS`); delays scale with ``speed``
            (none at speed 0).
        rate_limit_tokens: Tokens-per-minute budget (``None``: the real service's
            practically unlimited default). A response whose input would overrun what
            is left of it fails with ``rate_limit_exceeded`` (protocol.md §7.2, §10).
        audio_via_sink: Hand output audio to ``sink.send_audio`` (WebRTC) instead of
            emitting audio delta events.
        max_errors_per_s: Most ``error`` events the client's own events draw per second, on
            average, in bursts of up to twice that; errors past it are not sent. A client
            that keeps drawing them until ten seconds' worth went unsent (without calming
            down for two seconds) is flooding: it gets one last ``error``
            (``too_many_invalid_events``) and the connection closes with 1008. ``None``:
            every error is sent and nothing is closed.
        audio_items_kept: Most audio items whose audio the conversation keeps, for
            ``conversation.item.retrieve`` / ``truncate`` and the responder; older items
            keep their text, and a retrieve or truncate of one is refused
            (``invalid_value``).
        audio_kept_ms: Most audio the conversation keeps over all items, in ms (the
            newest item's audio is always kept).
        items_kept: Most items the conversation keeps; past it (or past
            ``text_kept_chars``) the oldest are forgotten, as ``truncation: "auto"``
            drops them from the model's context.
        text_kept_chars: Most characters of items (text, transcripts, arguments,
            outputs: their JSON) the conversation keeps (the newest item always stays).
        vad: The detector behind ``server_vad`` / ``semantic_vad``: ``"energy"`` (an
            energy threshold over the noise floor) or ``"silero"`` (a small speech model,
            the ``aec`` extra).
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
    timing: TimingProfile = field(default_factory=TimingProfile)
    audio_via_sink: bool = False
    max_errors_per_s: float | None = 100.0
    audio_items_kept: int = 64
    audio_kept_ms: float = 300_000.0
    items_kept: int = 4096
    text_kept_chars: int = 32 * 1024 * 1024
    vad: Literal["energy", "silero"] = "energy"


class SessionHost(Protocol):
    """What the parts of a session use of the session that wires them."""

    options: SessionOptions
    ids: IdGenerator
    rng: random.Random
    responder: Responder
    sink: SessionSink
    #: The session config, in the GA shape whatever the dialect.
    state: dict[str, Any]
    conversation_id: str
    closed: bool

    def delay_s(self, ms: float) -> float:
        """A timing-profile delay of ``ms`` content milliseconds, jittered, in seconds."""

    def emit(self, type_: str, **fields: Any) -> None:
        """Send one server event (GA vocabulary; the edge maps it to the dialect)."""

    def error(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        """Send an ``error`` event."""

    def input_codec(self) -> Codec:
        """The input audio format's codec."""

    def output_codec(self) -> Codec:
        """The output audio format's codec."""

    def turn_detection(self) -> dict[str, Any] | None:
        """The turn detection config, or ``None`` when it is off."""

    def transcription(self) -> dict[str, Any] | None:
        """The input transcription config, or ``None`` when it is off."""


def tokens(text: str | None) -> int:
    """Tokens of ``text`` as the server counts them (4 characters a token)."""
    return math.ceil(len(text) / 4) if text else 0


def split_words(text: str) -> list[str]:
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


def cut_transcript(transcript: str, end_ms: int, duration_ms: int) -> str:
    """The words of ``transcript`` spoken in the first ``end_ms`` of ``duration_ms`` ms."""
    if not duration_ms:
        return transcript
    words = transcript.split()
    return " ".join(words[: math.floor(len(words) * end_ms / duration_ms)])


def item_text(item: dict[str, Any]) -> str:
    """Every text of an item (texts, transcripts, arguments, outputs), for token counts."""
    parts = [
        part[key]
        for part in item.get("content") or []
        for key in ("text", "transcript")
        if part.get(key)
    ]
    parts += [item[key] for key in ("arguments", "output") if item.get(key)]
    return " ".join(parts)
