"""Codec benchmark: our audio hot path against the official SDK and stdlib, in one run.

Run it with ``python -m bench.codec`` (``--quick`` for a smoke run, ``--check`` to exit 1
when a target is missed). It times, for 20, 100 and 200 ms of 24 kHz PCM16:

* parsing one GA ``response.output_audio.delta`` text frame into int16 samples:

  - ours: ``parse_server_event(frame).pcm16()``;
  - bare floor: ``orjson.loads`` + ``pybase64.b64decode(validate=True)`` + ``np.frombuffer``;
  - stdlib: ``json.loads`` + ``base64.b64decode`` + ``np.frombuffer``;
  - SDK: ``AsyncRealtimeConnection.parse_event`` (what ``recv()`` calls: ``json.loads`` then
    ``construct_type_unchecked`` over ``RealtimeServerEvent``), then ``base64`` +
    ``np.frombuffer`` on ``event.delta`` as a user must;

* building one ``input_audio_buffer.append`` text frame from float32 samples:

  - ours: ``build_append(block)``;
  - stdlib: ``float32_to_pcm16`` + ``base64.b64encode`` + ``json.dumps``;
  - SDK: the same conversion and base64 a user must do, then what
    ``AsyncRealtimeConnection.send`` does with a dict (``json.dumps`` of
    ``async_maybe_transform`` over the client-event param union), stopping before the
    socket write.

Speed is reported as ratios against references measured in the same run, never as absolute
limits: the three targets of issue 2 (against the SDK and the bare floor) with a verdict,
and, without a target, ours against stdlib ``json`` + ``base64`` for parse and build. The
process is pinned to one core where the OS allows it, each variant is timed in batches with
``time.perf_counter_ns``, variants are interleaved (in a rotating order) within each repeat
so machine noise hits them alike, and the median per-event time over the repeats is
reported.
"""

from __future__ import annotations

import os

# Why: one thread, so BLAS (used by the NaN check in float32_to_pcm16) cannot spread over
# the other core and make our path look faster than one core allows.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import base64
import gc
import itertools
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt
import orjson
import pybase64
from openai._utils import async_maybe_transform
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime.realtime_client_event_param import RealtimeClientEventParam
from openai.types.realtime.response_create_event_with_references_param import (
    ResponseCreateEventWithReferencesParam,
)

from realtime_client.audio.formats import float32_to_pcm16
from realtime_client.events import ResponseOutputAudioDelta, build_append, parse_server_event

__all__ = [
    "CHUNK_MS",
    "COMPARISONS",
    "SAMPLE_RATE",
    "TARGETS",
    "BenchResult",
    "Comparison",
    "Target",
    "main",
    "render",
    "run_benchmark",
]

SAMPLE_RATE = 24_000
"""Sample rate of the benchmark audio, in Hz (the Realtime API's PCM16 rate)."""

CHUNK_MS: tuple[int, ...] = (20, 100, 200)
"""Audio durations timed, in ms."""

Op = Literal["parse", "build"]
Path = Literal["ours", "bare", "stdlib", "sdk"]

_LABELS: dict[tuple[Op, Path], str] = {
    ("parse", "ours"): "ours: `parse_server_event(frame).pcm16()`",
    ("parse", "bare"): "bare floor: `orjson.loads` + `pybase64.b64decode` + `np.frombuffer`",
    ("parse", "stdlib"): "stdlib: `json.loads` + `base64.b64decode` + `np.frombuffer`",
    ("parse", "sdk"): "SDK: `parse_event` (json.loads + construct_type) + base64 + frombuffer",
    ("build", "ours"): "ours: `build_append(block)`",
    ("build", "stdlib"): "stdlib: `float32_to_pcm16` + `base64.b64encode` + `json.dumps`",
    ("build", "sdk"): "SDK: `float32_to_pcm16` + base64 + `async_maybe_transform` + `json.dumps`",
}

_INT16_LE = np.dtype("<i2")
# The very annotation AsyncRealtimeConnection.send passes, spelled as the SDK spells it
# (typing.Union), so its transform walks the same type.
_SDK_EVENT_TYPE: Any = Union[RealtimeClientEventParam, ResponseCreateEventWithReferencesParam]  # noqa: UP007


