"""``python -m bench.sessions``: the command line."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .config import QUICK, VARIANTS, RunConfig
from .report import _missed, render
from .run import run_benchmark

__all__ = ["main"]

_N = TypeVar("_N", int, float)


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"levels must be integers: {text!r}") from exc
    if not levels or any(n <= 0 for n in levels):
        raise argparse.ArgumentTypeError(f"levels must be positive integers: {text!r}")
    return levels


def _variants(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if not names or set(names) - set(VARIANTS):
        raise argparse.ArgumentTypeError(f"clients must be among {','.join(VARIANTS)}: {text!r}")
    return names


def _positive(cast: Callable[[str], _N], noun: str) -> Callable[[str], _N]:
    """An argparse type: ``cast`` of the text, which must be finite and > 0."""
    article = "an" if noun[0] in "aeiou" else "a"

    def parse(text: str) -> _N:
        try:
            value = cast(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not {article} {noun}: {text!r}") from exc
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive {noun}: {text!r}")
        return value

    return parse


_number = _positive(float, "number")
_count = _positive(int, "integer")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.sessions",
        description="Sessions per core: ours, a bare websockets loop and the openai SDK.",
    )
    p.add_argument("--quick", action="store_true", help="short smoke run (a few seconds)")
    p.add_argument("--levels", type=_levels, help="session counts, e.g. 25,50,100")
    p.add_argument("--clients", type=_variants, help=f"subset of {','.join(VARIANTS)}")
    p.add_argument("--window", type=_number, help="measured seconds per level")
    p.add_argument("--warmup", type=_number, help="seconds before each window")
    p.add_argument("--max-p99-ms", type=_number, help="lateness limit in ms (default 10)")
    p.add_argument("--no-refine", action="store_true", help="skip the half-way levels")
    p.add_argument(
        "--sync-turns",
        action="store_true",
        help="every session changes turn in the same 20 ms (a worst case; default: spread)",
    )
    p.add_argument(
        "--profile", type=_count, metavar="N", help="cProfile the first client at N sessions"
    )
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="leave the start-up heap in the cyclic GC (by default gc.freeze() runs first)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    base = QUICK if args.quick else RunConfig()
    overrides: dict[str, Any] = {}
    pairs: list[tuple[str, Callable[[Any], Any], Any]] = [
        ("levels", tuple, args.levels),
        ("variants", tuple, args.clients),
        ("window_s", float, args.window),
        ("warmup_s", float, args.warmup),
        ("max_p99_ms", float, args.max_p99_ms),
        ("profile", int, args.profile),
    ]
    for name, cast, value in pairs:
        if value is not None:
            overrides[name] = cast(value)
    if args.no_refine:
        overrides["refine"] = False
    if args.sync_turns:
        overrides["stagger_turns"] = False
    config = dataclasses.replace(base, **overrides)
    t0 = time.monotonic()
    if not args.no_gc_freeze:
        # What a latency-sensitive app does after start-up, for every client alike: full
        # collections over the imported heap (pydantic, openai, numpy) otherwise stall the
        # loop for several ms, and they dominate p99 lateness (24 -> 1.2 ms at N=25 here).
        gc.collect()
        gc.freeze()
    print(
        f"sessions benchmark: levels {list(config.levels)}, clients {list(config.variants)}, "
        f"{config.window_s:g} s windows, gc.freeze() {'off' if args.no_gc_freeze else 'on'}",
        flush=True,
    )
    results, facts = run_benchmark(config)
    print()
    print(render(results, facts, config))
    print(f"\n(total {time.monotonic() - t0:.0f} s)")
    if args.check and _missed(results, config):
        return 1
    return 0
