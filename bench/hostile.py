"""Hostile-server campaign: bad and mutated server streams fed to a real ``Session``.

Run it with ``python -m bench.hostile`` (``--cases`` to change the count, ``--quick`` for a
smoke run). Each case opens a session on the in-memory transport pair and plays one
stream of server frames at it, frame by frame:

* the hostile cases of ``tests/session/test_hostile_server.py`` (their event builders:
  bad indexes, a delta that is not PCM16, a ``response.done`` that fails parsing, an
  unrequested commit, ...), plus a list a million elements wide and an event nested
  300 deep;
* the recorded sessions of ``tests/protocol/sessions/*.jsonl`` with seeded mutations:
  fields deleted, values swapped for another type, indexes out of range, huge lists,
  deep nesting, events reordered, duplicated or dropped.

Invariants, each a failure kind when broken: the reader is alive or the session closed
with a typed error (``reader died silently``); a frame the event parser refuses on its own
is reported as ``InvalidServerEvent`` (``unreported invalid event``); no exception
escapes (``escaped: <type>``, including one only logged while reacting to an event); a
request afterwards is answered in bounded time, including a ``create_response()`` whose
``response.created`` follows an unrequested commit (``request hung``); every event the
session delivered serialises back (``unserialisable event``); a frame costs under
``--frame-budget-s`` (``slow frame``). Reported: cases, frames, failures by kind, time per
case, and the cost per MB of frames of 100 kB or more: the worst seen in the campaign
(which includes whatever the loop and the garbage collector did meanwhile) and the five
costliest re-timed alone, each in fresh sessions (the least of three runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime_client import InvalidServerEvent, Session, connect, memory_pair
from realtime_client import events as ev
from realtime_client.errors import InvalidEventError, RealtimeError
from realtime_client.recording import read_recording, server_events
from realtime_client.transports import MemoryTransport
from tests.session.test_hostile_server import (
    delta_event,
    not_pcm16_delta,
    output_item_added,
    response_created,
    unparseable_response_done,
    unrequested_commit,
)

__all__ = ["HostileResult", "fixed_cases", "main", "mutated_case", "run_case", "run_hostile"]

SESSIONS_DIR = Path(__file__).resolve().parent.parent / "tests" / "protocol" / "sessions"
_SESSION_CREATED: dict[str, object] = {
    "type": "session.created",
    "event_id": "e0",
    "session": {"type": "realtime"},
}
_REQUEST_TIMEOUT_S = 2.0
_COSTED_BYTES = 100_000  # frames this large or larger give the cost per MB
_RETIMED = 5  # the costliest frames timed again alone
_MUTATIONS = (
    "delete field",
    "swap type",
    "index out of range",
    "huge list",
    "deep nesting",
    "reorder",
    "duplicate",
    "drop",
)
_SWAPS: tuple[Any, ...] = (None, True, -1, 1.5, "", "x" * 100, [], {}, [1, 2], {"a": 1})
_INDEXES = (-1, -(2**63), 1025, 5_000_000, 2**63 - 1, 2**64)

#: A stream: its frames (JSON text) and the name of what it tests.
Stream = tuple[str, list[str]]


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def fixed_cases(width: int = 1_000_000) -> list[Stream]:
    """The hostile cases of the test suite's builders, plus a wide list and a deep event."""
    opened = json.dumps(response_created("r"))
    cases: list[Stream] = [
        (f"{name} {value}", [opened, json.dumps(delta_event(name, value))])
        for name in ("content_index", "output_index")
        for value in (-1, 5_000_000, 2**63 - 1)
    ]
    cases.append(
        (
            "output_index 10**9",
            [json.dumps(response_created("r")), json.dumps(output_item_added(10**9))],
        )
    )
    cases.append(("not PCM16", [json.dumps(not_pcm16_delta())]))
    cases.append(
        (
            "unparseable response.done",
            [json.dumps(response_created("resp_1")), json.dumps(unparseable_response_done())],
        )
    )
    cases.append(("unrequested commit", [json.dumps(unrequested_commit())]))
    wide = unparseable_response_done("resp_w")
    wide["response"] = {"id": "resp_w", "status": "completed", "output": [0] * width}
    cases.append(
        (f"output list of {width:,}", [json.dumps(response_created("resp_w")), json.dumps(wide)])
    )
    deep = delta_event("content_index", 0)
    deep["extra"] = _deep(300)
    cases.append(("nested 300 deep", [json.dumps(deep)]))
    return cases


