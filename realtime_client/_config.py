"""Session-config helpers shared by ``connect()`` and the session (no I/O)."""

from __future__ import annotations

from typing import Any

from . import events as ev
from .errors import InvalidStateError

__all__ = ["deep_merge", "initial_config", "with_push_to_talk"]


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def with_push_to_talk(
    config: ev.RealtimeSession | ev.TranscriptionSession | None,
) -> ev.RealtimeSession | ev.TranscriptionSession | None:
    """The config with the server's turn detection off (``turn_detection: null``)."""
    base = config.to_dict() if config is not None else {"type": "realtime"}
    merged = deep_merge(base, {"audio": {"input": {"turn_detection": None}}})
    return ev.SessionUpdate.model_validate({"type": "session.update", "session": merged}).session


def initial_config(
    session: ev.RealtimeSession | ev.TranscriptionSession | dict[str, Any] | None,
    instructions: str | None,
    voice: str | None,
    intent: str | None,
) -> ev.RealtimeSession | ev.TranscriptionSession | None:
    parsed: ev.RealtimeSession | ev.TranscriptionSession | None
    if isinstance(session, dict):
        data = dict(session)
        data.setdefault("type", "transcription" if intent == "transcription" else "realtime")
        parsed = ev.SessionUpdate.model_validate(
            {"type": "session.update", "session": data}
        ).session
    else:
        parsed = session
    if instructions is None and voice is None:
        return parsed
    if isinstance(parsed, ev.TranscriptionSession):
        raise InvalidStateError("instructions and voice do not apply to a transcription session")
    base = parsed.to_dict() if parsed is not None else {"type": "realtime"}
    if instructions is not None:
        base["instructions"] = instructions
    if voice is not None:
        base = deep_merge(base, {"audio": {"output": {"voice": voice}}})
    result = ev.SessionUpdate.model_validate({"type": "session.update", "session": base}).session
    return result
