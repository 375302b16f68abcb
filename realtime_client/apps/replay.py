"""``realtime-replay``: play WAV files into a Realtime session, headless, and record it all.

Theory of operation
-------------------
The replay is a simulated full-duplex sound card. One *device clock* ticks every 20 ms;
on each tick the replay

* captures one 20 ms block (from the current input file at the file's own rate, or
  silence: a quiet room) and hands it to :meth:`Session.send_audio`, exactly as a
  microphone would (the session resamples to 24 kHz and appends);
* reads 20 ms from a :class:`audio.PlaybackBuffer` attached to the session as its sink,
  so played-position accounting, barge-in (``speech_started`` → clear → truncate at the
  played position) and truncation are the session's real code paths.

With ``speed > 0`` ticks are paced on the wall clock (``speed=4``: four times real time);
the embedded server paces its output at the same speed. With ``speed=0`` the replay runs
as fast as it can, and the device clock stands still while it waits for the server, so
the server's think time does not show on the timeline. The device clock is the time axis
of everything written: the transcript's ``at_ms``, ``events.jsonl``'s ``at_ms`` and the
timeline picture.

Turn taking: with server VAD (the default) each file is streamed, followed by silence
until every committed user turn has been answered and its audio played (the simulated
user waits for the assistant), then the next file starts. With ``push_to_talk`` the
replay presses before each file (stop playback, truncate, cancel, clear the input), sends
the file only, and releases after it (commit + ``response.create``).

Barge-in: at each ``barge_in_at`` time (seconds on the device clock) the replay
interrupts the assistant the way a person does: if the next file is waiting, it starts
now; otherwise a 0.8 s voiced burst is mixed into the microphone signal. Under server VAD
the server hears it (``speech_started``), cancels the response, and the session clears
playback and truncates; under push-to-talk the replay presses, sends the burst and
releases.

Record and replay: every frame in both directions goes to ``events.jsonl`` in the common
cassette format (:mod:`realtime_client.recording`) with the replay's ``at_ms`` added, audio
payloads elided to their length unless ``keep_audio``. :func:`rebuild` feeds the
server records back through :class:`~realtime_client.protocol.RealtimeProtocol` (elided
audio replays as silence of the same length) and rebuilds the same transcript.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import numpy.typing as npt
import orjson
import pybase64

from realtime_client.audio.errors import AudioError
from realtime_client.audio.playback import PlaybackBuffer
from realtime_client.audio.resample import Resampler
from realtime_client.audio.wav import read_wav, write_wav

from .. import events as ev
from ..connection import connect, realtime_url
from ..errors import (
    AuthenticationError,
    ConnectError,
    InvalidModelError,
    MissingExtraError,
    RealtimeError,
    RecordingError,
    ServerError,
    TransportError,
)
from ..protocol import RealtimeProtocol
from ..recording import frame_event, read_recording, server_events
from ..session import ReconnectPolicy, Session, SessionStats
from ..transports import Transport, WebSocketTransport
from ._timeline import TimelineData, save_timeline

__all__ = [
    "BLOCK_MS",
    "ReplayError",
    "ReplayResult",
    "Turn",
    "build_parser",
    "main",
    "rebuild",
    "replay",
    "replay_sync",
]

#: Capture and playback block, in ms (what a sound card callback typically delivers).
BLOCK_MS = 20
_OUT_RATE = 24_000
_OUT_BLOCK = _OUT_RATE * BLOCK_MS // 1000
_BURST_MS = 800
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_AUDIO_FIELDS = {
    # event type: the field that carries base64 audio
    "input_audio_buffer.append": "audio",
    "response.output_audio.delta": "delta",
    "response.audio.delta": "delta",
}
#: How responses may end without the turn counting as failed.
_OK_CANCEL_REASONS = {"turn_detected", "client_cancelled"}
#: Server errors from benign races (a cancel that arrived after the response ended, a
#: response.create while the server had just started one): no turn is lost by them.
_BENIGN_ERROR_CODES = {"response_cancel_not_active", "conversation_already_has_active_response"}


class ReplayError(RealtimeError, ValueError):
    """Bad input to the replay: an unreadable WAV file, a bad option, a bad recording."""


# --- results ------------------------------------------------------------------------------


@dataclass
class Turn:
    """One line of the transcript.

    Attributes:
        role: ``user`` or ``assistant`` (``tool`` for function calls and their outputs).
        item_id: The conversation item.
        text: The words: transcript of user audio, assistant text or audio transcript.
        status: Item status; for assistant items, how their response ended.
        at_ms: Device-clock time the item appeared, in ms.
        start_ms: User audio: VAD ``audio_start_ms`` (input-audio clock, ms); assistant:
            device-clock time of the first audio or text delta, in ms.
        end_ms: User audio: VAD ``audio_end_ms``; assistant: device-clock time the item
            was done, in ms.
        audio_ms: Assistant audio received for the item, in ms.
        truncated_at_ms: Where a barge-in truncated the item (``audio_end_ms``), in ms.
        response_id: The response that produced the item.
        reason: Why the response ended that way (``turn_detected``, ``max_output_tokens``).
    """

    role: str
    item_id: str
    text: str
    status: str | None = None
    at_ms: float | None = None
    start_ms: float | None = None
    end_ms: float | None = None
    audio_ms: float = 0.0
    truncated_at_ms: int | None = None
    response_id: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class ReplayResult:
    """What a replay (or a rebuild from ``events.jsonl``) produced.

    Attributes:
        turns: The transcript, in conversation order.
        report: Per-turn latency, usage and cost, counters (what ``report.json`` holds).
        failures: Why turns failed (empty when all went well).
        paths: Written files by name (``transcript.md``, ``events.jsonl``, ``timeline.png``,
            ``audio`` for the first response WAV, …); empty without an output directory.
        audio_files: Response WAVs by item id.
        records: Everything recorded, as written to ``events.jsonl``.
        stats: The live session's counters (``None`` for a rebuild).
    """

    turns: list[Turn]
    report: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    audio_files: dict[str, Path] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    stats: SessionStats | None = None

    @property
    def ok(self) -> bool:
        """Whether every turn got a complete answer and the server reported no error."""
        return not self.failures

    def texts(self, role: str = "assistant") -> list[str]:
        """The text of every turn of a role, in order."""
        return [t.text for t in self.turns if t.role == role]

    def transcript(self) -> list[dict[str, Any]]:
        """The transcript as JSON-ready dicts (what ``transcript.json`` holds in ``turns``)."""
        return [t.to_dict() for t in self.turns]

    def markdown(self) -> str:
        """The transcript as Markdown (what ``transcript.md`` holds)."""
        return _markdown(self.turns, self.failures)


# --- recording ------------------------------------------------------------------------------


class _Recorder:
    """Keeps every event both ways with timestamps, audio elided unless asked to keep it."""

    def __init__(self, clock: Callable[[], float], keep_audio: bool) -> None:
        self.records: list[dict[str, Any]] = []
        self._clock = clock
        self._keep_audio = keep_audio
        self._t0 = time.monotonic()

    def add(self, direction: str, event: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "t": round(time.monotonic() - self._t0, 6),
            "at_ms": round(self._clock(), 3),
            "direction": direction,
            "event": event,
        }
        key = _AUDIO_FIELDS.get(str(event.get("type", "")))
        if key is not None and not self._keep_audio and isinstance(event.get(key), str):
            record["event"] = {**event, key: ""}
            record["elided"] = {key: _b64_len(event[key])}
        self.records.append(record)
        return record

    def frame(self, direction: str, data: bytes | str) -> None:
        self.add(direction, frame_event(data))


def _b64_len(data: str) -> int:
    """Bytes a base64 string decodes to, without decoding it."""
    pad = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return len(data) * 3 // 4 - pad if data else 0


class _RecordingTransport(Transport):
    """Delegates to another transport and records every frame both ways."""

    def __init__(self, inner: Transport, recorder: _Recorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def connect(self) -> None:
        await self._inner.connect()

    async def send(self, data: bytes | str) -> None:
        await self._inner.send(data)
        self._recorder.frame("client", data)

    async def recv(self) -> bytes | str:
        data = await self._inner.recv()
        self._recorder.frame("server", data)
        return data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)

    @property
    def closed(self) -> bool:
        return self._inner.closed


# --- inputs --------------------------------------------------------------------------------


@dataclass
class _Input:
    path: Path
    samples: npt.NDArray[np.float32]
    sample_rate: int

    @property
    def duration_ms(self) -> float:
        return len(self.samples) * 1000.0 / self.sample_rate

    def blocks(self) -> list[npt.NDArray[np.float32]]:
        # Block edges at round(k * rate / 50): exact 20 ms on average at any rate.
        n = len(self.samples)
        count = math.ceil(n * 1000 / (self.sample_rate * BLOCK_MS))
        edges = [round(k * self.sample_rate * BLOCK_MS / 1000) for k in range(count + 1)]
        return [self.samples[a : min(b, n)] for a, b in zip(edges, edges[1:], strict=False)]


def _load(path: str | os.PathLike[str]) -> _Input:
    p = Path(path)
    try:
        samples, rate = read_wav(p)
    except (OSError, AudioError, ValueError) as exc:
        raise ReplayError(f"cannot read {p}: {exc}") from exc
    if samples.ndim == 2:
        samples = samples.mean(axis=1).astype(np.float32)
    if len(samples) == 0:
        raise ReplayError(f"{p} holds no audio")
    try:
        # The session resamples to 24 kHz with the same resampler: fail now, not mid-run.
        Resampler(int(rate), _OUT_RATE)
    except AudioError as exc:
        raise ReplayError(f"{p}: unsupported sample rate {rate} Hz: {exc}") from exc
    return _Input(p, np.ascontiguousarray(samples, dtype=np.float32), int(rate))


def _burst(start: int, frames: int, rate: int) -> npt.NDArray[np.float32]:
    """Frames ``start..start+frames`` of a 0.8 s voiced burst (loud enough for any VAD)."""
    total = rate * _BURST_MS // 1000
    idx = np.arange(start, min(start + frames, total))
    t = idx / rate
    fade = np.minimum(1.0, np.minimum(idx, total - idx) / (0.01 * rate))
    x = 0.3 * np.sin(2 * np.pi * 210 * t) * (1 + 0.4 * np.sin(2 * np.pi * 4 * t)) * fade
    out = np.zeros(frames, dtype=np.float32)
    out[: len(x)] = x
    return out


# --- the live run ----------------------------------------------------------------------------


@dataclass
class _Config:
    speed: float
    push_to_talk: bool
    barge_in_at: list[float]
    turn_timeout: float
    keep_audio: bool
    progress: bool
    log: TextIO | None


class _Driver:
    """The simulated sound card and the simulated user (see the module docstring)."""

    def __init__(
        self, session: Session, playback: PlaybackBuffer, cfg: _Config, recorder: _Recorder
    ) -> None:
        self.session = session
        self.playback = playback
        self.cfg = cfg
        self.recorder = recorder
        self.ticks = 0
        self.input_track: list[npt.NDArray[np.float32]] = []
        self.output_track: list[npt.NDArray[np.float32]] = []
        self.failures: list[str] = []
        self.barge_ins: list[float] = []
        self.inputs: list[tuple[float, float, str]] = []
        self.audio: dict[str, list[npt.NDArray[np.int16]]] = {}
        self.played: dict[str, list[float]] = {}
        self._changed = asyncio.Event()
        self._barges = sorted(t * 1000.0 for t in cfg.barge_in_at)
        self._burst_pos: int | None = None
        self._rate = _OUT_RATE
        self._monitors: dict[int, Resampler] = {}
        self._pressed = not cfg.push_to_talk
        self._commits = 0
        self._unanswered = False
        self._responses_done = 0
        self._ptt_tasks: list[asyncio.Task[Any]] = []
        self._closed_error: BaseException | None = None
        self._t0 = 0.0
        self._progress = _Progress(cfg.progress)
        self._commit_marks: dict[int, int] = {}
        self._barge_pending = False
        self._next_file_waiting = False
        self._tail_left = 0
        self.skipped_barge_ins: list[float] = []
        self.total_ms = 0.0
        self._silence_rate = 0
        self._silence_k = 0

    def now_ms(self) -> float:
        return float(self.ticks * BLOCK_MS)

    # --- events from the session ----------------------------------------------------

    async def consume(self) -> None:
        try:
            async for event in self.session:
                self._on_event(event)
        except RealtimeError as exc:
            self._closed_error = exc
        finally:
            self._changed.set()

    def _on_event(self, event: Any) -> None:
        self._changed.set()
        if isinstance(event, ev.ResponseOutputAudioDelta):
            self.audio.setdefault(event.item_id, []).append(event.pcm16())
        elif isinstance(event, ev.InputAudioBufferCommitted):
            self._commits += 1
            self._unanswered = True
        elif isinstance(event, ev.ResponseCreated):
            if event.response.conversation_id is not None:
                self._unanswered = False
        elif isinstance(event, ev.ResponseDone):
            self._responses_done += 1
            self._progress.note(f"response {self._responses_done} {event.response.status}")
            self._log(
                f"[{self.now_ms() / 1000:7.2f} s] response {event.response.id} "
                f"{event.response.status}"
            )
        elif isinstance(event, ev.Error):
            self._log(f"[{self.now_ms() / 1000:7.2f} s] server error: {event.error.message}")

    def _log(self, line: str) -> None:
        if self.cfg.log is not None and not self._progress.enabled:
            print(line, file=self.cfg.log, flush=True)

    # --- the device clock -------------------------------------------------------------

    async def tick(self, block: npt.NDArray[np.float32] | None, rate: int) -> None:
        """One 20 ms period: capture (``block`` or silence), play, pace."""
        now = self.now_ms()
        if self._barges and now >= self._barges[0]:
            self._barges.pop(0)
            await self._barge_in(now)
        frames = len(block) if block is not None else self._silence_frames(rate)
        captured = (
            block.astype(np.float32, copy=True)
            if block is not None
            else np.zeros(frames, dtype=np.float32)
        )
        if self._burst_pos is not None:
            captured += _burst(self._burst_pos, frames, rate)
            self._burst_pos += frames
            if self._burst_pos >= rate * _BURST_MS // 1000:
                self._burst_pos = None
                self._tail_left = self._tail_ticks()
                if self.cfg.push_to_talk:
                    self._release()
        elif block is None and self._tail_left > 0:
            self._tail_left -= 1
        sending = self._pressed or self._burst_pos is not None
        if sending:
            await self.session.send_audio(captured, rate)
        monitor = self._monitors.get(rate)
        if monitor is None:
            monitor = self._monitors[rate] = Resampler(rate, _OUT_RATE)
        heard = monitor.process(captured) if rate != _OUT_RATE else captured
        self.input_track.append(heard if sending else np.zeros_like(heard))
        self.output_track.append(self.playback.read(_OUT_BLOCK))
        position = self.playback.position()
        if position is not None and position.played_ms > 0:
            # [first tick played, end of the last tick that played more, played ms]
            span = self.played.setdefault(position.item_id, [now, now, 0.0])
            if position.played_ms > span[2]:
                span[1], span[2] = now + BLOCK_MS, position.played_ms
        self.ticks += 1
        self._progress.update(self.now_ms(), self.total_ms)
        await self._pace()

    def _silence_frames(self, rate: int) -> int:
        """Frames of the next silent block: edges at round(k * rate / 50), like blocks()."""
        if rate != self._silence_rate:
            self._silence_rate, self._silence_k = rate, 0
        k = self._silence_k
        self._silence_k += 1
        step = rate * BLOCK_MS / 1000
        return round((k + 1) * step) - round(k * step)

    async def _pace(self) -> None:
        if self.cfg.speed <= 0:
            await asyncio.sleep(0)  # let the reader run between blocks
            return
        loop = asyncio.get_running_loop()
        target = self._t0 + self.ticks * BLOCK_MS / 1000.0 / self.cfg.speed
        delay = target - loop.time()
        await asyncio.sleep(delay if delay > 0 else 0)

    async def _barge_in(self, now: float) -> None:
        self.barge_ins.append(now)
        self.recorder.add("meta", {"type": "replay.barge_in", "at_ms": now})
        self._log(f"[{now / 1000:7.2f} s] barge-in")
        self._progress.note("barge-in")
        if self.cfg.push_to_talk:
            await self.session.push_to_talk_press()
            self._pressed = False
        self._barge_pending = True
        if not self._next_file_waiting:
            self._burst_pos = 0

    def _release(self) -> None:
        async def release() -> None:
            try:
                await self.session.push_to_talk_release()
            except ServerError as exc:
                self.failures.append(f"push-to-talk commit refused: {exc}")

        self._ptt_tasks.append(asyncio.ensure_future(release()))

    # --- the simulated user ---------------------------------------------------------------

    async def run(self, inputs: list[_Input]) -> None:
        try:
            await self._run(inputs)
        finally:
            # Whatever ends the run, later messages must not land on the progress line.
            self._progress.done()

    async def _run(self, inputs: list[_Input]) -> None:
        self._t0 = asyncio.get_running_loop().time()
        self.total_ms = sum(f.duration_ms for f in inputs)
        for index, item in enumerate(inputs):
            start = self.now_ms()
            self._commit_marks[index] = self._commits
            self.recorder.add(
                "meta",
                {"type": "replay.input_started", "index": index, "file": str(item.path)},
            )
            self._log(
                f"[{start / 1000:7.2f} s] input {index + 1}/{len(inputs)}: {item.path.name} "
                f"({item.duration_ms / 1000:.2f} s, {item.sample_rate} Hz)"
            )
            self._progress.note(f"input {index + 1}/{len(inputs)}")
            if self.cfg.push_to_talk:
                await self.session.push_to_talk_press()
                self._pressed = True
            self._rate = item.sample_rate
            for block in item.blocks():
                await self._tick_checked(block, item.sample_rate)
            if self.cfg.push_to_talk:
                self._pressed = False
                self._release()
            self.inputs.append((start, self.now_ms(), item.path.name))
            self.recorder.add("meta", {"type": "replay.input_ended", "index": index})
            last = index == len(inputs) - 1
            await self._wait_answered(index, item.path.name, more=not last)
        await self._finish()

    async def _tick_checked(self, block: npt.NDArray[np.float32] | None, rate: int) -> None:
        if self._closed_error is not None or self.session.closed:
            raise _ConnectionLost(self._closed_error)
        await self.tick(block, rate)

    def _answered(self, commits_before: int) -> bool:
        if self._commits <= commits_before or self._unanswered:
            return False
        if self._burst_pos is not None or self.session.protocol.speaking:
            return False
        if any(not t.done() for t in self._ptt_tasks):
            return False
        if self.session.protocol.active_response_id is not None:
            return False
        return self.playback.buffered_ms <= 0 and not self.playback.playing

    async def _wait_answered(self, index: int, name: str, *, more: bool) -> None:
        """Silence until the turns of this input are answered and played."""
        commits_before = self._commit_marks.get(index, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.turn_timeout
        self._next_file_waiting = more
        self._barge_pending = False
        # Speech needs trailing silence before VAD ends the turn: always give some.
        self._tail_left = self._tail_ticks()
        try:
            while not self._answered(commits_before):
                if self._barge_pending and more:
                    return  # the next file is the barge-in
                if loop.time() > deadline:
                    what = (
                        "no response" if self._commits <= commits_before else "no complete answer"
                    )
                    self.failures.append(
                        f"input {index + 1} ({name}): {what} within {self.cfg.turn_timeout:g} s"
                    )
                    return
                if self.cfg.speed > 0 or self._must_tick():
                    await self._tick_checked(None, self._rate)
                    continue
                # Unpaced: the device clock waits for the server instead of ticking.
                self._changed.clear()
                if self._closed_error is not None or self.session.closed:
                    raise _ConnectionLost(self._closed_error)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)
        finally:
            self._next_file_waiting = False

    def _must_tick(self) -> bool:
        """Unpaced: whether the clock has to run (audio to play or to capture)."""
        return (
            self.playback.buffered_ms > 0
            or self._burst_pos is not None
            or self._tail_left > 0
            or (self.session.protocol.speaking and not self.cfg.push_to_talk)
        )

    def _tail_ticks(self) -> int:
        if self.cfg.push_to_talk:
            return 0
        session = self.session.server_session
        silence = 500
        audio = getattr(session, "audio", None)
        td = audio.input.turn_detection if audio is not None and audio.input else None
        if isinstance(td, ev.ServerVad) and td.silence_duration_ms:
            silence = td.silence_duration_ms
        return math.ceil((silence + 300) / BLOCK_MS)

    async def _finish(self) -> None:
        """Let late input transcriptions arrive, then stop the clock."""
        if _transcription_on(self.session):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + min(5.0, self.cfg.turn_timeout)
            while loop.time() < deadline and _transcripts_pending(self.session.protocol):
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)
        for at_ms in self._barges:
            self.skipped_barge_ins.append(at_ms)
            self._log(f"barge-in at {at_ms / 1000:.2f} s skipped: the replay ended first")
        self._barges.clear()


class _ConnectionLost(Exception):
    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(str(cause) if cause else "the connection closed")
        self.cause = cause


def _transcription_on(session: Session) -> bool:
    server = session.server_session
    audio = getattr(server, "audio", None)
    return bool(audio is not None and audio.input and audio.input.transcription)


def _transcripts_pending(protocol: RealtimeProtocol) -> bool:
    return any(
        item.role == "user"
        and any(p.type == "input_audio" for p in item.parts)
        and not item.input_transcript_done
        for item in protocol.conversation
    )


class _Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = 0.0
        self._note = ""

    def note(self, text: str) -> None:
        self._note = text

    def update(self, now_ms: float, total_ms: float) -> None:
        if not self.enabled:
            return
        t = time.monotonic()
        if t - self._last < 0.1:
            return
        self._last = t
        fraction = min(1.0, now_ms / total_ms) if total_ms > 0 else 0.0
        filled = round(fraction * 30)
        bar = "#" * filled + "-" * (30 - filled)
        sys.stderr.write(
            f"\r[{bar}] {now_ms / 1000:6.1f} s (input {total_ms / 1000:.1f} s)  {self._note:<28}"
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 90 + "\r")
            sys.stderr.flush()


# --- building the transcript and the report (live and rebuilt alike) -----------------------


def _timings(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per item: device-clock times it appeared, first delta, done (from the records)."""
    out: dict[str, dict[str, float]] = {}
    for rec in records:
        if rec.get("direction") != "server":
            continue
        event = rec["event"]
        kind = event.get("type", "")
        at = float(rec.get("at_ms", 0.0))
        item_id = event.get("item_id")
        item = event.get("item")
        if isinstance(item, dict) and item.get("id"):
            item_id = item["id"]
        if not isinstance(item_id, str):
            continue
        slot = out.setdefault(item_id, {})
        slot.setdefault("at_ms", at)
        if kind.endswith(".delta") and kind.startswith("response."):
            slot.setdefault("first_delta_ms", at)
            slot["last_delta_ms"] = at
        if kind in ("response.output_item.done", "conversation.item.done"):
            slot["done_ms"] = at
    return out


