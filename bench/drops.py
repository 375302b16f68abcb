"""Connection-drop campaign: injected drops during microphone audio and turns, at speed 0.

Run it with ``python -m bench.drops`` (``--drops`` to change the count, ``--quick`` for a
smoke run). A real session talks to the local server (echo responder, unpaced, input
transcription on) over WebSocket in push-to-talk turns while a microphone task streams
20 ms blocks without pause, as a capture callback does. Every connection the server
accepts gets a fault plan ``drop_after=N`` (``N`` seeded, 2..120 server events: during the
restore, a response, between turns), so the TCP connection is cut at all sorts of
moments and the session reconnects, restores and re-sends. The app does what the README
says it must: a commit that failed with ``ConnectionClosedError`` is retried, and a
response that ended ``incomplete`` because of the drop is asked for again.

Each microphone block carries its number in its first samples, and the server counts
every block any of its sessions received, so lost audio is exact: blocks the app sent
that no server session received, beyond what ``stats.dropped_audio_ms`` reports, are
**unaccounted** (target 0). After each turn the client's conversation is compared with
the server session's (items the restore could not re-create, marked lost in
``item_id_map`` as the README says, are left out and counted apart): a mismatch is a
**diverged** conversation. A turn that does not complete within ``--turn-timeout-s`` is
a **hang**. Targets 0 / 0 / 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pybase64

from realtime_client import ReconnectPolicy, Session, connect
from realtime_client.errors import ConnectionClosedError, RealtimeError
from realtime_client.server import LocalServer

__all__ = ["DropsResult", "main", "run_drops"]

_BLOCK = 480  # 20 ms at 24 kHz
_BLOCK_MS = 20.0
_UTTERANCE_BLOCKS = 30  # 600 ms of speech per turn, at least
_POLICY = ReconnectPolicy(
    max_attempts=50, base_delay_s=0.001, max_delay_s=0.01, recycle_before_expiry_s=0
)
_SESSION = {"audio": {"input": {"transcription": {"model": "whisper-1"}}}}


def _block(number: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    """A 20 ms block of a 300 Hz tone whose first three samples carry ``number``."""
    t = np.arange(_BLOCK) / 24_000
    samples = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    samples[:3] = (number & 0x3FF, (number >> 10) & 0x3FF, (number * 7919) & 0x3FF)
    return samples


def _numbers(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> tuple[list[int], int]:
    """The block numbers in ``pcm`` (whole blocks, as sent) and how many blocks were not."""
    found, bad = [], 0
    for at in range(0, len(pcm) - _BLOCK + 1, _BLOCK):
        low, high, check = (int(x) for x in pcm[at : at + 3])
        number = low | (high << 10)
        if (number * 7919) & 0x3FF == check and 0 <= low < 1024 and 0 <= high < 1024:
            found.append(number)
        else:
            bad += 1
    return found, bad + (len(pcm) % _BLOCK != 0)


class _Receipts:
    """Block numbers the server sessions committed, hooked into their append and commit.

    A block that reached a server session which died before committing it is not
    delivered: the session must send it again. What the live session holds uncommitted
    at the end counts as delivered (:meth:`held`).
    """

    def __init__(self, server: LocalServer) -> None:
        self.committed: set[int] = set()
        self.misaligned = 0
        self._newest: list[int] = []
        self.server = server
        server.on_session = self._hook

    def held(self) -> set[int]:
        """Blocks the newest server session holds uncommitted."""
        return set(self._newest)

    def _hook(self, session: Any) -> None:
        handlers = session._handlers
        append_, commit_ = (
            handlers["input_audio_buffer.append"],
            handlers["input_audio_buffer.commit"],
        )
        pending: list[int] = []
        self._newest = pending

        def append(event: dict[str, Any], event_id: str | None) -> None:
            pcm = np.frombuffer(pybase64.b64decode(event["audio"]), np.int16)
            numbers, bad = _numbers(pcm)
            pending.extend(numbers)
            self.misaligned += bad
            append_(event, event_id)

        def commit(event: dict[str, Any], event_id: str | None) -> None:
            commit_(event, event_id)
            if session.buffer.samples == 0:  # committed (a refused commit keeps them)
                self.committed.update(pending)
                pending.clear()

        handlers["input_audio_buffer.append"] = append
        handlers["input_audio_buffer.commit"] = commit


@dataclass
class DropsResult:
    """What the campaign counted.

    Attributes:
        drops: Connections the server cut.
        sessions: Client sessions run.
        turns: Turns completed.
        sent_ms: Microphone audio the app sent, in ms.
        received_ms: Of it, what a server session committed (or holds at the end), in ms.
        dropped_ms: What the client reported as dropped (``stats.dropped_audio_ms``).
        resent_ms: What the client sent again after reconnects (``stats.resent_audio_ms``).
        failures: ``lost audio`` (unaccounted ms), ``diverged`` (conversations),
            ``hang`` (turns), and anything else that went wrong, by kind.
        not_restorable: Items the restore could not re-create (marked lost, documented).
        asked_again: Responses cut by a drop and asked for again.
        commits_retried: Commits that failed with the connection and were retried.
        turn_ms: Each completed turn's wall time, in ms.
        example: The first divergence seen, for the report.
    """

    drops: int = 0
    sessions: int = 0
    turns: int = 0
    sent_ms: float = 0.0
    received_ms: float = 0.0
    dropped_ms: float = 0.0
    resent_ms: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)
    not_restorable: int = 0
    asked_again: int = 0
    commits_retried: int = 0
    turn_ms: list[float] = field(default_factory=list)
    example: str = ""


async def _connected(session: Session, timeout_s: float) -> None:
    """Until the session is connected (a reconnect may be under way)."""
    await asyncio.wait_for(session._connected.wait(), timeout_s)


async def _turn(session: Session, result: DropsResult, timeout_s: float) -> None:
    """Commit what the microphone sent and get a completed response, through drops."""
    while True:
        try:
            await session.commit()
            break
        except ConnectionClosedError:  # in flight at the drop: retry (README)
            result.commits_retried += 1
            await _connected(session, timeout_s)
    while True:
        try:
            created = await session.create_response()
        except ConnectionClosedError:
            await _connected(session, timeout_s)
            continue
        rid = str(created.response.id)
        while True:  # the protocol core's state, polled: no event to wait on
            state = session.protocol.responses.get(rid)
            if state is None or state.done:
                break
            await asyncio.sleep(0.002)
        if state is not None and state.status == "completed":
            return
        result.asked_again += 1  # cut by the drop: ask again (README)
        await _connected(session, timeout_s)


def _compare(session: Session, server: LocalServer, result: DropsResult) -> bool:
    """Whether the client's conversation matches the server session's now."""
    lost = {old for old, new in session.item_id_map.items() if new is None}
    ours = [i.id for i in session.conversation if i.id not in lost]
    theirs = list(server.sessions[-1].order)
    if ours == theirs:
        return True
    if not result.example:
        result.example = f"client {ours[-6:]} vs server {theirs[-6:]}"
    return False


async def _one_session(
    server: LocalServer,
    receipts: _Receipts,
    rng: random.Random,
    result: DropsResult,
    turns: int,
    turn_timeout_s: float,
    first_block: int,
) -> int:
    """One session of ``turns`` turns; returns the next block number."""
    session = await connect(
        url=server.ws_url,
        api_key="sk-drops",
        push_to_talk=True,
        reconnect=_POLICY,
        request_timeout=5,
        session=_SESSION,
    )
    result.sessions += 1
    sent: list[int] = []
    next_block = first_block
    stop = asyncio.Event()

    async def microphone() -> None:
        nonlocal next_block
        while not stop.is_set():
            await session.send_audio(_block(next_block), 24_000)
            sent.append(next_block)
            next_block = (next_block + 1) % (1 << 20)
            await asyncio.sleep(0.004)  # ~5x real time

    mic = asyncio.ensure_future(microphone())
    try:
        for _ in range(turns):
            since = len(sent)
            while len(sent) - since < _UTTERANCE_BLOCKS:  # noqa: ASYNC110
                await asyncio.sleep(0.002)
            started = time.perf_counter()
            try:
                await asyncio.wait_for(_turn(session, result, turn_timeout_s), turn_timeout_s)
            except asyncio.TimeoutError:
                result.failures["hang"] += 1
                continue
            except RealtimeError as exc:
                result.failures[f"turn failed: {type(exc).__name__}"] += 1
                continue
            result.turns += 1
            result.turn_ms.append((time.perf_counter() - started) * 1000)
            await _connected(session, turn_timeout_s)
            await asyncio.sleep(0.01)  # events of the turn still on the wire
            if session._connected.is_set() and not _compare(session, server, result):
                await asyncio.sleep(0.1)
                if session._connected.is_set() and not _compare(session, server, result):
                    result.failures["diverged"] += 1
        stop.set()
        await mic
        # Everything sent so far has reached the server once a commit round-trip is done.
        server._next_faults.clear()  # no more cuts: this connection stays
        await _connected(session, turn_timeout_s)
        with contextlib.suppress(RealtimeError):
            await session.commit()
        result.drops += session.stats.reconnects  # one attempt per cut connection
        result.dropped_ms += session.stats.dropped_audio_ms
        result.resent_ms += session.stats.resent_audio_ms
        result.not_restorable += sum(1 for v in session.item_id_map.values() if v is None)
    finally:
        stop.set()
        mic.cancel()
        with contextlib.suppress(BaseException):
            await mic
        await session.close()
    delivered = receipts.committed | receipts.held()
    missing = [n for n in sent if n not in delivered]
    result.sent_ms += len(sent) * _BLOCK_MS
    result.received_ms += (len(sent) - len(missing)) * _BLOCK_MS
    unaccounted = len(missing) * _BLOCK_MS - session.stats.dropped_audio_ms
    if unaccounted > 0:
        result.failures["lost audio (ms)"] += round(unaccounted)
    return next_block


async def run_drops(
    drops: int, seed: int = 0, turns_per_session: int = 8, turn_timeout_s: float = 20.0
) -> DropsResult:
    """Run sessions until the server has cut ``drops`` connections."""
    rng = random.Random(seed)
    result = DropsResult()
    logger = logging.getLogger("realtime_client")
    level = logger.level
    logger.setLevel(logging.ERROR)  # a warning per drop otherwise
    try:
        async with LocalServer(speed=0, seed=seed, responder="echo", ping_interval_s=0) as server:
            receipts = _Receipts(server)
            block = 0
            while result.drops < drops:
                for _ in range(turns_per_session):  # about one cut per turn
                    server.push_faults(f"drop_after={rng.randrange(2, 121)}")
                block = await _one_session(
                    server, receipts, rng, result, turns_per_session, turn_timeout_s, block
                )
            if receipts.misaligned:
                result.failures["blocks not as sent"] += receipts.misaligned
    finally:
        logger.setLevel(level)
    return result


def render(r: DropsResult) -> str:
    """The report, as plain text."""
    ms = sorted(r.turn_ms) or [0.0]
    lost = r.failures.get("lost audio (ms)", 0)
    lines = [
        f"connection drops: {r.drops:,} drops over {r.sessions} sessions, {r.turns:,} turns "
        f"(p50 {ms[len(ms) // 2]:.0f} ms, max {ms[-1]:.0f} ms per turn)",
        f"audio: {r.sent_ms / 1000:,.1f} s sent by the app, {r.received_ms / 1000:,.1f} s "
        f"committed by the server, {r.dropped_ms:,.0f} ms reported dropped, "
        f"{r.resent_ms / 1000:,.1f} s re-sent after reconnects",
        f"lost audio unaccounted: {lost} ms; diverged conversations: "
        f"{r.failures.get('diverged', 0)}; hangs: {r.failures.get('hang', 0)}",
        f"app retries (documented): {r.commits_retried} commits, {r.asked_again} responses "
        f"asked again; items not restorable (marked lost): {r.not_restorable}",
        f"failures: {sum(r.failures.values()) - lost} (+{lost} ms lost)",
    ]
    lines += [f"  {kind}: {count}" for kind, count in r.failures.most_common()]
    if r.example:
        lines.append(f"  first divergence: {r.example}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the campaign and print its figures; 1 if anything was lost, diverged or hung."""
    parser = argparse.ArgumentParser(prog="python -m bench.drops", description=__doc__)
    parser.add_argument("--drops", type=int, default=1_000, help="connections to cut")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--turns", type=int, default=8, help="turns per session")
    parser.add_argument("--turn-timeout-s", type=float, default=20.0, help="a hang, in s")
    parser.add_argument("--quick", action="store_true", help="20 drops")
    args, _ = parser.parse_known_args(argv)
    if args.drops <= 0 or args.turns <= 0:
        parser.error("--drops and --turns must be > 0")
    drops = 20 if args.quick else args.drops
    result = asyncio.run(run_drops(drops, args.seed, args.turns, args.turn_timeout_s))
    print(render(result), flush=True)
    return 1 if result.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
