"""What a replay produces: the transcript's turns, the result object, the error type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...errors import RealtimeError
from ...session import SessionStats


class ReplayError(RealtimeError, ValueError):
    """Bad input to the replay: an unreadable WAV file, a bad option, a bad recording."""


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
        phase: A gpt-realtime-2.x assistant message's ``phase``: ``commentary`` (a
            preamble said while tools run) or ``final_answer``; ``None`` otherwise.
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
    phase: str | None = None

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
        notes: What could not be written and why, one line each (e.g. the picture
            without the ``report`` extra).
    """

    turns: list[Turn]
    report: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    audio_files: dict[str, Path] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    stats: SessionStats | None = None
    notes: list[str] = field(default_factory=list)

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
        role = f"{turn.role}, {turn.phase}" if turn.phase else turn.role
        lines.append(f"- **{role}**{when}: {text}{extra}")
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {f}" for f in failures]
    return "\n".join(lines) + "\n"
