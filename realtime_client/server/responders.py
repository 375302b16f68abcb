"""What the local server says back: pluggable responders.

A responder stands in for the model. The session asks it for a :class:`Reply` each time a
response starts (``response.create`` or a VAD turn) and, when input transcription is on,
for the transcript of each committed user audio item. The session turns the reply into
the real event stream (items, content parts, deltas, usage), so a responder never deals
with the wire.

Built in:

* :class:`EchoResponder` (``"echo"``): plays the user's own committed audio back, with a
  transcript saying so; a text turn is answered with ``Echo: <text>``.
* :class:`ScriptResponder` (``"script:PATH"``): replies from a JSON file, per turn or by
  matching the user's text or transcript; text, audio from a WAV file, a tone, or a
  function call, optionally with the input transcription to report.
* :class:`TTSResponder` (``"tts"``): speaks its text with espeak-ng (a clear error when it
  is missing); wraps another responder for the words (``"tts:script:PATH"``).

Script file format::

    {
      "rules": [                                  # checked first, reusable
        {"match": "weather", "reply": {"function_call": {"name": "get_weather",
                                                          "arguments": {"city": "Paris"}}}},
        {"match": "^bye", "regex": true, "reply": {"text": "Goodbye!"}}
      ],
      "turns": [                                  # used in order, one per response
        {"transcript": "Hello there", "reply": {"text": "Hi! How can I help?"}},
        {"reply": [{"audio": "answer.wav", "text": "transcript of answer.wav"}]},
        {"reply": {"tone": {"frequency_hz": 440, "duration_ms": 800}, "text": "(beep)"}}
      ],
      "default": {"text": "I have nothing scripted for that."}
    }

An output may also say ``"phase": "commentary"`` or ``"final_answer"`` (a message), or
``"preamble": "Let me check."`` (a function call: the words of the commentary message a
gpt-realtime-2.x model opens with; protocol.md §16.2).

A top-level JSON list is taken as ``turns``. ``reply`` is one output or a list of them (a
message and a function call may share a response). Audio paths are relative to the
script file and must stay inside its folder (``../x.wav``, an absolute path elsewhere or a
symlink out of the folder is refused), and the script and its audio must be regular files
(a FIFO or a device would block the server). ``transcript`` is what input transcription
reports for the user's audio in that turn; matching uses the user's text, or that
transcript for audio turns. Rules answer user turns only: a response that follows a
``function_call_output`` takes the next turn (or the default).

Everything is deterministic: audio that a responder does not supply is synthesised from
the text by :func:`placeholder_speech`, and randomness comes from the seeded
``ResponseContext.rng``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import stat
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import RealtimeError

__all__ = [
    "EchoResponder",
    "FunctionCallReply",
    "MessageReply",
    "Reply",
    "Responder",
    "ResponderError",
    "ResponseContext",
    "ScriptResponder",
    "TTSResponder",
    "make_responder",
    "placeholder_speech",
    "tone",
]

Int16Array = npt.NDArray[np.int16]

#: Sample rate of every array a responder hands over or receives, in Hz.
SAMPLE_RATE = 24_000


class ResponderError(RealtimeError, ValueError):
    """A responder cannot be built or used (bad script file, espeak-ng missing, …)."""


def _open_regular(path: Path, label: str) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file, else raise :class:`ResponderError`.

    The file is opened without blocking (a FIFO with no writer would otherwise hang the
    open) and checked on the opened descriptor, so it cannot be swapped after the check.
    ``label`` starts the error message (``"cannot read script s.json"``).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ResponderError(f"{label}: {exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ResponderError(f"{label}: not a regular file (a FIFO, device or folder)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class MessageReply:
    """An assistant message.

    Attributes:
        text: The words (the text, or the transcript of the audio).
        audio: 24 kHz mono PCM16 to speak, or ``None`` to let the server synthesise it
            from ``text`` when the response wants audio.
        phase: ``"commentary"`` or ``"final_answer"`` for models whose messages carry a
            phase (gpt-realtime-2.x, protocol.md §16.2); ``None`` lets the server choose
            (commentary before a function call, else the final answer). Other models
            send no phase whatever this says.
    """

    text: str
    audio: Int16Array | None = None
    phase: str | None = None


@dataclass(frozen=True)
class FunctionCallReply:
    """A function call the "model" makes.

    Attributes:
        name: The function's name.
        arguments: The arguments as a JSON string.
        call_id: A fixed ``call_…`` id, or ``None`` to have one generated.
        preamble: The words of the spoken preamble a 2.x model opens with when nothing
            precedes the call (``None``: a default line).
    """

    name: str
    arguments: str
    call_id: str | None = None
    preamble: str | None = None


@dataclass(frozen=True)
class Reply:
    """Everything a response will contain, in output order."""

    outputs: tuple[MessageReply | FunctionCallReply, ...]


@dataclass
class ResponseContext:
    """What a responder may look at.

    Attributes:
        response_index: 0 for the session's first response, then 1, 2, …
        items: The context items as GA wire dicts whatever the session's dialect (no
            ``object``; ``output_text`` / ``output_audio`` parts), audio bytes left out,
            oldest first.
        user_text: The last user message's text, or its audio transcript, if any.
        user_audio: The last user message's audio (24 kHz PCM16) if it is an audio turn.
        function_output: The last item if it is a ``function_call_output``
            (``{"call_id", "output", "name"}``), else ``None``.
        instructions: The effective instructions.
        tools: The effective tool definitions.
        output_modalities: ``("audio",)`` or ``("text",)``.
        metadata: The response's ``metadata``, if any.
        rng: A random generator seeded from the server's seed.
    """

    response_index: int
    items: list[dict[str, Any]]
    user_text: str | None
    user_audio: Int16Array | None
    function_output: dict[str, Any] | None
    instructions: str
    tools: list[dict[str, Any]]
    output_modalities: tuple[str, ...]
    metadata: dict[str, Any] | None
    rng: random.Random = field(default_factory=random.Random)


class Responder(abc.ABC):
    """The model's stand-in. Subclass and implement :meth:`respond`."""

    @abc.abstractmethod
    async def respond(self, ctx: ResponseContext) -> Reply:
        """Return the outputs of one response."""

    def transcribe(self, audio: Int16Array, *, item_index: int) -> str | None:
        """Transcript of a committed user audio item (24 kHz), or ``None`` for a placeholder.

        Args:
            audio: The item's audio.
            item_index: 0 for the session's first committed audio item, then 1, 2, …
        """
        return None

    async def synthesize(self, text: str) -> Int16Array:
        """Speech for ``text`` when a reply has none (24 kHz PCM16)."""
        return placeholder_speech(text)


