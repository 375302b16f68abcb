"""The transcript and the report, built from the protocol state and the records.

Live runs and rebuilds share this code, so a rebuild comes out the same.
"""

from __future__ import annotations

from typing import Any

from ...protocol import RealtimeProtocol
from ...session import SessionStats
from ._records import _b64_len
from ._results import Turn

#: How responses may end without the turn counting as failed.
_OK_CANCEL_REASONS = {"turn_detected", "client_cancelled"}
#: Server errors from benign races (a cancel that arrived after the response ended, a
#: response.create while the server had just started one): no turn is lost by them.
_BENIGN_ERROR_CODES = {"response_cancel_not_active", "conversation_already_has_active_response"}


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
                    # From the deltas; over WebRTC (no deltas) from the media counted on
                    # the item, before any truncation.
                    audio_ms=round(
                        received.get(item.id, item.untruncated_audio_ms or item.audio_ms), 3
                    ),
                    truncated_at_ms=item.truncated_at_ms,
                    response_id=item.response_id,
                    reason=reason,
                    phase=item.phase,
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
        entry: dict[str, Any] = {
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
        entry["why_null"] = _why_null(entry, stat is not None, first is not None, bool(before))
        out.append(entry)
    return out


#: Which clock each latency field of ``report.json``'s turns is on.
CLOCKS = {
    "wall": (
        "speech_to_audio_ms, create_to_delta_ms, duration_ms: the session's event-loop "
        "time, the real time the run took (what a listener would wait at --speed 1)"
    ),
    "device": (
        "first_delta_at_ms, speech_stop_to_first_delta_device_ms, audio_ms, "
        "truncated_at_ms, and the top-level duration_ms: the replay's audio-device clock "
        "(ms of audio since capture began; at --speed N it runs N times faster than real "
        "time, at --speed 0 it waits for the server)"
    ),
}


def _why_null(entry: dict[str, Any], live: bool, delta: bool, vad: bool) -> dict[str, str]:
    """Why each latency field of a turn's entry is ``None``, in words."""
    why: dict[str, str] = {}
    no_live = "a rebuild from a recording has no live session clock"
    if entry["speech_to_audio_ms"] is None:
        why["speech_to_audio_ms"] = (
            no_live
            if not live
            else "no audio came, or server VAD did not start this response (push-to-talk "
            "or response.create)"
        )
    if entry["create_to_delta_ms"] is None:
        why["create_to_delta_ms"] = (
            no_live
            if not live
            else "server VAD started this response (no response.create), or no delta came"
        )
    if entry["duration_ms"] is None:
        why["duration_ms"] = (
            no_live if not live else "the session did not see this response start and end"
        )
    if entry["speech_stop_to_first_delta_device_ms"] is None:
        why["speech_stop_to_first_delta_device_ms"] = (
            "no output delta came" if not delta else "no speech stop came before it (push-to-talk)"
        )
    if entry["first_delta_at_ms"] is None:
        why["first_delta_at_ms"] = "no output delta came"
    return why


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
