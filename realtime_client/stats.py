"""Session counters, per-turn latency, and the cost estimate from a price table."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from .protocol import UsageTotals

__all__ = ["KEEP_TURNS", "PRICES", "SessionStats", "TurnStats", "cost_usd", "log_turn"]

logger = logging.getLogger("realtime_client")

#: USD per 1M tokens, as published for gpt-realtime (Aug 2025). Override with
#: ``connect(..., prices=...)`` for other models or price changes.
PRICES: dict[str, float] = {
    "input_text": 4.00,
    "input_audio": 32.00,
    "input_image": 5.00,
    "cached_text": 0.40,
    "cached_audio": 0.40,
    "cached_image": 0.50,
    "output_text": 16.00,
    "output_audio": 64.00,
}


#: How many turns :attr:`SessionStats.turns` keeps by default (``keep_responses``).
KEEP_TURNS = 64


@dataclass(slots=True)
class TurnStats:
    """Latency of one response, in ms on the event loop's clock.

    Attributes:
        response_id: The response.
        speech_to_audio_ms: User speech stop (``speech_stopped``) to the first audio delta.
        create_to_delta_ms: Our ``response.create`` to the first delta (audio or text).
        duration_ms: ``response.created`` to ``response.done``.
        status: How it ended.
        usage: This response's token usage per modality (from its ``response.done``).
        cost_usd: Estimated cost of :attr:`usage` in USD, from the session's prices.
    """

    response_id: str
    speech_to_audio_ms: float | None = None
    create_to_delta_ms: float | None = None
    duration_ms: float | None = None
    status: str = "in_progress"
    usage: UsageTotals | None = None
    cost_usd: float | None = None


@dataclass
class SessionStats:
    """Counters and per-turn latency of a session (``session.stats``).

    Audio figures are in ms: ``audio_sent_ms`` went out, ``audio_received_ms`` came in
    (deltas, or media frames), ``dropped_audio_ms`` of captured audio could not be kept
    or delivered (outage buffer full, or uncommitted speech older than the resend
    buffer when a connection dropped), ``resent_audio_ms`` went out again after a
    reconnect (speech the lost server session had not committed), and
    ``unattributed_audio_ms`` of media audio arrived while no response of ours was
    playing (not written to the sink).

    :attr:`turns` holds the latest turns only (``connect(..., keep_responses=...)``,
    64 by default) so an hour-long conversation does not grow it; :attr:`turns_total`
    counts every turn, and :attr:`usage` and the counters cover the whole session.
    """

    turns: deque[TurnStats] = field(default_factory=lambda: deque(maxlen=KEEP_TURNS))
    turns_total: int = 0
    usage: UsageTotals = field(default_factory=UsageTotals)
    prices: dict[str, float] = field(default_factory=lambda: dict(PRICES))
    audio_sent_ms: float = 0.0
    audio_received_ms: float = 0.0
    dropped_audio_ms: float = 0.0
    unattributed_audio_ms: float = 0.0
    resent_audio_ms: float = 0.0
    dropped_events: int = 0
    reconnects: int = 0
    server_errors: int = 0
    tool_calls: int = 0
    tool_errors: int = 0

    @property
    def cost_usd(self) -> float:
        """Estimated cost of the usage so far, from :attr:`prices` (USD per 1M tokens)."""
        return cost_usd(self.usage, self.prices)

    def last_turn(self) -> TurnStats | None:
        """The most recent turn, if any."""
        return self.turns[-1] if self.turns else None


def cost_usd(u: UsageTotals, p: dict[str, float]) -> float:
    """Cost of some usage in USD, from a price table in USD per 1M tokens."""
    uncached_text = max(0, u.input_text_tokens - u.cached_text_tokens)
    uncached_audio = max(0, u.input_audio_tokens - u.cached_audio_tokens)
    uncached_image = max(0, u.input_image_tokens - u.cached_image_tokens)
    total = (
        uncached_text * p["input_text"]
        + uncached_audio * p["input_audio"]
        + uncached_image * p["input_image"]
        + u.cached_text_tokens * p["cached_text"]
        + u.cached_audio_tokens * p["cached_audio"]
        + u.cached_image_tokens * p["cached_image"]
        + (u.output_text_tokens + u.output_reasoning_tokens) * p["output_text"]  # as text
        + u.output_audio_tokens * p["output_audio"]
    )
    return total / 1_000_000


def log_turn(turn: TurnStats) -> None:
    """One INFO line per finished turn: its latencies, usage and cost (no secrets)."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    u = turn.usage
    usage = (
        "usage -"
        if u is None
        else (
            f"tokens in text {u.input_text_tokens} audio {u.input_audio_tokens} "
            f"image {u.input_image_tokens} (cached text {u.cached_text_tokens} "
            f"audio {u.cached_audio_tokens} image {u.cached_image_tokens}), "
            f"out text {u.output_text_tokens} audio {u.output_audio_tokens}"
        )
    )
    cost = "-" if turn.cost_usd is None else f"${turn.cost_usd:.6f}"
    logger.info(
        "turn %s %s: create -> first delta %s, speech stop -> first audio %s, "
        "duration %s; %s; cost %s",
        turn.response_id,
        turn.status,
        ms(turn.create_to_delta_ms),
        ms(turn.speech_to_audio_ms),
        ms(turn.duration_ms),
        usage,
        cost,
    )