def _containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) below ``value``, containers and leaves."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [(path, value)]
    while stack:
        where, node = stack.pop()
        items: Any = node.items() if isinstance(node, dict) else enumerate(node)
        if isinstance(node, dict | list):
            for key, child in items:
                found.append(((*where, key), child))
                if isinstance(child, dict | list):
                    stack.append(((*where, key), child))
    return found


def _mutate_event(rng: random.Random, event: dict[str, Any], kind: str, width: int) -> None:
    nodes = _containers(event)
    if kind == "index out of range":
        nodes = [n for n in nodes if n[0][-1] in ("output_index", "content_index")] or nodes
    if not nodes:
        return
    path, _value = rng.choice(nodes)
    parent: Any = event
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if kind == "delete field":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif kind == "swap type":
        parent[key] = rng.choice(_SWAPS)
    elif kind == "index out of range":
        parent[key] = rng.choice(_INDEXES)
    elif kind == "huge list":
        parent[key] = [rng.choice(_SWAPS)] * rng.randrange(width // 10, width + 1)
    elif kind == "deep nesting":
        parent[key] = _deep(rng.randrange(100, 400))


def mutated_case(rng: random.Random, recording: list[dict[str, Any]], width: int) -> Stream:
    """A recorded session's server events (after ``session.created``), 1-3 mutations."""
    events = [copy.deepcopy(e) for e in recording if e.get("type") != "session.created"]
    applied = []
    for _ in range(rng.randrange(1, 4)):
        kind = rng.choice(_MUTATIONS)
        applied.append(kind)
        at = rng.randrange(len(events))
        if kind == "reorder":
            other = rng.randrange(len(events))
            events[at], events[other] = events[other], events[at]
        elif kind == "duplicate":
            events.insert(at, copy.deepcopy(events[at]))
        elif kind == "drop" and len(events) > 1:
            events.pop(at)
        else:
            _mutate_event(rng, events[at], kind, width)
    return ", ".join(applied), [json.dumps(e) for e in events]


@dataclass
class CaseResult:
    """One case: failures by kind, frames, its time and the worst frame's cost per MB."""

    failures: Counter[str] = field(default_factory=Counter)
    frames: int = 0
    seconds: float = 0.0
    worst_ms_per_mb: float = 0.0
    worst_frame: str | None = None


class _Escapes(logging.Handler):
    """Collects exceptions the session only logged while reacting to an event."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.kinds: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # "applying a server event failed" is reported as InvalidServerEvent too; an
        # exception logged anywhere else went unreported.
        if record.exc_info and not record.getMessage().startswith("applying a server event"):
            self.kinds.append(record.exc_info[0].__name__ if record.exc_info[0] else "?")


def _invalid_alone(frame: str) -> bool:
    try:
        ev.parse_server_event(frame)
    except InvalidEventError:
        return True
    return False


async def _processed(client_end: MemoryTransport) -> None:
    """Until the session's reader has taken and handled every frame sent so far."""
    # The reader handles a frame synchronously once it has it: polling the queue is exact.
    while not client_end._inbox.empty():  # noqa: ASYNC110
        await asyncio.sleep(0)
    await asyncio.sleep(0)


async def _probe(session: Session, server: MemoryTransport, failures: Counter[str]) -> None:
    """A request afterwards is answered: a clear, then a create behind an unrequested commit."""
    while not server._inbox.empty():
        server._inbox.get_nowait()  # what the session sent while the stream played
    if session.closed:
        with contextlib.suppress(RealtimeError):
            try:
                await asyncio.wait_for(session.clear_input(), _REQUEST_TIMEOUT_S)
            except asyncio.TimeoutError:
                failures["request hung"] += 1
        return
    creating: asyncio.Future[Any] | None = None
    try:
        clearing = asyncio.ensure_future(session.clear_input())
        sent = await asyncio.wait_for(server.recv_event(), _REQUEST_TIMEOUT_S)
        await server.send_event(
            {"type": "input_audio_buffer.cleared", "event_id": "p1", "previous": sent["event_id"]}
        )
        await asyncio.wait_for(clearing, _REQUEST_TIMEOUT_S)
        active = session.protocol.active_response_id
        if active is not None:  # a response the stream left open ends first
            await server.send_event(
                {
                    "type": "response.done",
                    "event_id": "p_end",
                    "response": {"id": active, "status": "completed", "output": []},
                }
            )
        creating = asyncio.ensure_future(session.create_response())
        sent = await asyncio.wait_for(server.recv_event(), _REQUEST_TIMEOUT_S)
        if sent["type"] != "response.create":
            failures["unexpected request"] += 1
        await server.send_event(unrequested_commit())
        await server.send_event(response_created("resp_probe"))
        await server.send_event(
            {
                "type": "response.done",
                "event_id": "p_done",
                "response": {"id": "resp_probe", "status": "completed", "output": []},
            }
        )
        await asyncio.wait_for(creating, _REQUEST_TIMEOUT_S)
    except asyncio.TimeoutError:
        failures["request hung"] += 1
        if creating is not None:
            creating.cancel()
    except RealtimeError:
        if not session.closed:
            failures["request failed on an open session"] += 1


async def run_case(frames: list[str], frame_budget_s: float = 1.0) -> CaseResult:
    """Play ``frames`` at a fresh session and check every invariant (see the module doc)."""
    result = CaseResult(frames=len(frames))
    failures = result.failures
    started = time.perf_counter()
    escapes = _Escapes()
    logger = logging.getLogger("realtime_client")
    saved = logger.propagate, logger.level
    logger.addHandler(escapes)
    logger.propagate = False  # thousands of expected warnings: keep them off the console
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    saved_handler = loop.get_exception_handler()
    loop.set_exception_handler(
        lambda _loop, ctx: loop_errors.append(type(ctx.get("exception")).__name__)
    )
    session: Session | None = None
    try:
        client_end, server = memory_pair()
        opening = asyncio.ensure_future(connect(transport=client_end, request_timeout=5))
        await server.send_event(_SESSION_CREATED)
        session = await asyncio.wait_for(opening, _REQUEST_TIMEOUT_S)
        seen: list[Any] = []
        session.on("*", seen.append)
        for frame in frames:
            notices = sum(isinstance(e, InvalidServerEvent) for e in seen)
            frame_started = time.perf_counter()
            with contextlib.suppress(RealtimeError):  # the session may have closed
                await server.send(frame)
            await _processed(client_end)
            cost = time.perf_counter() - frame_started
            if len(frame) >= _COSTED_BYTES:  # below, the loop's own turns dominate
                per_mb = cost * 1e9 / len(frame)
                if per_mb > result.worst_ms_per_mb:
                    result.worst_ms_per_mb, result.worst_frame = per_mb, frame
            if cost > frame_budget_s:
                failures["slow frame"] += 1
            reported = sum(isinstance(e, InvalidServerEvent) for e in seen) > notices
            if not reported and not session.closed and _invalid_alone(frame):
                failures["unreported invalid event"] += 1
        reader = session._reader
        if not session.closed and (reader is None or reader.done()):
            failures["reader died silently"] += 1
        if session.closed and not isinstance(session._close_error, RealtimeError | None):
            failures["closed with an untyped error"] += 1
        await _probe(session, server, failures)
        for event in seen:
            if isinstance(event, ev.ServerEvent):
                try:
                    ev.dumps(event)
                except Exception:
                    failures["unserialisable event"] += 1
    except asyncio.TimeoutError:
        failures["request hung"] += 1
    except Exception as exc:
        failures[f"escaped: {type(exc).__name__}"] += 1
    finally:
        if session is not None:
            try:
                await asyncio.wait_for(session.close(), _REQUEST_TIMEOUT_S)
            except asyncio.TimeoutError:
                failures["close hung"] += 1
        logger.removeHandler(escapes)
        logger.propagate, _ = saved
        logger.setLevel(saved[1])
        loop.set_exception_handler(saved_handler)
    for kind in escapes.kinds + loop_errors:
        failures[f"escaped: {kind}"] += 1
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class HostileResult:
    """A whole campaign.

    Attributes:
        cases: Cases run (fixed and mutated).
        frames: Server frames played.
        failures: Failures by kind over all cases.
        failing_cases: Names of the first failing cases, with their failures.
        case_ms: Each case's wall time, in ms.
        worst_ms_per_mb: The costliest frame seen in the campaign, in ms per MB.
        costly: The costliest frames seen (ms per MB, frame), at most :data:`_RETIMED`.
        retimed: Those frames re-timed alone: (ms per MB, bytes, event type).
    """

    cases: int = 0
    frames: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    failing_cases: list[str] = field(default_factory=list)
    case_ms: list[float] = field(default_factory=list)
    worst_ms_per_mb: float = 0.0
    costly: list[tuple[float, str]] = field(default_factory=list)
    retimed: list[tuple[float, int, str]] = field(default_factory=list)

    def add(self, name: str, case: CaseResult) -> None:
        """Count one case's result."""
        self.cases += 1
        self.frames += case.frames
        self.failures += case.failures
        self.case_ms.append(case.seconds * 1000)
        self.worst_ms_per_mb = max(self.worst_ms_per_mb, case.worst_ms_per_mb)
        if case.worst_frame is not None:
            self.costly.append((case.worst_ms_per_mb, case.worst_frame))
            self.costly.sort(key=lambda pair: pair[0], reverse=True)
            del self.costly[_RETIMED:]
        if case.failures and len(self.failing_cases) < 10:
            self.failing_cases.append(f"{name}: {dict(case.failures)}")


async def run_hostile(
    cases: int,
    seed: int = 0,
    width: int = 100_000,
    fixed_width: int = 1_000_000,
    progress: Callable[[int], None] | None = None,
) -> HostileResult:
    """The fixed cases (a list ``fixed_width`` wide), then ``cases`` mutated sessions.

    Args:
        cases: Mutated recorded sessions to play.
        seed: Seed of the mutations.
        width: Largest list a "huge list" mutation puts in, in elements.
        fixed_width: Width of the fixed case's ``response.done`` output list.
        progress: Called with the number of mutated cases done.
    """
    rng = random.Random(seed)
    recordings = [
        list(server_events(read_recording(path))) for path in sorted(SESSIONS_DIR.glob("*.jsonl"))
    ]
    result = HostileResult()
    for name, frames in fixed_cases(fixed_width):
        result.add(name, await run_case(frames))
    for n in range(cases):
        name, frames = mutated_case(rng, rng.choice(recordings), width)
        result.add(name, await run_case(frames))
        if progress is not None:
            progress(n + 1)
    for _, frame in result.costly:
        result.retimed.append((await retime(frame), len(frame), _type_of(frame)))
    return result


async def retime(frame: str, runs: int = 3) -> float:
    """A frame's cost alone, in ms per MB: the least over ``runs`` fresh sessions."""
    return min([(await run_case([frame])).worst_ms_per_mb for _ in range(runs)])


def _type_of(frame: str) -> str:
    try:
        kind = json.loads(frame).get("type")
    except (ValueError, AttributeError):
        return "?"
    return kind if isinstance(kind, str) else f"type {type(kind).__name__}"


def render(r: HostileResult) -> str:
    """The report, as plain text."""
    ms = sorted(r.case_ms)
    p50, p99 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    lines = [
        f"hostile server: {r.cases:,} cases ({len(fixed_cases())} fixed, "
        f"{r.cases - len(fixed_cases()):,} mutated recordings), {r.frames:,} frames, "
        f"{sum(ms) / 1000:.1f} s",
        f"time per case: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.0f} ms",
        f"frames of 100 kB or more: costliest in the campaign {r.worst_ms_per_mb:,.0f} ms per "
        "MB (with the loop's other work and GC pauses); the costliest re-timed alone: "
        + (
            ", ".join(f"{c:,.1f} ms per MB ({n / 1e3:,.0f} kB {t})" for c, n, t in r.retimed)
            or "none"
        ),
        f"failures: {sum(r.failures.values())}",
    ]
    lines += [f"  {kind}: {count}" for kind, count in r.failures.most_common()]
    lines += [f"  e.g. {case}" for case in r.failing_cases]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the campaign and print its figures; 1 if any invariant was broken."""
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--cases", type=int, default=5_000, help="mutated recorded sessions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=100_000, help="largest huge list")
    parser.add_argument("--quick", action="store_true", help="200 mutated cases")
    args, _ = parser.parse_known_args(argv)
    if args.cases <= 0 or args.width <= 0:
        parser.error("--cases and --width must be > 0")
    cases = 200 if args.quick else args.cases
    width = 2_000 if args.quick else args.width
    result = asyncio.run(run_hostile(cases, args.seed, width, 20_000 if args.quick else 1_000_000))
    print(render(result), flush=True)
    return 1 if result.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
