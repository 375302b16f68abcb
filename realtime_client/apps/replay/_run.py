"""The entry points: a live replay through a session, and a rebuild from a recording."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import numpy.typing as npt
import pybase64

from realtime_client.audio.echo import EchoPath
from realtime_client.audio.errors import AudioError
from realtime_client.audio.virtual import VirtualSpeaker

from ... import endpoint
from ...connection import connect
from ...errors import ConnectError, RealtimeError, RecordingError
from ...models import DEFAULT_MODEL
from ...protocol import RealtimeProtocol
from ...recording import read_recording, server_events
from ...session import ReconnectPolicy
from ...stats import PRICES, cost_usd
from ...transports import Transport, WebSocketTransport
from ._driver import _OUT_RATE, _Config, _ConnectionLost, _Driver, _Input, _load
from ._outputs import (
    _check_rebuild_out,
    _prepare_out,
    _write_html,
    _write_item_audio,
    _write_live,
    _write_outputs,
)
from ._records import _one_connection, _Recorder, _RecordingTransport
from ._report import CLOCKS, _build_turns, _failures, _latency_report
from ._results import ReplayError, ReplayResult


async def replay(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    model: str = DEFAULT_MODEL,
    api_key: str | None = None,
    responder: str | None = None,
    server_timing: str = "instant",
    speed: float = 1.0,
    push_to_talk: bool = False,
    barge_in_at: Sequence[float] = (),
    voice: str | None = None,
    instructions: str | None = None,
    dialect: Literal["ga", "beta"] = "ga",
    transport: Literal["websocket", "webrtc"] = "websocket",
    transcription_model: str | None = "gpt-4o-mini-transcribe",
    keep_audio: bool = False,
    turn_timeout: float = 30.0,
    open_timeout: float = 10.0,
    progress: bool = False,
    log: TextIO | None = None,
    on_server: Callable[[str], None] | None = None,
    echo: bool | EchoPath = False,
    aec: bool = True,
) -> ReplayResult:
    """Stream WAV files through a Realtime session as a microphone would; record it all.

    Args:
        inputs: WAV files, one user turn each: mono or multi-channel (averaged), at a rate
            in Hz whose ratio to 24 kHz reduces to terms <= 1024 (all common rates).
        out_dir: Where to write the outputs; ``None`` writes nothing (the result has it all).
        url: Server base URL. ``None``: the embedded local server when ``responder`` is
            given or there is no API key (neither ``api_key`` nor ``OPENAI_API_KEY``),
            else the OpenAI API (see :mod:`realtime_client.endpoint`).
        model: The model.
        api_key: Default ``OPENAI_API_KEY``.
        responder: Responder of the embedded server (``echo``, ``script:FILE``, ``tts``).
        server_timing: The embedded server's timing: ``"instant"`` or ``"realistic"``
            (the real service's delays; see :class:`~realtime_client.server.LocalServer`).
        speed: Pace: 1.0 real time, 4.0 four times faster, 0 as fast as possible.
        push_to_talk: Commit each file and ask for a response (no server VAD).
        barge_in_at: Device-clock times to barge in, in seconds.
        voice: Output voice.
        instructions: System instructions.
        dialect: ``"ga"`` or ``"beta"``.
        transport: ``"websocket"`` or ``"webrtc"`` (audio as real-time media: runs at
            ``speed`` 1, GA only; the ``webrtc`` extra).
        transcription_model: Input transcription model, ``None`` for none.
        keep_audio: Keep audio payloads in ``events.jsonl`` (else elided to their length).
        turn_timeout: Seconds to wait for each input's answer before calling it failed.
        open_timeout: Seconds to wait for the connection.
        progress: Show a progress bar on stderr.
        log: Where to print one line per step (``None``: quiet).
        on_server: Called with a description of the server used (e.g. to print it).
        echo: Play through speakers: what the simulated speaker plays reaches the
            microphone through a loudspeaker-room path (``True``: :class:`EchoPath`'s
            defaults, 40 ms, -6 dB, a 250 ms tail: enough to interrupt itself without
            echo cancellation), or this :class:`EchoPath` at 24 kHz. The report's
            ``echo`` entry counts the self-interruptions and the ERLE achieved.
        aec: With ``echo``: cancel it (WebRTC AEC3 with the ``aec`` extra, else the echo
            gate); ``False`` to compare without.

    Returns:
        The transcript, report, failures and written paths.

    Raises:
        ReplayError: An input cannot be read, has an unsupported sample rate or samples
            the session refuses (NaN, inf, beyond 1e30 in a float WAV), an option
            is out of range, the URL's scheme is unsupported, or ``out_dir`` cannot be
            written.
        ConnectError: The server cannot be reached (``AuthenticationError`` for a bad key).

    A connection lost mid-replay does not raise: it is one of ``failures`` and what was
    recorded up to then is written.
    """
    if speed < 0 or not math.isfinite(speed):
        raise ReplayError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
    if transport == "webrtc" and (speed != 1 or dialect != "ga"):
        raise ReplayError("--transport webrtc carries audio in real time: use --speed 1 (GA)")
    if not (turn_timeout > 0 and math.isfinite(turn_timeout)):
        raise ReplayError(f"turn_timeout must be a finite number > 0 s, got {turn_timeout}")
    if not all(t >= 0 and math.isfinite(t) for t in barge_in_at):
        raise ReplayError(f"barge-in times must be finite and >= 0 s, got {list(barge_in_at)}")
    if not inputs:
        raise ReplayError("no input files")
    if echo is True:
        echo = EchoPath(24_000)
    if isinstance(echo, EchoPath) and echo.sample_rate != 24_000:
        raise ReplayError(f"the echo path must run at 24000 Hz, got {echo.sample_rate}")
    if echo is not False and not isinstance(echo, EchoPath):
        raise ReplayError(f"echo must be a bool or an EchoPath, got {echo!r}")
    files = [_load(p) for p in inputs]
    use_local = responder is not None or endpoint.use_local_server(url, api_key)
    if use_local and url is not None:
        raise ReplayError("responder applies to the embedded local server only (drop url)")
    if url is not None:
        try:
            endpoint.realtime_url(url, model)
        except ConnectError as exc:
            raise ReplayError(str(exc)) from exc
    if out_dir is not None:
        _prepare_out(Path(out_dir))
    server: Any = None
    if use_local:
        from ...server import LocalServer, ResponderError, ServerConfigError

        try:
            server = LocalServer(responder=responder or "echo", speed=speed, timing=server_timing)
            await server.start()
        except (ResponderError, ServerConfigError) as exc:
            raise ReplayError(str(exc)) from exc
        url = server.url
        if on_server is not None:
            why = "" if responder else " (no OPENAI_API_KEY)"
            on_server(
                f"using the embedded local server{why} at {url}, "
                f"{(responder or 'echo').split(':')[0]} responder"
            )
    elif on_server is not None:
        on_server(f"using {endpoint.describe_server(url)}")
    try:
        return await _live(
            files,
            Path(out_dir) if out_dir is not None else None,
            url=url,
            model=model,
            api_key=api_key,
            dialect=dialect,
            transport=transport,
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
                echo=echo or None,
                aec=aec,
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
                "echo": _describe_echo(echo or None, aec),
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
    transport: Literal["websocket", "webrtc"] = "websocket",
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
    ws_url = endpoint.realtime_url(url, model)
    key = endpoint.auth_key(ws_url, api_key)
    headers = endpoint.upgrade_headers(key, dialect=dialect)

    def make_transport() -> Transport:
        if transport == "webrtc":
            from ...transports.webrtc import WebRTCTransport

            inner: Transport = WebRTCTransport(
                endpoint.base_url(url), api_key=key, model=model, open_timeout=open_timeout
            )
        else:
            inner = WebSocketTransport(ws_url, headers=headers, open_timeout=open_timeout)
        return _RecordingTransport(inner, recorder)

    audio_in: dict[str, Any] = {}
    if transcription_model:
        audio_in["transcription"] = {"model": transcription_model}
    if cfg.push_to_talk:
        audio_in["turn_detection"] = None
    config: dict[str, Any] = {"audio": {"input": audio_in}} if audio_in else {}
    session = await connect(
        model,
        transport=make_transport,
        dialect=dialect,
        session=config or None,
        instructions=instructions,
        voice=voice,
        reconnect=ReconnectPolicy(max_attempts=0, recycle_before_expiry_s=0),
        open_timeout=open_timeout,
    )
    speaker = VirtualSpeaker(sample_rate=_OUT_RATE, speed=None)  # on the driver's clock
    await speaker.open()
    driver = _Driver(session, speaker, cfg, recorder)
    # The driver records every delta; media audio (WebRTC) it records at the sink.
    media = session.audio_path.kind == "media"
    session.attach(sink=driver.tap(speaker) if media else speaker, iterate_audio=True)
    driver_box.append(driver)
    consumer = asyncio.ensure_future(driver.consume())
    lost: _ConnectionLost | None = None
    interrupted = False
    wall0 = time.monotonic()
    try:
        await driver.run(files)
    except _ConnectionLost as exc:
        lost = exc
    except asyncio.CancelledError:
        # Ctrl-C (or the caller cancelled): write what was recorded, then stop.
        interrupted = True
    finally:
        await session.close()
        await speaker.close()
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
    if interrupted:
        failures.append("interrupted (Ctrl-C): the outputs hold what was recorded until then")
    stats = session.stats
    report = {
        **meta,
        "interrupted": interrupted,
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
        # Headless: the virtual speaker plays on the replay's own clock, so no device ever
        # ran dry; underruns would count the clock waiting for the server, not glitches.
        "playback": {
            k: v
            for k, v in asdict(speaker.buffer.stats()).items()
            if k not in ("underruns", "underrun_ms", "output_latency_s")
        },
        "clocks": CLOCKS,
        "self_interruptions_at_ms": driver.self_interruptions,
    }
    if driver.cfg.echo is not None:
        canceller = driver.canceller
        report["echo"] = {
            **(meta.get("echo") or {}),
            "canceller": canceller.name if canceller is not None else None,
            "erle_db": round(canceller.erle_db, 1)
            if canceller is not None and canceller.erle_db is not None
            else None,
            "self_interruptions": len(driver.self_interruptions),
        }
    result = ReplayResult(turns, report, failures, records=records, stats=stats)
    if out is not None:
        try:
            _write_live(result, out, meta, driver, report=report)
        except (OSError, AudioError) as exc:
            raise ReplayError(f"cannot write the outputs to {out}: {exc}") from exc
    if interrupted:
        raise asyncio.CancelledError  # the interruption goes on, the outputs are written
    return result


def _describe_echo(echo: EchoPath | None, aec: bool) -> dict[str, Any] | None:
    if echo is None:
        return None
    return {
        "delay_ms": echo.delay_ms,
        "gain_db": echo.gain_db,
        "tail_ms": echo.tail_ms,
        "aec": aec,
    }


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
    written again. The silence is built one event at a time and not kept; a record that
    claims more than :data:`~realtime_client.recording.MAX_ELIDED_BYTES` (16 MiB), or
    server records claiming more than :data:`~realtime_client.recording.MAX_ELIDED_TOTAL`
    (512 MiB) together, make the recording bad input (:class:`ReplayError`).

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
        # One event at a time, none kept: elided silence is rebuilt per event, so only one
        # event's is ever in memory (receive_all would keep every event with its audio).
        for event in server_events(records):
            protocol.receive(event)
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
        "cost_usd": round(cost_usd(protocol.usage, PRICES), 6),
        "clocks": CLOCKS,
    }
    result = ReplayResult(turns, report, failures, records=records)
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            _write_outputs(result, out, {k: v for k, v in meta.items() if k != "type"})
            # Without kept audio there is nothing to rewrite, so nothing is removed.
            result.audio_files = _write_item_audio(audio, turns, out, replace_stale=bool(audio))
            _write_html(result, out, {k: v for k, v in meta.items() if k != "type"})
        except (OSError, AudioError) as exc:
            raise ReplayError(f"cannot write the outputs to {out}: {exc}") from exc
    return result
