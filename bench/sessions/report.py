"""The report: a Markdown table per level, the largest N and the verdicts."""

from __future__ import annotations

import math
import platform
from importlib.metadata import version
from typing import Any

import numpy as np

from .config import (
    _REPLY_S,
    BARE_REFERENCE_SESSIONS,
    LATENCY_AT_SESSIONS,
    TARGET_LATENCY_P99_MS,
    TARGET_RATIO,
    TARGET_SESSIONS,
    VARIANTS,
    LevelResult,
    RunConfig,
)

__all__ = ["render"]


def _largest(results: list[LevelResult], variant: str) -> int:
    passed = [r.sessions for r in results if r.variant == variant and r.passed]
    failed = [r.sessions for r in results if r.variant == variant and not r.passed]
    below = [n for n in passed if not any(f <= n for f in failed)]
    return max(below, default=0)


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def render(results: list[LevelResult], facts: dict[str, Any], config: RunConfig) -> str:
    """The report: a Markdown table per level, then the largest N and latency verdicts."""
    lines = [
        "# Sessions per core: N full-duplex sessions (20 ms frames, 48 kHz device ⇄ 24 kHz)",
        "",
        f"python {platform.python_version()}, websockets {version('websockets')}, "
        f"openai {version('openai')}, numpy {np.__version__}; client core "
        f"{facts['client_core']}, server core {facts['server_core']}"
        + (" (shared!)" if facts["client_core"] == facts["server_core"] else "")
        + f"; window {config.window_s:g} s after {config.warmup_s:g} s warm-up"
        + (
            f" (+ {_REPLY_S:g} s while the staggered turns start)"
            if config.stagger_turns
            else "; turns in lock step"
        ),
        f"arrival timestamps: {facts['arrival_clock']}; resampler filter delay (on top of "
        f"the latencies below): 48→24 kHz {facts['down_delay_ms']:.2f} ms, "
        f"24→48 kHz {facts['up_delay_ms']:.2f} ms",
        "",
        "| client | N | ticks | late p50 ms | late p99 ms | late max ms | send p50/p99 ms "
        "| recv p50/p99 ms | client CPU % | CPU ms/session-s | server CPU % | audio in % "
        "| underrun ms/s | preempted /s | other load % | open s | p99 ≤ limit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines.extend(
        f"| {r.variant} | {r.sessions} | {r.ticks} | {_fmt(r.lateness_p50_ms)} "
        f"| {_fmt(r.lateness_p99_ms)} | {_fmt(r.lateness_max_ms)} "
        f"| {_fmt(r.send_p50_ms)} / {_fmt(r.send_p99_ms)} "
        f"| {_fmt(r.recv_p50_ms)} / {_fmt(r.recv_p99_ms)} "
        f"| {_fmt(r.client_cpu_pct, 0)} | {_fmt(r.cpu_ms_per_session_s)} "
        f"| {_fmt(r.server_cpu_pct, 0)} | {_fmt(r.audio_in_pct, 0)} "
        f"| {_fmt(r.underrun_ms_per_session_s, 1)} | {_fmt(r.preempted_per_s, 0)} "
        f"| {_fmt(r.other_load_pct, 0)} "
        f"| {_fmt(r.open_s, 1)} "
        f"| {'yes' if r.passed else '**no**'} |"
        for r in sorted(results, key=lambda r: (VARIANTS.index(r.variant), r.sessions))
    )
    lines.append("")
    variants = [v for v in VARIANTS if any(r.variant == v for r in results)]
    largest = {v: _largest(results, v) for v in variants}
    tested = sorted({r.sessions for r in results})
    for v in variants:
        n = largest[v]
        shown = str(n) if n else f"< {tested[0]}"
        line = f"largest N with p99 lateness ≤ {config.max_p99_ms:g} ms: {v} {shown}"
        if v != "ours" and largest.get("ours") and n:
            line += f"; ours / {v} = {largest['ours'] / n:.2f}×"
            if v == "bare":
                met = _sessions_met(largest["ours"], n)
                line += (
                    f" (target ≥ {TARGET_RATIO:.2f}×, i.e. {TARGET_SESSIONS} where bare holds "
                    f"{BARE_REFERENCE_SESSIONS}: {'yes' if met else '**no**'})"
                )
        lines.append(line)
    if "ours" in largest and "bare" not in largest:
        lines.append(
            "(the sessions target is checked against bare: run it too, `--clients ours,bare`)"
        )
    # CPU cost at the largest level every client ran: at small N each wake-up finds cold
    # caches and costs 2-4x more, which would blur the comparison.
    common = [
        n
        for n in tested
        if all(any(r.variant == v and r.sessions == n for r in results) for v in variants)
    ]
    if common:
        n0 = common[-1]
        cost = {
            r.variant: r.cpu_ms_per_session_s
            for r in results
            if r.sessions == n0 and r.variant in variants
        }
        parts = ", ".join(f"{v} {cost[v]:.2f}" for v in variants)
        line = f"client CPU per session-second at N={n0} (ms): {parts}"
        if "bare" in cost and cost["bare"] > 0 and len(cost) > 1:
            ratios = ", ".join(
                f"{v} {cost[v] / cost['bare']:.2f}×" for v in variants if v != "bare"
            )
            line += f"; relative to bare: {ratios}"
        lines.append(line)
    ours = [r for r in results if r.variant == "ours"]
    if ours:
        light = _latency_level(ours)
        at_capacity = [r for r in ours if r.sessions == largest.get("ours") and r is not light]
        for at in sorted([light, *at_capacity], key=lambda r: r.sessions):
            line = (
                f"client-added latency, ours at N={at.sessions}: capture → socket p50 "
                f"{_fmt(at.send_p50_ms)} / p99 {_fmt(at.send_p99_ms)} ms; socket → "
                f"PlaybackBuffer p50 {_fmt(at.recv_p50_ms)} / p99 {_fmt(at.recv_p99_ms)} ms"
            )
            if at is light:
                worst = max(at.send_p99_ms, at.recv_p99_ms)
                verdict = "yes" if worst <= TARGET_LATENCY_P99_MS else "**no**"
                line += f" (target p99 ≤ {TARGET_LATENCY_P99_MS:g} ms: {verdict})"
            else:
                line += " (at capacity: the core's queueing, for information)"
            lines.append(line)
    if facts.get("profile"):
        lines += ["", "## cProfile of the client process, measured window only", ""]
        lines.append(facts["profile"])
    return "\n".join(lines)


def _sessions_met(ours: int, bare: int) -> bool:
    """The sessions target: ours holds at least :data:`TARGET_RATIO` of bare's N."""
    return ours >= TARGET_RATIO * bare


def _latency_level(ours: list[LevelResult]) -> LevelResult:
    """Ours at :data:`LATENCY_AT_SESSIONS` sessions (or the nearest level tested)."""
    return min(ours, key=lambda r: (abs(r.sessions - LATENCY_AT_SESSIONS), r.sessions))


def _missed(results: list[LevelResult], config: RunConfig) -> bool:
    ours = [r for r in results if r.variant == "ours"]
    if not ours or config.profile is not None:
        return False
    # The sessions target is a ratio against bare: without a bare figure it is not met.
    bare = _largest(results, "bare")
    if not bare or not _sessions_met(_largest(results, "ours"), bare):
        return True
    at = _latency_level(ours)
    return bool(max(at.send_p99_ms, at.recv_p99_ms) > TARGET_LATENCY_P99_MS)
