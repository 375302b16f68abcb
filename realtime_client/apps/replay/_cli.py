"""The ``realtime-replay`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from realtime_client.audio.errors import AudioFormatError as AudioLibFormatError

from ...errors import (
    AudioFormatError,
    AuthenticationError,
    ConnectError,
    InvalidModelError,
    MissingExtraError,
    ServerError,
    TransportError,
)
from ...models import DEFAULT_MODEL
from ._results import ReplayError, ReplayResult
from ._run import rebuild, replay


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
        "--api-key",
        metavar="KEY",
        help="API key (default: OPENAI_API_KEY; none: the embedded local server)",
    )
    p.add_argument(
        "--responder",
        help="use the embedded server with this responder: echo | script:FILE | tts",
    )
    p.add_argument(
        "--server-timing",
        choices=("instant", "realistic"),
        default="instant",
        help="the embedded server's timing: instant (default) or realistic (the real "
        "service's delays: ~250 ms to response.created, ~200 ms more to the first audio)",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model (default {DEFAULT_MODEL})")
    p.add_argument("--voice", help="output voice")
    p.add_argument("--instructions", help="system instructions")
    p.add_argument("--dialect", choices=("ga", "beta"), default="ga", help="protocol dialect")
    p.add_argument(
        "--transport",
        choices=("websocket", "webrtc"),
        default="websocket",
        help="websocket (default) or webrtc (real-time media: --speed 1; the webrtc extra)",
    )
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
    p.add_argument(
        "--echo",
        action="store_true",
        help="play through speakers: the output reaches the microphone through a simulated "
        "room (40 ms, -6 dB, 250 ms tail); echo cancellation is on unless --no-aec",
    )
    p.add_argument(
        "--no-aec",
        action="store_true",
        help="with --echo: no echo cancellation (to see the assistant interrupt itself)",
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
    echo = result.report.get("echo")
    if echo:
        erle = echo.get("erle_db")
        print(
            f"echo: {echo.get('canceller') or 'no cancellation'}"
            + (f", ERLE {erle:.1f} dB" if erle is not None else "")
            + f", {echo.get('self_interruptions', 0)} self-interruption(s)",
            file=file,
        )
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
    for note in result.notes:
        print(f"realtime-replay: note: {note}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0: every turn answered; 1: a turn failed (reason printed), including a connection
    lost mid-run (the outputs are still written); 2: bad usage or input (unreadable or
    unsupported WAV, one holding NaN / inf samples, bad option or URL, unwritable ``--out``,
    bad recording); 3: the
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
    if args.no_aec and not args.echo:
        return error("--no-aec applies with --echo only", 2)
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
                api_key=args.api_key,
                model=args.model,
                responder=args.responder,
                server_timing=args.server_timing,
                speed=args.speed,
                push_to_talk=args.push_to_talk,
                barge_in_at=args.barge_in_at,
                voice=args.voice,
                instructions=args.instructions,
                dialect=args.dialect,
                transport=args.transport,
                transcription_model=transcription,
                keep_audio=args.keep_audio,
                turn_timeout=args.turn_timeout,
                progress=tty and not args.quiet,
                log=None if args.quiet else sys.stderr,
                on_server=on_server,
                echo=args.echo,
                aec=not args.no_aec,
            )
        )
    except ReplayError as exc:
        return error(str(exc), 2)
    except MissingExtraError as exc:
        return error(str(exc), 2)
    except (AudioFormatError, AudioLibFormatError) as exc:
        # Inputs are checked before the run (ReplayError); this is the backstop for audio
        # refused during it, which is still bad input, not a traceback.
        return error(f"bad input audio: {exc}", 2)
    except (AuthenticationError, InvalidModelError) as exc:
        return error(str(exc), 3)
    except (ConnectError, TransportError) as exc:
        # Only a connection that never got through raises the question of the server.
        unreachable = isinstance(exc.__cause__, OSError | asyncio.TimeoutError)
        return error(f"{exc} (is the server running? check --url)" if unreachable else str(exc), 3)
    except ServerError as exc:
        return error(f"the server rejected the session: {exc}", 3)
    except KeyboardInterrupt:
        return error(f"interrupted: what was recorded until then is in {out}/", 130)
    _summary(result, out, sys.stdout)
    return _verdict(result)


def _verdict(result: ReplayResult) -> int:
    if result.ok:
        return 0
    for failure in result.failures:
        print(f"realtime-replay: turn failed: {failure}", file=sys.stderr)
    return 1