@dataclass(frozen=True)
class Comparison:
    """A reported ratio: ``numerator / denominator`` per-event time, for one operation.

    Attributes:
        name: What the ratio means, for the report.
        op: ``"parse"`` or ``"build"``.
        numerator: The path whose time is on top.
        denominator: The path whose time is below.
    """

    name: str
    op: Op
    numerator: Path
    denominator: Path


@dataclass(frozen=True)
class Target(Comparison):
    """A speed target: a :class:`Comparison` whose ratio must meet a bound.

    Attributes:
        bound: The limit on the ratio (dimensionless).
        at_least: ``True`` if the ratio must be >= ``bound``, ``False`` if <= ``bound``.
    """

    bound: float
    at_least: bool

    def met(self, ratio: float) -> bool:
        """Whether ``ratio`` (dimensionless) meets this target."""
        return ratio >= self.bound if self.at_least else ratio <= self.bound


TARGETS: tuple[Target, ...] = (
    Target("SDK / ours, parse", "parse", "sdk", "ours", 15.0, at_least=True),
    Target("ours / bare, parse", "parse", "ours", "bare", 1.5, at_least=False),
    Target("SDK / ours, build", "build", "sdk", "ours", 25.0, at_least=True),
)
"""The targets from issue 2: parse >= 15x the SDK, within 1.5x of bare; build >= 25x the SDK."""

COMPARISONS: tuple[Comparison, ...] = (
    Comparison("stdlib / ours, parse", "parse", "stdlib", "ours"),
    Comparison("stdlib / ours, build", "build", "stdlib", "ours"),
)
"""Ratios reported without a target: ours against stdlib ``json`` + ``base64`` (issue 2)."""


@dataclass
class BenchResult:
    """Median per-event times of one run.

    Attributes:
        times_ns: ``(op, path, chunk_ms) -> median ns per event``.
        repeats: How many interleaved repeats each median is taken over.
        iterations: ``(op, path, chunk_ms) -> events per timed batch``.
        pinned: The CPU set the process ran on, or ``None`` if it could not be pinned.
    """

    times_ns: dict[tuple[Op, Path, int], float] = field(default_factory=dict)
    repeats: int = 0
    iterations: dict[tuple[Op, Path, int], int] = field(default_factory=dict)
    pinned: set[int] | None = None

    def ratio(self, comparison: Comparison, chunk_ms: int) -> float:
        """The comparison's (or target's) ratio (dimensionless) at ``chunk_ms`` (ms)."""
        top = self.times_ns[(comparison.op, comparison.numerator, chunk_ms)]
        return top / self.times_ns[(comparison.op, comparison.denominator, chunk_ms)]

    def met(self, target: Target) -> bool:
        """Whether ``target`` is met at every chunk size."""
        return all(target.met(self.ratio(target, ms)) for ms in CHUNK_MS)


# ---------------------------------------------------------------------------- inputs


def _id(prefix: str, rng: np.random.Generator) -> str:
    # Real ids are a prefix plus 21 base62 characters, e.g. "event_CVxY1p0a...".
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return prefix + "".join(alphabet[i] for i in rng.integers(0, len(alphabet), 21))