def _received_ms(records: list[dict[str, Any]]) -> dict[str, float]:
    """Assistant audio received per item, in ms (PCM16 at 24 kHz: 48 bytes a ms)."""
    out: dict[str, float] = {}
    for rec in records:
        if rec.get("direction") != "server":
            continue
        event = rec["event"]
        if event.get("type") not in ("response.output_audio.delta", "response.audio.delta"):
            continue
        nbytes = (rec.get("elided") or {}).get("delta")
        if nbytes is None:
            nbytes = _b64_len(event.get("delta") or "")
        item_id = str(event.get("item_id"))
        out[item_id] = out.get(item_id, 0.0) + nbytes / 48.0
    return out


def _build_turns(protocol: RealtimeProtocol, records: list[dict[str, Any]]) -> list[Turn]:
    timings = _timings(records)
    received = _received_ms(records)
    turns: list[Turn] = []
    for item in protocol.conversation:
        times = timings.get(item.id, {})
        response = protocol.responses.get(item.response_id) if item.response_id else None
        details = response.status_details if response is not None else None
        reason = getattr(details, "reason", None) if details is not None else None
        if item.type == "message" and item.role == "user":
            has_audio = any(p.type == "input_audio" for p in item.parts)
            text = item.input_transcript if has_audio else item.text
            if has_audio and item.input_transcript_error is not None:
                text = f"[transcription failed: {item.input_transcript_error.message}]"
            turns.append(
                Turn(
                    role="user",
                    item_id=item.id,
                    text=text.strip(),
                    status=item.status,
                    at_ms=times.get("at_ms"),
                    start_ms=_num(item.speech_start_ms),
                    end_ms=_num(item.speech_end_ms),
                )
            )
        elif item.type == "message":
            turns.append(
                Turn(
                    role=item.role or "assistant",
                    item_id=item.id,
                    text=item.text.strip(),
                    status=response.status if response is not None else item.status,
                    at_ms=times.get("at_ms"),
                    start_ms=times.get("first_delta_ms"),
                    end_ms=times.get("done_ms"),
                    audio_ms=round(received.get(item.id, 0.0), 3),
                    truncated_at_ms=item.truncated_at_ms,
                    response_id=item.response_id,
                    reason=reason,
                )
            )
        elif item.type in ("function_call", "function_call_output"):
            text = (
                f"{item.name}({item.arguments})"
                if item.type == "function_call"
                else f"-> {item.output}"
            )
            turns.append(
                Turn(
                    role="tool",
                    item_id=item.id,
                    text=text,
                    status=item.status,
                    at_ms=times.get("at_ms"),
                    response_id=item.response_id,
                )
            )
    return turns