# --- sound makers --------------------------------------------------------------------------


def tone(
    frequency_hz: float = 440.0,
    duration_ms: float = 500.0,
    *,
    amplitude: float = 0.3,
    sample_rate: int = SAMPLE_RATE,
) -> Int16Array:
    """A sine tone with 5 ms fades, as PCM16.

    Args:
        frequency_hz: Pitch, in Hz.
        duration_ms: Length, in ms.
        amplitude: Peak level, 0..1 of full scale.
        sample_rate: Output rate, in Hz.
    """
    n = max(0, round(sample_rate * duration_ms / 1000))
    t = np.arange(n, dtype=np.float64) / sample_rate
    x = amplitude * np.sin(2 * math.pi * frequency_hz * t)
    fade = min(n // 2, sample_rate // 200)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        x[:fade] *= ramp
        x[n - fade :] *= ramp[::-1]
    return np.round(x * 32767).astype(np.int16)


def placeholder_speech(text: str, *, sample_rate: int = SAMPLE_RATE) -> Int16Array:
    """Deterministic speech-like audio for ``text``: one tone burst per word.

    Each word lasts 60 ms per character (about the pace of speech) at a pitch derived
    from the word, followed by an 80 ms gap, so the audio's length tracks the text and
    the same text always gives the same samples.

    Args:
        text: The words.
        sample_rate: Output rate, in Hz.
    """
    words = text.split()
    if not words:
        return tone(220.0, 200.0, amplitude=0.0, sample_rate=sample_rate)
    pieces: list[Int16Array] = []
    gap = np.zeros(sample_rate * 80 // 1000, dtype=np.int16)
    for word in words:
        pitch = 140.0 + (zlib.crc32(word.lower().encode()) % 160)
        pieces.append(
            tone(pitch, 60.0 * min(len(word), 12), amplitude=0.25, sample_rate=sample_rate)
        )
        pieces.append(gap)
    return np.concatenate(pieces)


# --- echo ---------------------------------------------------------------------------------


class EchoResponder(Responder):
    """Plays the user's committed audio back; echoes text turns."""

    async def respond(self, ctx: ResponseContext) -> Reply:
        if ctx.function_output is not None:
            fo = ctx.function_output
            return Reply(
                (
                    MessageReply(
                        f"Echo: {fo.get('name') or 'the function'} returned {fo.get('output', '')}"
                    ),
                )
            )
        if ctx.user_audio is not None:
            seconds = len(ctx.user_audio) / SAMPLE_RATE
            heard = f' "{ctx.user_text}"' if ctx.user_text else ""
            text = f"Echo of your {seconds:.2f} seconds of audio{heard}."
            return Reply((MessageReply(text, ctx.user_audio.copy()),))
        if ctx.user_text:
            return Reply((MessageReply(f"Echo: {ctx.user_text}"),))
        return Reply((MessageReply("I am listening."),))


# --- script --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    match: str | None
    regex: re.Pattern[str] | None
    transcript: str | None
    outputs: tuple[dict[str, Any], ...]


class ScriptResponder(Responder):
    """Replies from a JSON script (see the module docstring for the format).

    Args:
        path: The script file.

    Raises:
        ResponderError: The file is missing, not a regular file, not JSON, or not in the
            expected shape; or an audio file is unreadable, not a regular file, or outside
            the script's folder.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            with _open_regular(self.path, f"cannot read script {self.path}") as f:
                data = json.loads(f.read().decode("utf-8"))
        except ResponderError:
            raise
        except OSError as exc:
            raise ResponderError(f"cannot read script {self.path}: {exc}") from exc
        except ValueError as exc:
            raise ResponderError(f"script {self.path} is not valid JSON: {exc}") from exc
        if isinstance(data, list):
            data = {"turns": data}
        if not isinstance(data, dict):
            raise ResponderError(f"script {self.path}: expected an object or a list at the top")
        unknown = set(data) - {"rules", "turns", "default"}
        if unknown:
            raise ResponderError(f"script {self.path}: unknown keys {sorted(unknown)}")
        self._rules = [self._rule(r, f"rules[{i}]") for i, r in enumerate(data.get("rules", []))]
        self._turns = [self._rule(t, f"turns[{i}]") for i, t in enumerate(data.get("turns", []))]
        default = data.get("default")
        self._default = (
            self._outputs(default, "default") if default is not None else ({"text": "OK."},)
        )
        self._cursor = 0
        # Load audio files once, up front, so a bad path fails at start-up.
        self._audio: dict[str, Int16Array] = {}
        for rule in [*self._rules, *self._turns, _Rule(None, None, None, self._default)]:
            for out in rule.outputs:
                if "audio" in out:
                    self._load_audio(out["audio"])

    def _rule(self, raw: Any, where: str) -> _Rule:
        if not isinstance(raw, dict):
            raise ResponderError(f"script {self.path}: {where} must be an object")
        unknown = set(raw) - {"match", "regex", "transcript", "reply"}
        if unknown:
            raise ResponderError(f"script {self.path}: {where} has unknown keys {sorted(unknown)}")
        match = raw.get("match")
        if match is not None and not isinstance(match, str):
            raise ResponderError(f"script {self.path}: {where}.match must be a string")
        pattern = None
        if match is not None and raw.get("regex"):
            try:
                pattern = re.compile(match, re.IGNORECASE)
            except re.error as exc:
                raise ResponderError(f"script {self.path}: {where}.match: {exc}") from exc
        transcript = raw.get("transcript")
        if transcript is not None and not isinstance(transcript, str):
            raise ResponderError(f"script {self.path}: {where}.transcript must be a string")
        if "reply" not in raw:
            raise ResponderError(f"script {self.path}: {where} has no 'reply'")
        return _Rule(match, pattern, transcript, self._outputs(raw["reply"], f"{where}.reply"))

    def _outputs(self, raw: Any, where: str) -> tuple[dict[str, Any], ...]:
        items = raw if isinstance(raw, list) else [raw]
        outs: list[dict[str, Any]] = []
        for i, out in enumerate(items):
            w = f"{where}[{i}]" if isinstance(raw, list) else where
            if not isinstance(out, dict):
                raise ResponderError(f"script {self.path}: {w} must be an object")
            kinds = {"text", "audio", "tone", "function_call"} & set(out)
            unknown = set(out) - {"text", "audio", "tone", "function_call", "phase", "preamble"}
            if unknown or not kinds:
                raise ResponderError(
                    f"script {self.path}: {w} needs one of text, audio, tone, function_call"
                    + (f" (unknown keys {sorted(unknown)})" if unknown else "")
                )
            if "function_call" in out:
                fc = out["function_call"]
                if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
                    raise ResponderError(f"script {self.path}: {w}.function_call needs a name")
            if out.get("phase", "commentary") not in ("commentary", "final_answer"):
                raise ResponderError(
                    f"script {self.path}: {w}.phase must be 'commentary' or 'final_answer'"
                )
            if not isinstance(out.get("preamble", ""), str):
                raise ResponderError(f"script {self.path}: {w}.preamble must be a string")
            if "tone" in out and not isinstance(out["tone"], dict):
                raise ResponderError(f"script {self.path}: {w}.tone must be an object")
            outs.append(out)
        return tuple(outs)

    def _load_audio(self, rel: Any) -> Int16Array:
        if not isinstance(rel, str):
            raise ResponderError(f"script {self.path}: audio must be a file path")
        cached = self._audio.get(rel)
        if cached is not None:
            return cached
        from realtime_client.audio.formats import float32_to_pcm16
        from realtime_client.audio.wav import read_wav_mono

        folder = self.path.parent.resolve()
        path = (folder / rel).resolve()
        if not path.is_relative_to(folder):
            raise ResponderError(
                f"script {self.path}: audio {rel!r} is outside the script's folder {folder}"
            )
        try:
            with _open_regular(path, f"script {self.path}: cannot read audio {path}") as f:
                samples, _ = read_wav_mono(f, SAMPLE_RATE)
        except ResponderError:
            raise
        except (OSError, ValueError) as exc:
            raise ResponderError(f"script {self.path}: cannot read audio {path}: {exc}") from exc
        pcm = float32_to_pcm16(samples)
        self._audio[rel] = pcm
        return pcm

    def transcribe(self, audio: Int16Array, *, item_index: int) -> str | None:
        if self._cursor < len(self._turns):
            return self._turns[self._cursor].transcript
        return None

    def _pick(self, ctx: ResponseContext) -> tuple[dict[str, Any], ...]:
        text = ctx.user_text or ""
        # Rules answer user turns; the answer to a function's output is the next turn.
        rules = self._rules if ctx.function_output is None else []
        for rule in rules:
            if rule.match is None:
                continue
            hit = (
                rule.regex.search(text) is not None
                if rule.regex is not None
                else rule.match.lower() in text.lower()
            )
            if hit:
                return rule.outputs
        if self._cursor < len(self._turns):
            turn = self._turns[self._cursor]
            self._cursor += 1
            return turn.outputs
        return self._default

    async def respond(self, ctx: ResponseContext) -> Reply:
        outputs: list[MessageReply | FunctionCallReply] = []
        for out in self._pick(ctx):
            if "function_call" in out:
                fc = out["function_call"]
                args = fc.get("arguments", {})
                arguments = args if isinstance(args, str) else json.dumps(args)
                outputs.append(
                    FunctionCallReply(fc["name"], arguments, fc.get("call_id"), out.get("preamble"))
                )
                continue
            text = str(out.get("text", ""))
            audio: Int16Array | None = None
            if "audio" in out:
                audio = self._load_audio(out["audio"])
            elif "tone" in out:
                t = out["tone"]
                audio = tone(
                    float(t.get("frequency_hz", 440.0)),
                    float(t.get("duration_ms", 500)),
                    amplitude=float(t.get("amplitude", 0.3)),
                )
            outputs.append(MessageReply(text, audio, out.get("phase")))
        return Reply(tuple(outputs))


# --- tts -----------------------------------------------------------------------------------


class _ParrotResponder(Responder):
    """Words for the TTS responder when it wraps nothing: repeat what was said."""

    async def respond(self, ctx: ResponseContext) -> Reply:
        if ctx.function_output is not None:
            return Reply((MessageReply(f"The function returned {ctx.function_output['output']}."),))
        if ctx.user_text:
            return Reply((MessageReply(f"You said: {ctx.user_text}"),))
        if ctx.user_audio is not None:
            seconds = len(ctx.user_audio) / SAMPLE_RATE
            return Reply((MessageReply(f"I heard {seconds:.1f} seconds of audio."),))
        return Reply((MessageReply("Hello! I am the local test server."),))


class TTSResponder(Responder):
    """Speaks the words of another responder with espeak-ng.

    Args:
        inner: Where the words come from; by default the user's words are repeated.
        voice: The espeak-ng voice, e.g. ``"en-us"``.
        words_per_minute: Speaking rate, in words per minute.

    Raises:
        ResponderError: espeak-ng (or espeak) is not installed.
    """

    def __init__(
        self, inner: Responder | None = None, *, voice: str = "en-us", words_per_minute: int = 175
    ) -> None:
        exe = shutil.which("espeak-ng") or shutil.which("espeak")
        if exe is None:
            raise ResponderError(
                "the tts responder needs espeak-ng: install it (Debian/Ubuntu: "
                "apt-get install espeak-ng; macOS: brew install espeak-ng) or use "
                "--responder echo"
            )
        self._exe = exe
        self._inner = inner or _ParrotResponder()
        self.voice = voice
        self.words_per_minute = words_per_minute

    def transcribe(self, audio: Int16Array, *, item_index: int) -> str | None:
        return self._inner.transcribe(audio, item_index=item_index)

    async def respond(self, ctx: ResponseContext) -> Reply:
        reply = await self._inner.respond(ctx)
        outputs: list[MessageReply | FunctionCallReply] = []
        for out in reply.outputs:
            if isinstance(out, MessageReply) and out.audio is None and out.text:
                out = MessageReply(out.text, await self.synthesize(out.text), out.phase)
            outputs.append(out)
        return Reply(tuple(outputs))

    async def synthesize(self, text: str) -> Int16Array:
        from realtime_client.audio.formats import float32_to_pcm16
        from realtime_client.audio.wav import read_wav_mono

        fd, name = tempfile.mkstemp(suffix=".wav")
        os.close(fd)
        try:
            proc = await asyncio.create_subprocess_exec(
                self._exe,
                "-v",
                self.voice,
                "-s",
                str(self.words_per_minute),
                "-w",
                name,
                "--",
                text,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await proc.communicate()
            except asyncio.CancelledError:
                # A cancelled response must not leave espeak-ng running (and writing to
                # the temporary file removed below): kill it and reap it first.
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                raise
            if proc.returncode != 0:
                raise ResponderError(
                    f"espeak-ng failed ({proc.returncode}): {err.decode(errors='replace')}"
                )
            samples, _ = read_wav_mono(name, SAMPLE_RATE)
        finally:
            os.unlink(name)
        pcm: Int16Array = float32_to_pcm16(samples)
        return pcm


def make_responder(spec: str | Responder) -> Responder:
    """Build a responder from a CLI-style spec.

    Args:
        spec: A :class:`Responder`, or ``"echo"``, ``"script:PATH"``, ``"tts"``,
            ``"tts:script:PATH"``.

    Raises:
        ResponderError: Unknown spec, bad script, or espeak-ng missing for ``tts``.
    """
    if isinstance(spec, Responder):
        return spec
    if spec == "echo":
        return EchoResponder()
    if spec.startswith("script:"):
        return ScriptResponder(spec[len("script:") :])
    if spec == "tts":
        return TTSResponder()
    if spec.startswith("tts:"):
        return TTSResponder(make_responder(spec[len("tts:") :]))
    raise ResponderError(
        f"unknown responder {spec!r}: use echo, script:PATH, tts or tts:script:PATH"
    )
