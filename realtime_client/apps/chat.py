"""``realtime-chat``: talk to a Realtime model through the microphone and the speaker.

Server VAD decides when you have finished speaking (the default); ``--push-to-talk``
makes the space bar toggle recording instead. Speaking while the assistant talks
interrupts it (barge-in: playback stops and the item is truncated at what you heard).

Speakers work without headphones: the microphone and the speaker run as one full-duplex
device and echo cancellation (WebRTC AEC3 with the ``aec`` extra, an echo gate without it)
removes the assistant's voice from the microphone, so it does not interrupt itself; the
status line shows the echo suppression achieved. ``--no-aec`` turns it off.
The terminal shows the transcript of both sides, the input and output levels, the
connection and turn state, the latency of the last turn and the usage so far; when the
output is not a terminal it prints plain lines instead.

Without ``OPENAI_API_KEY`` (and without ``--url``) it starts the embedded local server
with the echo responder, which plays your words back, so it works offline at once.

Exit status: 0 after ``q`` / Ctrl-C, 1 when the server rejects the session, 2 for a
usage error, 3 for an audio problem (no device, PortAudio missing), 4 when the API key
is refused, 5 when the server cannot be reached or the connection is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import importlib.util
import inspect
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt

from realtime_client.audio import (
    DuplexDevice,
    EchoCanceller,
    LevelMeter,
    Microphone,
    Speaker,
    VirtualMicrophone,
    VirtualSpeaker,
    read_wav_mono,
)
from realtime_client.audio.errors import AudioError, DeviceError, PortAudioMissingError

from .. import endpoint
from .. import events as ev
from ..connection import connect
from ..errors import (
    AuthenticationError,
    ConnectError,
    InvalidModelError,
    MissingExtraError,
    RealtimeError,
    ServerError,
    TransportError,
)
from ..models import DEFAULT_MODEL
from ..session import (
    AudioDropped,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    Session,
    TurnStats,
)
from ._tui import ChatScreen, KeyReader

__all__ = ["DEFAULT_TOOLS", "build_parser", "load_tools", "main"]

logger = logging.getLogger("realtime_client.apps.chat")

#: The module ``--tools`` loads by default (weather and calculator).
DEFAULT_TOOLS = "realtime_client.apps.example_tools"

_RATE = 24_000  # the session's audio rate, in Hz
_BLOCK_MS = 20  # capture block length, in ms
_REFRESH_S = 1 / 15  # status redraw period, in seconds

# Exit codes (documented in the module docstring and the README).
EXIT_OK, EXIT_SERVER, EXIT_USAGE, EXIT_AUDIO, EXIT_AUTH, EXIT_NETWORK = 0, 1, 2, 3, 4, 5


class _Failure(Exception):
    """An error to report in one clear line (no traceback) with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --- command line ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (exposed so the README's option list can be tested)."""
    p = argparse.ArgumentParser(
        prog="realtime-chat",
        description=(
            "Voice chat with a Realtime model. Without OPENAI_API_KEY it talks to the "
            "embedded local server (an echo 'model'). Keys: q quits; with --push-to-talk, "
            "space starts recording and space again sends."
        ),
    )
    p.add_argument("--url", help="server base URL (default: OpenAI, or the local server)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model (default {DEFAULT_MODEL})")
    p.add_argument(
        "--dialect", choices=("ga", "beta"), default="ga", help="protocol dialect (default ga)"
    )
    p.add_argument(
        "--transport",
        choices=("websocket", "webrtc"),
        default="websocket",
        help="websocket (default) or webrtc (audio as Opus media; the webrtc extra)",
    )
    p.add_argument("--voice", help="output voice, e.g. alloy, marin, cedar")
    p.add_argument("--instructions", help="system instructions for the model")
    p.add_argument(
        "--tools",
        default=DEFAULT_TOOLS,
        metavar="MODULE",
        help="module (dotted name or .py file) whose functions the model may call; "
        f"'none' for no tools (default {DEFAULT_TOOLS}: weather and calculator)",
    )
    p.add_argument(
        "--push-to-talk",
        action="store_true",
        help="turn server VAD off: space starts recording, space again sends",
    )
    p.add_argument(
        "--transcription-model",
        "--transcribe-model",  # its earlier name, still accepted
        dest="transcription_model",
        default="gpt-4o-mini-transcribe",
        metavar="MODEL",
        help="model that transcribes your speech for the display; 'none' turns it off "
        "(default gpt-4o-mini-transcribe)",
    )
    p.add_argument(
        "--responder",
        metavar="SPEC",
        help="use the embedded local server with this responder: echo | script:FILE | tts "
        "(default without OPENAI_API_KEY: echo)",
    )
    p.add_argument("--input-device", metavar="DEV", help="microphone: index or (part of a) name")
    p.add_argument("--output-device", metavar="DEV", help="speaker: index or (part of a) name")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument(
        "--no-speaker", action="store_true", help="do not play the replies (transcript only)"
    )
    p.add_argument(
        "--no-aec",
        action="store_true",
        help="turn echo cancellation off (with headphones; by default it is on, so speakers work)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=5,
        metavar="N",
        help="connection attempts after a failure before giving up (default 5)",
    )
    p.add_argument("--log", metavar="FILE", help="write debug logs to FILE")
    p.add_argument(
        "--input-wav",
        metavar="FILE",
        help="a WAV file stands in for the microphone (played in real time, then silence): "
        "for demos and tests without a sound card",
    )
    return p


def _device(spec: str | None) -> int | str | None:
    """``--input-device 3`` is an index, anything else a name."""
    if spec is None:
        return None
    return int(spec) if spec.strip().isdigit() else spec


def load_tools(spec: str) -> list[Callable[..., Any]]:
    """The functions a ``--tools`` module offers the model.

    The module's ``TOOLS`` list if it has one, else every public function defined in it
    (imported names and ``main`` are left out).

    Args:
        spec: A dotted module name, a path to a ``.py`` file, or ``"none"``.

    Raises:
        ValueError: The module cannot be imported or offers no functions.
    """
    if spec.strip().lower() in ("", "none"):
        return []
    module = _import_module(spec)
    declared = getattr(module, "TOOLS", None)
    if declared is not None:
        tools = list(declared)
        bad = [t for t in tools if not callable(t)]
        if bad:
            raise ValueError(f"{spec}: TOOLS holds something that is not callable: {bad[0]!r}")
    else:
        tools = [
            obj
            for name, obj in vars(module).items()
            if inspect.isfunction(obj)
            and obj.__module__ == module.__name__
            and not name.startswith("_")
            and name != "main"
        ]
    if not tools:
        raise ValueError(f"{spec}: no functions to offer as tools (define TOOLS = [...])")
    return tools


def _import_module(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ValueError(f"no such tools file: {spec}")
        loader_spec = importlib.util.spec_from_file_location(f"_chat_tools_{path.stem}", path)
        if loader_spec is None or loader_spec.loader is None:
            raise ValueError(f"cannot load tools from {spec}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[loader_spec.name] = module  # dataclasses and pydantic look it up
        # Like `python FILE`: the file's folder is importable, so it may import its siblings.
        folder = str(path.resolve().parent)
        sys.path.insert(0, folder)
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            raise ValueError(f"importing {spec} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
        return module
    try:
        return importlib.import_module(spec)
    except Exception as exc:
        raise ValueError(f"cannot import tools module {spec!r}: {exc}") from exc


def _list_devices(out: Any) -> int:
    from realtime_client.audio import find_device, list_devices

    try:
        devices = list_devices()
    except PortAudioMissingError as exc:
        print(f"realtime-chat: audio is not available: {exc}", file=sys.stderr)
        return EXIT_AUDIO
    if not devices:
        print("no audio devices found (PortAudio sees none)", file=out)
        return EXIT_OK
    defaults: dict[int, list[str]] = {}
    for kind in ("input", "output"):
        with contextlib.suppress(DeviceError):
            defaults.setdefault(find_device(None, kind).index, []).append(kind)
    print(f"{'index':>5}  {'in':>3} {'out':>3}  {'rate':>6}  name (host API)", file=out)
    for d in devices:
        mark = f"  [default {' + '.join(defaults[d.index])}]" if d.index in defaults else ""
        print(
            f"{d.index:>5}  {d.max_input_channels:>3} {d.max_output_channels:>3}  "
            f"{d.default_sample_rate:>6.0f}  {d.name} ({d.hostapi}){mark}",
            file=out,
        )
    return EXIT_OK


# --- output metering -----------------------------------------------------------


class _MeteredSink:
    """Wraps the speaker to meter what it plays.

    A copy of the audio written waits in a queue and is consumed at real-time pace while
    the speaker's buffer is playing, so the meter follows playback rather than the
    (faster than real time) arrival of deltas; a barge-in ``clear()`` empties it.
    """

    def __init__(self, speaker: Speaker) -> None:
        self.sink = speaker
        self.buffer = speaker.buffer
        self.meter = LevelMeter(_RATE)
        self._queue: deque[npt.NDArray[np.float32]] = deque()
        self._last = time.monotonic()

    def write(self, pcm: Any, item_id: str, content_index: int = 0) -> Any:
        queued = self.sink.write(pcm, item_id, content_index)
        if queued:
            samples = np.asarray(pcm)
            if samples.dtype == np.int16:
                samples = samples.astype(np.float32) / 32768.0
            self._queue.append(samples.astype(np.float32, copy=False))
        return queued

    def clear(self) -> Any:
        self._queue.clear()
        return self.sink.clear()

    def mark_finished(self, item_id: str, content_index: int | None = None) -> None:
        self.sink.mark_finished(item_id, content_index)

    @property
    def playing(self) -> bool:
        return self.buffer.playing

    def level_dbfs(self) -> float:
        """Advance the meter by the time since the last call; the RMS level in dBFS."""
        now = time.monotonic()
        frames = int((now - self._last) * _RATE)
        self._last = now
        taken: list[npt.NDArray[np.float32]] = []
        need = frames if self.buffer.playing else 0
        while need > 0 and self._queue:
            head = self._queue[0]
            if len(head) <= need:
                taken.append(self._queue.popleft())
                need -= len(head)
            else:
                taken.append(head[:need])
                self._queue[0] = head[need:]
                need = 0
        got = sum(len(t) for t in taken)
        if got < frames:
            taken.append(np.zeros(frames - got, np.float32))  # silence lets the meter fall
        if taken:
            self.meter.update(np.concatenate(taken))
        return self.meter.rms_dbfs


# --- the chat ---------------------------------------------------------------------------


class _ScreenLog(logging.Handler):
    """Library warnings (connect retries, tool failures) as notes on the screen."""

    def __init__(self, screen: ChatScreen) -> None:
        super().__init__(logging.WARNING)
        self.screen = screen

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad log call must not break the UI
            return
        self.screen.note(message, "error" if record.levelno >= logging.ERROR else "note")


class _Chat:
    """State of one chat: what the screen shows, keys, push-to-talk."""

    def __init__(self, args: argparse.Namespace, screen: ChatScreen) -> None:
        self.args = args
        self.screen = screen
        self.ptt: bool = args.push_to_talk
        self.quit = asyncio.Event()
        self.session: Session | None = None
        self.sink: _MeteredSink | None = None
        self.canceller: EchoCanceller | None = None
        self.input_meter = LevelMeter(_RATE)
        self.talking = False
        self.user_speaking = False
        self.responding = False
        self.audio_started = False
        self.turns = 0
        self.connected = False
        self._ptt_busy = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tool_names: dict[str, str] = {}
        self._partial_text: dict[str, str] = {}
        self._preambles: set[str] = set()  # gpt-realtime-2.x commentary items
        status = screen.status
        status.mode = "push-to-talk" if self.ptt else "VAD"
        status.keys = "q quit · space talk/send" if self.ptt else "q quit"
        status.turn = self._turn()

    # --- keys ---------------------------------------------------------------------------

    def on_key(self, key: str) -> None:
        if key in ("q", "Q", "\x03", "\x04"):
            self.quit.set()
        elif key == " " and self.ptt:
            if self.session is not None and not self._ptt_busy:
                self._spawn(self._toggle_talk(self.session))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _toggle_talk(self, session: Session) -> None:
        self._ptt_busy = True
        try:
            if not self.talking:
                # Press first (stops playback, cancels, clears the buffer), then let audio
                # through: appends sent before the clear would be thrown away.
                await session.push_to_talk_press()
                self.talking = True
            else:
                self.talking = False
                await session.push_to_talk_release()
        except ServerError as exc:
            self.screen.note(f"push-to-talk: {exc}", "error")
        except RealtimeError as exc:
            self.screen.note(f"push-to-talk failed: {exc}", "error")
        finally:
            self._ptt_busy = False

    # --- audio in -----------------------------------------------------------------------

    async def captured(self, source: Any) -> AsyncIterator[Any]:
        """The source's blocks, metered; in push-to-talk only while recording."""
        async for block in source:
            samples = block[0] if isinstance(block, tuple) else block.samples
            self.input_meter.update(samples)
            if self.ptt and not self.talking:
                continue  # push-to-talk: the microphone is muted between presses
            yield block

    # --- events ---------------------------------------------------------------------------

    def _speaker(self, item_id: str) -> str:
        """How an output item is labelled: a 2.x preamble is marked as one."""
        return "assistant (preamble)" if item_id in self._preambles else "assistant"

    def _partial(self, key: str, role: str, delta: str) -> None:
        text = self._partial_text.get(key, "") + delta
        self._partial_text[key] = text
        self.screen.partial(key, role, text)

    def _final(self, key: str, role: str, text: str) -> None:
        self._partial_text.pop(key, None)
        self.screen.end_partial(key)
        self.screen.line(role, text.strip() or "…")

    def handle(self, event: Any) -> None:
        """Update the display for one session event."""
        screen = self.screen
        if isinstance(event, ev.InputAudioBufferSpeechStarted):
            self.user_speaking = True
        elif isinstance(event, ev.InputAudioBufferSpeechStopped):
            self.user_speaking = False
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionDelta):
            self._partial("in:" + event.item_id, "you", event.delta or "")
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionCompleted):
            self._final("in:" + event.item_id, "you", event.transcript)
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionFailed):
            self.screen.end_partial("in:" + event.item_id)
            screen.note(f"transcription failed: {event.error.message}", "error")
        elif isinstance(event, ev.ResponseCreated):
            self.responding, self.audio_started = True, False
        elif isinstance(event, ev.ResponseOutputAudioDelta):
            self.audio_started = True
        elif isinstance(event, ev.ResponseOutputItemAdded):
            item = event.item
            if isinstance(item, ev.MessageItem) and item.phase == "commentary" and item.id:
                self._preambles.add(item.id)
        elif isinstance(event, ev.ResponseOutputAudioTranscriptDelta | ev.ResponseOutputTextDelta):
            self._partial("out:" + event.item_id, self._speaker(event.item_id), event.delta)
        elif isinstance(event, ev.ResponseOutputAudioTranscriptDone):
            self._final("out:" + event.item_id, self._speaker(event.item_id), event.transcript)
            self._preambles.discard(event.item_id)
        elif isinstance(event, ev.ResponseOutputTextDone):
            self._final("out:" + event.item_id, self._speaker(event.item_id), event.text)
            self._preambles.discard(event.item_id)
        elif isinstance(event, ev.ResponseFunctionCallArgumentsDone):
            name = event.name or "function"
            self._tool_names[event.call_id] = name
            screen.note(f"{name}({event.arguments})", "tool")
        elif isinstance(event, ev.ConversationItemAdded | ev.ConversationItemCreated):
            item = event.item
            if getattr(item, "type", None) == "function_call_output":
                name = self._tool_names.get(getattr(item, "call_id", ""), "tool")
                screen.note(f"{name} → {getattr(item, 'output', '')}", "tool")
        elif isinstance(event, ev.ConversationItemTruncated):
            # Barge-in: the session stopped playback and cut the item at what was heard.
            screen.note(f"interrupted: reply cut at {event.audio_end_ms} ms")
        elif isinstance(event, ev.ResponseDone):
            self._response_done(event)
        elif isinstance(event, ev.Error):
            screen.note(f"server error: {event.error.message}", "error")
        elif isinstance(event, Reconnecting):
            self.connected = False
            screen.status.connection = f"reconnecting (attempt {event.attempt})"
            screen.note(f"connection lost ({event.error}); retrying in {event.delay_s:.1f} s")
        elif isinstance(event, Reconnected):
            self.connected = True
            screen.status.connection = "connected"
            screen.note(f"reconnected ({event.items} items restored)")
        elif isinstance(event, AudioDropped):
            screen.note(f"dropped {event.dropped_ms:.0f} ms of microphone audio ({event.reason})")

    def _response_done(self, event: ev.ResponseDone) -> None:
        response = event.response
        self.responding = False
        self.turns += 1
        # A response cut short (barge-in) leaves its transcript unfinished: keep what was said.
        for key in [k for k in self._partial_text if k.startswith("out:")]:
            self._final(key, self._speaker(key[4:]), self._partial_text[key] + " —")
        if response.status == "failed":
            details = response.status_details
            why = details.error.message if details and details.error else "no details"
            self.screen.note(f"the response failed: {why}", "error")
        session = self.session
        if session is None:
            return
        stats = session.stats
        turn = next((t for t in reversed(stats.turns) if t.response_id == response.id), None)
        if turn is not None:
            latency = _latency_text(turn)
            if latency:
                self.screen.status.latency = latency
        u = stats.usage
        self.screen.status.usage = (
            f"tokens {u.input_tokens:,} in / {u.output_tokens:,} out · ${stats.cost_usd:.4f}"
        )
        if not self.screen.ansi:
            parts = [
                f"turn {self.turns}: {response.status}",
                self.screen.status.latency,
                _echo_text(self.canceller),
            ]
            self.screen.note(" · ".join(p for p in parts if p))

    def _turn(self) -> str:
        if not self.connected:
            return ""  # the connection state says it all ("connecting", "reconnecting")
        if self.ptt and self.talking:
            return "recording (space sends)"
        if self.user_speaking:
            return "you are speaking"
        if self.responding and not self.audio_started:
            return "thinking"
        if self.responding or (self.sink is not None and self.sink.playing):
            return "assistant speaking"
        return "press space to talk" if self.ptt else "listening"

    async def ticker(self) -> None:
        """Redraw the status area (meters, turn state) periodically."""
        status = self.screen.status
        while True:
            status.turn = self._turn()
            status.input_dbfs = self.input_meter.rms_dbfs
            status.output_dbfs = self.sink.level_dbfs() if self.sink is not None else None
            status.echo = _echo_text(self.canceller)
            self.screen.refresh()
            await asyncio.sleep(_REFRESH_S)

    async def run(self, session: Session) -> None:
        """Show events until the user quits or the session ends."""

        async def consume() -> None:
            async for event in session:
                self.handle(event)

        reader = asyncio.ensure_future(consume())
        quitting = asyncio.ensure_future(self.quit.wait())
        ticker = asyncio.ensure_future(self.ticker())
        try:
            await asyncio.wait({reader, quitting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, quitting, ticker, *self._tasks):
                task.cancel()
            for task in (quitting, ticker, *self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if reader.done() and not reader.cancelled():
            reader.result()  # raises the error that ended the session
            self.screen.note("the server ended the session")


def _latency_text(turn: TurnStats) -> str:
    if turn.speech_to_audio_ms is not None:
        return f"last turn {turn.speech_to_audio_ms:.0f} ms (end of speech → first audio)"
    if turn.create_to_delta_ms is not None:
        return f"last turn {turn.create_to_delta_ms:.0f} ms (request → first reply)"
    return ""


def _session_config(args: argparse.Namespace) -> dict[str, Any]:
    audio_in: dict[str, Any] = {
        # Push-to-talk: no VAD, the space bar commits; otherwise server VAD turns.
        "turn_detection": None if args.push_to_talk else {"type": "server_vad"},
    }
    if args.transcription_model.lower() != "none":
        audio_in["transcription"] = {"model": args.transcription_model}
    return {"audio": {"input": audio_in}}


def _describe_target(url: str | None, model: str, local: bool) -> str:
    if local:
        return "local server (echo)"
    host = urlparse(url).hostname if url else "api.openai.com"
    return f"{model} @ {host}"


async def _open_audio(
    args: argparse.Namespace, stack: contextlib.AsyncExitStack
) -> tuple[Any, Speaker, EchoCanceller | None]:
    """Open the microphone and the speaker, or their stand-ins without a sound card.

    By default one full-duplex device (microphone and speaker on one stream, so the echo
    reference is exact) with echo cancellation unless ``--no-aec``. ``--input-wav``: the
    file at real-time pace, then silence (a quiet room); ``--no-speaker``: a speaker that
    plays to nowhere at real-time pace, so played positions (and barge-in truncation)
    behave as with a real one. Neither needs echo cancellation (no echo path).

    Returns:
        The source to attach, the speaker, and the echo canceller (``None`` when off).
    """
    if not args.input_wav and not args.no_speaker:
        device = DuplexDevice(
            _device(args.input_device),
            _device(args.output_device),
            _RATE,
            _BLOCK_MS,
            aec=not args.no_aec,
        )
        await stack.enter_async_context(device)
        return device.microphone, device.speaker, device.canceller
    source: Microphone
    if args.input_wav:
        samples, rate = read_wav_mono(args.input_wav, None)
        source = VirtualMicrophone(samples, rate, _BLOCK_MS)
    else:
        source = Microphone(_device(args.input_device), sample_rate=_RATE, block_ms=_BLOCK_MS)
    await stack.enter_async_context(source)
    speaker = (
        VirtualSpeaker(sample_rate=_RATE)
        if args.no_speaker
        else Speaker(_device(args.output_device), _RATE)
    )
    await stack.enter_async_context(speaker)
    return source, speaker, None


def _echo_text(canceller: EchoCanceller | None) -> str:
    """The status line's echo figure: ``echo -31 dB (aec3)``."""
    if canceller is None:
        return ""
    erle = canceller.erle_db
    figure = "—" if erle is None else f"-{erle:.0f} dB"
    return f"echo {figure} ({canceller.name})"


async def _chat(args: argparse.Namespace, screen: ChatScreen) -> int:
    chat = _Chat(args, screen)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, chat.quit.set)
    keys = KeyReader(chat.on_key)
    keys.start()
    url: str | None = args.url
    try:
        async with contextlib.AsyncExitStack() as stack:
            try:
                tools = load_tools(args.tools)
            except ValueError as exc:
                raise _Failure(f"--tools: {exc}", EXIT_USAGE) from exc
            source, speaker, chat.canceller = await _open_audio(args, stack)
            if args.responder and url:
                raise _Failure(
                    "--responder is for the embedded local server: drop --url", EXIT_USAGE
                )
            local = bool(args.responder) or endpoint.use_local_server(url)
            if local:
                from ..server import LocalServer, ResponderError

                responder = args.responder or "echo"
                try:
                    server = await stack.enter_async_context(LocalServer(responder=responder))
                except ResponderError as exc:
                    raise _Failure(f"--responder: {exc}", EXIT_USAGE) from exc
                url = server.url
                why = "" if args.responder else "No OPENAI_API_KEY: "
                what = responder.split(":")[0]
                screen.note(
                    f"{why}using the embedded local server at {url} ({what} responder). "
                    "Set OPENAI_API_KEY or --url to talk to a real model."
                )
            screen.status.target = _describe_target(url, args.model, local)
            screen.status.connection = "connecting"
            screen.status.turn = chat._turn()
            screen.refresh()
            connecting = asyncio.ensure_future(
                stack.enter_async_context(
                    connect(
                        args.model,
                        url=url,
                        transport=args.transport,
                        dialect=args.dialect,
                        session=_session_config(args),
                        instructions=args.instructions,
                        voice=args.voice,
                        tools=tools,
                        reconnect=ReconnectPolicy(
                            max_attempts=max(0, args.retries),
                            recycle_before_expiry_s=60.0 if args.retries > 0 else 0.0,
                        ),
                    )
                )
            )
            # q / Ctrl-C must work while connecting (and retrying): wait on both.
            quitting = asyncio.ensure_future(chat.quit.wait())
            try:
                await asyncio.wait({connecting, quitting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                quitting.cancel()
                if not connecting.done():
                    connecting.cancel()
                    with contextlib.suppress(asyncio.CancelledError, RealtimeError, OSError):
                        await connecting
            if connecting.cancelled():
                screen.note("quit while connecting")
                return EXIT_OK
            session = connecting.result()  # raises what made the connect fail
            chat.session = session
            chat.sink = _MeteredSink(speaker)
            # iterate_audio: the event loop below shows when the reply's audio starts.
            session.attach(chat.captured(source), chat.sink, iterate_audio=True)
            chat.connected = True
            screen.status.connection = "connected"
            if tools:
                names = ", ".join(getattr(t, "__name__", "?") for t in tools)
                screen.note(f"tools: {names}")
            hint = "press space to talk" if chat.ptt else "speak any time"
            screen.note(f"connected: {hint}; q quits")
            await chat.run(session)
        return EXIT_OK
    except _Failure:
        raise
    except (RealtimeError, AudioError, OSError) as exc:
        raise _explain(exc, url) from exc
    finally:
        keys.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


#: How each way the chat can fail is told: the first matching class wins (subclasses
#: first); ``{exc}`` is the error, ``{where}`` the server.
_EXPLANATIONS: tuple[tuple[type[BaseException], int, str], ...] = (
    (
        PortAudioMissingError,
        EXIT_AUDIO,
        "audio is not available: {exc}\n(--input-wav and --no-speaker run without audio "
        "devices; realtime-replay processes WAV files)",
    ),
    (
        DeviceError,
        EXIT_AUDIO,
        "audio device problem: {exc}\n(see `realtime-chat --list-devices`, then choose with "
        "--input-device / --output-device)",
    ),
    (AudioError, EXIT_AUDIO, "audio problem: {exc}"),
    (
        AuthenticationError,
        EXIT_AUTH,
        "the server at {where} refused the API key: {exc}\n(check OPENAI_API_KEY; unset it "
        "to use the embedded local server)",
    ),
    (InvalidModelError, EXIT_SERVER, "the server refused the model or dialect: {exc}"),
    (
        ConnectError,
        EXIT_NETWORK,
        "cannot reach {where}: {exc}\n(check the network connection and --url)",
    ),
    (TransportError, EXIT_NETWORK, "the connection to {where} was lost: {exc}"),
    (ServerError, EXIT_SERVER, "the server rejected the session: {exc}"),
    (MissingExtraError, EXIT_SERVER, "{exc}"),
)


def _explain(exc: BaseException, url: str | None) -> _Failure:
    """One clear message and an exit code for each way the chat can fail."""
    for kind, code, message in _EXPLANATIONS:
        if isinstance(exc, kind):
            return _Failure(message.format(exc=exc, where=endpoint.describe_server(url)), code)
    if isinstance(exc, OSError):
        return _Failure(f"{exc}", EXIT_USAGE if exc.filename else EXIT_SERVER)
    return _Failure(f"{type(exc).__name__}: {exc}", EXIT_SERVER)


def _open_log(log_file: str | None) -> logging.Handler | None:
    """The ``--log`` handler, opened before the screen so a bad path is a usage error."""
    if not log_file:
        return None
    handler = logging.FileHandler(log_file)  # OSError: the caller reports it
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def _setup_logging(screen: ChatScreen, file_handler: logging.Handler | None) -> None:
    root = logging.getLogger("realtime_client")
    root.setLevel(logging.DEBUG if file_handler is not None else logging.WARNING)
    # Warnings go to the screen, not to stderr where they would tear the status area.
    root.propagate = False
    root.addHandler(_ScreenLog(screen))
    if file_handler is not None:
        root.addHandler(file_handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``realtime-chat``; returns the process exit status."""
    args = build_parser().parse_args(argv)
    if args.list_devices:
        return _list_devices(sys.stdout)
    if args.retries < 0:
        print("realtime-chat: error: --retries must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    if args.url is not None:
        try:
            endpoint.realtime_url(args.url, args.model)
        except ConnectError as exc:
            print(f"realtime-chat: error: --url: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        file_handler = _open_log(args.log)
    except OSError as exc:
        print(f"realtime-chat: error: cannot open --log {args.log}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # rich draws no live area on these terminals: plain lines show them everything instead.
    ansi = sys.stdout.isatty() and os.environ.get("TERM", "") not in ("dumb", "unknown")
    screen = ChatScreen(sys.stdout, ansi=ansi, color=not os.environ.get("NO_COLOR"))
    code = EXIT_OK
    try:
        _setup_logging(screen, file_handler)
        # Keep full GC passes over the start-up heap off the audio path (see README).
        gc.collect()
        gc.freeze()
        code = asyncio.run(_chat(args, screen))
    except _Failure as failure:
        screen.close()
        print(f"realtime-chat: {failure}", file=sys.stderr)
        code = failure.code
    except KeyboardInterrupt:
        code = EXIT_OK  # Ctrl-C before the handler was in place: still a clean quit
    finally:
        screen.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