def _num(value: int | None) -> float | None:
    return None if value is None else float(value)


def _failures(protocol: RealtimeProtocol, records: list[dict[str, Any]]) -> list[str]:
    """Failed or incomplete responses and server errors, from the recorded events."""
    out: list[str] = []
    for response in protocol.responses.values():
        details = response.status_details
        reason = getattr(details, "reason", None)
        if response.status == "completed":
            continue
        if response.status == "cancelled" and reason in _OK_CANCEL_REASONS:
            continue
        error = getattr(details, "error", None)
        why = getattr(error, "message", None) or reason or "no reason given"
        out.append(f"response {response.id} {response.status}: {why}")
    for rec in records:
        event = rec["event"]
        if rec.get("direction") == "server" and event.get("type") == "error":
            err = event.get("error")
            err = err if isinstance(err, dict) else {}
            if err.get("code") in _BENIGN_ERROR_CODES:
                continue
            code = err.get("code") or err.get("type") or "error"
            out.append(f"server error {code}: {err.get('message', '')}")
    return out


def _latency_report(
    protocol: RealtimeProtocol,
    turns: list[Turn],
    records: list[dict[str, Any]],
    stats: SessionStats | None,
) -> list[dict[str, Any]]:
    """One entry per response: wall-clock latency from the session, device-clock times."""
    measured = {t.response_id: t for t in stats.turns} if stats is not None else {}
    stopped = [
        float(rec["at_ms"])
        for rec in records
        if rec.get("direction") == "server"
        and rec["event"].get("type") == "input_audio_buffer.speech_stopped"
    ]
    by_response: dict[str, list[Turn]] = {}
    for turn in turns:
        if turn.role != "user" and turn.response_id:
            by_response.setdefault(turn.response_id, []).append(turn)
    out: list[dict[str, Any]] = []
    for rid, response in protocol.responses.items():
        stat = measured.get(rid)
        mine = by_response.get(rid, [])
        first = min((t.start_ms for t in mine if t.start_ms is not None), default=None)
        before = [s for s in stopped if first is not None and s <= first]
        out.append(
            {
                "response_id": rid,
                "status": response.status,
                "reason": getattr(response.status_details, "reason", None),
                "speech_to_audio_ms": _round(stat.speech_to_audio_ms) if stat else None,
                "create_to_delta_ms": _round(stat.create_to_delta_ms) if stat else None,
                "duration_ms": _round(stat.duration_ms) if stat else None,
                "first_delta_at_ms": first,
                "speech_stop_to_first_delta_device_ms": (
                    round(first - before[-1], 3) if first is not None and before else None
                ),
                "audio_ms": round(sum(t.audio_ms for t in mine), 3),
                "truncated_at_ms": next(
                    (t.truncated_at_ms for t in mine if t.truncated_at_ms is not None), None
                ),
                "usage": response.usage.model_dump(exclude_none=True) if response.usage else None,
            }
        )
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _markdown(turns: list[Turn], failures: list[str]) -> str:
    lines = ["# Transcript", ""]
    for turn in turns:
        when = ""
        if turn.role == "user" and turn.start_ms is not None:
            end = f"{turn.end_ms / 1000:.2f}" if turn.end_ms is not None else "…"
            when = f" ({turn.start_ms / 1000:.2f}–{end} s of input)"
        elif turn.start_ms is not None:
            when = f" (at {turn.start_ms / 1000:.2f} s)"
        extra = ""
        if turn.role == "assistant":
            extra = f" — {turn.audio_ms / 1000:.2f} s audio"
            if turn.truncated_at_ms is not None:
                extra += f", cut at {turn.truncated_at_ms / 1000:.2f} s"
            if turn.status and turn.status != "completed":
                extra += f", {turn.status}" + (f" ({turn.reason})" if turn.reason else "")
        text = turn.text or "(no text)"
        lines.append(f"- **{turn.role}**{when}: {text}{extra}")
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {f}" for f in failures]
    return "\n".join(lines) + "\n"


