"""The simulated sound card and the simulated user of a live replay (see the package)."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from realtime_client.audio.echo import EchoCanceller, EchoPath, make_echo_canceller
from realtime_client.audio.errors import AudioError
from realtime_client.audio.pacing import PacingClock
from realtime_client.audio.resample import Resampler
from realtime_client.audio.virtual import VirtualSpeaker, block_edge
from realtime_client.audio.wav import read_wav_mono

from ... import events as ev
from ...errors import RealtimeError, ServerError
from ...protocol import RealtimeProtocol
from ...session import Session
from ._records import _Recorder
from ._results import ReplayError

#: Capture and playback block, in ms (what a sound card callback typically delivers).
BLOCK_MS = 20
_OUT_RATE = 24_000
_BURST_MS = 800
# A speech_started this long after the user's last voiced block still counts as theirs (the
# server's decision lags the audio by its onset time and the network).
_USER_GRACE_MS = 500.0
_VOICED_ENERGY = 1e-5  # mean square of a block carrying the user's voice (-50 dBFS)


@dataclass
class _Input:
    path: Path
    samples: npt.NDArray[np.float32]
    sample_rate: int

    @property
    def duration_ms(self) -> float:
        return len(self.samples) * 1000.0 / self.sample_rate

    def blocks(self) -> list[npt.NDArray[np.float32]]:
        # Exact 20 ms on average at any rate; the last block may be shorter.
        n = len(self.samples)
        count = math.ceil(n * 1000 / (self.sample_rate * BLOCK_MS))
        edges = [block_edge(k, self.sample_rate, BLOCK_MS) for k in range(count + 1)]
        return [self.samples[a : min(b, n)] for a, b in zip(edges, edges[1:], strict=False)]


def _load(path: str | os.PathLike[str]) -> _Input:
    p = Path(path)
    try:
        # At the file's own rate: the session resamples the stream, as from a microphone.
        # A float sample beyond float32 becomes inf (refused below), without numpy warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            samples, rate = read_wav_mono(p, None)
    except (OSError, AudioError, ValueError) as exc:
        raise ReplayError(f"cannot read {p}: {exc}") from exc
    if len(samples) == 0:
        raise ReplayError(f"{p} holds no audio")
    try:
        # The session resamples to 24 kHz with the same resampler: fail now, not mid-run.
        Resampler(int(rate), _OUT_RATE)
    except AudioError as exc:
        raise ReplayError(f"{p}: unsupported sample rate {rate} Hz: {exc}") from exc
    samples = np.array(samples, dtype=np.float32)  # a copy: clipped in place
    _check_samples(p, samples, int(rate))
    return _Input(p, samples, int(rate))


def _check_samples(path: Path, samples: npt.NDArray[np.float32], rate: int) -> None:
    """Refuse NaN and inf (float WAVs) before the run; clip the rest to full scale, in place.

    The session would refuse non-finite audio mid-run. Finite samples beyond full scale
    (1.0) are clipped, as a sound card's converter clips (and as the session clips a
    microphone's): a float WAV may peak past 1.0.
    """
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.argmax(bad))
        raise ReplayError(
            f"{path}: audio holds NaN or infinite samples (the first at {first / rate:.3f} s)"
        )
    np.clip(samples, -1.0, 1.0, out=samples)


#: How long (device clock) a VAD speech stop may wait for its commit before the replay
#: stops expecting one.
_COMMIT_WAIT_MS = 2_000.0


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


@dataclass
class _Config:
    speed: float
    push_to_talk: bool
    barge_in_at: list[float]
    turn_timeout: float
    keep_audio: bool
    progress: bool
    log: TextIO | None
    # Simulated loudspeaker-room path from the speaker into the microphone, and whether
    # echo cancellation removes it (see the package docstring).
    echo: EchoPath | None = None
    aec: bool = True


class _Driver:
    """The simulated sound card and the simulated user (see the package docstring).

    ``speaker`` is the session's sink, made with ``speed=None``: the driver's device clock
    ticks it, one block per tick.
    """

    def __init__(
        self, session: Session, speaker: VirtualSpeaker, cfg: _Config, recorder: _Recorder
    ) -> None:
        self.session = session
        self.speaker = speaker
        self.playback = speaker.buffer
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
        self._stopped_at: float | None = None  # a VAD speech stop whose commit is awaited
        self._responses_done = 0
        self._ptt_tasks: list[asyncio.Task[Any]] = []
        self._closed_error: BaseException | None = None
        self._clock = PacingClock(cfg.speed)
        self._progress = _Progress(cfg.progress)
        self._commit_marks: dict[int, int] = {}
        self._barge_pending = False
        self._next_file_waiting = False
        self._tail_left = 0
        self.skipped_barge_ins: list[float] = []
        self.total_ms = 0.0
        self._silence_rate = 0
        self._silence_k = 0  # silent blocks since the rate last changed
        self.canceller: EchoCanceller | None = None
        if cfg.echo is not None and cfg.aec:
            self.canceller = make_echo_canceller(_OUT_RATE)
        self._echo_next: npt.NDArray[np.float32] | None = None  # echo due in the next block
        self._reference: npt.NDArray[np.float32] | None = None  # what played in the last one
        self._user_until_ms = -1e9  # end of the latest block carrying the user's voice
        #: Device-clock times (ms) of ``speech_started`` while the user was silent: the
        #: assistant's own voice taken for the user's.
        self.self_interruptions: list[float] = []

    def now_ms(self) -> float:
        return float(self.ticks * BLOCK_MS)

    def tap(self, speaker: VirtualSpeaker) -> _Tap:
        """A sink that records each item's audio as it reaches ``speaker`` (media path)."""
        return _Tap(speaker, self.audio)

    # --- events from the session ----------------------------------------------------

    async def consume(self) -> None:
        # The events are counted by a handler, called as the session's reader applies
        # each event to the protocol core: _answered() then never sees the core past a
        # commit the driver has not counted yet. Iterating drains the queue and sees
        # the session end.
        self.session.on("*", self._on_event)
        try:
            async for _ in self.session:
                pass
        except RealtimeError as exc:
            self._closed_error = exc
        finally:
            self._changed.set()

    def _on_event(self, event: Any) -> None:
        self._changed.set()
        if isinstance(event, ev.InputAudioBufferSpeechStarted):
            now = self.now_ms()
            if now > self._user_until_ms + _USER_GRACE_MS:
                self.self_interruptions.append(now)
                self._log(f"[{now / 1000:7.2f} s] speech started while the user was silent")
        elif isinstance(event, ev.ResponseOutputAudioDelta):
            self.audio.setdefault(event.item_id, []).append(event.pcm16())
        elif isinstance(event, ev.InputAudioBufferSpeechStopped):
            self._stopped_at = self.now_ms()  # its commit follows as a separate event
        elif isinstance(event, ev.InputAudioBufferCommitted):
            self._commits += 1
            self._unanswered = True
            self._stopped_at = None
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
        if len(captured) and float(np.dot(captured, captured)) > _VOICED_ENERGY * len(captured):
            self._user_until_ms = now + BLOCK_MS
        sending = self._pressed or self._burst_pos is not None
        monitor = self._monitors.get(rate)
        if monitor is None:
            monitor = self._monitors[rate] = Resampler(rate, _OUT_RATE)
        heard = monitor.process(captured) if rate != _OUT_RATE else captured
        if self.cfg.echo is not None:
            # Through the room: the microphone hears the user plus the speaker's echo,
            # at the speaker's rate; the canceller (if on) gets what was played as reference.
            heard = self._through_room(heard)
            if sending:
                await self.session.send_audio(heard, _OUT_RATE)
        elif sending:
            await self.session.send_audio(captured, rate)
        self.input_track.append(heard if sending else np.zeros_like(heard))
        played = self.speaker.tick()
        self.output_track.append(played)
        if self.cfg.echo is not None:
            self._echo_next = self.cfg.echo.process(played)
            self._reference = played
        position = self.playback.position()
        if position is not None and position.played_ms > 0:
            # [first tick played, end of the last tick that played more, played ms]
            span = self.played.setdefault(position.item_id, [now, now, 0.0])
            if position.played_ms > span[2]:
                span[1], span[2] = now + BLOCK_MS, position.played_ms
        self.ticks += 1
        self._progress.update(self.now_ms(), self.total_ms)
        # Unpaced (speed 0) this only yields: the reader runs between blocks.
        await self._clock.wait(self.ticks * BLOCK_MS / 1000.0)

    def _through_room(self, heard: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """What the microphone captures: ``heard`` plus the echo; echo-cancelled if on."""
        echo, reference = self._echo_next, self._reference
        if echo is None or reference is None:
            return heard
        n = min(len(heard), len(echo))
        mic = heard.astype(np.float32, copy=True)
        mic[:n] += echo[:n]
        if self.canceller is None:
            return mic
        ref = np.zeros(len(mic), np.float32)
        ref[:n] = reference[:n]
        return self.canceller.process(mic, ref)

    def _silence_frames(self, rate: int) -> int:
        """Frames of the next silent block: block edges as in :meth:`_Input.blocks`."""
        if rate != self._silence_rate:
            self._silence_rate, self._silence_k = rate, 0
        k = self._silence_k
        self._silence_k += 1
        return block_edge(k + 1, rate, BLOCK_MS) - block_edge(k, rate, BLOCK_MS)

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
        self._clock.start()
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
        if self._stopped_at is not None and self.now_ms() - self._stopped_at < _COMMIT_WAIT_MS:
            return False  # VAD heard the speech end; its commit is on its way
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
                await _wait_a_little(self._changed, 0.05)
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
                await _wait_a_little(self._changed, 0.05)
        for at_ms in self._barges:
            self.skipped_barge_ins.append(at_ms)
            self._log(f"barge-in at {at_ms / 1000:.2f} s skipped: the replay ended first")
        self._barges.clear()


async def _wait_a_little(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` s pass, keeping a cancellation.

    Not ``asyncio.wait_for``: before Python 3.12 it swallows a cancellation (Ctrl-C) that
    arrives in the same loop iteration as the event (CPython gh-86296).
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
    finally:
        waiter.cancel()


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


class _Tap:
    """Forwards to a speaker and keeps each item's PCM (for the response WAVs).

    Over WebSocket the driver records audio deltas; over WebRTC no deltas come, so the
    audio is taken where the session hands it to the speaker.
    """

    def __init__(self, speaker: VirtualSpeaker, audio: dict[str, list[npt.NDArray[np.int16]]]):
        self._speaker = speaker
        self._audio = audio

    def write(self, pcm: Any, item_id: str, content_index: int = 0) -> Any:
        self._audio.setdefault(item_id, []).append(np.asarray(pcm, dtype=np.int16).copy())
        return self._speaker.write(pcm, item_id, content_index)

    def clear(self) -> Any:
        return self._speaker.clear()

    def mark_finished(self, item_id: str, content_index: int = 0) -> None:
        self._speaker.mark_finished(item_id, content_index)