def _float_block(chunk_ms: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Speech-like float32 samples: two partials under an envelope, plus noise."""
    n = SAMPLE_RATE * chunk_ms // 1000
    t = np.arange(n) / SAMPLE_RATE
    envelope = 0.5 + 0.4 * np.sin(2 * np.pi * 3.0 * t)
    voiced = 0.4 * np.sin(2 * np.pi * 180.0 * t) + 0.2 * np.sin(2 * np.pi * 710.0 * t)
    noise = 0.05 * rng.standard_normal(n)
    return (envelope * voiced + noise).astype(np.float32)


def _delta_frame(chunk_ms: int, rng: np.random.Generator) -> bytes:
    """The bytes of one GA ``response.output_audio.delta`` frame, as the service sends it."""
    pcm = float32_to_pcm16(_float_block(chunk_ms, rng)).astype(_INT16_LE).tobytes()
    event = {
        "type": "response.output_audio.delta",
        "event_id": _id("event_", rng),
        "response_id": _id("resp_", rng),
        "item_id": _id("item_", rng),
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode("ascii"),
    }
    return json.dumps(event, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------- variants


def _run_to_end(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends, without an event loop.

    ``async_maybe_transform`` is ``async`` only so it could read files; for a dict of
    strings it never awaits anything, so stepping it once gives its result. A loop would
    add its own overhead to the SDK's figure and make the comparison unfair to the SDK.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the SDK's send path suspended; this benchmark needs an event loop now")


def _parse_variants(frame: bytes) -> dict[Path, Callable[[], npt.NDArray[np.int16]]]:
    sdk_connection = AsyncRealtimeConnection.__new__(AsyncRealtimeConnection)
    loads, b64decode, frombuffer = orjson.loads, pybase64.b64decode, np.frombuffer

    def ours() -> npt.NDArray[np.int16]:
        event = parse_server_event(frame)
        assert isinstance(event, ResponseOutputAudioDelta)
        return event.pcm16()

    def bare() -> npt.NDArray[np.int16]:
        return frombuffer(b64decode(loads(frame)["delta"], validate=True), dtype=_INT16_LE)

    def stdlib() -> npt.NDArray[np.int16]:
        return np.frombuffer(base64.b64decode(json.loads(frame)["delta"]), dtype=_INT16_LE)

    def sdk() -> npt.NDArray[np.int16]:
        # AsyncRealtimeConnection.recv() is `self.parse_event(await self.recv_bytes())`.
        event: Any = sdk_connection.parse_event(frame)
        return np.frombuffer(base64.b64decode(event.delta), dtype=_INT16_LE)

    return {"ours": ours, "bare": bare, "stdlib": stdlib, "sdk": sdk}


def _build_variants(block: npt.NDArray[np.float32]) -> dict[Path, Callable[[], bytes | str]]:
    def ours() -> bytes:
        return build_append(block)

    def stdlib() -> str:
        b64 = base64.b64encode(float32_to_pcm16(block).tobytes()).decode("ascii")
        return json.dumps({"type": "input_audio_buffer.append", "audio": b64})

    def sdk() -> str:
        b64 = base64.b64encode(float32_to_pcm16(block).tobytes()).decode("ascii")
        event = {"type": "input_audio_buffer.append", "audio": b64}
        # AsyncRealtimeConnection.send() with a dict, up to `send_raw(data)`.
        return json.dumps(_run_to_end(async_maybe_transform(event, _SDK_EVENT_TYPE)))

    return {"ours": ours, "stdlib": stdlib, "sdk": sdk}


def _check_agree(
    parse: dict[Path, Callable[[], npt.NDArray[np.int16]]],
    build: dict[Path, Callable[[], bytes | str]],
) -> None:
    """Every path must produce the same result, or the timings compare different work."""
    expected = parse["bare"]()
    for path, fn in parse.items():
        if not np.array_equal(fn(), expected):
            raise AssertionError(f"parse path {path!r} decodes different samples")
    wire = json.loads(build["stdlib"]())
    for path, build_fn in build.items():
        if json.loads(build_fn()) != wire:
            raise AssertionError(f"build path {path!r} gives a different append event")


# ---------------------------------------------------------------------------- timing


def _time_batch(fn: Callable[[], object], iterations: int) -> int:
    """Nanoseconds for ``iterations`` calls of ``fn``, with the collector off as timeit does."""
    repeat = itertools.repeat(None, iterations)
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in repeat:
            fn()
        return time.perf_counter_ns() - start
    finally:
        if gc_was_on:
            gc.enable()


def _calibrate(fn: Callable[[], object], batch_s: float) -> int:
    """Iterations that make one batch last about ``batch_s`` seconds (also warms up)."""
    iterations = 1
    while True:
        elapsed_ns = _time_batch(fn, iterations)
        if elapsed_ns >= batch_s * 1e9 / 4 or iterations >= 1 << 22:
            scale = batch_s * 1e9 / max(elapsed_ns, 1)
            return max(1, int(iterations * scale))
        iterations *= 4


def _pin_to_one_core() -> tuple[set[int] | None, set[int] | None]:
    """Pin to one CPU if the OS allows it; return (pinned set, previous set)."""
    getaff = getattr(os, "sched_getaffinity", None)
    setaff = getattr(os, "sched_setaffinity", None)
    if getaff is None or setaff is None:
        return None, None
    previous: set[int] = set(getaff(0))
    cpu = {min(previous)}
    try:
        setaff(0, cpu)
    except OSError:
        return None, None
    return cpu, previous


def run_benchmark(*, repeats: int = 7, batch_s: float = 0.04) -> BenchResult:
    """Time every path at every chunk size, interleaved, and keep the medians.

    Args:
        repeats: Number of interleaved repeats; the median per-event time is kept.
        batch_s: Target duration of one timed batch, in float seconds.

    Returns:
        The medians, in ns per event.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rng = np.random.default_rng(20_240_801)
    variants: list[tuple[tuple[Op, Path, int], Callable[[], object]]] = []
    for chunk_ms in CHUNK_MS:
        parse = _parse_variants(_delta_frame(chunk_ms, rng))
        build = _build_variants(_float_block(chunk_ms, rng))
        _check_agree(parse, build)
        variants += [(("parse", path, chunk_ms), fn) for path, fn in parse.items()]
        variants += [(("build", path, chunk_ms), fn) for path, fn in build.items()]

    pinned, previous = _pin_to_one_core()
    try:
        result = BenchResult(repeats=repeats, pinned=pinned)
        for key, fn in variants:
            result.iterations[key] = _calibrate(fn, batch_s)
        samples: dict[tuple[Op, Path, int], list[float]] = {key: [] for key, _ in variants}
        for r in range(repeats):
            # Rotate the order so no variant always runs right after the same neighbour.
            shift = r * len(variants) // repeats
            for key, fn in variants[shift:] + variants[:shift]:
                n = result.iterations[key]
                samples[key].append(_time_batch(fn, n) / n)
        result.times_ns = {key: statistics.median(v) for key, v in samples.items()}
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)
    return result