# --- writing ----------------------------------------------------------------------------------


def _prepare_out(out: Path) -> None:
    """Create the output directory and prove it is writable, before any run starts."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".realtime-replay-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ReplayError(f"cannot write to output directory {out}: {exc}") from exc


def _write_outputs(result: ReplayResult, out: Path, meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    transcript = {**meta, "turns": result.transcript(), "failures": result.failures}
    paths = {
        "transcript.json": out / "transcript.json",
        "transcript.md": out / "transcript.md",
        "report.json": out / "report.json",
    }
    paths["transcript.json"].write_text(json.dumps(transcript, indent=2, ensure_ascii=False))
    paths["transcript.md"].write_text(result.markdown(), encoding="utf-8")
    paths["report.json"].write_text(json.dumps(result.report, indent=2, ensure_ascii=False))
    result.paths.update(paths)


def _write_events(records: list[dict[str, Any]], path: Path) -> None:
    with path.open("wb") as f:
        for rec in records:
            f.write(orjson.dumps(rec) + b"\n")


def _write_item_audio(
    audio: dict[str, list[npt.NDArray[np.int16]]],
    turns: list[Turn],
    out: Path,
    *,
    replace_stale: bool = True,
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if replace_stale:
        for stale in out.glob("response-*.wav"):
            stale.unlink()  # from an earlier run into the same directory
    n = 0
    for turn in turns:
        chunks = audio.get(turn.item_id)
        if turn.role != "assistant" or not chunks:
            continue
        n += 1
        path = out / f"response-{n:02d}-{turn.item_id}.wav"
        write_wav(path, np.concatenate(chunks), _OUT_RATE)
        files[turn.item_id] = path
    return files


# --- the public entry points ------------------------------------------------------------------


async def replay(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    model: str = "gpt-realtime",
    api_key: str | None = None,
    responder: str | None = None,
    speed: float = 1.0,
    push_to_talk: bool = False,
    barge_in_at: Sequence[float] = (),
    voice: str | None = None,
    instructions: str | None = None,
    dialect: Literal["ga", "beta"] = "ga",
    transcription_model: str | None = "gpt-4o-mini-transcribe",
    keep_audio: bool = False,
    turn_timeout: float = 30.0,
    open_timeout: float = 10.0,
    progress: bool = False,
    log: TextIO | None = None,
    on_server: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Stream WAV files through a Realtime session as a microphone would; record it all.

    Args:
        inputs: WAV files, one user turn each: mono or multi-channel (averaged), at a rate
            in Hz whose ratio to 24 kHz reduces to terms <= 1024 (all common rates).
        out_dir: Where to write the outputs; ``None`` writes nothing (the result has it all).
        url: Server base URL. ``None``: the embedded local server when ``responder`` is
            given or ``OPENAI_API_KEY`` is unset, else the OpenAI API.
        model: The model.
        api_key: Default ``OPENAI_API_KEY``.
        responder: Responder of the embedded server (``echo``, ``script:FILE``, ``tts``).
        speed: Pace: 1.0 real time, 4.0 four times faster, 0 as fast as possible.
        push_to_talk: Commit each file and ask for a response (no server VAD).
        barge_in_at: Device-clock times to barge in, in seconds.
        voice: Output voice.
        instructions: System instructions.
        dialect: ``"ga"`` or ``"beta"``.
        transcription_model: Input transcription model, ``None`` for none.
        keep_audio: Keep audio payloads in ``events.jsonl`` (else elided to their length).
        turn_timeout: Seconds to wait for each input's answer before calling it failed.
        open_timeout: Seconds to wait for the connection.
        progress: Show a progress bar on stderr.
        log: Where to print one line per step (``None``: quiet).
        on_server: Called with a description of the server used (e.g. to print it).

    Returns:
        The transcript, report, failures and written paths.

    Raises:
        ReplayError: An input cannot be read or has an unsupported sample rate, an option
            is out of range, the URL's scheme is unsupported, or ``out_dir`` cannot be
            written.
        ConnectError: The server cannot be reached (``AuthenticationError`` for a bad key).

    A connection lost mid-replay does not raise: it is one of ``failures`` and what was
    recorded up to then is written.
    """
    if speed < 0 or not math.isfinite(speed):
        raise ReplayError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
    if not (turn_timeout > 0 and math.isfinite(turn_timeout)):
        raise ReplayError(f"turn_timeout must be a finite number > 0 s, got {turn_timeout}")
    if not all(t >= 0 and math.isfinite(t) for t in barge_in_at):
        raise ReplayError(f"barge-in times must be finite and >= 0 s, got {list(barge_in_at)}")
    if not inputs:
        raise ReplayError("no input files")
    files = [_load(p) for p in inputs]
    use_local = responder is not None or (url is None and not os.environ.get("OPENAI_API_KEY"))
    if use_local and url is not None:
        raise ReplayError("responder applies to the embedded local server only (drop url)")
    if url is not None:
        try:
            realtime_url(url, model)
        except ConnectError as exc:
            raise ReplayError(str(exc)) from exc
    if out_dir is not None:
        _prepare_out(Path(out_dir))
    server: Any = None
    if use_local:
        from ..server import LocalServer, ResponderError

        try:
            server = LocalServer(responder=responder or "echo", speed=speed)
            await server.start()
        except ResponderError as exc:
            raise ReplayError(str(exc)) from exc
        url = server.url
        if on_server is not None:
            why = "" if responder else " (no OPENAI_API_KEY)"
            on_server(
                f"using the embedded local server{why} at {url}, "
                f"{(responder or 'echo').split(':')[0]} responder"
            )
    elif on_server is not None:
        on_server(f"using {url or os.environ.get('OPENAI_BASE_URL') or 'the OpenAI API'}")
    try:
        return await _live(
            files,
            Path(out_dir) if out_dir is not None else None,
            url=url,
            model=model,
            api_key=api_key,
            dialect=dialect,
            voice=voice,
            instructions=instructions,
            transcription_model=transcription_model,
            open_timeout=open_timeout,
            cfg=_Config(
                speed=speed,
                push_to_talk=push_to_talk,
                barge_in_at=list(barge_in_at),
                turn_timeout=turn_timeout,
                keep_audio=keep_audio,
                progress=progress,
                log=log,
            ),
            meta={
                "inputs": [str(f.path) for f in files],
                "model": model,
                "dialect": dialect,
                "speed": speed,
                "push_to_talk": push_to_talk,
                "barge_in_at": list(barge_in_at),
                "server": "embedded" if use_local else (url or "openai"),
                "responder": (responder or "echo") if use_local else None,
            },
        )
    finally:
        if server is not None:
            await server.stop()


