"""Parser fuzz campaign: mutated real frames, both dialects; only ``InvalidEventError`` allowed.

Run it with ``python -m bench.fuzz`` (``--frames`` to change the count, ``--quick`` for a
smoke run). Each frame is a real sample event (``tests/events/samples.py``) mutated in one
of three ways, seeded: a value replaced by another JSON value, a field dropped, or the
serialized bytes damaged (a byte flipped, the frame cut short, junk inserted). Every frame
goes through the parsers the short fuzz in ``tests/events/test_fuzz.py`` uses (server and
client, GA and beta, then serialized again): anything raised but ``InvalidEventError`` is
a failure, counted by exception type. Reported: frames, MB, time per MB, failures by kind.
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from collections import Counter
from typing import Any

import orjson

from tests.events.samples import CLIENT_SAMPLES, SERVER_SAMPLES
from tests.events.test_fuzz import _parse_all_ways, _paths

__all__ = ["main", "run_fuzz"]

_VALUES: tuple[Any, ...] = (
    None,
    True,
    -1,
    0,
    2**63,
    -(2**70),
    1e308,
    "",
    "x" * 300,
    [],
    {},
    [0] * 50,
    {"type": "response.done"},
    "\ud7ff",
    -0.0,
)


def _mutate(rng: random.Random, sample: dict[str, Any]) -> bytes:
    event = copy.deepcopy(sample)
    kind = rng.randrange(3)
    paths = _paths(event)
    if kind < 2 and paths:
        path = rng.choice(paths)
        parent: Any = event
        for key in path[:-1]:
            parent = parent[key]
        if kind == 0:
            parent[path[-1]] = rng.choice(_VALUES)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    try:
        frame = bytearray(orjson.dumps(event))
    except (TypeError, orjson.JSONEncodeError):
        frame = bytearray(orjson.dumps(sample))
    if kind == 2 and frame:
        at = rng.randrange(len(frame))
        damage = rng.randrange(3)
        if damage == 0:
            frame[at] ^= 1 << rng.randrange(8)
        elif damage == 1:
            del frame[at:]
        else:
            frame[at:at] = rng.randbytes(rng.randrange(1, 8))
    return bytes(frame)


def run_fuzz(frames: int, seed: int = 0) -> tuple[int, float, Counter[str]]:
    """Fuzz ``frames`` frames; ``(bytes, seconds, failures by exception type)``."""
    rng = random.Random(seed)
    samples = SERVER_SAMPLES + CLIENT_SAMPLES
    failures: Counter[str] = Counter()
    nbytes = 0
    elapsed = 0.0
    for _ in range(frames):
        frame = _mutate(rng, rng.choice(samples))
        nbytes += len(frame)
        started = time.perf_counter()
        try:
            _parse_all_ways(frame)
        except Exception as exc:
            failures[type(exc).__name__] += 1
        elapsed += time.perf_counter() - started
    return nbytes, elapsed, failures


def main(argv: list[str] | None = None) -> int:
    """Run the campaign and print its figures; 1 if any frame raised another exception."""
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000, help="mutated frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2,000 frames")
    args, _ = parser.parse_known_args(argv)
    if args.frames <= 0:
        parser.error("--frames must be > 0")
    frames = 2_000 if args.quick else args.frames
    nbytes, seconds, failures = run_fuzz(frames, args.seed)
    mb = nbytes / 1e6
    print(
        f"parser fuzz: {frames:,} mutated frames × 2 dialects × server/client parsers, "
        f"{mb:.1f} MB, {seconds:.1f} s ({seconds * 1000 / mb:.0f} ms per MB)"
    )
    print(f"failures (anything but InvalidEventError): {sum(failures.values())}")
    for name, count in failures.most_common():
        print(f"  {name}: {count}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
