"""The files a replay writes: transcript, report, WAVs, events.jsonl, the timeline, HTML."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from realtime_client.audio.wav import write_wav

from ...errors import MissingExtraError
from .._timeline import TimelineData, save_timeline
from ._driver import _OUT_RATE, _Driver
from ._html import write_html
from ._records import _write_events
from ._results import ReplayError, ReplayResult, Turn

#: What a live run writes (besides ``response-*.wav``): an earlier run's copies are
#: removed before a new run starts, so nothing in the folder looks newer than it is.
OUTPUT_NAMES = (
    "transcript.md",
    "transcript.json",
    "report.json",
    "events.jsonl",
    "timeline.png",
    "conversation.wav",
    "report.html",
)


def _prepare_out(out: Path) -> None:
    """Create the output directory, prove it is writable and clear an earlier run's files."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".realtime-replay-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        for stale in [*(out / name for name in OUTPUT_NAMES), *out.glob("response-*.wav")]:
            stale.unlink(missing_ok=True)
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
    heard = out / "input.wav"  # what the microphone path sent, for the report's player
    write_wav(heard, input_track, _OUT_RATE)
    result.paths["input.wav"] = heard
    picture = out / "timeline.png"
    try:
        width, height = save_timeline(
            picture,
            _timeline_data(turns, records, driver, input_track, output_track, meta),
        )
    except MissingExtraError as exc:
        picture.unlink(missing_ok=True)  # from an earlier run: it would look current
        result.notes.append(str(exc))
        report["timeline_png"] = None
    else:
        result.paths["timeline.png"] = picture
        report["timeline_png"] = {"width": width, "height": height}
    result.paths["report.json"].write_text(json.dumps(report, indent=2, ensure_ascii=False))
    _write_html(result, out, meta)


def _write_html(result: ReplayResult, out: Path, meta: dict[str, Any]) -> None:
    """``report.html``, last: it links to the files written before it."""
    result.paths["report.html"] = write_html(result, out, meta)


def _timeline_data(
    turns: list[Turn],
    records: list[dict[str, Any]],
    driver: _Driver,
    input_track: npt.NDArray[np.float32],
    output_track: npt.NDArray[np.float32],
    meta: dict[str, Any],
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
        label = f"R{n}" + ("" if turn.status == "completed" else f" ({turn.status})")
        if turn.text:
            label += f": {turn.text}"
        responses.append((start, end, label, turn.status or ""))
        if turn.truncated_at_ms is not None and turn.truncated_at_ms < turn.audio_ms - 1:
            # Where the audio was cut, on the clock it was played on.
            truncations.append(start + turn.truncated_at_ms)
    return TimelineData(
        sample_rate=_OUT_RATE,
        user_words=_user_words(turns, driver.inputs),
        push_to_talk=bool(meta.get("push_to_talk")),
        input_track=input_track,
        output_track=output_track,
        speech=speech,
        inputs=driver.inputs,
        responses=responses,
        barge_ins=driver.barge_ins,
        truncations=truncations,
        title=_title(meta, n),
    )


def _user_words(
    turns: list[Turn], inputs: list[tuple[float, float, str]]
) -> list[tuple[float, float, str]]:
    """Where each user turn's words go: its VAD span, else the input file it came from."""
    out: list[tuple[float, float, str]] = []
    for turn in turns:
        if turn.role != "user" or not turn.text:
            continue
        if turn.start_ms is not None:
            end = turn.end_ms if turn.end_ms is not None else turn.start_ms + 1000.0
            out.append((turn.start_ms, end, turn.text))
            continue
        # Push-to-talk: the item appears right after the file it was committed from.
        at = turn.at_ms
        done = [f for f in inputs if at is not None and f[1] <= at + 100.0]
        if done:
            start, end, _name = done[-1]
            out.append((start, end, turn.text))
    return out


def _title(meta: dict[str, Any], responses: int) -> str:
    """Files, server / responder, speed and turn-taking, for the picture's caption."""
    files = [Path(p).name for p in meta.get("inputs", [])]
    shown = ", ".join(files[:4]) + (f" (+{len(files) - 4} more)" if len(files) > 4 else "")
    responder = meta.get("responder")
    server = f"{responder} responder" if responder else f"server {meta.get('server', '?')}"
    speed = meta.get("speed", 1.0)
    pace = "as fast as possible" if speed == 0 else f"speed {speed:g}x"
    taking = "push-to-talk" if meta.get("push_to_talk") else "server VAD"
    return (
        f"realtime-replay: {shown}\n{server} · {pace} · {taking} · "
        f"model {meta.get('model', '?')} · {responses} response(s)"
    )


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