async def _live(
    files: list[_Input],
    out: Path | None,
    *,
    url: str | None,
    model: str,
    api_key: str | None,
    dialect: Literal["ga", "beta"],
    voice: str | None,
    instructions: str | None,
    transcription_model: str | None,
    open_timeout: float,
    cfg: _Config,
    meta: dict[str, Any],
) -> ReplayResult:
    driver_box: list[_Driver] = []

    def clock() -> float:
        return driver_box[0].now_ms() if driver_box else 0.0

    recorder = _Recorder(clock, cfg.keep_audio)
    recorder.add("meta", {"type": "replay.started", **meta})
    ws_url = realtime_url(url, model)
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        if not ws_url.split("//", 1)[-1].startswith(_LOOPBACK):
            raise AuthenticationError("no API key: set OPENAI_API_KEY or pass --url")
        key = "local-replay-key"
    headers = {"Authorization": f"Bearer {key}"}
    if dialect == "beta":
        headers["OpenAI-Beta"] = "realtime=v1"

    def transport() -> Transport:
        return _RecordingTransport(
            WebSocketTransport(ws_url, headers=headers, open_timeout=open_timeout), recorder
        )

    audio_in: dict[str, Any] = {}
    if transcription_model:
        audio_in["transcription"] = {"model": transcription_model}
    if cfg.push_to_talk:
        audio_in["turn_detection"] = None
    config: dict[str, Any] = {"audio": {"input": audio_in}} if audio_in else {}
    session = await connect(
        model,
        transport=transport,
        dialect=dialect,
        session=config or None,
        instructions=instructions,
        voice=voice,
        reconnect=ReconnectPolicy(max_attempts=0, recycle_before_expiry_s=0),
        open_timeout=open_timeout,
    )
    playback = PlaybackBuffer(_OUT_RATE)
    session.attach(sink=playback, iterate_audio=True)  # the driver records every delta
    driver = _Driver(session, playback, cfg, recorder)
    driver_box.append(driver)
    consumer = asyncio.ensure_future(driver.consume())
    lost: _ConnectionLost | None = None
    wall0 = time.monotonic()
    try:
        await driver.run(files)
    except _ConnectionLost as exc:
        lost = exc
    finally:
        await session.close()
        consumer.cancel()
        with contextlib.suppress(BaseException):
            await consumer
    wall_s = time.monotonic() - wall0
    recorder.add("meta", {"type": "replay.ended", "wall_s": round(wall_s, 3)})
    records = recorder.records
    turns = _build_turns(session.protocol, records)
    failures = driver.failures + _failures(session.protocol, records)
    if lost is not None:
        failures.append(f"connection lost: {lost}")
    stats = session.stats
    report = {
        **meta,
        "ok": not failures,
        "failures": failures,
        "duration_ms": driver.now_ms(),
        "wall_s": round(wall_s, 3),
        "turns": _latency_report(session.protocol, turns, records, stats),
        "usage": asdict(stats.usage),
        "cost_usd": round(stats.cost_usd, 6),
        "audio_sent_ms": round(stats.audio_sent_ms, 3),
        "audio_received_ms": round(stats.audio_received_ms, 3),
        "dropped_audio_ms": round(stats.dropped_audio_ms, 3),
        "server_errors": stats.server_errors,
        "barge_ins_at_ms": driver.barge_ins,
        "barge_ins_skipped_at_ms": driver.skipped_barge_ins,
        "playback": asdict(playback.stats()),
    }
    result = ReplayResult(turns, report, failures, records=records, stats=stats)
    if out is not None:
        try:
            _write_live(result, out, meta, driver, report=report)
        except (OSError, AudioError) as exc:
            raise ReplayError(f"cannot write the outputs to {out}: {exc}") from exc
    return result