# ---------------------------------------------------------------------------- report


def _versions() -> str:
    names = ("numpy", "orjson", "pybase64", "pydantic", "openai")
    return ", ".join(f"{name} {version(name)}" for name in names)


def render(result: BenchResult) -> str:
    """The result as markdown: per-event times, then the target and stdlib ratios."""
    head = "| path | " + " | ".join(f"{ms} ms" for ms in CHUNK_MS) + " |"
    rule = "|---|" + "---|" * len(CHUNK_MS)
    lines = [
        f"Python {platform.python_version()}, {_versions()}; "
        f"pinned to CPU {sorted(result.pinned) if result.pinned else 'none (not supported)'}; "
        f"median of {result.repeats} interleaved repeats.",
        "",
        "Parse one `response.output_audio.delta` frame into int16 samples (µs per event):",
        "",
        head,
        rule,
    ]
    sections: tuple[tuple[Op, tuple[Path, ...]], ...] = (
        ("parse", ("ours", "bare", "stdlib", "sdk")),
        ("build", ("ours", "stdlib", "sdk")),
    )
    for op, paths in sections:
        if op == "build":
            lines += [
                "",
                "Build one `input_audio_buffer.append` frame from float32 samples (µs per event):",
                "",
                head,
                rule,
            ]
        for path in paths:
            cells = " | ".join(f"{result.times_ns[(op, path, ms)] / 1000:.2f}" for ms in CHUNK_MS)
            lines.append(f"| {_LABELS[(op, path)]} | {cells} |")
    lines += [
        "",
        "| ratio | target | " + " | ".join(f"{ms} ms" for ms in CHUNK_MS) + " | met |",
        "|---|---|" + "---|" * len(CHUNK_MS) + "---|",
    ]
    for target in TARGETS:
        bound = f"{'≥' if target.at_least else '≤'} {target.bound:g}×"
        cells = " | ".join(f"{result.ratio(target, ms):.2f}×" for ms in CHUNK_MS)
        verdict = "yes" if result.met(target) else "**no**"
        lines.append(f"| {target.name} | {bound} | {cells} | {verdict} |")
    for comparison in COMPARISONS:
        cells = " | ".join(f"{result.ratio(comparison, ms):.2f}×" for ms in CHUNK_MS)
        lines.append(f"| {comparison.name} | none | {cells} | – |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the markdown report.

    Args:
        argv: Command-line arguments (without the program name); ``None`` reads
            ``sys.argv``.

    Returns:
        0, or 1 with ``--check`` when a target is missed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.codec", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (figures are rough)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 7)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    batch_s = 0.002 if args.quick else 0.04
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 7)
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    result = run_benchmark(repeats=repeats, batch_s=batch_s)
    print(render(result))
    if args.check and not all(result.met(t) for t in TARGETS):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