def _write_live(
    result: ReplayResult,
    out: Path,
    meta: dict[str, Any],
    driver: _Driver,
    *,
    report: dict[str, Any],
) -> None:
    """Everything a live run writes; OSError propagates (the caller reports it)."""
    records, turns = result.records, result.turns
    _write_outputs(result, out, meta)
    events_path = out / "events.jsonl"
    _write_events(records, events_path)
    result.paths["events.jsonl"] = events_path
    result.audio_files = _write_item_audio(driver.audio, turns, out)
    input_track = np.concatenate(driver.input_track or [np.zeros(0, np.float32)])
    output_track = np.concatenate(driver.output_track or [np.zeros(0, np.float32)])
    # The monitor resampler's delay makes the input track a few samples off: align.
    input_track = np.pad(input_track, (0, max(0, len(output_track) - len(input_track))))
    input_track = input_track[: len(output_track)]
    conversation = out / "conversation.wav"
    write_wav(conversation, np.stack([input_track, output_track], axis=1), _OUT_RATE)
    result.paths["conversation.wav"] = conversation
    picture = out / "timeline.png"
    width, height = save_timeline(
        picture,
        _timeline_data(turns, records, driver, input_track, output_track),
    )
    result.paths["timeline.png"] = picture
    report["timeline_png"] = {"width": width, "height": height}
    result.paths["report.json"].write_text(json.dumps(report, indent=2, ensure_ascii=False))


def _timeline_data(
    turns: list[Turn],
    records: list[dict[str, Any]],
    driver: _Driver,
    input_track: npt.NDArray[np.float32],
    output_track: npt.NDArray[np.float32],
) -> TimelineData:
    speech: list[tuple[float, float | None]] = []
    truncations: list[float] = []
    for rec in records:
        if rec.get("direction") != "server":
            continue
        event = rec["event"]
        kind = event.get("type")
        # Input-audio ms equal device ms: one block is captured per tick from tick 0.
        if kind == "input_audio_buffer.speech_started":
            speech.append((float(event.get("audio_start_ms", rec["at_ms"])), None))
        elif kind == "input_audio_buffer.speech_stopped" and speech and speech[-1][1] is None:
            speech[-1] = (speech[-1][0], float(event.get("audio_end_ms", rec["at_ms"])))
    responses = []
    n = 0
    for turn in turns:
        if turn.role != "assistant":
            continue
        n += 1
        span = driver.played.get(turn.item_id)
        if span is None:
            continue  # never played (text only, or cleared before it started)
        start, end = span[0], span[1]
        label = f"R{n}" + ("" if turn.status == "completed" else f" {turn.status or ''}".upper())
        responses.append((start, end, label, turn.status or ""))
        if turn.truncated_at_ms is not None and turn.truncated_at_ms < turn.audio_ms - 1:
            # Where the audio was cut, on the clock it was played on.
            truncations.append(start + turn.truncated_at_ms)
    return TimelineData(
        sample_rate=_OUT_RATE,
        input_track=input_track,
        output_track=output_track,
        speech=speech,
        inputs=driver.inputs,
        responses=responses,
        barge_ins=driver.barge_ins,
        truncations=truncations,
        title=f"REALTIME-REPLAY  {len(driver.inputs)} INPUT(S)  {n} RESPONSE(S)",
    )


def replay_sync(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> ReplayResult:
    """:func:`replay` for synchronous code (runs its own event loop)."""
    return asyncio.run(replay(inputs, out_dir, **options))


def rebuild(
    events_path: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> ReplayResult:
    """Re-drive a recording through the protocol core, offline.

    Any cassette works: a replay's ``events.jsonl`` or the local server's ``--record``
    file (its first connection; the dialect comes from ``connection.opened``).

    Elided audio is replayed as silence of the same length, so audio durations and
    truncations come out the same; with ``keep_audio`` recordings the response WAVs are
    written again.

    Args:
        events_path: The recording.
        out_dir: Where to write ``transcript.md`` / ``transcript.json`` / ``report.json``
            (and WAVs when the recording kept audio); ``None`` writes nothing.

    Raises:
        ReplayError: The file is missing or is not a replay recording, or ``out_dir``
            holds a live run's outputs (a rebuild never overwrites those: the live run's
            report has wall-clock latencies and WAVs a rebuild cannot reproduce).
    """
    path = Path(events_path)
    try:
        records = _one_connection(read_recording(path))
    except RecordingError as exc:
        raise ReplayError(str(exc)) from exc
    for number, rec in enumerate(records, 1):
        event = rec["event"]
        if event.get("type") in ("response.output_audio.delta", "response.audio.delta"):
            if not isinstance(event.get("item_id"), str) or not isinstance(event.get("delta"), str):
                raise ReplayError(f"{path}: record {number}: audio delta without item_id or delta")
    if out_dir is not None:
        _check_rebuild_out(path, Path(out_dir))
    meta: dict[str, Any] = next(
        (
            r["event"]
            for r in records
            if r["direction"] == "meta" and r["event"].get("type") == "replay.started"
        ),
        {},
    )
    opened: dict[str, Any] = next(
        (
            r["event"]
            for r in records
            if r["direction"] == "meta" and r["event"].get("type") == "connection.opened"
        ),
        {},
    )
    dialect = meta.get("dialect", opened.get("dialect", "ga"))
    protocol = RealtimeProtocol(dialect="beta" if dialect == "beta" else "ga")
    audio: dict[str, list[npt.NDArray[np.int16]]] = {}
    for rec in records:
        event = rec["event"]
        is_audio = event.get("type") in ("response.output_audio.delta", "response.audio.delta")
        if rec["direction"] == "server" and is_audio and not rec.get("elided"):
            try:
                pcm = pybase64.b64decode(event["delta"], validate=True)
                chunk = np.frombuffer(pcm, dtype="<i2")
            except ValueError as exc:
                raise ReplayError(f"{path}: bad audio in a recorded delta: {exc}") from exc
            audio.setdefault(str(event["item_id"]), []).append(chunk)
    try:
        protocol.receive_all(server_events(records))
    except (RealtimeError, ValueError, TypeError, KeyError) as exc:
        raise ReplayError(f"{path}: cannot replay: {exc}") from exc
    for rec in records:
        # A server recording has no audio clock: its monotonic time stands in.
        rec.setdefault("at_ms", round(float(rec.get("t", 0.0)) * 1000, 3))
    turns = _build_turns(protocol, records)
    failures = _failures(protocol, records)
    report = {
        **{k: v for k, v in meta.items() if k != "type"},
        "rebuilt_from": str(path),
        "ok": not failures,
        "failures": failures,
        "turns": _latency_report(protocol, turns, records, None),
        "usage": asdict(protocol.usage),
    }
    result = ReplayResult(turns, report, failures, records=records)
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            _write_outputs(result, out, {k: v for k, v in meta.items() if k != "type"})
            # Without kept audio there is nothing to rewrite, so nothing is removed.
            result.audio_files = _write_item_audio(audio, turns, out, replace_stale=bool(audio))
        except (OSError, AudioError) as exc:
            raise ReplayError(f"cannot write the outputs to {out}: {exc}") from exc
    return result


def _one_connection(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first connection's records of a server recording that holds several."""
    first = next((r["conn"] for r in records if "conn" in r), None)
    if first is None:
        return records
    return [r for r in records if r.get("conn", first) == first]


def _check_rebuild_out(events: Path, out: Path) -> None:
    """Refuse to write a rebuild over a live run's outputs."""
    if out.resolve() == events.resolve().parent:
        raise ReplayError(
            f"{out} is the recording's own directory; rebuild into another --out directory"
        )
    report = out / "report.json"
    if report.is_file():
        try:
            previous = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if not (isinstance(previous, dict) and "rebuilt_from" in previous):
            raise ReplayError(
                f"{out} holds the outputs of a live run (report.json); "
                "rebuild into another --out directory"
            )


# --- the command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(
        prog="realtime-replay",
        description=(
            "Play WAV files into a Realtime session as a microphone would (headless), "
            "and write the transcript, per-response WAVs, every event, a latency report "
            "and a timeline picture. Without OPENAI_API_KEY it uses the embedded local "
            "server."
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT.wav", help="input files, one turn each")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default replay-out; with --replay: write nothing unless given)",
    )
    p.add_argument(
        "--replay",
        metavar="EVENTS.jsonl",
        help="rebuild the transcript of a recorded session offline (no server)",
    )
    p.add_argument("--url", help="server base URL (default: OpenAI, or the embedded server)")
    p.add_argument(
        "--responder",
        help="use the embedded server with this responder: echo | script:FILE | tts",
    )
    p.add_argument("--model", default="gpt-realtime", help="model (default gpt-realtime)")
    p.add_argument("--voice", help="output voice")
    p.add_argument("--instructions", help="system instructions")
    p.add_argument("--dialect", choices=("ga", "beta"), default="ga", help="protocol dialect")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="pace: 1 real time, 4 four times faster, 0 as fast as possible (default 1)",
    )
    p.add_argument(
        "--push-to-talk",
        action="store_true",
        help="commit each file and ask for a response (default: server VAD)",
    )
    p.add_argument(
        "--barge-in-at",
        type=float,
        action="append",
        default=[],
        metavar="SECONDS",
        help="interrupt at this time on the replay clock (repeatable)",
    )
    p.add_argument(
        "--transcription-model",
        default="gpt-4o-mini-transcribe",
        help="input transcription model, or 'none' (default gpt-4o-mini-transcribe)",
    )
    p.add_argument("--keep-audio", action="store_true", help="keep audio payloads in events.jsonl")
    p.add_argument(
        "--turn-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="wait this long for each input's answer (default 30)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    return p


def _summary(result: ReplayResult, out: Path | None, file: TextIO) -> None:
    latency = {t["response_id"]: t for t in result.report.get("turns", [])}
    n = 0
    for turn in result.turns:
        if turn.role == "user":
            span = ""
            if turn.start_ms is not None and turn.end_ms is not None:
                span = f" [{turn.start_ms / 1000:.2f}-{turn.end_ms / 1000:.2f} s]"
            print(f"user{span}: {turn.text or '(no transcript)'}", file=file)
            continue
        n += 1
        note = ""
        if turn.status and turn.status != "completed":
            note = f" [{turn.status}{': ' + turn.reason if turn.reason else ''}]"
        if turn.truncated_at_ms is not None and turn.truncated_at_ms < turn.audio_ms - 1:
            note += f" [heard {turn.truncated_at_ms / 1000:.2f} of {turn.audio_ms / 1000:.2f} s]"
        print(f"{turn.role}: {turn.text or '(no text)'}{note}", file=file)
        lat = latency.get(turn.response_id or "")
        if lat and turn.role == "assistant":
            parts = []
            for key, label in (
                ("speech_to_audio_ms", "speech stop -> first audio"),
                ("create_to_delta_ms", "create -> first delta"),
                ("duration_ms", "response"),
            ):
                if lat.get(key) is not None:
                    parts.append(f"{label} {lat[key]:.0f} ms")
            if parts:
                print("    " + ", ".join(parts), file=file)
    usage = result.report.get("usage") or {}
    if usage:
        cost = result.report.get("cost_usd")
        print(
            f"usage: {usage.get('responses', 0)} responses, "
            f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens"
            + (f", about ${cost:.4f}" if isinstance(cost, float) else ""),
            file=file,
        )
    if out is not None and result.paths:
        names = sorted(p.name for p in result.paths.values())
        wavs = len(result.audio_files)
        listing = ", ".join(names) + (f", {wavs} response WAV(s)" if wavs else "")
        print(f"outputs in {out}/: {listing}", file=file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0: every turn answered; 1: a turn failed (reason printed), including a connection
    lost mid-run (the outputs are still written); 2: bad usage or input (unreadable or
    unsupported WAV, bad option or URL, unwritable ``--out``, bad recording); 3: the
    server could not be reached or refused the session (API key, model, session config).
    """
    args = build_parser().parse_args(argv)
    tty = sys.stderr.isatty()

    def error(message: str, status: int) -> int:
        print(f"realtime-replay: error: {message}", file=sys.stderr)
        return status

    if args.replay:
        if args.inputs:
            return error("give either input files or --replay, not both", 2)
        out = Path(args.out) if args.out else None
        try:
            result = rebuild(args.replay, out)
        except ReplayError as exc:
            return error(str(exc), 2)
        _summary(result, out, sys.stdout)
        return _verdict(result)
    if not args.inputs:
        return error("no input files (or use --replay EVENTS.jsonl)", 2)
    transcription = None if args.transcription_model == "none" else args.transcription_model
    out = Path(args.out or "replay-out")

    def on_server(text: str) -> None:
        print(f"realtime-replay: {text}", file=sys.stderr)

    try:
        result = asyncio.run(
            replay(
                args.inputs,
                out,
                url=args.url,
                model=args.model,
                responder=args.responder,
                speed=args.speed,
                push_to_talk=args.push_to_talk,
                barge_in_at=args.barge_in_at,
                voice=args.voice,
                instructions=args.instructions,
                dialect=args.dialect,
                transcription_model=transcription,
                keep_audio=args.keep_audio,
                turn_timeout=args.turn_timeout,
                progress=tty and not args.quiet,
                log=None if args.quiet else sys.stderr,
                on_server=on_server,
            )
        )
    except ReplayError as exc:
        return error(str(exc), 2)
    except MissingExtraError as exc:
        return error(str(exc), 2)
    except (AuthenticationError, InvalidModelError) as exc:
        return error(str(exc), 3)
    except (ConnectError, TransportError) as exc:
        return error(f"{exc} (is the server running? check --url)", 3)
    except ServerError as exc:
        return error(f"the server rejected the session: {exc}", 3)
    except KeyboardInterrupt:
        return error("interrupted", 130)
    _summary(result, out, sys.stdout)
    return _verdict(result)


def _verdict(result: ReplayResult) -> int:
    if result.ok:
        return 0
    for failure in result.failures:
        print(f"realtime-replay: turn failed: {failure}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
